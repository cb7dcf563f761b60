"""NumPy references of the generated firmware's float arithmetic, and shared helpers.

:func:`forward_float` evaluates a :class:`~simcore.firmware.ir.FloatModel` in
float64; the f32 firmware must agree with it (and with Keras) within
:data:`F32_TOLERANCE`. The q16 and int8 references build on
:func:`windows` for Conv2D and pooling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware.ir import FloatModel, Geometry, Layer

#: Tolerance of f32 firmware outputs against Keras float outputs, ``|fw - keras|
#: <= abs + rel * |keras|`` (stated in every f32 manifest). Sums run in another
#: order than TensorFlow's, so float32 rounding differs (mnist_cnn: at most
#: 3.4e-5 on softmax outputs over 512 test images, identical on every board);
#: -ffp-contract=off rules out fused multiply-add on M33/M7.
F32_TOLERANCE = {"abs": 5e-5, "rel": 1e-4}


def windows(
    x: npt.NDArray[Any], geom: Geometry, out_h: int, out_w: int, fill: Any = 0
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """Return the ``(out_h, out_w, k_h, k_w, c)`` windows of an HWC image and their validity mask.

    Positions outside the image hold ``fill`` and are False in the mask
    (``(out_h, out_w, k_h, k_w)``), so pooling can skip them as TFLite does.
    """
    in_h, in_w, c = x.shape
    pad_bottom = max((out_h - 1) * geom.stride_h + geom.k_h - in_h - geom.pad_top, 0)
    pad_right = max((out_w - 1) * geom.stride_w + geom.k_w - in_w - geom.pad_left, 0)
    padded = np.full(
        (in_h + geom.pad_top + pad_bottom, in_w + geom.pad_left + pad_right, c), fill, x.dtype
    )
    padded[geom.pad_top : geom.pad_top + in_h, geom.pad_left : geom.pad_left + in_w] = x
    valid = np.zeros(padded.shape[:2], dtype=bool)
    valid[geom.pad_top : geom.pad_top + in_h, geom.pad_left : geom.pad_left + in_w] = True
    ys = np.arange(out_h)[:, None] * geom.stride_h + np.arange(geom.k_h)[None, :]
    xs = np.arange(out_w)[:, None] * geom.stride_w + np.arange(geom.k_w)[None, :]
    win = padded[ys[:, None, :, None], xs[None, :, None, :]]
    mask = valid[ys[:, None, :, None], xs[None, :, None, :]]
    return win, mask


def _activation(x: npt.NDArray[np.float64], layer: Layer) -> npt.NDArray[np.float64]:
    act = layer.activation
    if act == "relu":
        return np.where(x > 0, x, 0.0)  # as the C (x > 0 ? x : 0): NaN gives 0
    if act == "leaky_relu":
        return np.where(x >= 0, x, x * layer.alpha)
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if act == "tanh":
        return np.tanh(x)
    if act == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        out: npt.NDArray[np.float64] = e / e.sum(axis=-1, keepdims=True)
        return out
    return x


def layer_float(layer: Layer, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Evaluate one float layer on one sample (float64)."""
    kind = layer.kind
    if kind == "dense":
        assert layer.weights is not None and layer.bias is not None
        y = layer.weights.astype(np.float64) @ x.reshape(-1) + layer.bias
    elif kind == "conv2d":
        assert layer.weights is not None and layer.bias is not None and layer.geometry
        win, _ = windows(x, layer.geometry, layer.out_shape[0], layer.out_shape[1])
        y = np.einsum("yxhwc,ohwc->yxo", win, layer.weights.astype(np.float64)) + layer.bias
    elif kind in ("maxpool", "avgpool"):
        assert layer.geometry is not None
        win, mask = windows(x, layer.geometry, layer.out_shape[0], layer.out_shape[1])
        m = mask[..., None]
        if kind == "maxpool":  # the C keeps the first max and never takes a NaN
            y = np.where(m & ~np.isnan(win), win, -np.inf).max(axis=(2, 3))
        else:
            y = np.where(m, win, 0.0).sum(axis=(2, 3)) / m.sum(axis=(2, 3))
    else:  # flatten, activation
        y = x
    return _activation(np.asarray(y, dtype=np.float64).reshape(layer.out_shape), layer)


def forward_float(
    model: FloatModel, inputs: npt.NDArray[Any], *, intermediates: bool = False
) -> Any:
    """Run ``inputs`` (``(n, *input_shape)``) through the model in float64.

    Returns the ``(n, *output_shape)`` outputs, or with ``intermediates`` a
    list (one per layer) of ``(n, *layer.out_shape)`` arrays.
    """
    samples = np.asarray(inputs, dtype=np.float64).reshape((-1, *model.input_shape))
    per_layer = run_chain([partial(layer_float, layer) for layer in model.layers], samples)
    return per_layer if intermediates else per_layer[-1]


def run_chain(
    steps: Sequence[Callable[[npt.NDArray[Any]], npt.NDArray[Any]]], samples: npt.NDArray[Any]
) -> list[npt.NDArray[Any]]:
    """Apply per-sample ``steps`` in order to every sample (rows of ``samples``).

    Returns one ``(n, *step_output_shape)`` array per step; with no steps, the
    samples themselves as the only entry.
    """
    if not steps:
        return [np.asarray(samples)]
    per_step: list[list[npt.NDArray[Any]]] = [[] for _ in steps]
    for x in samples:
        for i, step in enumerate(steps):
            x = step(x)
            per_step[i].append(x)
    return [np.stack(p) if p else np.zeros((0,)) for p in per_step]
