"""NumPy evaluation of the int8 firmware's arithmetic, straight from the generator's IR.

:func:`evaluate_op` computes one :class:`~simcore.firmware.ir.Int8Op` the way
``firmware_builds/runtime/nn_int8.c`` does, bit for bit, from nothing but the
op object: weights, bias, per-channel multiplier and shift, ``params``
(``simcore.firmware.quant``'s names, the C parameter structs' fields) and
geometry. It never looks at the ``.tflite`` file, so an op rebuilt with
``dataclasses.replace`` (a suspected porting mistake: byte-swapped bias,
reversed multipliers, another clamp, ``bias=None``) is computed as a firmware
holding those values would compute it. :func:`forward` chains the ops of an
:class:`~simcore.firmware.ir.Int8Model` over a batch.

What the C does, and so what is modelled:

- int32 arithmetic wraps (``acc += bias`` with an overflowing bias, the sum
  with the output offset), arrays are read as their C element types (int8
  weights, int32 bias/multiplier/shift) and ``(int8_t)clamp(v, act_min,
  act_max)`` keeps the low byte, so a clamp range beyond -128..127 wraps and
  ``act_min > act_max`` yields ``act_min`` (the C ``clamp`` tests ``lo`` first);
- a kernel reads only the leading entries it indexes (``n_out`` rows of
  weights, channels of bias/multiplier/shift; a softmax row of ``depth``).

Where the C has no single defined result :class:`FirmwareError` is raised
instead of guessing: arrays shorter than the kernel reads, a requantization
shift outside -31..31 (shift counts of 32 or more), an average-pool window
without an input tap (division by zero), a softmax ``depth`` that does not
divide the element count (the tail is never written).

One difference between builds is not modelled: the products use the exact
int32 ``x + input_offset`` of the portable loop (and of the Cortex-M0+ patch
buffer); the DSP dot product and the int16 patch buffer of M33/M7 builds
keep it in 16 bits, which only differs when ``|x + input_offset| > 32767``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from simcore.firmware.ir import FirmwareError, Geometry, Int8Model, Int8Op, numel
from simcore.firmware.reference import windows
from simcore.golden import int8_ref
from simcore.golden.int8_ref import I64, multiply_by_quantized_multiplier, wrap32

__all__ = ["KINDS", "evaluate_op", "forward"]

#: Op kinds the evaluator computes (``identity``: an activation left out, a copy).
KINDS = (
    "fully_connected",
    "conv2d",
    "maxpool",
    "avgpool",
    "reshape",
    "identity",
    "logistic",
    "tanh",
    "leaky_relu",
    "softmax",
    "requantize",
)

#: Samples per batch in :func:`forward` (bounds the memory of the conv windows).
_CHUNK = 256


def evaluate_op(op: Int8Op, x: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Compute ``op`` on one sample as nn_int8.c does.

    ``x`` holds int8 values (any integer dtype) in ``op.in_shape`` or as that
    many values in any shape. Returns ``op.out_shape`` int64 values in
    -128..127. Raises FirmwareError for an unknown kind or an op the C kernel
    has no defined result for (see the module docstring), ValueError for an
    input of the wrong size or out of the int8 range.
    """
    batch = _int8_batch(x, 1, op.in_shape, f"op {op.name!r}")
    out: npt.NDArray[np.int64] = _run(op, batch)[0]
    return out


@overload
def forward(
    model: Int8Model, inputs: npt.ArrayLike, *, intermediates: Literal[False] = ...
) -> npt.NDArray[np.int64]: ...


@overload
def forward(
    model: Int8Model, inputs: npt.ArrayLike, *, intermediates: Literal[True]
) -> list[npt.NDArray[np.int64]]: ...


@overload
def forward(model: Int8Model, inputs: npt.ArrayLike, *, intermediates: bool = ...) -> Any: ...


