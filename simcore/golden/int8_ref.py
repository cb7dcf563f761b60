"""A NumPy reference of TFLM's int8 kernels, bit-exact with tflite-micro.

It follows TFLM's reference kernels with the default double rounding
(``MultiplyByQuantizedMultiplier`` = ``SaturatingRoundingDoublingHighMul``
then ``RoundingDivideByPOT``; not ``TFLITE_SINGLE_ROUNDING``) and gemmlowp's
fixed-point exp/tanh/logistic for SOFTMAX, TANH and LOGISTIC. All integer
arithmetic runs in int64 and is wrapped to int32 where C would wrap, so
every intermediate equals the C value.

Entry points: :func:`run_model` (every op output for one input) and
:func:`describe` (the per-op integer parameters a firmware generator emits:
multipliers, shifts). The integer work of LOGISTIC, TANH, LEAKY_RELU and
SOFTMAX takes the prepared parameters (:func:`logistic_q`, :func:`tanh_q`,
:func:`leaky_relu_q`, :func:`softmax_q`, named as in
:mod:`simcore.firmware.quant`), so the firmware-side evaluator
:mod:`simcore.firmware.int8_eval` runs the same code on the generator's IR.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.errors import GoldenError
from simcore.golden.tflite_model import Operator, Tensor, TfliteModel

I64 = npt.NDArray[np.int64]
IntLike = npt.NDArray[np.int64] | int | np.integer[Any]
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


# --- scalar set-up (as TFLM's Prepare computes it) -----------------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Return TFLM's ``QuantizeMultiplier(real)``: (Q31 multiplier, shift), shift > 0 = left."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def _round_half_away(v: float) -> int:
    return math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """Return TFLM's ``CalculateActivationRangeQuantized`` for int8 output."""
    lo, hi = -128, 127

    def q(v: float) -> int:
        return zero_point + _round_half_away(float(np.float32(v) / np.float32(scale)))

    if activation == "NONE":
        return lo, hi
    if activation == "RELU":
        return max(lo, q(0.0)), hi
    if activation == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    raise GoldenError(f"fused activation {activation} is not supported by the int8 reference")


def input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    """Return TFLM's ``CalculateInputRadius``."""
    max_rescaled = (
        1.0
        * ((1 << integer_bits) - 1)
        * (1 << (total_signed_bits - integer_bits))
        / (1 << left_shift)
    )
    return math.floor(max_rescaled)


# --- gemmlowp / TFLM integer primitives on int64 arrays holding int32 values ---------------


def wrap32(x: IntLike) -> I64:
    """Wrap to int32 two's complement, as C int32 arithmetic does."""
    return np.asarray(((np.asarray(x, dtype=np.int64) + 2**31) & 0xFFFFFFFF) - 2**31, np.int64)


def _trunc_div(a: I64, b: IntLike) -> I64:
    """C integer division (truncates toward zero); ``b`` may be an array, non-zero."""
    b_arr = np.asarray(b, dtype=np.int64)
    q = np.abs(a) // np.abs(b_arr)
    return np.where((a < 0) != (b_arr < 0), -q, q)


def srdhm(a: IntLike, b: IntLike) -> I64:
    """``SaturatingRoundingDoublingHighMul`` of int32 values."""
    a = np.asarray(a, dtype=np.int64)
    b_arr = np.asarray(b, dtype=np.int64)
    overflow = (a == b_arr) & (a == INT32_MIN)
    ab = a * b_arr
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div(ab + nudge, 1 << 31)
    return np.where(overflow, INT32_MAX, high).astype(np.int64)


def rounding_divide_by_pot(x: I64, exponent: I64 | int) -> I64:
    """``RoundingDivideByPOT``: divide by 2**exponent, rounding half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def saturating_rounding_multiply_by_pot(x: I64, exponent: int) -> I64:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` on int32 values."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    result = wrap32(x << exponent)
    result = np.where(x > threshold, INT32_MAX, result)
    return np.where(x < -threshold, INT32_MIN, result)


def multiply_by_quantized_multiplier(x: I64, multiplier: I64 | int, shift: I64 | int) -> I64:
    """TFLM's double-rounding ``MultiplyByQuantizedMultiplier``."""
    shift_arr = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift_arr, 0)
    right = np.maximum(-shift_arr, 0)
    return rounding_divide_by_pot(srdhm(wrap32(np.asarray(x, np.int64) << left), multiplier), right)


