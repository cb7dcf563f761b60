"""The model description the generator works from, independent of the file format.

A float model (read from ``.keras``, built by tests) is a chain of
:class:`Layer` objects; the int8 model (read from ``.tflite``) is a chain of
:class:`Int8Op` objects carrying TFLite's requantization parameters. Shapes
are NHWC without the batch axis: ``(h, w, c)`` for images, ``(n,)`` for
vectors. Weights are already in the firmware layout (firmware_builds/include/
nn_common.h): Dense ``[out][in]``, Conv2D OHWI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.errors import FirmwareError as FirmwareError  # re-exported for the generator

#: Layer kinds of the float model and the activations every format supports.
LAYER_KINDS = ("dense", "conv2d", "maxpool", "avgpool", "flatten", "activation")
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "leaky_relu", "softmax")
FORMATS = ("f32", "int8", "q16")


@dataclass(frozen=True)
class Geometry:
    """Window geometry of a Conv2D or pooling layer (C struct ``nn_geom_t``)."""

    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int


def same_or_valid(
    padding: str, in_h: int, in_w: int, k_h: int, k_w: int, stride_h: int, stride_w: int
) -> tuple[int, int, int, int]:
    """Return ``(out_h, out_w, pad_top, pad_left)`` by TensorFlow's VALID/SAME rules."""
    if padding == "valid":
        out_h = (in_h - k_h) // stride_h + 1
        out_w = (in_w - k_w) // stride_w + 1
        return out_h, out_w, 0, 0
    out_h = (in_h + stride_h - 1) // stride_h
    out_w = (in_w + stride_w - 1) // stride_w
    pad_h = max((out_h - 1) * stride_h + k_h - in_h, 0)
    pad_w = max((out_w - 1) * stride_w + k_w - in_w, 0)
    return out_h, out_w, pad_h // 2, pad_w // 2


@dataclass(frozen=True)
class Layer:
    """One float layer; ``activation`` is applied to its output (fused)."""

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    activation: str = "linear"
    alpha: float = 0.0
    weights: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    bias: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    geometry: Geometry | None = None


@dataclass(frozen=True)
class FloatModel:
    """A chain of float layers; ``sha256`` identifies the file it came from."""

    name: str
    sha256: str
    source: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape if self.layers else self.input_shape


@dataclass(frozen=True)
class Int8Op:
    """One int8 operator with its TFLite-computed integer parameters.

    ``kind`` is one of fully_connected, conv2d, maxpool, avgpool, reshape,
    logistic, tanh, leaky_relu, softmax, requantize; ``params`` holds the
    integers the C kernel takes (see nn_int8.h), ``weights`` are int8 in the
    firmware layout, ``bias`` int32.
    """

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: dict[str, Any]
    weights: npt.NDArray[np.int8] | None = field(default=None, repr=False)
    bias: npt.NDArray[np.int32] | None = field(default=None, repr=False)
    multiplier: npt.NDArray[np.int32] | None = field(default=None, repr=False)
    shift: npt.NDArray[np.int32] | None = field(default=None, repr=False)
    geometry: Geometry | None = None


@dataclass(frozen=True)
class Int8Model:
    """A chain of int8 operators with the graph input/output quantization."""

    name: str
    sha256: str
    source: str
    input_shape: tuple[int, ...]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    ops: tuple[Int8Op, ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.ops[-1].out_shape if self.ops else self.input_shape


def numel(shape: tuple[int, ...]) -> int:
    """Number of elements of a shape (1 for a scalar)."""
    return int(np.prod(shape, dtype=np.int64)) if shape else 1
