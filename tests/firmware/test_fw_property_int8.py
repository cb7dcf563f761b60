"""Property test, int8: random Dense and Conv graphs as parsed-.tflite objects.

The graphs are built directly as :mod:`simcore.golden.tflite_model` objects
(what the flatbuffer reader returns), converted, built and emulated on the
DSP and portable paths, and compared bit for bit with the golden int8
reference (:mod:`simcore.golden.int8_ref`, itself checked against
tflite-micro).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from simcore.boards import load_boards
from simcore.engine import run_firmware
from simcore.errors import DoesNotFit
from simcore.firmware import build_model_firmware
from simcore.firmware.codec import decode_outputs, encode_inputs
from simcore.firmware.ir import same_or_valid
from simcore.firmware.tflite_int8 import convert
from simcore.golden import int8_ref
from simcore.golden import tflite_model as tm

BOARDS = sorted(load_boards())


class GraphBuilder:
    """Accumulate tensors and operators of a single-chain int8 graph."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.tensors: list[Any] = []
        self.ops: list[Any] = []

    def tensor(
        self,
        shape: tuple[int, ...],
        dtype: str = "int8",
        scale: Any = None,
        zp: Any = None,
        data: Any = None,
        axis: int = 0,
    ) -> int:
        quant = None
        if scale is not None:
            quant = tm.Quantization(
                scale=np.asarray(scale, dtype=np.float32).reshape(-1),
                zero_point=np.asarray(zp, dtype=np.int64).reshape(-1),
                axis=axis,
            )
        idx = len(self.tensors)
        self.tensors.append(tm.Tensor(idx, f"t{idx}", shape, dtype, quant, data))
        return idx

    def activation(self, shape: tuple[int, ...]) -> int:
        scale = float(self.rng.uniform(0.01, 0.2))
        return self.tensor(shape, scale=[scale], zp=[int(self.rng.integers(-20, 21))])

    def op(self, opcode: str, inputs: tuple[int, ...], output: int, **options: Any) -> None:
        self.ops.append(tm.Operator(len(self.ops), opcode, inputs, (output,), options))

    def weights(self, shape: tuple[int, ...], x: int, y: int) -> tuple[int, int]:
        """Constant weights and bias whose requantization keeps outputs mostly unsaturated."""
        channels = shape[0]
        terms = int(np.prod(shape[1:]))
        w = self.rng.integers(-127, 128, shape).astype(np.int8)
        s_in = float(self.tensors[x].quant.scale[0])
        s_out = float(self.tensors[y].quant.scale[0])
        multiplier = self.rng.uniform(0.2, 2.0, channels) / (50.0 * np.sqrt(terms))
        scales = multiplier * s_out / s_in
        wi = self.tensor(shape, scale=scales, zp=np.zeros(channels), data=w)
        b = self.rng.integers(-3000, 3000, channels).astype(np.int32)
        bi = self.tensor(
            (channels,), "int32", scale=np.ones(channels), zp=np.zeros(channels), data=b
        )
        return wi, bi


