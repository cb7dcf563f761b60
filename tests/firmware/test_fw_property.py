"""Property test: random small Dense and Conv models, generated, built, emulated, compared.

Each example builds one firmware (about a second), so example counts are
small; the slow session runs more. f32 is compared with the float64
reference within tolerance, q16 bit for bit with its NumPy reference.
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
from simcore.firmware import build_model_firmware, q16_ref
from simcore.firmware.codec import decode_outputs, encode_inputs
from simcore.firmware.ir import FloatModel, Geometry, Layer, same_or_valid
from simcore.firmware.reference import forward_float

BOARDS = sorted(load_boards())
HIDDEN = ("relu", "sigmoid", "tanh", "leaky_relu", "linear")
OUTPUT = ("sigmoid", "softmax", "linear", "tanh")


@st.composite
def float_models(draw: Any) -> FloatModel:
    """A random Dense chain, or a Conv2D [+ pool] [+ Conv2D] + Flatten + Dense network."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []

    def dense(shape: tuple[int, ...], units: int, act: str) -> Layer:
        n = shape[0]
        w = rng.normal(0, 1 / np.sqrt(n), (units, n)).astype(np.float32)
        b = rng.normal(0, 0.2, units).astype(np.float32)
        return Layer(f"dense{len(layers)}", "dense", shape, (units,), act, 0.2, w, b)

    if draw(st.booleans()):
        shape: tuple[int, ...] = (draw(st.integers(1, 12)),)
        input_shape = shape
        for _ in range(draw(st.integers(0, 2))):
            layers.append(dense(shape, draw(st.integers(1, 10)), draw(st.sampled_from(HIDDEN))))
            shape = layers[-1].out_shape
    else:
        h, w_, c = draw(st.integers(3, 9)), draw(st.integers(3, 9)), draw(st.integers(1, 3))
        shape = input_shape = (h, w_, c)
        for _ in range(draw(st.integers(1, 2))):
            k = draw(st.integers(1, min(3, shape[0], shape[1])))
            s = draw(st.integers(1, 2))
            pad = draw(st.sampled_from(["valid", "same"]))
            c_out = draw(st.integers(1, 5))
            oh, ow, pt, pl = same_or_valid(pad, shape[0], shape[1], k, k, s, s)
            wt = rng.normal(0, 1 / np.sqrt(k * k * shape[2]), (c_out, k, k, shape[2]))
            layers.append(
                Layer(
                    f"conv{len(layers)}",
                    "conv2d",
                    shape,
                    (oh, ow, c_out),
                    draw(st.sampled_from(HIDDEN)),
                    0.1,
                    wt.astype(np.float32),
                    rng.normal(0, 0.2, c_out).astype(np.float32),
                    Geometry(k, k, s, s, pt, pl),
                )
            )
            shape = layers[-1].out_shape
            if draw(st.booleans()) and min(shape[:2]) >= 2:
                kind = draw(st.sampled_from(["maxpool", "avgpool"]))
                pad = draw(st.sampled_from(["valid", "same"]))
                oh, ow, pt, pl = same_or_valid(pad, shape[0], shape[1], 2, 2, 2, 2)
                layers.append(
                    Layer(
                        f"pool{len(layers)}",
                        kind,
                        shape,
                        (oh, ow, shape[2]),
                        geometry=Geometry(2, 2, 2, 2, pt, pl),
                    )
                )
                shape = layers[-1].out_shape
        n = int(np.prod(shape))
        layers.append(Layer(f"flatten{len(layers)}", "flatten", shape, (n,)))
        shape = (n,)
    layers.append(dense(shape, draw(st.integers(1, 6)), draw(st.sampled_from(OUTPUT))))
    return FloatModel(f"random{seed}", f"{seed:064x}", "hypothesis", input_shape, tuple(layers))


def _run(model: FloatModel, fmt: str, board: str, out: Path, x: Any) -> Any:
    try:
        build = build_model_firmware(model, fmt, board, out, capacity=len(x))
    except DoesNotFit:  # too big for a small board (the micro:bit's 16 KB): not a case
        reject()
    result = run_firmware(
        build.elf, board, inputs=encode_inputs(fmt, x), n_samples=len(x), timeout_s=60
    )
    assert result.exit_code == 0
    return decode_outputs(fmt, result.outputs, build.output_shape)


PROPERTY = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("fmt", ["f32", "q16"])
@PROPERTY
@given(model=float_models(), board=st.sampled_from(BOARDS), seed=st.integers(0, 1000))
def test_random_float_models(
    tmp_path: Path, fmt: str, model: FloatModel, board: str, seed: int
) -> None:
    x = np.random.default_rng(seed).normal(0, 1, (3, *model.input_shape)).astype(np.float32)
    out = _run(model, fmt, board, tmp_path / f"{fmt}-{board}", x)
    if fmt == "q16":
        np.testing.assert_array_equal(out, q16_ref.forward(model, q16_ref.to_q16(x)))
    else:
        np.testing.assert_allclose(out, forward_float(model, x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["f32", "q16"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(model=float_models(), board=st.sampled_from(BOARDS), seed=st.integers(0, 1000))
def test_random_float_models_many(
    tmp_path: Path, fmt: str, model: FloatModel, board: str, seed: int
) -> None:
    test_random_float_models.hypothesis.inner_test(tmp_path, fmt, model, board, seed)  # type: ignore[attr-defined]