# gemmlowp fixed point: a raw int32 with `bits` integer bits.


def _fx_mul(a: IntLike, b: IntLike) -> I64:
    return srdhm(a, b)


def _rescale(x: I64, src_bits: int, dst_bits: int) -> I64:
    return saturating_rounding_multiply_by_pot(x, src_bits - dst_bits)


def _one(bits: int) -> int:
    return INT32_MAX if bits == 0 else 1 << (31 - bits)


def _rounding_half_sum(a: I64, b: I64 | int) -> I64:
    s = a + b
    return _trunc_div(s + np.where(s >= 0, 1, -1), 2)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: I64) -> I64:
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))
    x2 = _fx_mul(x, x)
    x3 = _fx_mul(x2, x)
    x4 = _fx_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(
        wrap32(_fx_mul(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), -1
    )
    return wrap32(constant_term + _fx_mul(constant_term, wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))  # fmt: skip


def exp_on_negative_values(a: I64, integer_bits: int) -> I64:
    """gemmlowp ``exp_on_negative_values``: Q(integer_bits) input <= 0, Q0.31 output."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = wrap32((a & mask) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0)
    )
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            shift = fractional_bits + exponent
            result = np.where((remainder & (1 << shift)) != 0, _fx_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_half(half_denominator: I64) -> I64:
    """Newton-Raphson 1/(2*half_denominator) in Q2.29, as in gemmlowp."""
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    x = wrap32(constant_48_over_17 + _fx_mul(half_denominator, constant_neg_32_over_17))
    one_f2 = _one(2)
    for _ in range(3):
        half_denominator_times_x = _fx_mul(half_denominator, x)
        one_minus = wrap32(one_f2 - half_denominator_times_x)
        x = wrap32(x + _rescale(_fx_mul(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: I64) -> I64:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1`` (Q0.31 in and out)."""
    half_denominator = _rounding_half_sum(a, _one(0))
    x = _newton_reciprocal_half(half_denominator)
    return _rescale(x, 1, 0)  # ExactMulByPot<-1> turns Q2 into Q1, then Rescale<0>


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: I64) -> I64:
    """gemmlowp ``one_minus_x_over_one_plus_x_for_x_in_0_1`` (Q0.31 in and out)."""
    half_denominator = _rounding_half_sum(a, _one(0))
    x = _newton_reciprocal_half(half_denominator)
    return _rescale(wrap32(x - _one(2)), 2, 0)


def fx_logistic(a: I64, integer_bits: int) -> I64:
    """gemmlowp ``logistic`` on Q(integer_bits); Q0.31 result."""
    positive = a > 0
    abs_input = np.where(positive, a, wrap32(-a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap32(-abs_input), integer_bits)
    )
    result_if_negative = wrap32(_one(0) - result_if_positive)
    out = np.where(positive, result_if_positive, result_if_negative)
    return np.where(a == 0, 1 << 30, out)


def fx_tanh(a: I64, integer_bits: int) -> I64:
    """gemmlowp ``tanh`` on Q(integer_bits); Q0.31 result."""
    negative = a < 0
    n = np.where(negative, a, wrap32(-a))
    # neg_tanh_on_negative_values: ExactMulByPot<1> adds one integer bit, raw unchanged
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    out = np.where(negative, wrap32(-t), t)
    return np.where(a == 0, 0, out)


def _clz32(x: IntLike) -> I64:
    """Count leading zeros of 32-bit values (32 for 0)."""
    u = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    # float64 holds every uint32 exactly, so frexp's exponent is the bit length.
    return np.asarray(32 - np.frexp(u.astype(np.float64))[1], dtype=np.int64)


def average_round(acc: IntLike, count: IntLike) -> I64:
    """TFLM's AVERAGE_POOL_2D rounding: ``(acc +- count / 2) / count`` in C integer division."""
    acc = np.asarray(acc, dtype=np.int64)
    half = _trunc_div(np.asarray(count, dtype=np.int64), 2)
    return np.where(acc > 0, _trunc_div(acc + half, count), _trunc_div(acc - half, count))


# --- kernels ------------------------------------------------------------------------------


def _q(t: Tensor) -> tuple[float, int]:
    if t.quant is None:
        raise GoldenError(f"tensor {t.name} has no quantization")
    return float(t.quant.scale[0]), int(t.quant.zero_point[0])