@st.composite
def int8_graphs(draw: Any) -> Any:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    g = GraphBuilder(rng)
    act = st.sampled_from(["NONE", "RELU"])
    if draw(st.booleans()):
        shape: tuple[int, ...] = (1, draw(st.integers(1, 40)))
        x = first = g.activation(shape)
    else:
        shape = (1, draw(st.integers(3, 8)), draw(st.integers(3, 8)), draw(st.integers(1, 4)))
        x = first = g.activation(shape)
        for _ in range(draw(st.integers(1, 2))):
            _, h, w, c = shape
            k = draw(st.integers(1, min(3, h, w)))
            s = draw(st.integers(1, 2))
            pad = draw(st.sampled_from(["VALID", "SAME"]))
            c_out = draw(st.integers(1, 6))
            oh, ow, _, _ = same_or_valid(pad.lower(), h, w, k, k, s, s)
            y = g.activation((1, oh, ow, c_out))
            wi, bi = g.weights((c_out, k, k, c), x, y)
            g.op(
                "CONV_2D",
                (x, wi, bi),
                y,
                padding=pad,
                stride_h=s,
                stride_w=s,
                dilation_h=1,
                dilation_w=1,
                fused_activation=draw(act),
            )
            x, shape = y, (1, oh, ow, c_out)
            if draw(st.booleans()) and min(oh, ow) >= 2:
                pad = draw(st.sampled_from(["VALID", "SAME"]))
                ph, pw, _, _ = same_or_valid(pad.lower(), oh, ow, 2, 2, 2, 2)
                q = g.tensors[x].quant
                y = g.tensor((1, ph, pw, c_out), scale=q.scale, zp=q.zero_point)
                g.op(
                    draw(st.sampled_from(["MAX_POOL_2D", "AVERAGE_POOL_2D"])),
                    (x,),
                    y,
                    padding=pad,
                    stride_h=2,
                    stride_w=2,
                    filter_h=2,
                    filter_w=2,
                    fused_activation="NONE",
                )
                x, shape = y, (1, ph, pw, c_out)
        n = int(np.prod(shape))
        q = g.tensors[x].quant
        y = g.tensor((1, n), scale=q.scale, zp=q.zero_point)
        g.op("RESHAPE", (x,), y)
        x, shape = y, (1, n)
    for _ in range(draw(st.integers(1, 2))):
        units = draw(st.integers(1, 12))
        y = g.activation((1, units))
        wi, bi = g.weights((units, shape[1]), x, y)
        if draw(st.booleans()):
            bi = -1
        g.op("FULLY_CONNECTED", (x, wi, bi), y, fused_activation=draw(act), keep_num_dims=False)
        x, shape = y, (1, units)
        extra = draw(st.sampled_from(["none", "LOGISTIC", "TANH", "LEAKY_RELU"]))
        if extra == "LOGISTIC":
            y = g.tensor(shape, scale=[1 / 256], zp=[-128])
            g.op("LOGISTIC", (x,), y)
        elif extra == "TANH":
            y = g.tensor(shape, scale=[1 / 128], zp=[0])
            g.op("TANH", (x,), y)
        elif extra == "LEAKY_RELU":
            y = g.activation(shape)
            g.op("LEAKY_RELU", (x,), y, alpha=draw(st.floats(0.01, 0.5)))
        x = y
    if draw(st.booleans()):
        y = g.tensor(shape, scale=[1 / 256], zp=[-128])
        g.op("SOFTMAX", (x,), y, beta=1.0)
        x = y
    return tm.TfliteModel("0" * 64, 3, "random", tuple(g.tensors), tuple(g.ops), (first,), (x,))


#: What both property tests draw: a graph, a board, the DSP or portable path, a seed.
DRAWS = {
    "graph": int8_graphs(),
    "board": st.sampled_from(BOARDS),
    "portable": st.booleans(),
    "seed": st.integers(0, 1000),
}
SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=SUPPRESS)
@given(**DRAWS)
def test_random_int8_models(
    tmp_path: Path, graph: Any, board: str, portable: bool, seed: int
) -> None:
    model = convert(graph, "random", "hypothesis")
    x = np.random.default_rng(seed).integers(-128, 128, (3, *model.input_shape)).astype(np.int8)
    try:
        build = build_model_firmware(
            model, "int8", board, tmp_path / board, capacity=3, portable=portable
        )
    except DoesNotFit:  # too big for a small board (the micro:bit's 16 KB): not a case
        reject()
    result = run_firmware(
        build.elf, board, inputs=encode_inputs("int8", x), n_samples=3, timeout_s=60
    )
    assert result.exit_code == 0
    out = decode_outputs("int8", result.outputs, build.output_shape)
    expect = int8_ref.run_outputs(graph, x).reshape(out.shape)
    np.testing.assert_array_equal(out, expect)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=SUPPRESS)
@given(**DRAWS)
def test_random_int8_models_many(
    tmp_path: Path, graph: Any, board: str, portable: bool, seed: int
) -> None:
    test_random_int8_models.hypothesis.inner_test(tmp_path, graph, board, portable, seed)  # type: ignore[attr-defined]
