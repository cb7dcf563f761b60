"""NumPy reference of the Q16.16 firmware arithmetic, bit for bit.

The arithmetic is specified in firmware_builds/include/nn_q16.h; this module
is its executable twin, and also the only source of the two lookup tables
(the generator writes :func:`sigmoid_table` and :func:`exp2_table` into the
model source). All integer work is done in int64 with arithmetic shifts
(NumPy's ``>>`` floors, as GCC's does on signed values).
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware.ir import FloatModel, Layer
from simcore.firmware.reference import run_chain, windows

ONE = 1 << 16
TABLE_SIZE = 256
LOG2E_Q16 = 94548  # round(log2(e) * 65536)
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

#: Tolerance of q16 outputs against float (Keras) outputs, stated in every
#: q16 manifest: the sigmoid table with interpolation is within about 2e-4
#: of the true sigmoid; rounding of weights and activations adds little for
#: the shipped models' sizes.
Q16_TOLERANCE = {"abs": 2e-3}

I64 = npt.NDArray[np.int64]


def to_q16(x: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """Convert floats to Q16.16: ``floor(x * 65536 + 0.5)``, saturated to int32."""
    v = np.floor(np.asarray(x, dtype=np.float64) * ONE + 0.5)
    return np.clip(v, INT32_MIN, INT32_MAX).astype(np.int32)


def from_q16(q: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Convert Q16.16 integers to floats."""
    return np.asarray(q, dtype=np.float64) / ONE


@cache
def sigmoid_table() -> tuple[tuple[int, ...], int]:
    """Return the 256 entries ``sigmoid(k/32)`` in Q16.16 and the end point ``sigmoid(8)``."""
    k = np.arange(TABLE_SIZE, dtype=np.float64) / 32.0
    table = to_q16(1.0 / (1.0 + np.exp(-k)))
    end = int(to_q16(1.0 / (1.0 + np.exp(-8.0))))
    return tuple(int(v) for v in table), end


@cache
def exp2_table() -> tuple[int, ...]:
    """Return the 256 entries ``2^(-j/256)`` in Q16.16 (end point 2^-1 = 32768)."""
    j = np.arange(TABLE_SIZE, dtype=np.float64)
    return tuple(int(v) for v in to_q16(np.exp2(-j / 256.0)))


def _sat32(v: I64) -> I64:
    return np.clip(v, INT32_MIN, INT32_MAX)


def sigmoid(x: npt.ArrayLike) -> I64:
    """Q16.16 sigmoid by table and linear interpolation (see nn_q16.h)."""
    x = np.asarray(x, dtype=np.int64)
    table, end = sigmoid_table()
    t = np.array([*table, end], dtype=np.int64)
    a = np.abs(x)
    inside = a < (8 << 16)
    idx = np.where(inside, a >> 11, 0)
    frac = a & 0x7FF
    lo = t[idx]
    hi = t[idx + 1]
    s = np.where(inside, lo + (((hi - lo) * frac) >> 11), end)
    return np.where(x >= 0, s, ONE - s)


def tanh(x: npt.ArrayLike) -> I64:
    """Q16.16 tanh as ``2 * sigmoid(2x) - 1``."""
    c = np.clip(np.asarray(x, dtype=np.int64), -(16 << 16), 16 << 16)
    return 2 * sigmoid(2 * c) - ONE


def _exp2_neg(u: I64) -> I64:
    t = np.array([*exp2_table(), ONE // 2], dtype=np.int64)
    k = u >> 16
    r = u & 0xFFFF
    idx = r >> 8
    frac = r & 0xFF
    lo = t[idx]
    v = lo + (((t[idx + 1] - lo) * frac) >> 8)
    return np.where(k >= 31, 0, v >> np.minimum(k, 31))


def softmax(x: npt.ArrayLike) -> I64:
    """Q16.16 softmax along the last axis (see nn_q16.h)."""
    x = np.asarray(x, dtype=np.int64)
    d = x.max(axis=-1, keepdims=True) - x
    e = _exp2_neg((d * LOG2E_Q16) >> 16)
    total = e.sum(axis=-1, keepdims=True)
    out: I64 = (e << 16) // total
    return out


def activation(x: npt.ArrayLike, act: str, alpha_q16: int = 0) -> I64:
    """Apply a Q16.16 activation (softmax along the last axis)."""
    x = np.asarray(x, dtype=np.int64)
    if act == "relu":
        out: I64 = np.maximum(x, 0)
        return out
    if act == "leaky_relu":
        return np.where(x >= 0, x, (x * alpha_q16) >> 16)
    if act == "sigmoid":
        return sigmoid(x)
    if act == "tanh":
        return tanh(x)
    if act == "softmax":
        return softmax(x)
    return x


def _round_shift16(acc: I64) -> I64:
    return _sat32((acc + (1 << 15)) >> 16)


def quantize_layer(layer: Layer) -> tuple[I64 | None, I64 | None, int]:
    """Return a layer's Q16.16 weights, bias and leaky-relu alpha as the firmware stores them."""
    w = None if layer.weights is None else to_q16(layer.weights).astype(np.int64)
    b = None if layer.bias is None else to_q16(layer.bias).astype(np.int64)
    return w, b, int(to_q16(layer.alpha))


def layer_q16(
    layer: Layer, x: I64, *, weights: npt.ArrayLike | None = None, bias: npt.ArrayLike | None = None
) -> I64:
    """Evaluate one layer on one Q16.16 sample.

    ``weights`` and ``bias`` (Q16.16 integers in the firmware layout) replace
    the layer's own quantized arrays: the layout doctor recomputes layers from
    what a firmware actually stores.
    """
    w, b, alpha = quantize_layer(layer)
    if weights is not None:
        assert layer.weights is not None
        w = np.asarray(weights, dtype=np.int64).reshape(layer.weights.shape)
    if bias is not None:
        b = np.asarray(bias, dtype=np.int64).reshape(-1)
    kind = layer.kind
    if kind == "dense":
        assert w is not None and b is not None
        y = _round_shift16((b << 16) + w @ x.reshape(-1))
    elif kind == "conv2d":
        assert w is not None and b is not None and layer.geometry is not None
        win, _ = windows(x, layer.geometry, layer.out_shape[0], layer.out_shape[1])
        y = _round_shift16((b << 16) + np.einsum("yxhwc,ohwc->yxo", win, w))
    elif kind in ("maxpool", "avgpool"):
        assert layer.geometry is not None
        win, mask = windows(x, layer.geometry, layer.out_shape[0], layer.out_shape[1])
        m = mask[..., None]
        if kind == "maxpool":
            y = np.where(m, win, INT32_MIN).max(axis=(2, 3))
        else:
            s = np.where(m, win, 0).sum(axis=(2, 3))
            count = m.sum(axis=(2, 3)).astype(np.int64)
            half = count // 2
            y = np.where(s >= 0, (s + half) // count, -((-s + half) // count))
    else:
        y = x
    return activation(
        np.asarray(y, dtype=np.int64).reshape(layer.out_shape), layer.activation, alpha
    )


def forward(model: FloatModel, inputs_q16: npt.ArrayLike, *, intermediates: bool = False) -> Any:
    """Run Q16.16 inputs (``(n, *input_shape)``) through the model as the firmware does.

    Returns int64 outputs ``(n, *output_shape)`` or, with ``intermediates``,
    one array per layer.
    """
    samples = np.asarray(inputs_q16, dtype=np.int64).reshape((-1, *model.input_shape))
    per_layer = run_chain([partial(layer_q16, layer) for layer in model.layers], samples)
    return per_layer if intermediates else per_layer[-1]
