/*
 * int8 kernels, bit-exact with tflite-micro's reference integer kernels
 * (double rounding). The fixed-point helpers below are gemmlowp's
 * (fixedpoint.h) specialised to int32; additions wrap as they do there.
 */
#include <string.h>
#include "nn_int8.h"

#if defined(__ARM_FEATURE_DSP) && !defined(NN_INT8_PORTABLE)
#include <arm_acle.h>
#define NN_INT8_USE_DSP 1
#else
#define NN_INT8_USE_DSP 0
#endif

/* ---- gemmlowp / TFLite fixed-point primitives ---------------------------- */

static inline int32_t add_w(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t sub_w(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

static inline int32_t srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / (1ll << 31));
}

static inline int32_t rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1ll << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* SaturatingRoundingMultiplyByPOT<e>. */
static int32_t srmbpot(int32_t x, int32_t e)
{
    if (e > 0) {
        const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << e);
    }
    return e < 0 ? rdbpot(x, -e) : x;
}

static inline int32_t mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return rdbpot(srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}
#define MBQM mbqm

int32_t nn_int8_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    return mbqm(x, multiplier, shift);
}

/* exp(a) for a in [-1/4, 0), a and result in Q0.31. */
static int32_t exp_quarter_interval(int32_t a)
{
    const int32_t constant_term = 1895147668;     /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = add_w(a, 1 << 28);
    const int32_t x2 = srdhm(x, x);
    const int32_t x3 = srdhm(x2, x);
    const int32_t x4 = srdhm(x2, x2);
    const int32_t x4_over_4 = srmbpot(x4, -2);
    const int32_t poly = srmbpot(add_w(srdhm(add_w(x4_over_4, x3), constant_1_over_3), x2), -1);
    return add_w(constant_term, srdhm(constant_term, add_w(x, poly)));
}

/* exp(a) for a <= 0 with `ib` integer bits; result in Q0.31. */
static int32_t exp_on_negative_values(int32_t a, int32_t ib)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535,   720401,     242};
    const int32_t fb = 31 - ib;
    const int32_t one_quarter = 1 << (fb - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = sub_w(a & mask, one_quarter);
    int32_t result = exp_quarter_interval(srmbpot(a_mod_quarter_minus_one_quarter, ib));
    const int32_t remainder = sub_w(a_mod_quarter_minus_one_quarter, a);
    for (int32_t e = -2; e <= 4; ++e) {
        if (ib > e && (remainder & (1 << (fb + e))) != 0) {
            result = srdhm(result, multipliers[e + 2]);
        }
    }
    if (ib > 5 && a < -(1 << (36 - ib))) {
        result = 0;
    }
    return a == 0 ? INT32_MAX : result;
}

static inline int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* Newton-Raphson iterations on half the denominator 1 + a, result in Q2.29. */
static int32_t newton_reciprocal_q2(int32_t half_denominator)
{
    int32_t x = add_w(1515870810, srdhm(half_denominator, -1010580540));
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = sub_w(1 << 29, srdhm(half_denominator, x));
        x = add_w(x, srmbpot(srdhm(x, one_minus), 2));
    }
    return x;
}

static int32_t one_over_one_plus_x(int32_t a)
{
    return srmbpot(newton_reciprocal_q2(rounding_half_sum(a, INT32_MAX)), 1);
}

static int32_t one_minus_x_over_one_plus_x(int32_t a)
{
    return srmbpot(sub_w(newton_reciprocal_q2(rounding_half_sum(a, INT32_MAX)), 1 << 29), 2);
}

/* gemmlowp::logistic on Q4.27, result Q0.31. */
static int32_t fp_logistic(int32_t a)
{
    if (a == 0) {
        return 1 << 30;
    }
    const int32_t abs_a = a > 0 ? a : -a;
    const int32_t pos = one_over_one_plus_x(exp_on_negative_values(-abs_a, 4));
    return a > 0 ? pos : sub_w(INT32_MAX, pos);
}

