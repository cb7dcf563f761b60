"""Every shipped model x format x board: build, run under simcore, match the golden.

int8 must equal tflite-micro's outputs bit for bit, q16 must equal the NumPy
q16 reference bit for bit (and be within its stated tolerance of Keras),
f32 must be within its stated tolerance of Keras. A handful of test-split
samples per combination keeps this fast; the slow session runs up to 400.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np
import pytest
from fw_support import Builder

from simcore.boards import get_board, load_boards
from simcore.engine import run_firmware
from simcore.firmware import q16_ref
from simcore.firmware.build import load_model, resolve_model
from simcore.firmware.codec import decode_outputs, encode_inputs
from simcore.firmware.ir import FloatModel
from simcore.firmware.q16_ref import Q16_TOLERANCE
from simcore.firmware.reference import F32_TOLERANCE
from simcore.golden.store import Golden, load_golden

MODELS = ("iris_anne8", "iris_anne6", "iris3", "mnist_cnn")
FORMATS = ("f32", "int8", "q16")
BOARDS = tuple(sorted(load_boards()))
DSP_BOARDS = tuple(b for b in BOARDS if get_board(b).core.dsp)
#: The DSP path is compared with the portable one where it matters: the CNN and
#: the softmax net (the other IRIS nets use the same FULLY_CONNECTED kernel).
PORTABLE_MODELS = ("iris3", "mnist_cnn")
#: Per-layer traces: every format of the CNN, and the int8 net with separate
#: TANH and LEAKY_RELU operators.
TRACE_CASES = (
    ("mnist_cnn", "f32"),
    ("mnist_cnn", "int8"),
    ("mnist_cnn", "q16"),
    ("iris_anne8", "int8"),
)
SAMPLES = 8  # per combination (half for mnist_cnn: soft float on the M0+ is slow)
#: The slow test's cap per combination: all of IRIS, 400 of the 10,000 MNIST test
#: images (all 36 combinations passed on 1,000 in 23 minutes, 12.5 of them
#: for the soft-float f32 build on the M0+).
SLOW_SAMPLES = 400

_goldens: dict[str, Golden] = {}


def golden(name: str) -> Golden:
    if name not in _goldens:
        try:
            _goldens[name] = load_golden(name)
        except Exception as exc:
            pytest.skip(f"golden {name} unavailable: {exc}")
    return _goldens[name]


def run_samples(build: Any, board: str, fmt: str, g: Golden, rows: Any, trace: bool = False) -> Any:
    x = g.inputs_int8[rows] if fmt == "int8" else g.inputs_float[rows]
    result = run_firmware(
        build.elf,
        board,
        inputs=encode_inputs(fmt, x),
        n_samples=len(rows),
        trace=trace,
        timeout_s=120,
    )
    assert result.exit_code == 0, result.stop_reason
    return result, decode_outputs(fmt, result.outputs, build.output_shape)


@functools.cache
def _float_model(name: str) -> FloatModel:
    return load_model(*resolve_model(name, "q16"), "q16")  # type: ignore[return-value]


def check_outputs(fmt: str, name: str, g: Golden, rows: Any, out: Any) -> None:
    keras = g.outputs_float[rows].reshape(out.shape).astype(np.float64)
    if fmt == "int8":
        np.testing.assert_array_equal(out, g.outputs_int8_raw[rows].reshape(out.shape))
    elif fmt == "q16":
        model = _float_model(name)
        expect = q16_ref.forward(model, q16_ref.to_q16(g.inputs_float[rows]))
        np.testing.assert_array_equal(out, expect.reshape(out.shape))
        np.testing.assert_allclose(out / 65536.0, keras, rtol=0, atol=Q16_TOLERANCE["abs"])
    else:
        np.testing.assert_allclose(out, keras, rtol=F32_TOLERANCE["rel"], atol=F32_TOLERANCE["abs"])


@pytest.fixture(scope="module", autouse=True)
def _build_in_parallel(fw_build: Builder) -> None:
    """Build every combination up front on all cores (each build is a few compiler runs)."""
    from concurrent.futures import ThreadPoolExecutor

    from simcore.firmware import shipped_models

    jobs = [(m, f, b, {}) for m in shipped_models() if m in MODELS for f in FORMATS for b in BOARDS]
    jobs += [(m, "int8", b, {"portable": True}) for m in PORTABLE_MODELS for b in DSP_BOARDS]
    jobs += [(m, f, "rp2350", {"trace": True}) for m, f in TRACE_CASES]

    def build(job: tuple[str, str, str, dict[str, bool]]) -> None:
        with contextlib.suppress(pytest.skip.Exception):  # too big for the board: tests skip
            fw_build(job[0], job[1], job[2], **job[3])

    with ThreadPoolExecutor() as pool:
        list(pool.map(build, jobs))


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", MODELS)
def test_model_matches_golden(fw_build: Builder, name: str, fmt: str, board: str) -> None:
    g = golden(name)
    build = fw_build(name, fmt, board)
    rows = g.split("test")[: SAMPLES // 2 if name == "mnist_cnn" else SAMPLES]
    _, out = run_samples(build, board, fmt, g, rows)
    check_outputs(fmt, name, g, rows, out)


@pytest.mark.parametrize("board", DSP_BOARDS)
@pytest.mark.parametrize("name", PORTABLE_MODELS)
def test_int8_portable_path_gives_the_same_outputs(
    fw_build: Builder, name: str, board: str
) -> None:
    g = golden(name)
    rows = g.split("test")[: SAMPLES // 2 if name == "mnist_cnn" else SAMPLES]
    dsp = fw_build(name, "int8", board)
    portable = fw_build(name, "int8", board, portable=True)
    assert dsp.manifest["variant"]["int8_dsp_path"] is True
    assert portable.manifest["variant"]["int8_dsp_path"] is False
    r_dsp, out_dsp = run_samples(dsp, board, "int8", g, rows)
    r_port, out_port = run_samples(portable, board, "int8", g, rows)
    np.testing.assert_array_equal(out_dsp, out_port)
    check_outputs("int8", name, g, rows, out_dsp)
    if name == "mnist_cnn":  # the CNN is where SMLAD pays (tiny IRIS nets: about even)
        assert sum(r_dsp.sample_cycles) < 0.9 * sum(r_port.sample_cycles)
        assert sum(r_dsp.sample_instructions) < sum(r_port.sample_instructions)


@pytest.mark.parametrize("name,fmt", TRACE_CASES, ids=[f"{m}-{f}" for m, f in TRACE_CASES])
def test_trace_build_reports_every_layer(fw_build: Builder, name: str, fmt: str) -> None:
    g = golden(name)
    board = "rp2350"
    build = fw_build(name, fmt, board, trace=True)
    rows = g.layer_samples
    result, out = run_samples(build, board, fmt, g, rows, trace=True)
    check_outputs(fmt, name, g, rows, out)
    layers = build.manifest["layers"]
    assert len(result.traces) == len(rows) * len(layers)
    reference = g.layer_outputs_int8 if fmt == "int8" else g.layer_outputs_float
    assert len(reference) == len(layers)
    for rec in result.traces:
        ref = reference[rec.layer_id]
        got = decode_outputs(fmt, rec.data, tuple(layers[rec.layer_id]["out_shape"]))[0]
        want = ref.values[rec.sample_index].reshape(got.shape)
        if fmt == "int8":
            np.testing.assert_array_equal(got, want, err_msg=ref.name)
        elif fmt == "q16":
            np.testing.assert_allclose(
                got / 65536.0, want, atol=Q16_TOLERANCE["abs"] * 5, err_msg=ref.name
            )
        else:
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4, err_msg=ref.name)


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", MODELS)
def test_model_matches_golden_on_the_test_split(
    fw_build: Builder, name: str, fmt: str, board: str
) -> None:
    g = golden(name)
    build = fw_build(name, fmt, board)
    rows = g.split("test")[:SLOW_SAMPLES]
    for start in range(0, len(rows), build.capacity):
        chunk = rows[start : start + build.capacity]
        _, out = run_samples(build, board, fmt, g, chunk)
        check_outputs(fmt, name, g, chunk, out)
