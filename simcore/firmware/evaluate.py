"""Recompute one layer as the firmware of a format does, from the arrays it stores.

The layout doctor feeds a layer the firmware's own input (the previous
layer's traced output) and the arrays a firmware holds, possibly under a
suspected mistake, and compares the result with what the firmware traced.
q16 and int8 are bit-exact (q16_ref, int8_eval). f32 follows nn_f32.c step
by step in float32 (bias first, then the taps in memory order, padding taps
skipped, each product and sum rounded: the build has -ffp-contract=off), so
it also overflows to inf and makes NaN where the firmware does, which a
float64 reference would not; only expf/tanhf may differ from newlib's in the
last bit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware import q16_ref
from simcore.firmware.consts import LayerConsts
from simcore.firmware.ir import Int8Op, Layer
from simcore.firmware.reference import windows


def evaluate(
    fmt: str, layer: Layer | Int8Op, consts: LayerConsts, x: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """Return one sample's output of ``layer`` (shape ``out_shape``) in the firmware's encoding.

    ``x`` is the layer's input in the same encoding (float32 values, Q16.16
    integers, int8 integers). f32 results are float32 (overflow gives inf, as
    on the core); q16 and int8 results are int64.
    """
    if isinstance(layer, Int8Op):
        from simcore.firmware.int8_eval import evaluate_op

        if layer.kind == "identity":
            return np.asarray(x, dtype=np.int64).reshape(layer.out_shape)
        op = replace(
            layer,
            weights=consts.weights,
            bias=consts.bias,
            multiplier=consts.multiplier,
            shift=consts.shift,
        )
        return evaluate_op(op, np.asarray(x, dtype=np.int64))
    shaped = np.asarray(x).reshape(layer.in_shape)
    if fmt == "q16":
        return q16_ref.layer_q16(
            layer, shaped.astype(np.int64), weights=consts.weights, bias=consts.bias
        )
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _f32_layer(layer, consts, shaped.astype(np.float32))


F32 = npt.NDArray[np.float32]


def _f32_layer(layer: Layer, consts: LayerConsts, x: F32) -> F32:
    kind = layer.kind
    if kind == "dense":
        assert consts.weights is not None and consts.bias is not None
        w = np.asarray(consts.weights, dtype=np.float32)
        acc = np.array(consts.bias, dtype=np.float32).reshape(-1)
        for i, xi in enumerate(x.reshape(-1)):
            acc = acc + w[:, i] * xi
        y = acc
    elif kind == "conv2d":
        assert consts.weights is not None and consts.bias is not None and layer.geometry
        w = np.asarray(consts.weights, dtype=np.float32)  # OHWI
        out_h, out_w, out_c = layer.out_shape
        win, mask = windows(x, layer.geometry, out_h, out_w)
        acc = np.broadcast_to(np.asarray(consts.bias, dtype=np.float32), (out_h, out_w, out_c))
        for ky in range(w.shape[1]):
            for kx in range(w.shape[2]):
                inside = mask[:, :, ky, kx, None]
                for c in range(w.shape[3]):
                    term = win[:, :, ky, kx, c, None] * w[None, None, :, ky, kx, c]
                    acc = np.where(inside, acc + term, acc)
        y = acc
    elif kind in ("maxpool", "avgpool"):
        assert layer.geometry is not None
        win, mask = windows(x, layer.geometry, layer.out_shape[0], layer.out_shape[1])
        if kind == "maxpool":  # m = v > m ? v : m from -inf: a NaN is never taken
            best = np.full((*win.shape[:2], win.shape[4]), -np.inf, dtype=np.float32)
            for ky in range(win.shape[2]):
                for kx in range(win.shape[3]):
                    v = win[:, :, ky, kx, :]
                    take = mask[:, :, ky, kx, None] & (v > best)
                    best = np.where(take, v, best)
            y = best
        else:
            total = np.zeros((*win.shape[:2], win.shape[4]), dtype=np.float32)
            for ky in range(win.shape[2]):
                for kx in range(win.shape[3]):
                    inside = mask[:, :, ky, kx, None]
                    total = np.where(inside, total + win[:, :, ky, kx, :], total)
            y = total / mask.sum(axis=(2, 3))[..., None].astype(np.float32)
    else:  # flatten, activation
        y = x
    return _f32_activation(np.asarray(y, dtype=np.float32).reshape(layer.out_shape), layer)


def _f32_activation(x: F32, layer: Layer) -> F32:
    act = layer.activation
    one = np.float32(1)
    if act == "relu":
        return np.where(x > 0, x, np.float32(0))
    if act == "leaky_relu":
        return np.where(x >= 0, x, x * np.float32(layer.alpha))
    if act == "sigmoid":
        return np.asarray(one / (one + np.exp(-x)), dtype=np.float32)
    if act == "tanh":
        return np.tanh(x)
    if act == "softmax":
        rows = x.reshape(-1, x.shape[-1])
        out = np.empty_like(rows)
        for r, row in enumerate(rows):
            top = row[0]
            for v in row[1:]:
                top = v if v > top else top
            e = np.exp(row - top)
            total = np.float32(0)
            for v in e:
                total = np.float32(total + v)
            out[r] = e / total
        return out.reshape(x.shape)
    return x