/* gemmlowp::tanh on Q4.27, result Q0.31. */
static int32_t fp_tanh(int32_t a)
{
    if (a == 0) {
        return 0;
    }
    const int32_t n = a < 0 ? a : -a;
    const int32_t t = one_minus_x_over_one_plus_x(exp_on_negative_values(n, 5));
    return a < 0 ? -t : t;
}

static inline int32_t clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* ---- dot product: sum((x[i] + input_offset) * w[i]) ----------------------- */

static inline int32_t dot_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t input_offset,
                             int32_t acc)
{
    int32_t i = 0;
#if NN_INT8_USE_DSP
    const uint32_t off16 = (uint32_t)input_offset & 0xFFFFu;
    const int16x2_t off2 = (int16x2_t)((off16 << 16) | off16);
    for (; i + 4 <= n; i += 4) {
        uint32_t xv, wv;
        memcpy(&xv, x + i, 4);
        memcpy(&wv, w + i, 4);
        const int16x2_t x02 = __sxtab16(off2, (int8x4_t)xv);
        const int16x2_t x13 = __sxtab16(off2, (int8x4_t)((xv >> 8) | (xv << 24)));
        const int16x2_t w02 = __sxtb16((int8x4_t)wv);
        const int16x2_t w13 = __sxtb16((int8x4_t)((wv >> 8) | (wv << 24)));
        acc = __smlad(x02, w02, acc);
        acc = __smlad(x13, w13, acc);
    }
#endif
    for (; i < n; ++i) {
        acc += ((int32_t)x[i] + input_offset) * (int32_t)w[i];
    }
    return acc;
}

static inline int8_t requant(int32_t acc, int32_t mult, int32_t shift, const nn_int8_quant_t *q)
{
    return (int8_t)clamp(MBQM(acc, mult, shift) + q->output_offset, q->act_min, q->act_max);
}

#if defined(NN_INT8_SCRATCH)
/*
 * Patch path (CMSIS-NN's approach): the input values a dot product needs
 * (x + input_offset, zero for padding) are widened to int16 once per output
 * pixel into a scratch "patch" and reused for every output channel.
 * NN_INT8_SCRATCH (int16 elements) is set by the generator to the largest
 * patch of the model. Sums are exact integers: every path gives the same result.
 */
#if defined(__ARM_ARCH_6M__)
/* int32 on Armv6-M: it loads words with an immediate offset but signed
 * halfwords only with a register offset (one more instruction per value). */
typedef int32_t nn_patch_t;
#else
typedef int16_t nn_patch_t;
#endif
static nn_patch_t nn_int8_patch[((NN_INT8_SCRATCH) + 3) & ~3] __attribute__((aligned(4)));

#if NN_INT8_USE_DSP
/* DSP layout: each group of 4 is stored as pairs (x0, x2), (x1, x3) to match
 * SXTB16 on a weight word and SXTB16 on the word rotated by 8. */
static inline int32_t patch_index(int32_t i)
{
    return (i & ~3) + ((i & 1) << 1) + ((i >> 1) & 1);
}

/* Pair word j of the patch (memcpy: no aliasing of the int16 array as int32). */
static inline int32_t patch_word(int32_t j)
{
    int32_t v;
    memcpy(&v, &nn_int8_patch[2 * j], 4);
    return v;
}

static inline int32_t patch_dot(const int8_t *w, int32_t k)
{
    int32_t acc = 0, i = 0;
    for (; i + 4 <= k; i += 4) {
        uint32_t wv;
        memcpy(&wv, w + i, 4);
        acc = __smlad(patch_word(i >> 1), __sxtb16((int8x4_t)wv), acc);
        acc = __smlad(patch_word((i >> 1) + 1), __sxtb16((int8x4_t)((wv >> 8) | (wv << 24))), acc);
    }
    for (; i < k; ++i) {
        acc += nn_int8_patch[patch_index(i)] * (int32_t)w[i];
    }
    return acc;
}