def forward(model: Int8Model, inputs: npt.ArrayLike, *, intermediates: bool = False) -> Any:
    """Run ``(n, *model.input_shape)`` int8 samples through every op of ``model``.

    Each sample may also be given flat (``(n, numel)``). Returns the
    ``(n, *model.output_shape)`` int64 outputs, or with ``intermediates`` a
    list holding one ``(n, *op.out_shape)`` array per op, in op order.
    """
    arr = np.asarray(inputs)
    if arr.ndim == 0:
        raise ValueError("inputs must have a leading sample axis")
    n = int(arr.shape[0])
    batch = _int8_batch(arr, n, model.input_shape, f"model {model.name!r}")
    per_op: list[list[I64]] = [[] for _ in model.ops]
    finals: list[I64] = []
    for start in range(0, n, _CHUNK):
        cur = batch[start : start + _CHUNK]
        for i, op in enumerate(model.ops):
            cur = _run(op, cur)
            per_op[i].append(cur)
        finals.append(cur)
    if intermediates:
        return [
            np.concatenate(chunks) if chunks else np.zeros((0, *op.out_shape), np.int64)
            for op, chunks in zip(model.ops, per_op, strict=True)
        ]
    if not finals:
        return np.zeros((0, *model.output_shape), np.int64)
    return np.concatenate(finals)


# -- plumbing ----------------------------------------------------------------------------


def _int8_batch(x: npt.ArrayLike, n: int, shape: tuple[int, ...], where: str) -> I64:
    """``x`` as an int64 ``(n, *shape)`` batch of int8 values."""
    arr = np.asarray(x)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{where}: input must hold integers, not {arr.dtype}")
    if arr.size != n * numel(shape):
        raise ValueError(
            f"{where}: input has {arr.size} values, expected {n} x {shape} = {n * numel(shape)}"
        )
    out = arr.astype(np.int64).reshape(n, *shape)
    if out.size and (out.min() < -128 or out.max() > 127):
        raise ValueError(f"{where}: input values must lie in -128..127 (int8)")
    return out


def _to_int8(v: I64) -> I64:
    """``(int8_t)v``: the low byte, sign-extended."""
    return np.asarray(((v + 128) & 0xFF) - 128, dtype=np.int64)


def _c_clamp(v: I64, lo: int, hi: int) -> I64:
    """nn_int8.c's ``clamp``: ``v < lo ? lo : (v > hi ? hi : v)`` (``lo`` wins if lo > hi)."""
    return np.asarray(np.where(v < lo, lo, np.where(v > hi, hi, v)), dtype=np.int64)


def _param(op: Int8Op, key: str) -> int:
    """An int32 field of the op's C parameter struct (initialisers convert to int32)."""
    try:
        value = op.params[key]
    except KeyError:
        raise FirmwareError(
            f"op {op.name!r} ({op.kind}) lacks parameter {key!r}",
            hint="build the op's params with simcore.firmware.quant",
        ) from None
    return int(wrap32(int(value)))


def _c_array(op: Int8Op, role: str, count: int, bits: int) -> I64:
    """The first ``count`` values of one of the op's arrays as its C type stores them."""
    a = getattr(op, role)
    if a is None:
        raise FirmwareError(f"op {op.name!r} ({op.kind}) has no {role}")
    arr = np.asarray(a)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise FirmwareError(f"op {op.name!r}: {role} must be integers, not {arr.dtype}")
    flat = arr.astype(np.int64).reshape(-1)
    if flat.size < count:
        raise FirmwareError(
            f"op {op.name!r}: the kernel reads {count} {role} values, the array has {flat.size}"
        )
    half = 1 << (bits - 1)
    return ((flat[:count] + half) & ((1 << bits) - 1)) - half


def _check_shift(op: Int8Op, shift: I64 | int, what: str, lo: int = -31, hi: int = 31) -> None:
    s = np.asarray(shift)
    if s.size and (s.min() < lo or s.max() > hi):
        raise FirmwareError(
            f"op {op.name!r}: {what} {int(s.min())}..{int(s.max())} outside {lo}..{hi}",
            hint="shift counts of 32 or more are undefined in the C kernels",
        )


def _flat_input(op: Int8Op, x: I64, count: int) -> I64:
    """The first ``count`` values of each sample (what a kernel reading ``count`` reads)."""
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] < count:
        raise FirmwareError(
            f"op {op.name!r} ({op.kind}) reads {count} values, its input has {flat.shape[1]}"
        )
    return flat[:, :count]


def _geometry(op: Int8Op) -> tuple[Geometry, int, int, int, int, int, int]:
    g = op.geometry
    if g is None or len(op.in_shape) != 3 or len(op.out_shape) != 3:
        raise FirmwareError(
            f"op {op.name!r} ({op.kind}) needs a geometry and (h, w, c) in/out shapes"
        )
    in_h, in_w, in_c = op.in_shape
    out_h, out_w, out_c = op.out_shape
    return g, in_h, in_w, in_c, out_h, out_w, out_c


