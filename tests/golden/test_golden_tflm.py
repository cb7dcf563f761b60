"""tflite-micro re-run on the committed int8 models reproduces the goldens bit for bit.

tflite-micro is in the dev extra (a 4 MB wheel without TensorFlow), so these
run in CI; a subset by default, all 10,000 MNIST images when slow.
"""

from __future__ import annotations

import numpy as np
import pytest
from golden_support import MODELS

from simcore.golden import int8_ref, load_golden
from simcore.golden.tflite_model import read_tflite

pytest.importorskip("tflite_micro")

from simcore.golden.tflm import run_int8


def _rows(n: int, count: int | None) -> np.ndarray:
    if count is None or count >= n:
        return np.arange(n)
    return np.linspace(0, n - 1, count).astype(np.int64)


@pytest.mark.parametrize("name", MODELS)
def test_tflm_reproduces_int8_goldens_on_a_subset(name: str) -> None:
    g = load_golden(name)
    rows = _rows(g.num_samples, 300)
    out, _ = run_int8(g.tflite_int8_path.read_bytes(), g.inputs_int8[rows])
    assert np.array_equal(out, g.outputs_int8_raw[rows].reshape(len(rows), -1))


@pytest.mark.slow
def test_tflm_reproduces_all_mnist_int8_goldens() -> None:
    g = load_golden("mnist_cnn")
    out, _ = run_int8(g.tflite_int8_path.read_bytes(), g.inputs_int8)
    bad = np.flatnonzero(np.any(out != g.outputs_int8_raw, axis=1))
    assert bad.size == 0, f"tflite-micro differs from the golden on rows {bad[:10].tolist()}"


def _compare_every_layer(name: str, count: int | None) -> None:
    g = load_golden(name)
    data = g.tflite_int8_path.read_bytes()
    model = read_tflite(g.tflite_int8_path)
    rows = _rows(g.num_samples, count)
    tensor_ids = [op.outputs[0] for op in model.operators]
    _, kept = run_int8(
        data, g.inputs_int8[rows], keep_tensors=lambda i: True, tensor_ids=tensor_ids
    )
    for row, tflm_layers in zip(rows, kept, strict=True):
        ours = int8_ref.run_model(model, g.inputs_int8[row])
        for res, theirs in zip(ours, tflm_layers, strict=True):
            assert np.array_equal(res.values.reshape(-1), theirs.reshape(-1)), (
                f"{name} row {row}: op {res.op_index} {res.opcode} differs from tflite-micro"
            )


@pytest.mark.parametrize("name", MODELS)
def test_int8_reference_equals_tflm_on_every_layer_subset(name: str) -> None:
    _compare_every_layer(name, 25)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_int8_reference_equals_tflm_on_every_layer_all_samples(name: str) -> None:
    _compare_every_layer(name, None)


def test_tflm_intermediates_equal_the_recorded_layer_goldens() -> None:
    for name in MODELS:
        g = load_golden(name)
        model = read_tflite(g.tflite_int8_path)
        tensor_ids = [op.outputs[0] for op in model.operators]
        _, kept = run_int8(
            g.tflite_int8_path.read_bytes(),
            g.inputs_int8[g.layer_samples],
            keep_tensors=lambda i: True,
            tensor_ids=tensor_ids,
        )
        for k, layers in enumerate(kept):
            for lo, t in zip(g.layer_outputs_int8, layers, strict=True):
                assert np.array_equal(lo.values[k].reshape(-1), t.reshape(-1)), (name, lo.index)
