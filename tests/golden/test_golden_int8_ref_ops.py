"""The int8 reference on operators the shipped models do not use (slow: needs TensorFlow).

A throwaway model with SAME padding, strides, average pooling, a standalone
ReLU and every activation is converted to int8 and run on tflite-micro; the
NumPy reference must equal it on every layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from simcore.golden import int8_ref
from simcore.golden.tflite_model import read_tflite_bytes

pytestmark = pytest.mark.slow


def _build(keras: Any) -> Any:
    L = keras.layers
    inp = keras.Input((12, 12, 3), batch_size=1)
    x = L.Conv2D(6, 3, strides=2, padding="same", activation="tanh")(inp)
    x = L.ReLU()(x)  # after TANH it cannot be fused: a standalone RELU op
    x = L.AveragePooling2D(2, padding="same")(x)
    x = L.Conv2D(5, 2, padding="valid")(x)
    x = L.ReLU()(x)
    x = L.MaxPooling2D(2, strides=1, padding="same")(x)
    x = L.Flatten()(x)
    x = L.Dense(7, activation="leaky_relu")(x)
    x = L.Dense(5, activation="sigmoid")(x)
    out = L.Dense(4, activation="softmax")(x)
    return keras.Model(inp, out)


def test_reference_equals_tflm_on_padding_strides_avgpool_relu() -> None:
    pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    pytest.importorskip("tflite_micro")
    from simcore.golden.generate import configure_determinism, convert
    from simcore.golden.tflm import run_int8

    configure_determinism(1234)
    model = _build(keras)
    rng = np.random.default_rng(5)
    calib = rng.normal(0, 1, (64, 12, 12, 3)).astype(np.float32)
    data = convert(model, calib)
    tfl = read_tflite_bytes(data)
    ops = {op.opcode for op in tfl.operators}
    assert {
        "CONV_2D",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "FULLY_CONNECTED",
        "SOFTMAX",
        "RELU",
    } <= ops
    assert ops & {"TANH", "LOGISTIC", "LEAKY_RELU"} == {"TANH", "LOGISTIC", "LEAKY_RELU"}
    x_q = rng.integers(-128, 128, (40, 12, 12, 3)).astype(np.int8)
    ids = [op.outputs[0] for op in tfl.operators]
    _, kept = run_int8(data, x_q, keep_tensors=lambda i: True, tensor_ids=ids)
    for row, layers in enumerate(kept):
        for res, theirs in zip(int8_ref.run_model(tfl, x_q[row]), layers, strict=True):
            assert np.array_equal(res.values.reshape(-1), theirs.reshape(-1)), (
                f"row {row} op {res.op_index} {res.opcode} {tfl.operators[res.op_index].options}"
            )