/* Two output channels per pass: each patch word is loaded once for both. */
static inline void patch_dot2(const int8_t *wa, const int8_t *wb, int32_t k, int32_t *acc_a,
                              int32_t *acc_b)
{
    int32_t a = 0, b = 0, i = 0;
    for (; i + 4 <= k; i += 4) {
        uint32_t va, vb;
        memcpy(&va, wa + i, 4);
        memcpy(&vb, wb + i, 4);
        const int32_t p0 = patch_word(i >> 1), p1 = patch_word((i >> 1) + 1);
        a = __smlad(p0, __sxtb16((int8x4_t)va), a);
        b = __smlad(p0, __sxtb16((int8x4_t)vb), b);
        a = __smlad(p1, __sxtb16((int8x4_t)((va >> 8) | (va << 24))), a);
        b = __smlad(p1, __sxtb16((int8x4_t)((vb >> 8) | (vb << 24))), b);
    }
    for (; i < k; ++i) {
        const int32_t x = nn_int8_patch[patch_index(i)];
        a += x * (int32_t)wa[i];
        b += x * (int32_t)wb[i];
    }
    *acc_a = a;
    *acc_b = b;
}
#define NN_INT8_CHANNEL_STEP 2
#else
/* Portable layout: plain order; the loop is unrolled by four for cores
 * (the M0+) where loop overhead costs as much as the multiply-accumulate. */
static inline int32_t patch_index(int32_t i)
{
    return i;
}

static inline int32_t patch_dot(const int8_t *w, int32_t k)
{
    const nn_patch_t *p = nn_int8_patch;
    int32_t acc = 0, i = 0;
    for (; i + 4 <= k; i += 4) {
        acc += p[i] * w[i] + p[i + 1] * w[i + 1] + p[i + 2] * w[i + 2] + p[i + 3] * w[i + 3];
    }
    for (; i < k; ++i) {
        acc += p[i] * w[i];
    }
    return acc;
}
#define NN_INT8_CHANNEL_STEP 1
#endif

static inline void patch_put(int32_t i, int32_t v)
{
    nn_int8_patch[patch_index(i)] = (nn_patch_t)v;
}

static void patch_channels(int8_t *out, const int8_t *weights, const int32_t *bias, int32_t k,
                           int32_t n_out, const nn_int8_quant_t *q)
{
    int32_t o = 0;
#if NN_INT8_CHANNEL_STEP == 2
    for (; o + 2 <= n_out; o += 2) {
        int32_t a, b;
        patch_dot2(weights + o * k, weights + (o + 1) * k, k, &a, &b);
        if (bias != 0) {
            a += bias[o];
            b += bias[o + 1];
        }
        out[o] = requant(a, q->multiplier[o], q->shift[o], q);
        out[o + 1] = requant(b, q->multiplier[o + 1], q->shift[o + 1], q);
    }
#endif
    for (; o < n_out; ++o) {
        int32_t a = patch_dot(weights + o * k, k);
        if (bias != 0) {
            a += bias[o];
        }
        out[o] = requant(a, q->multiplier[o], q->shift[o], q);
    }
}
#define NN_INT8_PATCH 1
#else
#define NN_INT8_PATCH 0
#endif

/* ---- layers ---------------------------------------------------------------- */

void nn_int8_fully_connected(const int8_t *in, int8_t *out, const int8_t *weights,
                             const int32_t *bias, uint32_t n_in, uint32_t n_out,
                             const nn_int8_quant_t *q)
{
#if NN_INT8_PATCH
    if (n_in <= (NN_INT8_SCRATCH)) {
        for (uint32_t i = 0; i < n_in; ++i) {
            patch_put((int32_t)i, (int32_t)in[i] + q->input_offset);
        }
        patch_channels(out, weights, bias, (int32_t)n_in, (int32_t)n_out, q);
        return;
    }
#endif
    for (uint32_t o = 0; o < n_out; ++o) {
        int32_t acc = dot_s8(in, weights + o * n_in, (int32_t)n_in, q->input_offset, 0);
        if (bias != 0) {
            acc += bias[o];
        }
        out[o] = requant(acc, q->multiplier[o], q->shift[o], q);
    }
}

