"""Recompute one layer as the firmware of a format does, from the arrays it stores.

The layout doctor feeds a layer the firmware's own input (the previous
layer's traced output) and the arrays a firmware holds, possibly under a
suspected mistake, and compares the result with what the firmware traced.
q16 and int8 are bit-exact (q16_ref, int8_eval); f32 runs in float64 and is
rounded to float32, so it agrees with the firmware within the f32 tolerance.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware import q16_ref
from simcore.firmware.consts import LayerConsts
from simcore.firmware.ir import Int8Op, Layer
from simcore.firmware.reference import layer_float


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
    with np.errstate(over="ignore", invalid="ignore"):
        if consts.weights is not None:
            layer = replace(layer, weights=consts.weights, bias=consts.bias)
        y = layer_float(layer, shaped.astype(np.float64))
        out: npt.NDArray[Any] = np.asarray(y, dtype=np.float32)
        return out
