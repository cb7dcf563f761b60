"""The constant arrays a generated firmware holds per layer, in its encoding and layout.

One place decides what ``layer<N>_weights`` / ``_bias`` / ``_multiplier`` /
``_shift`` contain (firmware_builds/GENERATED.md): the code generator emits
them, the layout doctor reads them back from an ELF and recomputes layers
from them. Encodings:

- f32: float32 weights and bias;
- q16: int32 Q16.16 weights and bias (``floor(x * 65536 + 0.5)``);
- int8: int8 weights, int32 bias, int32 multiplier and shift per output channel.

Layouts: Dense ``[out][in]``, Conv2D OHWI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware import q16_ref
from simcore.firmware.ir import FloatModel, Int8Model, Int8Op, Layer

#: Array roles in symbol order, and the C element type of each per format.
ROLES = ("weights", "bias", "multiplier", "shift")
DTYPES: dict[str, dict[str, str]] = {
    "f32": {"weights": "<f4", "bias": "<f4"},
    "q16": {"weights": "<i4", "bias": "<i4"},
    "int8": {"weights": "i1", "bias": "<i4", "multiplier": "<i4", "shift": "<i4"},
}


@dataclass(frozen=True)
class LayerConsts:
    """One layer's constant arrays as the firmware stores them (None: the layer has none)."""

    weights: npt.NDArray[Any] | None = field(default=None, repr=False)
    bias: npt.NDArray[Any] | None = field(default=None, repr=False)
    multiplier: npt.NDArray[Any] | None = field(default=None, repr=False)
    shift: npt.NDArray[Any] | None = field(default=None, repr=False)

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The arrays this layer has, by role, in symbol order."""
        out = {}
        for role in ROLES:
            a = getattr(self, role)
            if a is not None:
                out[role] = a
        return out

    @property
    def empty(self) -> bool:
        return not self.arrays()


def encode_layer(layer: Layer | Int8Op, fmt: str) -> LayerConsts:
    """Return the arrays the firmware of ``fmt`` stores for one layer."""
    if isinstance(layer, Int8Op):
        if layer.weights is None:
            return LayerConsts()
        return LayerConsts(
            weights=np.ascontiguousarray(layer.weights, dtype=np.int8),
            bias=None if layer.bias is None else np.asarray(layer.bias, dtype=np.int32),
            multiplier=None
            if layer.multiplier is None
            else np.asarray(layer.multiplier, dtype=np.int32),
            shift=None if layer.shift is None else np.asarray(layer.shift, dtype=np.int32),
        )
    if layer.weights is None or layer.bias is None:
        return LayerConsts()
    if fmt == "f32":
        return LayerConsts(
            weights=np.asarray(layer.weights, dtype=np.float32),
            bias=np.asarray(layer.bias, dtype=np.float32),
        )
    if fmt == "q16":
        return LayerConsts(weights=q16_ref.to_q16(layer.weights), bias=q16_ref.to_q16(layer.bias))
    raise ValueError(f"a float layer has no {fmt} encoding")


def encode(model: FloatModel | Int8Model, fmt: str) -> list[LayerConsts]:
    """Return every layer's arrays (one entry per layer / trace id)."""
    layers = model.ops if isinstance(model, Int8Model) else model.layers
    return [encode_layer(layer, fmt) for layer in layers]


def to_bytes(fmt: str, role: str, a: npt.NDArray[Any]) -> bytes:
    """The bytes of one array as the firmware stores it (little endian)."""
    return np.asarray(a).astype(DTYPES[fmt][role], copy=False).reshape(-1).tobytes()


def from_bytes(fmt: str, role: str, data: bytes) -> npt.NDArray[Any]:
    """Decode one array's bytes (flat)."""
    dtype = np.dtype(DTYPES[fmt][role])
    usable = len(data) // dtype.itemsize * dtype.itemsize
    return np.frombuffer(data[:usable], dtype=dtype).astype(dtype.newbyteorder("="))
