"""Converter pitfalls: an unsupported operator in an int8 .tflite is one line with a hint.

The test models are the shipped MNIST int8 model with one operator code
rewritten in memory (no TensorFlow): its RESHAPE (operator 4) becomes the
SHAPE, STRIDED_SLICE or PACK that a batch-N Keras -> TFLite conversion of a
Flatten introduces, or an operator that has nothing to do with batch sizes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import tflite

from simcore.cli import main
from simcore.errors import FirmwareError
from simcore.firmware.tflite_int8 import DYNAMIC_SHAPE_OPS, read_int8_tflite

Edit = Callable[[str], Path]
MODEL = Path(__file__).resolve().parents[2] / "golden" / "mnist_cnn" / "model_int8.tflite"


def with_opcode(data: bytes, old: str, new: str) -> bytes:
    """``data`` with every operator code ``old`` rewritten to ``new`` (both fields of schema 3a)."""
    buf = bytearray(data)
    model = tflite.Model.GetRootAs(buf, 0)
    old_code = getattr(tflite.BuiltinOperator, old)
    new_code = getattr(tflite.BuiltinOperator, new)
    assert new_code < 128  # fits deprecated_builtin_code (int8) too
    done = 0
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != old_code:
            continue
        table = code._tab  # flatbuffers table: vtable slots 4 (deprecated_builtin_code), 10
        deprecated, builtin = table.Offset(4), table.Offset(10)
        assert deprecated and builtin, "both fields are stored in the shipped model"
        struct.pack_into("<b", buf, table.Pos + deprecated, new_code)
        struct.pack_into("<i", buf, table.Pos + builtin, new_code)
        done += 1
    assert done == 1
    return bytes(buf)


@pytest.fixture
def edited(tmp_path: Path) -> Edit:
    """A copy of the MNIST int8 model whose RESHAPE is the given operator."""

    def make(op: str) -> Path:
        path = tmp_path / f"mnist_{op.lower()}.tflite"
        path.write_bytes(with_opcode(MODEL.read_bytes(), "RESHAPE", op))
        return path

    return make


@pytest.mark.parametrize("op", ["SHAPE", "STRIDED_SLICE", "PACK"])
def test_dynamic_batch_ops_get_the_batch_1_hint(op: str, edited: Edit) -> None:
    assert op in DYNAMIC_SHAPE_OPS
    path = edited(op)
    with pytest.raises(FirmwareError) as info:
        read_int8_tflite(path)
    msg = str(info.value)
    assert msg.startswith(f"{path.name}: operator 4 ({op}) is not supported; ")
    assert "dynamic batch size" in msg
    assert (
        "tf.function(model).get_concrete_function(tf.TensorSpec([1, 28, 28, 1], tf.float32))" in msg
    )
    assert "tf.lite.TFLiteConverter.from_concrete_functions([fn], model)" in msg
    assert msg.endswith("or rebuild the Keras model with batch_size=1")
    assert "\n" not in msg and info.value.exit_code == 2


def test_other_ops_list_what_is_supported(edited: Edit) -> None:
    with pytest.raises(FirmwareError) as info:
        read_int8_tflite(edited("TRANSPOSE"))
    msg = str(info.value)
    assert "operator 4 (TRANSPOSE) is not supported; supported operators: FULLY_CONNECTED" in msg
    assert "batch" not in msg


def test_build_cli_prints_the_hint_on_one_line(
    edited: Edit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edited("SHAPE")
    argv = ["build", "--model", str(path), "--format", "int8", "--board", "rp2040"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("simcore: error: mnist_shape.tflite: operator 4 (SHAPE)")
    assert "batch_size=1" in err[0]