def _per_channel(
    in_scale: float, filter_t: Tensor, out_scale: float, channels: int
) -> tuple[I64, I64]:
    assert filter_t.quant is not None
    scales = filter_t.quant.scale
    mults, shifts = [], []
    for c in range(channels):
        s = float(scales[c] if len(scales) > 1 else scales[0])
        m, sh = quantize_multiplier(float(np.float64(in_scale) * s / np.float64(out_scale)))
        mults.append(m)
        shifts.append(sh)
    return np.asarray(mults, np.int64), np.asarray(shifts, np.int64)


def _bias(model: TfliteModel, op: Operator, channels: int) -> I64:
    b = model.op_input(op, 2)
    if b is None or b.data is None:
        return np.zeros(channels, dtype=np.int64)
    return b.data.astype(np.int64).reshape(channels)


def fully_connected(model: TfliteModel, op: Operator, x: I64) -> I64:
    """FULLY_CONNECTED int8 (per-tensor or per-channel weights, int32 bias)."""
    inp, w, out = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]], model.op_output(op)
    assert w.data is not None
    in_scale, in_zp = _q(inp)
    out_scale, out_zp = _q(out)
    units, depth = w.shape
    weights = w.data.astype(np.int64)
    assert w.quant is not None
    w_zp = int(w.quant.zero_point[0])
    mult, shift = _per_channel(in_scale, w, out_scale, units)
    flat = x.reshape(-1, depth) - in_zp
    acc = wrap32((flat @ (weights - w_zp).T) + _bias(model, op, units))
    y = multiply_by_quantized_multiplier(acc, mult, shift) + out_zp
    lo, hi = activation_range(op.options.get("fused_activation", "NONE"), out_scale, out_zp)
    return np.clip(y, lo, hi).reshape(out.shape)


def _padding(
    padding: str, in_size: int, filter_size: int, stride: int, dilation: int = 1
) -> tuple[int, int]:
    """Return (output size, leading padding) as TFLM's ComputePaddingHeightWidth."""
    eff = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        out_size = (in_size + stride - 1) // stride
    else:
        out_size = (in_size - eff + stride) // stride
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return out_size, total // 2


def conv_2d(model: TfliteModel, op: Operator, x: I64) -> I64:
    """CONV_2D int8 with per-channel weights (NHWC input, OHWI filter)."""
    inp, w, out = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]], model.op_output(op)
    assert w.data is not None
    in_scale, in_zp = _q(inp)
    out_scale, out_zp = _q(out)
    o = op.options
    _, in_h, in_w, in_c = inp.shape
    out_c, f_h, f_w, f_c = w.shape
    if f_c != in_c:
        raise GoldenError("grouped CONV_2D is not supported by the int8 reference")
    out_h, pad_h = _padding(o["padding"], in_h, f_h, o["stride_h"], o["dilation_h"])
    out_w, pad_w = _padding(o["padding"], in_w, f_w, o["stride_w"], o["dilation_w"])
    img = x.reshape(in_h, in_w, in_c) - in_zp  # padding contributes (zp - zp) = 0
    padded = np.zeros(
        (in_h + 2 * f_h * o["dilation_h"], in_w + 2 * f_w * o["dilation_w"], in_c), np.int64
    )
    padded[pad_h * 0 + f_h * o["dilation_h"] : f_h * o["dilation_h"] + in_h,
           f_w * o["dilation_w"] : f_w * o["dilation_w"] + in_w] = img  # fmt: skip
    acc = np.zeros((out_h, out_w, out_c), dtype=np.int64)
    weights = w.data.astype(np.int64)
    for ky in range(f_h):
        for kx in range(f_w):
            y0 = f_h * o["dilation_h"] - pad_h + ky * o["dilation_h"]
            x0 = f_w * o["dilation_w"] - pad_w + kx * o["dilation_w"]
            patch = padded[
                y0 : y0 + (out_h - 1) * o["stride_h"] + 1 : o["stride_h"],
                x0 : x0 + (out_w - 1) * o["stride_w"] + 1 : o["stride_w"],
            ]
            acc += patch @ weights[:, ky, kx, :].T
    acc = wrap32(acc + _bias(model, op, out_c))
    mult, shift = _per_channel(in_scale, w, out_scale, out_c)
    y = multiply_by_quantized_multiplier(acc, mult, shift) + out_zp
    lo, hi = activation_range(o.get("fused_activation", "NONE"), out_scale, out_zp)
    return np.clip(y, lo, hi).reshape(out.shape)


