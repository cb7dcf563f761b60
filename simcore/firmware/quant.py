"""The integer parameters of the int8 kernels, computed as tflite-micro's Prepare does.

Each function mirrors the tflite-micro code named in its docstring, including
where it computes in float32 and where in double: bit-exactness of the int8
firmware depends on these integers, not on the kernels alone. The scalar
primitives (QuantizeMultiplier, CalculateActivationRangeQuantized,
CalculateInputRadius) are the golden int8 reference's, so the generator and
the reference cannot drift apart.
"""

from __future__ import annotations

import math

import numpy as np

from simcore.golden.int8_ref import activation_range, input_radius, quantize_multiplier

__all__ = [
    "activation_range",
    "conv_multipliers",
    "input_radius",
    "leaky_relu_params",
    "quantize_multiplier",
    "requantize_params",
    "softmax_params",
    "tf_round",
    "transcendental_params",
]


def tf_round(x: float) -> int:
    """``TfLiteRound`` (std::round): halves round away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


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