void nn_int8_fully_connected_sparse(const int8_t *in, int8_t *out, const int8_t *values,
                                    const nn_sparse_t *s, const int32_t *bias, uint32_t n_out,
                                    const nn_int8_quant_t *q)
{
    uint32_t k = 0;
    for (uint32_t o = 0; o < n_out; ++o) {
        const uint32_t end = s->rows[o];
        const int8_t *x = in;
        int32_t acc = 0;
        for (; k < end; ++k) {
            x += s->gaps[k];
            acc += ((int32_t)*x + q->input_offset) * (int32_t)values[k];
        }
        if (bias != 0) {
            acc += bias[o];
        }
        out[o] = requant(acc, q->multiplier[o], q->shift[o], q);
    }
}

void nn_int8_conv2d(const int8_t *in, int8_t *out, const int8_t *weights, const int32_t *bias,
                    const nn_geom_t *g, const nn_int8_quant_t *q)
{
    const int32_t in_h = g->in_h, in_w = g->in_w, in_c = g->in_c;
#if NN_INT8_PATCH
    const int32_t k = g->k_h * g->k_w * in_c;
    if (k <= (NN_INT8_SCRATCH)) {
        int8_t *o_ptr = out;
        for (int32_t oy = 0; oy < g->out_h; ++oy) {
            const int32_t y0 = oy * g->stride_h - g->pad_top;
            for (int32_t ox = 0; ox < g->out_w; ++ox) {
                const int32_t x0 = ox * g->stride_w - g->pad_left;
                int32_t i = 0;
                for (int32_t ky = 0; ky < g->k_h; ++ky) {
                    const int32_t y = y0 + ky;
                    for (int32_t kx = 0; kx < g->k_w; ++kx) {
                        const int32_t x = x0 + kx;
                        if (y >= 0 && y < in_h && x >= 0 && x < in_w) {
                            const int8_t *src = in + (y * in_w + x) * in_c;
                            for (int32_t c = 0; c < in_c; ++c, ++i) {
                                patch_put(i, (int32_t)src[c] + q->input_offset);
                            }
                        } else {
                            for (int32_t c = 0; c < in_c; ++c, ++i) {
                                patch_put(i, 0); /* padding: (x + offset) is 0 */
                            }
                        }
                    }
                }
                patch_channels(o_ptr, weights, bias, k, g->out_c, q);
                o_ptr += g->out_c;
            }
        }
        return;
    }
#endif
    int8_t *o_ptr = out;
    for (int32_t oy = 0; oy < g->out_h; ++oy) {
        const nn_span_t ys = nn_window_span(oy, g->stride_h, g->pad_top, g->k_h, in_h);
        for (int32_t ox = 0; ox < g->out_w; ++ox) {
            const nn_span_t xs = nn_window_span(ox, g->stride_w, g->pad_left, g->k_w, in_w);
            const int32_t n = (xs.hi - xs.lo) * in_c;
            for (int32_t oc = 0; oc < g->out_c; ++oc) {
                const int8_t *w_oc = weights + (uint32_t)oc * g->k_h * g->k_w * in_c;
                int32_t acc = 0;
                for (int32_t ky = ys.lo; ky < ys.hi; ++ky) {
                    const int32_t y = ys.start + ky;
                    acc = dot_s8(in + (y * in_w + xs.start + xs.lo) * in_c,
                                 w_oc + (ky * g->k_w + xs.lo) * in_c, n, q->input_offset, acc);
                }
                if (bias != 0) {
                    acc += bias[oc];
                }
                *o_ptr++ = requant(acc, q->multiplier[oc], q->shift[oc], q);
            }
        }
    }
}

