"""TFLite's integer-parameter arithmetic in Python, step for step.

Each function mirrors the tflite-micro code named in its docstring, including
where it computes in float32 and where in double: bit-exactness of the int8
firmware depends on these integers, not on the kernels alone.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MAX = (1 << 31) - 1


def tf_round(x: float) -> int:
    """``TfLiteRound`` (std::round): halves round away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``QuantizeMultiplier(double, int32_t*, int*)``: return ``(multiplier, shift)``."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tf_round(q * (1 << 31))
    if q_fixed > (1 << 31):
        raise ValueError(f"multiplier {real} out of range")
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def conv_multipliers(
    input_scale: float, filter_scales: np.ndarray, output_scale: float, channels: int
) -> tuple[list[int], list[int]]:
    """Per-channel multipliers of CONV_2D/FULLY_CONNECTED.

    ``PopulateConvolutionQuantizationParams`` / ``GetQuantizedConvolutionMultipler``:
    ``double(input_scale) * double(filter_scale) / double(output_scale)``, with a
    per-tensor filter scale repeated for every channel.
    """
    scales = [float(s) for s in np.asarray(filter_scales, dtype=np.float32).reshape(-1)]
    if len(scales) == 1:
        scales = scales * channels
    mults, shifts = [], []
    for s in scales:
        m, sh = quantize_multiplier(
            float(np.float32(input_scale)) * s / float(np.float32(output_scale))
        )
        mults.append(m)
        shifts.append(sh)
    return mults, shifts


def activation_range(activation: str, output_scale: float, zero_point: int) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` for int8 outputs."""
    qmin, qmax = -128, 127

    def quantize(f: float) -> int:
        return zero_point + tf_round(float(np.float32(f) / np.float32(output_scale)))

    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    if activation == "NONE":
        return qmin, qmax
    raise ValueError(activation)


def input_radius(
    input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31
) -> int:
    """``CalculateInputRadius``."""
    max_input_rescaled = (
        1.0
        * ((1 << input_integer_bits) - 1)
        * (1 << (total_signed_bits - input_integer_bits))
        / (1 << input_left_shift)
    )
    return math.floor(max_input_rescaled)


def transcendental_params(input_scale: float, input_zero_point: int) -> dict[str, int]:
    """LOGISTIC/TANH int8 prepare (kInputIntegerBits = 4), as in logistic_common.cc/tanh.cc."""
    real = float(np.float32(input_scale)) * float(1 << (31 - 4))
    q, shift = math.frexp(real)
    return {
        "input_zero_point": int(input_zero_point),
        "input_range_radius": input_radius(4, shift, 31),
        "input_multiplier": tf_round(q * (1 << 31)),
        "input_left_shift": int(shift),
    }


def leaky_relu_params(
    input_scale: float, input_zp: int, output_scale: float, output_zp: int, alpha: float
) -> dict[str, int]:
    """LEAKY_RELU int8 prepare: the scale ratios are computed in float32, then widened."""
    s_in, s_out, a = np.float32(input_scale), np.float32(output_scale), np.float32(alpha)
    m_alpha, sh_alpha = quantize_multiplier(float(np.float32(s_in * a) / s_out))
    m_id, sh_id = quantize_multiplier(float(np.float32(s_in / s_out)))
    return {
        "input_zero_point": int(input_zp),
        "output_zero_point": int(output_zp),
        "multiplier_identity": m_id,
        "shift_identity": sh_id,
        "multiplier_alpha": m_alpha,
        "shift_alpha": sh_alpha,
    }


def softmax_params(beta: float, input_scale: float) -> dict[str, int]:
    """SOFTMAX int8 prepare: ``PreprocessSoftmaxScaling`` with kScaledDiffIntegerBits = 5."""
    real = min(
        float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - 5)),
        float((1 << 31) - 1),
    )
    mult, shift = quantize_multiplier(real)
    return {
        "input_multiplier": mult,
        "input_left_shift": shift,
        "diff_min": -input_radius(5, shift, 31),
    }


def requantize_params(
    input_scale: float, input_zp: int, output_scale: float, output_zp: int
) -> dict[str, int]:
    """QUANTIZE int8 -> int8: ``double(input_scale) / double(output_scale)``."""
    mult, shift = quantize_multiplier(
        float(np.float32(input_scale)) / float(np.float32(output_scale))
    )
    return {
        "input_zero_point": int(input_zp),
        "output_zero_point": int(output_zp),
        "multiplier": mult,
        "shift": shift,
    }