def _pool(model: TfliteModel, op: Operator, x: I64, kind: str) -> I64:
    inp, out = model.tensors[op.inputs[0]], model.op_output(op)
    o = op.options
    _, in_h, in_w, ch = inp.shape
    out_h, pad_h = _padding(o["padding"], in_h, o["filter_h"], o["stride_h"])
    out_w, pad_w = _padding(o["padding"], in_w, o["filter_w"], o["stride_w"])
    img = x.reshape(in_h, in_w, ch)
    res = np.zeros((out_h, out_w, ch), dtype=np.int64)
    for oy in range(out_h):
        for ox in range(out_w):
            y0, x0 = oy * o["stride_h"] - pad_h, ox * o["stride_w"] - pad_w
            win = img[max(y0, 0) : min(y0 + o["filter_h"], in_h),
                      max(x0, 0) : min(x0 + o["filter_w"], in_w)].reshape(-1, ch)  # fmt: skip
            if kind == "max":
                res[oy, ox] = win.max(axis=0)
            else:
                res[oy, ox] = average_round(win.sum(axis=0), len(win))
    out_scale, out_zp = _q(out)
    lo, hi = activation_range(o.get("fused_activation", "NONE"), out_scale, out_zp)
    return np.clip(res, lo, hi).reshape(out.shape)


def max_pool_2d(model: TfliteModel, op: Operator, x: I64) -> I64:
    """MAX_POOL_2D int8."""
    return _pool(model, op, x, "max")


def average_pool_2d(model: TfliteModel, op: Operator, x: I64) -> I64:
    """AVERAGE_POOL_2D int8 (rounds half away from zero, as TFLM)."""
    return _pool(model, op, x, "avg")


def reshape(model: TfliteModel, op: Operator, x: I64) -> I64:
    """RESHAPE: the same bytes, a new shape (also used for Flatten)."""
    return x.reshape(model.op_output(op).shape)


def relu(model: TfliteModel, op: Operator, x: I64) -> I64:
    """RELU int8 (TFLM ReluQuantized: rescale from input to output quantization)."""
    in_scale, in_zp = _q(model.tensors[op.inputs[0]])
    out_scale, out_zp = _q(model.op_output(op))
    mult, shift = quantize_multiplier(float(np.float64(in_scale) / np.float64(out_scale)))
    y = out_zp + multiply_by_quantized_multiplier(x - in_zp, mult, shift)
    lo = max(-128, out_zp + int(np.round(np.float32(0.0) / np.float32(out_scale))))
    return np.clip(y, lo, 127)


def leaky_relu_q(
    x: IntLike,
    input_zero_point: int,
    output_zero_point: int,
    multiplier_identity: int,
    shift_identity: int,
    multiplier_alpha: int,
    shift_alpha: int,
) -> I64:
    """LEAKY_RELU's integer work from its prepared parameters (quant.leaky_relu_params).

    ``x - input_zero_point`` >= 0 is rescaled by the identity multiplier, the
    rest by the alpha one; the sum with the output zero point saturates to int8.
    """
    v = wrap32(np.asarray(x, dtype=np.int64) - input_zero_point)
    y = np.where(
        v >= 0,
        multiply_by_quantized_multiplier(v, multiplier_identity, shift_identity),
        multiply_by_quantized_multiplier(v, multiplier_alpha, shift_alpha),
    )
    return np.asarray(np.clip(wrap32(y + output_zero_point), -128, 127), dtype=np.int64)


def leaky_relu(model: TfliteModel, op: Operator, x: I64) -> I64:
    """LEAKY_RELU int8 (TFLM: separate multipliers for x >= 0 and x < 0)."""
    in_scale, in_zp = _q(model.tensors[op.inputs[0]])
    out_scale, out_zp = _q(model.op_output(op))
    alpha = np.float32(op.options["alpha"])
    # TFLM computes both ratios in float, then widens to double.
    m_alpha, s_alpha = quantize_multiplier(
        float(np.float32(np.float32(in_scale) * alpha) / np.float32(out_scale))
    )
    m_id, s_id = quantize_multiplier(float(np.float32(in_scale) / np.float32(out_scale)))
    return leaky_relu_q(
        x,
        input_zero_point=in_zp,
        output_zero_point=out_zp,
        multiplier_identity=m_id,
        shift_identity=s_id,
        multiplier_alpha=m_alpha,
        shift_alpha=s_alpha,
    )


