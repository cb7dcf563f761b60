/*
 * int8 kernels of the simcore NN runtime, bit-exact with tflite-micro's
 * reference kernels with its default double-rounding arithmetic
 * (MultiplyByQuantizedMultiplier = SaturatingRoundingDoublingHighMul then
 * RoundingDivideByPOT; gemmlowp fixed-point exp/logistic/tanh/reciprocal).
 *
 * Layouts are those of nn_common.h; weights are symmetric int8 (zero point
 * 0), bias int32, and requantization is per output channel: `multiplier`
 * and `shift` (TFLite convention: shift > 0 shifts left) have one entry per
 * output channel (a per-tensor model repeats its single value).
 *
 * On cores with the DSP extension (__ARM_FEATURE_DSP: M33, M7) the dot
 * products use SXTB16/SXTAB16/SMLAD; define NN_INT8_PORTABLE to force the
 * portable C loop. Both give identical results (integer sums are exact).
 */
#ifndef NN_INT8_H
#define NN_INT8_H

#include "nn_common.h"

typedef struct {
    int32_t input_offset;        /* -(input zero point) */
    int32_t output_offset;       /* output zero point */
    int32_t act_min, act_max;    /* fused activation clamp, in output units */
    const int32_t *multiplier;   /* [out channels] */
    const int32_t *shift;        /* [out channels] */
} nn_int8_quant_t;

/* Parameters of LOGISTIC and TANH (kInputIntegerBits = 4). */
typedef struct {
    int32_t input_zero_point;
    int32_t input_range_radius;
    int32_t input_multiplier;
    int32_t input_left_shift;
} nn_int8_transcendental_t;

typedef struct {
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier_identity, shift_identity;
    int32_t multiplier_alpha, shift_alpha;
} nn_int8_leaky_t;

typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} nn_int8_softmax_t;

/* Requantization of an int8 tensor to other scale/zero point (QUANTIZE). */
typedef struct {
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
} nn_int8_requant_t;

int32_t nn_int8_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);

void nn_int8_fully_connected(const int8_t *in, int8_t *out, const int8_t *weights,
                             const int32_t *bias, uint32_t n_in, uint32_t n_out,
                             const nn_int8_quant_t *q);

/* Fully connected over a pruned matrix (nn_sparse_t in nn_common.h): bit-exact with
 * nn_int8_fully_connected on the same weights (the skipped products are zeros). */
void nn_int8_fully_connected_sparse(const int8_t *in, int8_t *out, const int8_t *values,
                                    const nn_sparse_t *s, const int32_t *bias, uint32_t n_out,
                                    const nn_int8_quant_t *q);

void nn_int8_conv2d(const int8_t *in, int8_t *out, const int8_t *weights, const int32_t *bias,
                    const nn_geom_t *g, const nn_int8_quant_t *q);

void nn_int8_maxpool(const int8_t *in, int8_t *out, const nn_geom_t *g, int32_t act_min,
                     int32_t act_max);
void nn_int8_avgpool(const int8_t *in, int8_t *out, const nn_geom_t *g, int32_t act_min,
                     int32_t act_max);

void nn_int8_logistic(const int8_t *in, int8_t *out, uint32_t n,
                      const nn_int8_transcendental_t *p);
void nn_int8_tanh(const int8_t *in, int8_t *out, uint32_t n, const nn_int8_transcendental_t *p);
void nn_int8_leaky_relu(const int8_t *in, int8_t *out, uint32_t n, const nn_int8_leaky_t *p);
void nn_int8_softmax(const int8_t *in, int8_t *out, uint32_t n, uint32_t depth,
                     const nn_int8_softmax_t *p);
void nn_int8_requantize(const int8_t *in, int8_t *out, uint32_t n, const nn_int8_requant_t *p);

#endif /* NN_INT8_H */
