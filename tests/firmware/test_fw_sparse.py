"""The sparse Dense path: its encoding, when ``auto`` picks it, and the firmware it builds.

The property tests draw random pruned Dense networks (sparsity from none to
all-zero rows, inputs wide enough for gaps over 255 columns), build them with
``sparse="on"`` and ``"off"``, run both under simcore and check the sparse
outputs against the dense path's reference: int8 bit for bit with the golden
int8 reference (and the dense build), q16 bit for bit with its NumPy
reference, f32 within the float tolerance of the float64 reference (and
equal to the dense build: a skipped product is an exact zero).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_fw_property_int8 import GraphBuilder

from simcore.boards import load_boards
from simcore.engine import run_firmware
from simcore.errors import FirmwareError
from simcore.firmware import build_model_firmware, q16_ref
from simcore.firmware.codec import decode_outputs, encode_inputs
from simcore.firmware.codegen import generate
from simcore.firmware.ir import FloatModel, Layer
from simcore.firmware.reference import forward_float
from simcore.firmware.sparse import (
    AUTO_MAX_BYTES_RATIO,
    MAX_GAP,
    SparseMode,
    choose_sparse,
    encode_sparse,
    parse_mode,
)
from simcore.firmware.tflite_int8 import convert
from simcore.golden import int8_ref
from simcore.golden import tflite_model as tm

BOARDS = sorted(load_boards())
SPARSITIES = (0.0, 0.5, 0.8, 0.95, 1.0)
SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def _prune(rng: np.random.Generator, w: np.ndarray, sparsity: float) -> np.ndarray:
    """Zero the ``sparsity`` share of ``w`` with the smallest magnitudes (magnitude pruning)."""
    k = round(sparsity * w.size)
    if k:
        flat = w.reshape(-1).copy()
        flat[np.argsort(np.abs(flat) + rng.uniform(0, 1e-6, flat.size), kind="stable")[:k]] = 0
        return flat.reshape(w.shape)
    return w


# -- the encoding (no emulator) -------------------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    w=arrays(
        np.int8,
        st.tuples(st.integers(1, 6), st.integers(1, 700)),
        elements=st.sampled_from([0, 0, 0, 0, -3, 1, 127, -128]),
    )
)
def test_encoding_round_trips(w: np.ndarray) -> None:
    """Decoding gives the matrix back; gaps fit a byte; fillers are zeros bridging wide gaps."""
    m = encode_sparse(w)
    np.testing.assert_array_equal(m.dense(), w)
    assert m.nonzeros == np.count_nonzero(w)
    assert m.entries == m.nonzeros + int(np.sum(m.values == 0))
    assert int(m.rows[-1]) == m.entries and np.all(np.diff(m.rows.astype(int)) >= 0)
    fillers = m.gaps[m.values == 0]
    assert np.all(fillers == MAX_GAP)
    assert m.nbytes(1) == m.entries * 2 + 2 * w.shape[0]


def test_wide_gap_is_bridged() -> None:
    """A lone weight at column 600 needs two fillers (255 + 255) and a gap of 90."""
    w = np.zeros((1, 700), np.float32)
    w[0, 600] = 1.5
    m = encode_sparse(w)
    assert m.values.tolist() == [0.0, 0.0, 1.5]
    assert m.gaps.tolist() == [255, 255, 90]
    assert m.rows.tolist() == [3]


def test_auto_picks_sparse_when_it_saves_flash_and_is_not_slower() -> None:
    rng = np.random.default_rng(1)
    dense = rng.integers(1, 100, (10, 400)).astype(np.int8)
    assert choose_sparse(dense, "int8", SparseMode.AUTO) is None
    assert choose_sparse(dense, "int8", SparseMode.ON) is not None
    pruned = _prune(rng, dense, 0.8)
    m = choose_sparse(pruned, "int8", SparseMode.AUTO)
    assert m is not None and m.nbytes(1) < AUTO_MAX_BYTES_RATIO["int8"] * pruned.size
    assert choose_sparse(pruned, "int8", SparseMode.OFF) is None
    # int8: 2 bytes per entry; slower on the M33/M7 below about 70% zeros
    assert choose_sparse(_prune(rng, dense, 0.5), "int8", SparseMode.AUTO) is None
    assert choose_sparse(_prune(rng, dense, 0.7), "int8", SparseMode.AUTO) is None  # 60% bytes
    assert choose_sparse(_prune(rng, dense, 0.75), "int8", SparseMode.AUTO) is not None
    floats = dense.astype(np.float32)
    assert choose_sparse(_prune(rng, floats, 0.45), "f32", SparseMode.AUTO) is not None  # 69%
    assert choose_sparse(_prune(rng, floats, 0.3), "f32", SparseMode.AUTO) is None  # 88% bytes
    assert choose_sparse(_prune(rng, floats, 0.5), "q16", SparseMode.AUTO) is None  # 63% bytes
    assert choose_sparse(_prune(rng, floats, 0.65), "q16", SparseMode.AUTO) is not None  # 44%


def test_too_many_entries_is_refused_or_left_dense() -> None:
    w = np.ones((300, 300), np.int8)  # 90,000 entries > 65,535
    with pytest.raises(FirmwareError, match="65535"):
        encode_sparse(w)
    assert choose_sparse(w, "int8", SparseMode.AUTO) is None
    with pytest.raises(FirmwareError, match="auto, on, off"):
        parse_mode("sometimes")


def test_generated_source_and_manifest_name_the_sparse_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    model = _float_model(rng, 20, [(8, 0.8), (3, 0.0)], "pruned")
    gen = generate(model, "f32", capacity=1, sparse=SparseMode.AUTO)
    assert "nn_f32_dense_sparse(" in gen.text and "layer0_sparse_values" in gen.text
    assert "layer0_weights" not in gen.text and "layer1_weights" in gen.text  # layer 1 is dense
    first = gen.layers[0]
    assert first.sparse["nonzeros"] == 32 and first.sparse["dense_bytes"] == 640
    assert first.sparse["saved_bytes"] == 640 - first.sparse["sparse_bytes"] > 0
    dense = generate(model, "f32", capacity=1, sparse=SparseMode.OFF)
    assert gen.weights_bytes == dense.weights_bytes - first.sparse["saved_bytes"]


# -- firmware: sparse equals the dense path ---------------------------------------------


def _float_model(
    rng: np.random.Generator, n_in: int, layers: list[tuple[int, float]], name: str
) -> FloatModel:
    chain = []
    shape = n_in
    for i, (units, sparsity) in enumerate(layers):
        w = rng.normal(0, 1 / np.sqrt(shape), (units, shape)).astype(np.float32)
        b = rng.normal(0, 0.2, units).astype(np.float32)
        act = "relu" if i < len(layers) - 1 else "linear"
        chain.append(
            Layer(f"dense{i}", "dense", (shape,), (units,), act, 0.0, _prune(rng, w, sparsity), b)
        )
        shape = units
    return FloatModel(name, "0" * 64, "test", (n_in,), tuple(chain))


def _run(build: Any, board: str, fmt: str, x: np.ndarray) -> np.ndarray:
    result = run_firmware(
        build.elf, board, inputs=encode_inputs(fmt, x), n_samples=len(x), timeout_s=60
    )
    assert result.exit_code == 0
    return decode_outputs(fmt, result.outputs, build.output_shape)


def _sparse_layers(build: Any) -> list[dict[str, Any]]:
    manifest = json.loads(build.manifest_path.read_text())
    return [la for la in manifest["layers"] if la.get("sparse")]


@st.composite
def pruned_float_models(draw: Any) -> FloatModel:
    seed = draw(st.integers(0, 2**32 - 1))
    n_in = draw(st.sampled_from([1, 7, 40, 300, 600]))
    depth = draw(st.integers(1, 2))
    layers = [(draw(st.integers(1, 8)), draw(st.sampled_from(SPARSITIES))) for _ in range(depth)]
    return _float_model(np.random.default_rng(seed), n_in, layers, f"pruned{seed}")


@pytest.mark.parametrize("fmt", ["f32", "q16"])
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=SUPPRESS)
@given(model=pruned_float_models(), board=st.sampled_from(BOARDS), seed=st.integers(0, 1000))
def test_sparse_float_equals_dense(
    tmp_path: Path, fmt: str, model: FloatModel, board: str, seed: int
) -> None:
    x = np.random.default_rng(seed).normal(0, 1, (3, *model.input_shape)).astype(np.float32)
    sparse = build_model_firmware(model, fmt, board, tmp_path, capacity=3, sparse="on")
    dense = build_model_firmware(model, fmt, board, tmp_path, capacity=3, sparse="off")
    assert len(_sparse_layers(sparse)) == len(model.layers) and not _sparse_layers(dense)
    assert sparse.elf != dense.elf
    got, want = _run(sparse, board, fmt, x), _run(dense, board, fmt, x)
    np.testing.assert_array_equal(got, want)
    if fmt == "q16":
        np.testing.assert_array_equal(got, q16_ref.forward(model, q16_ref.to_q16(x)))
    else:
        np.testing.assert_allclose(got, forward_float(model, x), rtol=1e-4, atol=1e-5)


@st.composite
def pruned_int8_graphs(draw: Any) -> tm.TfliteModel:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    g = GraphBuilder(rng)
    act = st.sampled_from(["NONE", "RELU"])
    shape = (1, draw(st.sampled_from([1, 9, 64, 300, 600])))
    x = first = g.activation(shape)
    for _ in range(draw(st.integers(1, 2))):
        units = draw(st.integers(1, 10))
        y = g.activation((1, units))
        wi, bi = g.weights((units, shape[1]), x, y)
        w = g.tensors[wi]
        pruned = _prune(rng, w.data, draw(st.sampled_from(SPARSITIES)))
        g.tensors[wi] = tm.Tensor(w.index, w.name, w.shape, w.dtype, w.quant, pruned)
        if draw(st.booleans()):
            bi = -1
        g.op("FULLY_CONNECTED", (x, wi, bi), y, fused_activation=draw(act), keep_num_dims=False)
        x, shape = y, (1, units)
    return tm.TfliteModel("0" * 64, 3, "random", tuple(g.tensors), tuple(g.ops), (first,), (x,))


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=SUPPRESS)
@given(graph=pruned_int8_graphs(), board=st.sampled_from(BOARDS), seed=st.integers(0, 1000))
def test_sparse_int8_is_bit_exact(tmp_path: Path, graph: Any, board: str, seed: int) -> None:
    model = convert(graph, "pruned", "hypothesis")
    x = np.random.default_rng(seed).integers(-128, 128, (3, *model.input_shape)).astype(np.int8)
    sparse = build_model_firmware(model, "int8", board, tmp_path, capacity=3, sparse="on")
    dense = build_model_firmware(model, "int8", board, tmp_path, capacity=3, sparse="off")
    assert len(_sparse_layers(sparse)) == len(model.ops) - sum(
        op.kind != "fully_connected" for op in model.ops
    )
    got = _run(sparse, board, "int8", x)
    np.testing.assert_array_equal(got, int8_ref.run_outputs(graph, x).reshape(got.shape))
    np.testing.assert_array_equal(got, _run(dense, board, "int8", x))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=SUPPRESS)
@given(graph=pruned_int8_graphs(), board=st.sampled_from(BOARDS), seed=st.integers(0, 1000))
def test_sparse_int8_is_bit_exact_many(tmp_path: Path, graph: Any, board: str, seed: int) -> None:
    test_sparse_int8_is_bit_exact.hypothesis.inner_test(tmp_path, graph, board, seed)  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["f32", "q16"])
@settings(max_examples=30, deadline=None, suppress_health_check=SUPPRESS)
@given(model=pruned_float_models(), board=st.sampled_from(BOARDS), seed=st.integers(0, 1000))
def test_sparse_float_equals_dense_many(
    tmp_path: Path, fmt: str, model: FloatModel, board: str, seed: int
) -> None:
    test_sparse_float_equals_dense.hypothesis.inner_test(tmp_path, fmt, model, board, seed)  # type: ignore[attr-defined]


# -- the layout doctor reads sparse layers --------------------------------------------


@pytest.mark.parametrize("fmt", ["f32", "q16"])
def test_static_scan_decodes_sparse_weights(tmp_path: Path, fmt: str) -> None:
    """The doctor's static scan judges a sparse layer by its decoded matrix, mistakes too."""
    from simcore.diagnose.static import scan
    from simcore.elf import load_elf
    from simcore.firmware.consts import encode

    model = _float_model(np.random.default_rng(5), 12, [(6, 0.7), (3, 0.7)], "scan")
    chain, consts = list(model.layers), encode(model, fmt)
    good = build_model_firmware(model, fmt, "rp2040", tmp_path, capacity=1, sparse="on")
    findings = scan(load_elf(good.elf), fmt, chain, consts)
    weights = [f for f in findings if f.role == "weights"]
    assert [f.status for f in weights] == ["match", "match"]
    assert [f.symbol for f in weights] == ["layer0_sparse_values", "layer1_sparse_values"]
    bad = build_model_firmware(
        model, fmt, "rp2040", tmp_path, capacity=1, sparse="on", inject="transpose-dense:0"
    )
    found = scan(load_elf(bad.elf), fmt, chain, consts)
    first = next(f for f in found if f.role == "weights" and f.layer == 0)
    assert first.status == "mistake" and first.mistake is not None
    assert first.mistake.kind == "transpose-dense"