def _gemmlowp_input(in_scale: float) -> tuple[int, int, int]:
    """TFLM's LOGISTIC/TANH int8 prepare: (multiplier, left shift, input radius), 4 int bits."""
    integer_bits = 4
    real = float(np.float64(np.float32(in_scale))) * float(1 << (31 - integer_bits))
    q, left_shift = math.frexp(real)
    multiplier = _round_half_away(q * (1 << 31))
    return multiplier, left_shift, input_radius(integer_bits, left_shift)


def _transcendental_q(
    x: IntLike,
    fn: Callable[[I64, int], I64],
    out_bits: int,
    out_zero_point: int,
    input_zero_point: int,
    input_multiplier: int,
    input_left_shift: int,
    input_range_radius: int,
) -> I64:
    v = wrap32(np.asarray(x, dtype=np.int64) - input_zero_point)
    in_q4 = multiply_by_quantized_multiplier(v, input_multiplier, input_left_shift)
    y = np.clip(rounding_divide_by_pot(fn(in_q4, 4), 31 - out_bits) + out_zero_point, -128, 127)
    return np.where(
        v <= -input_range_radius, -128, np.where(v >= input_range_radius, 127, y)
    ).astype(np.int64)


def logistic_q(
    x: IntLike,
    input_zero_point: int,
    input_multiplier: int,
    input_left_shift: int,
    input_range_radius: int,
) -> I64:
    """LOGISTIC's integer work from its prepared parameters (quant.transcendental_params).

    Inputs with ``|x - input_zero_point| >= input_range_radius`` saturate to
    -128/127; the rest go through gemmlowp's Q4.27 logistic. Output scale
    1/256, zero point -128.
    """
    return _transcendental_q(
        x,
        fx_logistic,
        8,
        -128,
        input_zero_point,
        input_multiplier,
        input_left_shift,
        input_range_radius,
    )


def tanh_q(
    x: IntLike,
    input_zero_point: int,
    input_multiplier: int,
    input_left_shift: int,
    input_range_radius: int,
) -> I64:
    """TANH's integer work from its prepared parameters (quant.transcendental_params).

    As :func:`logistic_q` with gemmlowp's Q4.27 tanh; output scale 1/128, zero point 0.
    """
    return _transcendental_q(
        x,
        fx_tanh,
        7,
        0,
        input_zero_point,
        input_multiplier,
        input_left_shift,
        input_range_radius,
    )


def _transcendental_params(model: TfliteModel, op: Operator) -> dict[str, int]:
    """LOGISTIC/TANH's prepared parameters, from the op's input quantization."""
    in_scale, in_zp = _q(model.tensors[op.inputs[0]])
    mult, left_shift, radius = _gemmlowp_input(in_scale)
    return {
        "input_zero_point": in_zp,
        "input_multiplier": mult,
        "input_left_shift": left_shift,
        "input_range_radius": radius,
    }


def logistic(model: TfliteModel, op: Operator, x: I64) -> I64:
    """LOGISTIC int8 (output scale 1/256, zero point -128)."""
    return logistic_q(x, **_transcendental_params(model, op))


def tanh(model: TfliteModel, op: Operator, x: I64) -> I64:
    """TANH int8 (output scale 1/128, zero point 0)."""
    return tanh_q(x, **_transcendental_params(model, op))


def softmax_q(x: IntLike, input_multiplier: int, input_left_shift: int, diff_min: int) -> I64:
    """SOFTMAX's integer work over the last axis from its prepared parameters.

    Parameters as quant.softmax_params computes them (kScaledDiffIntegerBits
    = 5, sums in Q12.19); output scale 1/256, zero point -128. Entries with
    ``x - max < diff_min`` output -128 and add nothing to the sum.
    """
    x_arr = np.asarray(x, dtype=np.int64)
    scaled_diff_bits, accum_bits = 5, 12
    rows = x_arr.reshape(-1, x_arr.shape[-1])
    diff = rows - rows.max(axis=1, keepdims=True)
    use = diff >= diff_min
    rescaled = srdhm(wrap32(diff << input_left_shift), input_multiplier)
    exps = exp_on_negative_values(rescaled, scaled_diff_bits)
    sum_of_exps = wrap32(np.sum(np.where(use, _rescale(exps, 0, accum_bits), 0), axis=1))
    headroom_plus_one = _clz32(sum_of_exps)
    num_bits_over_unit = accum_bits - headroom_plus_one
    # (uint32)sum << headroom, minus 2**31 (headroom 32 only for a sum of 0, which stays 0)
    shifted = (sum_of_exps << (headroom_plus_one & 31)) & 0xFFFFFFFF
    shifted_sum_minus_one = wrap32(shifted - (1 << 31))
    shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)
    unsat = rounding_divide_by_pot(
        _fx_mul(exps, shifted_scale[:, None]), (num_bits_over_unit + 31 - 8)[:, None]
    )
    out = np.where(use, np.clip(unsat - 128, -128, 127), -128)
    return np.asarray(out, dtype=np.int64).reshape(x_arr.shape)


