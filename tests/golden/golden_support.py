"""Helpers shared by the golden tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

GOLDEN_ROOT = Path(__file__).resolve().parents[2] / "golden"
MODELS = (
    "iris3",
    "iris_anne6",
    "iris_anne8",
    "mnist_cnn",
    "mnist_cnn_pruned50",
    "mnist_cnn_pruned80",
    "mnist_cnn_student",
)
#: Shipped goldens made from an ONNX export (simcore.golden.onnx_export): no Keras/TFLite files.
ONNX_MODELS = ("mnist_cnn_onnx",)

CopyGolden = Callable[[str], Path]


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Invert one byte of a file (the middle one unless given)."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))
