"""Convert between NumPy arrays and the byte buffers of generated firmware.

f32 buffers hold little-endian float32, q16 buffers int32 Q16.16
(``floor(x * 65536 + 0.5)``), int8 buffers int8 already quantized with the
model's input scale and zero point.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware.q16_ref import from_q16, to_q16


def encode_inputs(fmt: str, x: npt.ArrayLike) -> bytes:
    """Return the input bytes for samples ``x`` (float for f32/q16, int8 for int8)."""
    if fmt == "f32":
        return np.asarray(x, dtype="<f4").tobytes()
    if fmt == "q16":
        return to_q16(x).astype("<i4").tobytes()
    arr = np.asarray(x)
    if arr.dtype != np.int8:
        raise ValueError("int8 firmware takes int8 inputs (quantize them first)")
    return arr.tobytes()


def decode_outputs(fmt: str, data: bytes, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    """Return raw outputs ``(n, *shape)``: float32, int32 (Q16.16) or int8."""
    dtype = {"f32": "<f4", "q16": "<i4", "int8": "i1"}[fmt]
    return np.frombuffer(data, dtype=dtype).reshape((-1, *shape)).copy()


def outputs_as_float(
    fmt: str, raw: npt.NDArray[Any], scale: float = 1.0, zero_point: int = 0
) -> npt.NDArray[np.float64]:
    """Return decoded outputs as real numbers (dequantized for int8, /65536 for q16)."""
    if fmt == "q16":
        return from_q16(raw)
    if fmt == "int8":
        return (raw.astype(np.float64) - zero_point) * scale
    return raw.astype(np.float64)
