"""Porting mistakes, as transformations of what a firmware holds and computes.

Each :class:`Mistake` names a kind (the ``--inject`` vocabulary), a variant
and the layer it sits in. The same function that builds a deliberately wrong
firmware (``simcore build --inject``) recomputes a layer under a suspected
mistake in the layout doctor, so an injected mistake is reproduced exactly.

Transformations work on a layer's IR object (structure, activation) and its
:class:`~simcore.firmware.consts.LayerConsts` (the arrays in the firmware's
encoding and layout: Dense ``[out][in]``, Conv2D OHWI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.errors import UsageError
from simcore.firmware import q16_ref
from simcore.firmware.consts import LayerConsts
from simcore.firmware.ir import ACTIVATIONS, Int8Op, Layer, numel

#: The kinds ``simcore build --inject`` and ``simcore diagnose`` know, in report order.
KINDS = (
    "transpose-dense",
    "conv-layout",
    "flatten-nchw",
    "scales-reversed",
    "no-bias",
    "wrong-activation",
    "input-scale",
    "byte-order",
    "q-format",
)

#: What a model needs for a kind to apply (for error messages).
NEEDS = {
    "transpose-dense": "a Dense layer",
    "conv-layout": "a Conv2D layer",
    "flatten-nchw": "a Dense layer after a Flatten of an image with more than one channel",
    "scales-reversed": "the int8 format and a Dense or Conv2D layer with several output channels",
    "no-bias": "a Dense or Conv2D layer",
    "wrong-activation": "a layer with an activation (int8: an activation operator or clamp)",
    "input-scale": "an input",
    "byte-order": "a Dense or Conv2D layer (int8: one with a bias, the only multi-byte weights)",
    "q-format": "the q16 format and a Dense or Conv2D layer",
}
#: Q16.16 firmware read with another number of fraction bits: variant -> fraction bits.
Q_FORMATS = {"q8.8": 8, "q20.12": 12, "q17.15": 15, "q8.24": 24}
#: Conv2D storage orders read as OHWI: variant -> axes of OHWI in storage order.
CONV_ORDERS = {"hwio": (1, 2, 3, 0), "oihw": (0, 3, 1, 2), "ihwo": (3, 1, 2, 0)}

AnyLayer = Layer | Int8Op


@dataclass(frozen=True)
class Mistake:
    """One concrete porting mistake: ``kind`` / ``variant`` in layer ``layer``.

    ``input-scale`` mistakes act on the model input; their ``layer`` is the
    first layer, the one that reads it.
    """

    kind: str
    variant: str
    layer: int

    @property
    def label(self) -> str:
        """``kind:layer:variant``, the form ``--inject`` accepts."""
        return f"{self.kind}:{self.layer}:{self.variant}"

    def describe(self) -> str:
        """A sentence saying what the firmware does wrong."""
        return _describe(self.kind, self.variant)


def _describe(kind: str, variant: str) -> str:
    if kind == "transpose-dense":
        return "Dense kernel transposed: stored [in][out] (Keras order) but read as [out][in]"
    if kind == "conv-layout":
        return f"Conv2D kernel stored {variant.upper()} but read as OHWI"
    if kind == "flatten-nchw":
        if variant == "weights-chw":
            return (
                "Dense weights after Flatten ordered for an NCHW flatten (C,H,W), activations NHWC"
            )
        return "activations flattened in NCHW order (C,H,W) before a Dense expecting NHWC"
    if kind == "scales-reversed":
        what = {
            "reversed": "in reverse channel order",
            "rotated+1": "shifted by one channel (channel c uses c+1's)",
            "rotated-1": "shifted by one channel (channel c uses c-1's)",
        }[variant]
        return f"per-channel requantization multipliers and shifts {what}"
    if kind == "no-bias":
        return "bias left out" if variant == "missing" else "bias added twice"
    if kind == "wrong-activation":
        if variant in ("linear", "none"):
            return "activation left out"
        if variant == "clamp-none":
            return "fused activation clamp left out (output not clamped)"
        if variant == "clamp-relu":
            return "ReLU clamp applied to an output that has none"
        return f"wrong activation: {variant} applied instead"
    if kind == "input-scale":
        return {
            "x255": "input scaled 0..255 where the model expects 0..1",
            "div255": "input scaled 0..1 where the model expects 0..255",
            "uint8": "input given as uint8 (offset 128) where the model expects int8",
        }[variant]
    if kind == "byte-order":
        what = {"all": "weights and bias", "weights": "weights", "bias": "bias"}[variant]
        return f"{what} stored with the wrong byte order (big endian)"
    if kind == "q-format":
        frac = Q_FORMATS[variant]
        return (
            f"weights and bias encoded with {frac} fraction bits ({variant.upper()}) "
            "but read as Q16.16"
        )
    raise ValueError(kind)


# -- what applies where -------------------------------------------------------------------


def _is_dense(layer: AnyLayer) -> bool:
    return layer.kind in ("dense", "fully_connected")


def _flatten_source(chain: Sequence[AnyLayer], index: int) -> tuple[int, int, int] | None:
    """The (h, w, c) a Dense at ``index`` reads through a Flatten/Reshape, if it does."""
    if index == 0 or not _is_dense(chain[index]):
        return None
    prev = chain[index - 1]
    if prev.kind not in ("flatten", "reshape") or len(prev.in_shape) != 3:
        return None
    h, w, c = prev.in_shape
    return (h, w, c) if c > 1 and h * w > 1 else None


def _float_activation_variants(layer: Layer) -> list[str]:
    if layer.kind in ("flatten",):
        return []
    if layer.kind in ("maxpool", "avgpool") and layer.activation == "linear":
        return []
    return [a for a in ACTIVATIONS if a != layer.activation]


def _int8_activation_variants(op: Int8Op) -> list[str]:
    if op.kind in ("logistic", "tanh"):
        return ["tanh" if op.kind == "logistic" else "logistic", "none"]
    if op.kind in ("softmax", "leaky_relu"):
        return ["none"]
    if op.kind in ("fully_connected", "conv2d"):
        p = op.params
        out = []
        if (p["act_min"], p["act_max"]) != (-128, 127):
            out.append("clamp-none")
        relu_min = max(-128, int(p["output_offset"]))
        if (p["act_min"], p["act_max"]) != (relu_min, 127):
            out.append("clamp-relu")
        return out
    return []


def variants(kind: str, fmt: str, chain: Sequence[AnyLayer], index: int) -> list[str]:
    """The variants of ``kind`` that can occur in layer ``index`` of ``chain`` (maybe none)."""
    layer = chain[index]
    consts_kind = layer.kind in ("dense", "fully_connected", "conv2d")
    if kind == "transpose-dense":
        return ["transposed"] if _is_dense(layer) else []
    if kind == "conv-layout":
        return list(CONV_ORDERS) if layer.kind == "conv2d" else []
    if kind == "flatten-nchw":
        return ["weights-chw", "activations-chw"] if _flatten_source(chain, index) else []
    if kind == "scales-reversed":
        if fmt != "int8" or not consts_kind or numel(layer.out_shape[-1:]) < 2:
            return []
        return ["reversed", "rotated+1", "rotated-1"]
    if kind == "no-bias":
        return ["missing", "twice"] if consts_kind else []
    if kind == "wrong-activation":
        if isinstance(layer, Int8Op):
            return _int8_activation_variants(layer)
        return _float_activation_variants(layer)
    if kind == "input-scale":
        if index != 0:
            return []
        return ["uint8"] if fmt == "int8" else ["x255", "div255"]
    if kind == "byte-order":
        if not consts_kind:
            return []
        return ["bias"] if fmt == "int8" else ["all", "weights", "bias"]
    if kind == "q-format":
        return list(Q_FORMATS) if fmt == "q16" and consts_kind else []
    raise UsageError(f"unknown mistake kind {kind!r}", hint=f"kinds: {', '.join(KINDS)}")


def candidates(fmt: str, chain: Sequence[AnyLayer], index: int) -> list[Mistake]:
    """Every mistake that could sit in layer ``index``, in :data:`KINDS` order."""
    return [Mistake(kind, v, index) for kind in KINDS for v in variants(kind, fmt, chain, index)]


# -- transformations ----------------------------------------------------------------------


def _byteswap(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    out: npt.NDArray[Any] = a.byteswap()
    return out


def _q_encode(values: npt.ArrayLike, frac: int) -> npt.NDArray[np.int32]:
    v = np.floor(np.asarray(values, dtype=np.float64) * float(1 << frac) + 0.5)
    return np.clip(v, q16_ref.INT32_MIN, q16_ref.INT32_MAX).astype(np.int32)


def _twice(fmt: str, b: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if fmt == "f32":
        return np.asarray(b * np.float32(2), dtype=np.float32)
    wrapped = (b.astype(np.int64) * 2 + (1 << 31)) % (1 << 32) - (1 << 31)
    return wrapped.astype(np.int32)


def apply(
    mistake: Mistake, fmt: str, chain: Sequence[AnyLayer], consts: Sequence[LayerConsts]
) -> tuple[AnyLayer, LayerConsts]:
    """Return layer ``mistake.layer`` and its arrays as a firmware with this mistake has them.

    ``input-scale`` leaves the layer as it is (see :func:`apply_input`).
    """
    i, kind, v = mistake.layer, mistake.kind, mistake.variant
    layer, lc = chain[i], consts[i]
    w, b = lc.weights, lc.bias
    if kind == "transpose-dense":
        assert w is not None
        out_n, in_n = w.shape
        return layer, replace(lc, weights=w.T.reshape(out_n, in_n).copy())
    if kind == "conv-layout":
        assert w is not None
        return layer, replace(lc, weights=w.transpose(CONV_ORDERS[v]).reshape(w.shape).copy())
    if kind == "flatten-nchw":
        src = _flatten_source(chain, i)
        assert w is not None and src is not None
        h, wd, c = src
        idx = np.arange(h * wd * c).reshape(h, wd, c).transpose(2, 0, 1).reshape(-1)
        if v == "activations-chw":
            idx = np.argsort(idx)
        return layer, replace(lc, weights=w[:, idx].copy())
    if kind == "scales-reversed":
        assert lc.multiplier is not None and lc.shift is not None
        if v == "reversed":
            m, s = lc.multiplier[::-1], lc.shift[::-1]
        else:
            step = -1 if v == "rotated+1" else 1
            m, s = np.roll(lc.multiplier, step), np.roll(lc.shift, step)
        return layer, replace(lc, multiplier=m.copy(), shift=s.copy())
    if kind == "no-bias":
        if b is None:  # int8 layer without a bias: "missing" is what it has
            return layer, lc
        return layer, replace(lc, bias=np.zeros_like(b) if v == "missing" else _twice(fmt, b))
    if kind == "wrong-activation":
        return _wrong_activation(layer, v), lc
    if kind == "input-scale":
        return layer, lc
    if kind == "byte-order":
        new_w = _byteswap(w) if w is not None and v in ("all", "weights") else w
        new_b = _byteswap(b) if b is not None and v in ("all", "bias") else b
        return layer, replace(lc, weights=new_w, bias=new_b)
    if kind == "q-format":
        assert isinstance(layer, Layer) and layer.weights is not None and layer.bias is not None
        frac = Q_FORMATS[v]
        return layer, replace(
            lc, weights=_q_encode(layer.weights, frac), bias=_q_encode(layer.bias, frac)
        )
    raise UsageError(f"unknown mistake kind {kind!r}", hint=f"kinds: {', '.join(KINDS)}")


def _wrong_activation(layer: AnyLayer, variant: str) -> AnyLayer:
    if isinstance(layer, Layer):
        alpha = layer.alpha if layer.activation == "leaky_relu" else 0.2
        return replace(layer, activation=variant, alpha=alpha if variant == "leaky_relu" else 0.0)
    if variant == "none":
        return replace(layer, kind="identity")
    if variant in ("logistic", "tanh"):
        return replace(layer, kind=variant)
    p = dict(layer.params)
    p["act_min"] = -128 if variant == "clamp-none" else max(-128, int(p["output_offset"]))
    p["act_max"] = 127
    return replace(layer, params=p)


def apply_input(mistake: Mistake | None, fmt: str, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Return the input values a firmware with ``mistake`` actually computes with.

    ``x`` is in the firmware's encoding (float32, Q16.16 int, int8 int).
    """
    if mistake is None or mistake.kind != "input-scale":
        return x
    if fmt == "int8":
        x64 = np.asarray(x, dtype=np.int64)
        return np.where(x64 < 0, x64 + 128, x64 - 128)  # the byte's top bit flipped
    if fmt == "q16":
        x64 = np.asarray(x, dtype=np.int64)
        if mistake.variant == "x255":
            return (x64 * 255 + (1 << 31)) % (1 << 32) - (1 << 31)
        return np.asarray(x64 // 255, dtype=np.int64)  # floor division, as the fixup's C
    f = np.asarray(x, dtype=np.float32)
    return f * np.float32(255) if mistake.variant == "x255" else f / np.float32(255)


def input_fixup(mistake: Mistake | None, fmt: str) -> str | None:
    """C statement the generator runs on each input element ``x[i]`` to inject ``mistake``."""
    if mistake is None or mistake.kind != "input-scale":
        return None
    if fmt == "int8":
        return "x[i] = (int8_t)((uint8_t)x[i] ^ 0x80u);"
    if fmt == "q16":
        if mistake.variant == "x255":
            return "x[i] = (int32_t)((uint32_t)x[i] * 255u);"
        return "x[i] = (x[i] >= 0) ? x[i] / 255 : -((-x[i] + 254) / 255);"
    return "x[i] *= 255.0f;" if mistake.variant == "x255" else "x[i] /= 255.0f;"


def behaviour(layer: AnyLayer) -> tuple[Any, ...]:
    """What of a layer's structure a mistake can change (kind, activation, parameters)."""
    if isinstance(layer, Layer):
        return (layer.kind, layer.activation, layer.alpha)
    return (layer.kind, tuple(sorted(layer.params.items())))


def changes_layer(
    mistake: Mistake, fmt: str, chain: Sequence[AnyLayer], consts: Sequence[LayerConsts]
) -> bool:
    """Whether the mistake changes anything the firmware stores or does (input-scale: yes)."""
    if mistake.kind == "input-scale":
        return True
    layer, lc = apply(mistake, fmt, chain, consts)
    if behaviour(layer) != behaviour(chain[mistake.layer]):
        return True
    old, new = consts[mistake.layer].arrays(), lc.arrays()
    if old.keys() != new.keys():
        return True
    return any(old[k].tobytes() != new[k].tobytes() for k in old)


def _layer_name(chain: Sequence[AnyLayer], i: int) -> str:
    return f"{i} ({chain[i].name}, {chain[i].kind})"


def injection(
    spec: str, fmt: str, chain: Sequence[AnyLayer], consts: Sequence[LayerConsts]
) -> Mistake:
    """Parse ``KIND[:LAYER[:VARIANT]]`` into a mistake that changes this model's firmware.

    Without a layer, the first layer where the kind changes something is
    taken; without a variant, the first variant that does.
    """
    parts = spec.split(":")
    kind = parts[0]
    if kind not in KINDS or len(parts) > 3:
        raise UsageError(
            f"cannot read injection {spec!r}",
            hint=f"use KIND[:LAYER[:VARIANT]] with KIND one of {', '.join(KINDS)}",
        )
    if len(parts) > 1 and parts[1] != "":
        try:
            layers = [int(parts[1])]
        except ValueError:
            raise UsageError(f"injection {spec!r}: layer {parts[1]!r} is not a number") from None
        if not 0 <= layers[0] < len(chain):
            raise UsageError(
                f"injection {spec!r}: the model has layers 0..{len(chain) - 1}",
            )
    else:
        layers = list(range(len(chain)))
    wanted = parts[2] if len(parts) > 2 else None
    applicable = [i for i in range(len(chain)) if variants(kind, fmt, chain, i)]
    for i in layers:
        options = variants(kind, fmt, chain, i)
        if wanted is not None:
            if wanted not in options:
                if options:
                    raise UsageError(
                        f"injection {spec!r}: {kind} has no variant {wanted!r} in layer "
                        f"{_layer_name(chain, i)}",
                        hint=f"variants there: {', '.join(options)}",
                    )
                continue
            options = [wanted]
        for v in options:
            m = Mistake(kind, v, i)
            if changes_layer(m, fmt, chain, consts):
                return m
    if not applicable:
        raise UsageError(
            f"injection {spec!r}: no layer of this {fmt} model can have a {kind} mistake",
            hint=f"{kind} needs {NEEDS[kind]}",
        )
    raise UsageError(
        f"injection {spec!r} would leave this {fmt} firmware unchanged",
        hint=f"{kind} applies to layers "
        + ", ".join(_layer_name(chain, i) for i in applicable)
        + "; pick one where it changes something",
    )