/* Average of a window's sum, rounded half away from zero (TFLM). */
static inline int32_t avg_s8(int32_t sum, int32_t count)
{
    return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

#define NN_POOL_MAXPOOL nn_int8_maxpool
#define NN_POOL_AVGPOOL nn_int8_avgpool
#define NN_POOL_T int8_t
#define NN_POOL_ARGS , int32_t act_min, int32_t act_max
#define NN_POOL_MAX_T int32_t
#define NN_POOL_MAX_INIT (-128)
#define NN_POOL_SUM_T int32_t
#define NN_POOL_AVG(sum, count) avg_s8((sum), (count))
#define NN_POOL_OUT(v) ((int8_t)clamp((v), act_min, act_max))
#include "nn_pool_impl.h"

/* LOGISTIC and TANH differ only in the fixed-point function and the output's
 * fraction bits and zero point (logistic: Q0.8 from -128, tanh: Q0.7). */
static inline __attribute__((always_inline)) void transcendental(
    const int8_t *in, int8_t *out, uint32_t n, const nn_int8_transcendental_t *p,
    int32_t (*f)(int32_t), int32_t out_bits, int32_t out_zero)
{
    for (uint32_t i = 0; i < n; ++i) {
        const int32_t x = (int32_t)in[i] - p->input_zero_point;
        if (x <= -p->input_range_radius) {
            out[i] = -128;
        } else if (x >= p->input_range_radius) {
            out[i] = 127;
        } else {
            const int32_t x_q4 = MBQM(x, p->input_multiplier, p->input_left_shift);
            const int32_t y = rdbpot(f(x_q4), 31 - out_bits) + out_zero;
            out[i] = (int8_t)clamp(y, -128, 127);
        }
    }
}

void nn_int8_logistic(const int8_t *in, int8_t *out, uint32_t n,
                      const nn_int8_transcendental_t *p)
{
    transcendental(in, out, n, p, fp_logistic, 8, -128);
}

void nn_int8_tanh(const int8_t *in, int8_t *out, uint32_t n, const nn_int8_transcendental_t *p)
{
    transcendental(in, out, n, p, fp_tanh, 7, 0);
}

void nn_int8_leaky_relu(const int8_t *in, int8_t *out, uint32_t n, const nn_int8_leaky_t *p)
{
    for (uint32_t i = 0; i < n; ++i) {
        const int32_t x = (int32_t)in[i] - p->input_zero_point;
        const int32_t y = x >= 0 ? MBQM(x, p->multiplier_identity, p->shift_identity)
                                 : MBQM(x, p->multiplier_alpha, p->shift_alpha);
        out[i] = (int8_t)clamp(y + p->output_zero_point, -128, 127);
    }
}

void nn_int8_softmax(const int8_t *in, int8_t *out, uint32_t n, uint32_t depth,
                     const nn_int8_softmax_t *p)
{
    for (uint32_t row = 0; row + depth <= n; row += depth) {
        const int8_t *x = in + row;
        int8_t *y = out + row;
        int32_t max = -128;
        for (uint32_t c = 0; c < depth; ++c) {
            max = x[c] > max ? x[c] : max;
        }
        int32_t sum_of_exps = 0; /* Q12.19 */
        for (uint32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max;
            if (diff >= p->diff_min) {
                const int32_t scaled = srdhm(diff * (1 << p->input_left_shift),
                                             p->input_multiplier);
                sum_of_exps = add_w(sum_of_exps, rdbpot(exp_on_negative_values(scaled, 5), 12));
            }
        }
        /* GetReciprocal(sum_of_exps, 12, &num_bits_over_unit) */
        const int32_t headroom_plus_one = __builtin_clz((uint32_t)sum_of_exps);
        const int32_t num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (1u << 31));
        const int32_t shifted_scale = one_over_one_plus_x(shifted_sum_minus_one);
        for (uint32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max;
            if (diff >= p->diff_min) {
                const int32_t scaled = srdhm(diff * (1 << p->input_left_shift),
                                             p->input_multiplier);
                const int32_t e = exp_on_negative_values(scaled, 5);
                const int32_t unsat = rdbpot(srdhm(shifted_scale, e), num_bits_over_unit + 31 - 8);
                y[c] = (int8_t)clamp(unsat - 128, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
}

void nn_int8_requantize(const int8_t *in, int8_t *out, uint32_t n, const nn_int8_requant_t *p)
{
    for (uint32_t i = 0; i < n; ++i) {
        const int32_t x = (int32_t)in[i] - p->input_zero_point;
        out[i] = (int8_t)clamp(MBQM(x, p->multiplier, p->shift) + p->output_zero_point, -128, 127);
    }
}