def softmax(model: TfliteModel, op: Operator, x: I64) -> I64:
    """SOFTMAX int8 over the last axis (output scale 1/256, zero point -128)."""
    inp = model.tensors[op.inputs[0]]
    in_scale, _ = _q(inp)
    scaled_diff_bits = 5
    beta = float(op.options.get("beta", 1.0))
    real = min(
        beta * float(np.float32(in_scale)) * float(1 << (31 - scaled_diff_bits)), 2.0**31 - 1.0
    )
    mult, left_shift = quantize_multiplier(real)
    diff_min = -input_radius(scaled_diff_bits, left_shift)
    rows = x.reshape(-1, inp.shape[-1])
    out = softmax_q(rows, input_multiplier=mult, input_left_shift=left_shift, diff_min=diff_min)
    return out.reshape(x.shape)


KERNELS: dict[str, Callable[[TfliteModel, Operator, I64], I64]] = {
    "FULLY_CONNECTED": fully_connected,
    "CONV_2D": conv_2d,
    "MAX_POOL_2D": max_pool_2d,
    "AVERAGE_POOL_2D": average_pool_2d,
    "RESHAPE": reshape,
    "RELU": relu,
    "LEAKY_RELU": leaky_relu,
    "LOGISTIC": logistic,
    "TANH": tanh,
    "SOFTMAX": softmax,
}


@dataclass(frozen=True)
class OpResult:
    """The int8 output of one operator for one input."""

    op_index: int
    opcode: str
    tensor: Tensor
    values: npt.NDArray[np.int8]


def run_model(model: TfliteModel, x_int8: npt.NDArray[Any]) -> list[OpResult]:
    """Run one int8 input (any shape with the input's element count); return every op output."""
    values: dict[int, I64] = {model.inputs[0]: np.asarray(x_int8, np.int64).reshape(
        model.input_tensor.shape)}  # fmt: skip
    results = []
    for op in model.operators:
        kernel = KERNELS.get(op.opcode)
        if kernel is None:
            raise GoldenError(f"operator {op.opcode} (op {op.index}) has no int8 reference kernel")
        y = kernel(model, op, values[op.inputs[0]])
        if y.min() < -128 or y.max() > 127:
            raise AssertionError(f"op {op.index} {op.opcode} produced out-of-range int8")
        values[op.outputs[0]] = y
        results.append(OpResult(op.index, op.opcode, model.op_output(op), y.astype(np.int8)))
    return results


def run_outputs(model: TfliteModel, inputs_int8: npt.NDArray[Any]) -> npt.NDArray[np.int8]:
    """Run a batch (N, ...) of int8 inputs; return the final outputs flattened to (N, K)."""
    return np.stack([run_model(model, x)[-1].values.reshape(-1) for x in inputs_int8])


def describe(model: TfliteModel) -> list[dict[str, Any]]:
    """Return per-op integer parameters (multipliers, shifts) as a generator would emit them."""
    rows = []
    for op in model.operators:
        row: dict[str, Any] = {"index": op.index, "op": op.opcode, **op.options}
        if op.opcode in ("FULLY_CONNECTED", "CONV_2D"):
            inp, w, out = (
                model.tensors[op.inputs[0]],
                model.tensors[op.inputs[1]],
                model.op_output(op),
            )
            channels = w.shape[0]
            m, s = _per_channel(_q(inp)[0], w, _q(out)[0], channels)
            row["output_multiplier"] = m.tolist()
            row["output_shift"] = s.tolist()
        rows.append(row)
    return rows