def _batch_windows(
    x: I64, g: Geometry, out_h: int, out_w: int, fill: int
) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Windows ``(n, out_h, out_w, k_h, k_w, c)`` of a batch ``(n, h, w, c)`` and their mask."""
    n, h, w, c = x.shape
    folded = x.transpose(1, 2, 0, 3).reshape(h, w, n * c)
    win, mask = windows(folded, g, out_h, out_w, fill=fill)
    win = win.reshape(out_h, out_w, g.k_h, g.k_w, n, c).transpose(4, 0, 1, 2, 3, 5)
    return np.asarray(win, dtype=np.int64), mask


def _span_lengths(n_out: int, stride: int, pad: int, k: int, in_len: int) -> I64:
    """``hi - lo`` of nn_window_span for every output index (negative if past the input)."""
    start = np.arange(n_out, dtype=np.int64) * stride - pad
    lo = np.where(start < 0, -start, 0)
    hi = np.where(start + k > in_len, in_len - start, k)
    return np.asarray(hi - lo, dtype=np.int64)


# -- kernels (each takes and returns a batch) ----------------------------------------------


def _requant(op: Int8Op, acc: I64, channels: int) -> I64:
    """nn_int8.c ``requant`` per output channel (the last axis of ``acc``)."""
    mult = _c_array(op, "multiplier", channels, 32)
    shift = _c_array(op, "shift", channels, 32)
    _check_shift(op, shift, "shift")
    y = wrap32(multiply_by_quantized_multiplier(acc, mult, shift) + _param(op, "output_offset"))
    return _to_int8(_c_clamp(y, _param(op, "act_min"), _param(op, "act_max")))


def _add_bias(op: Int8Op, acc: I64, channels: int) -> I64:
    if op.bias is None:  # the C skips the addition for a null bias pointer
        return wrap32(acc)
    return wrap32(acc + _c_array(op, "bias", channels, 32))


def _fully_connected(op: Int8Op, x: I64) -> I64:
    if op.weights is None or np.ndim(op.weights) != 2:
        raise FirmwareError(f"op {op.name!r}: fully_connected needs [out][in] weights")
    n_in = int(np.shape(op.weights)[1])
    n_out = numel(op.out_shape)
    w = _c_array(op, "weights", n_out * n_in, 8).reshape(n_out, n_in)
    xo = wrap32(_flat_input(op, x, n_in) + _param(op, "input_offset"))
    acc = _add_bias(op, xo @ w.T, n_out)
    return _requant(op, acc, n_out).reshape(x.shape[0], *op.out_shape)


def _conv2d(op: Int8Op, x: I64) -> I64:
    g, _, _, in_c, out_h, out_w, out_c = _geometry(op)
    k = g.k_h * g.k_w * in_c
    w = _c_array(op, "weights", out_c * k, 8).reshape(out_c, k)
    # Padding taps hold (x + input_offset) = 0: fill after adding the offset.
    xo = wrap32(x + _param(op, "input_offset"))
    win, _ = _batch_windows(xo, g, out_h, out_w, 0)
    acc = win.reshape(-1, k) @ w.T
    acc = _add_bias(op, acc, out_c)
    return _requant(op, acc, out_c).reshape(x.shape[0], out_h, out_w, out_c)


def _pool_shape_check(op: Int8Op, in_c: int, out_c: int) -> None:
    if in_c != out_c:
        raise FirmwareError(f"op {op.name!r} ({op.kind}): {in_c} input channels, {out_c} output")


def _maxpool(op: Int8Op, x: I64) -> I64:
    g, _, _, in_c, out_h, out_w, out_c = _geometry(op)
    _pool_shape_check(op, in_c, out_c)
    win, _ = _batch_windows(x, g, out_h, out_w, -128)  # the C's running max starts at -128
    m = win.max(axis=(3, 4), initial=-128)
    return _to_int8(_c_clamp(m, _param(op, "act_min"), _param(op, "act_max")))


def _avgpool(op: Int8Op, x: I64) -> I64:
    g, in_h, in_w, in_c, out_h, out_w, out_c = _geometry(op)
    _pool_shape_check(op, in_c, out_c)
    win, _ = _batch_windows(x, g, out_h, out_w, 0)
    acc = win.sum(axis=(3, 4))
    # The C divides by the product of the two spans (the valid taps of a real window).
    count = np.outer(
        _span_lengths(out_h, g.stride_h, g.pad_top, g.k_h, in_h),
        _span_lengths(out_w, g.stride_w, g.pad_left, g.k_w, in_w),
    )
    if np.any(count == 0):
        raise FirmwareError(
            f"op {op.name!r}: an average-pool window has no input tap",
            hint="the C kernel would divide by zero",
        )
    avg = int8_ref.average_round(acc, count[None, :, :, None])
    return _to_int8(_c_clamp(avg, _param(op, "act_min"), _param(op, "act_max")))


def _copy(op: Int8Op, x: I64) -> I64:
    if numel(op.in_shape) != numel(op.out_shape):
        raise FirmwareError(
            f"op {op.name!r} ({op.kind}): {op.in_shape} and {op.out_shape} differ in size"
        )
    return x.reshape(x.shape[0], *op.out_shape)


def _transcendental(op: Int8Op, x: I64) -> I64:
    fn = int8_ref.logistic_q if op.kind == "logistic" else int8_ref.tanh_q
    shift = _param(op, "input_left_shift")
    _check_shift(op, shift, "input_left_shift")
    y = fn(
        _flat_input(op, x, numel(op.out_shape)),
        input_zero_point=_param(op, "input_zero_point"),
        input_multiplier=_param(op, "input_multiplier"),
        input_left_shift=shift,
        input_range_radius=_param(op, "input_range_radius"),
    )
    return y.reshape(x.shape[0], *op.out_shape)


def _leaky_relu(op: Int8Op, x: I64) -> I64:
    s_id, s_alpha = _param(op, "shift_identity"), _param(op, "shift_alpha")
    _check_shift(op, np.asarray([s_id, s_alpha]), "shift_identity/shift_alpha")
    y = int8_ref.leaky_relu_q(
        _flat_input(op, x, numel(op.out_shape)),
        input_zero_point=_param(op, "input_zero_point"),
        output_zero_point=_param(op, "output_zero_point"),
        multiplier_identity=_param(op, "multiplier_identity"),
        shift_identity=s_id,
        multiplier_alpha=_param(op, "multiplier_alpha"),
        shift_alpha=s_alpha,
    )
    return y.reshape(x.shape[0], *op.out_shape)


def _softmax(op: Int8Op, x: I64) -> I64:
    n = numel(op.out_shape)
    depth = _param(op, "depth")
    if depth <= 0 or n % depth:
        raise FirmwareError(
            f"op {op.name!r}: softmax depth {depth} does not divide its {n} values",
            hint="the C kernel leaves the remainder unwritten (or never ends for depth 0)",
        )
    shift = _param(op, "input_left_shift")
    _check_shift(op, shift, "input_left_shift", lo=0)
    rows = _flat_input(op, x, n).reshape(-1, depth)
    y = int8_ref.softmax_q(
        rows,
        input_multiplier=_param(op, "input_multiplier"),
        input_left_shift=shift,
        diff_min=_param(op, "diff_min"),
    )
    return y.reshape(x.shape[0], *op.out_shape)


def _requantize(op: Int8Op, x: I64) -> I64:
    shift = _param(op, "shift")
    _check_shift(op, shift, "shift")
    v = wrap32(_flat_input(op, x, numel(op.out_shape)) - _param(op, "input_zero_point"))
    y = multiply_by_quantized_multiplier(v, _param(op, "multiplier"), shift)
    y = np.clip(wrap32(y + _param(op, "output_zero_point")), -128, 127)
    return np.asarray(y, dtype=np.int64).reshape(x.shape[0], *op.out_shape)


_KERNELS: dict[str, Callable[[Int8Op, I64], I64]] = {
    "fully_connected": _fully_connected,
    "conv2d": _conv2d,
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "reshape": _copy,
    "identity": _copy,
    "logistic": _transcendental,
    "tanh": _transcendental,
    "leaky_relu": _leaky_relu,
    "softmax": _softmax,
    "requantize": _requantize,
}
assert set(_KERNELS) == set(KINDS)


def _run(op: Int8Op, x: I64) -> I64:
    """Compute ``op`` on a batch ``(n, *op.in_shape)``; returns ``(n, *op.out_shape)``."""
    kernel = _KERNELS.get(op.kind)
    if kernel is None:
        raise FirmwareError(
            f"op {op.name!r} has unknown kind {op.kind!r}", hint=f"kinds: {', '.join(KINDS)}"
        )
    return kernel(op, x)
