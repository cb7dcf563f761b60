"""The .tflite reader sees what the firmware generator needs, without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest
from golden_support import GOLDEN_ROOT, flip_byte

from simcore.errors import GoldenError
from simcore.golden import load_golden
from simcore.golden.tflite_model import read_tflite

OPS = {
    "iris_anne8": ["FULLY_CONNECTED", "TANH", "FULLY_CONNECTED", "LEAKY_RELU",
                   "FULLY_CONNECTED", "FULLY_CONNECTED", "LOGISTIC"],
    "iris_anne6": ["FULLY_CONNECTED", "LOGISTIC", "FULLY_CONNECTED", "FULLY_CONNECTED",
                   "LOGISTIC"],
    "iris3": ["FULLY_CONNECTED", "TANH", "FULLY_CONNECTED", "SOFTMAX"],
    "mnist_cnn": ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "RESHAPE",
                  "FULLY_CONNECTED"],
}  # fmt: skip
PARAMS = {"iris_anne8": 30, "iris_anne6": 26}


@pytest.mark.parametrize("name", sorted(OPS))
def test_int8_model_ops_and_io(name: str) -> None:
    m = read_tflite(GOLDEN_ROOT / name / "model_int8.tflite")
    assert [op.opcode for op in m.operators] == OPS[name]
    assert m.input_tensor.dtype == "int8" and m.output_tensor.dtype == "int8"
    assert m.input_tensor.shape[0] == 1  # batch size 1: no SHAPE/PACK ops
    g = load_golden(name)
    assert m.sha256 == g.model_sha256["tflite_int8"]
    assert m.input_tensor.quant is not None
    assert float(m.input_tensor.quant.scale[0]) == pytest.approx(g.input_quant.scale)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_anne_nets_have_the_papers_parameter_count(name: str) -> None:
    m = read_tflite(GOLDEN_ROOT / name / "model_float.tflite")
    consts = [t for t in m.tensors if t.data is not None and t.dtype == "float32"]
    assert sum(t.data.size for t in consts if t.data is not None) == PARAMS[name]


def test_mnist_conv_is_per_channel_and_small() -> None:
    m = read_tflite(GOLDEN_ROOT / "mnist_cnn" / "model_int8.tflite")
    conv1, _, conv2, _, _, fc = m.operators
    w1, w2 = m.tensors[conv1.inputs[1]], m.tensors[conv2.inputs[1]]
    assert w1.shape == (8, 3, 3, 1) and w2.shape == (16, 3, 3, 8)  # OHWI
    assert w1.quant is not None and len(w1.quant.scale) == 8 and w1.quant.axis == 0
    assert conv1.options["padding"] == "VALID" and conv1.options["fused_activation"] == "RELU"
    assert m.tensors[fc.inputs[1]].shape == (10, 400)
    int8_bytes = sum(t.data.nbytes for t in m.tensors if t.data is not None and t.dtype == "int8")
    assert int8_bytes == 8 * 9 + 16 * 72 + 10 * 400 <= 10 * 1024
    biases = [m.op_input(op, 2) for op in (conv1, conv2, fc)]
    assert [(b.dtype, b.shape) for b in biases if b is not None] == [
        ("int32", (8,)), ("int32", (16,)), ("int32", (10,))
    ]  # fmt: skip


def test_corrupt_tflite_is_a_golden_error(tmp_path: Path) -> None:
    p = tmp_path / "m.tflite"
    p.write_bytes((GOLDEN_ROOT / "iris3" / "model_int8.tflite").read_bytes())
    flip_byte(p, 5)  # inside the TFL3 identifier
    with pytest.raises(GoldenError, match="TFL3"):
        read_tflite(p)
