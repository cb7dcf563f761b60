/* Q16.16 kernels; the arithmetic is specified in nn_q16.h. */
#include "nn_q16.h"

#define Q16_LOG2E 94548 /* round(log2(e) * 65536) */

static int32_t sat32(int64_t v)
{
    if (v > INT32_MAX) {
        return INT32_MAX;
    }
    if (v < INT32_MIN) {
        return INT32_MIN;
    }
    return (int32_t)v;
}

static int32_t round_shift16(int64_t acc)
{
    return sat32((acc + 32768) >> 16);
}

int32_t nn_q16_sigmoid(int32_t x)
{
    const int64_t a = x < 0 ? -(int64_t)x : (int64_t)x;
    int32_t s;
    if (a >= (8 << 16)) {
        s = nn_q16_sigmoid_end;
    } else {
        const int32_t idx = (int32_t)(a >> 11);
        const int32_t frac = (int32_t)(a & 0x7FF);
        const int32_t lo = nn_q16_sigmoid_table[idx];
        const int32_t hi = idx + 1 < NN_Q16_TABLE_SIZE ? nn_q16_sigmoid_table[idx + 1]
                                                       : nn_q16_sigmoid_end;
        s = lo + (((hi - lo) * frac) >> 11);
    }
    return x >= 0 ? s : NN_Q16_ONE - s;
}

int32_t nn_q16_tanh(int32_t x)
{
    const int32_t lim = 16 << 16;
    const int32_t c = x > lim ? lim : (x < -lim ? -lim : x);
    return 2 * nn_q16_sigmoid(2 * c) - NN_Q16_ONE;
}

/* 2^(-u / 65536) in Q16.16 for u >= 0. */
static int32_t exp2_neg(int64_t u)
{
    const int64_t k = u >> 16;
    if (k >= 31) {
        return 0;
    }
    const int32_t r = (int32_t)(u & 0xFFFF);
    const int32_t idx = r >> 8;
    const int32_t frac = r & 0xFF;
    const int32_t lo = nn_q16_exp2_table[idx];
    const int32_t hi = idx + 1 < NN_Q16_TABLE_SIZE ? nn_q16_exp2_table[idx + 1] : NN_Q16_ONE / 2;
    const int32_t v = lo + (((hi - lo) * frac) >> 8);
    return v >> k;
}

void nn_q16_activation(int32_t *x, uint32_t n, uint32_t depth, nn_act_t act, int32_t alpha)
{
    switch (act) {
    case NN_ACT_LINEAR:
        return;
    case NN_ACT_RELU:
        for (uint32_t i = 0; i < n; ++i) {
            x[i] = x[i] > 0 ? x[i] : 0;
        }
        return;
    case NN_ACT_LEAKY_RELU:
        for (uint32_t i = 0; i < n; ++i) {
            x[i] = x[i] >= 0 ? x[i] : (int32_t)(((int64_t)x[i] * alpha) >> 16);
        }
        return;
    case NN_ACT_SIGMOID:
        for (uint32_t i = 0; i < n; ++i) {
            x[i] = nn_q16_sigmoid(x[i]);
        }
        return;
    case NN_ACT_TANH:
        for (uint32_t i = 0; i < n; ++i) {
            x[i] = nn_q16_tanh(x[i]);
        }
        return;
    case NN_ACT_SOFTMAX:
        break;
    }
    for (uint32_t row = 0; row + depth <= n; row += depth) {
        int32_t *r = x + row;
        int32_t max = r[0];
        for (uint32_t i = 1; i < depth; ++i) {
            max = r[i] > max ? r[i] : max;
        }
        int64_t sum = 0;
        for (uint32_t i = 0; i < depth; ++i) {
            const int64_t d = (int64_t)max - r[i];
            r[i] = exp2_neg((d * Q16_LOG2E) >> 16);
            sum += r[i];
        }
        for (uint32_t i = 0; i < depth; ++i) {
            r[i] = (int32_t)(((int64_t)r[i] << 16) / sum);
        }
    }
}

#define NN_LINEAR_DENSE nn_q16_dense
#define NN_LINEAR_DENSE_SPARSE nn_q16_dense_sparse
#define NN_LINEAR_CONV2D nn_q16_conv2d
#define NN_LINEAR_T int32_t
#define NN_LINEAR_ACC_T int64_t
#define NN_LINEAR_INIT(b) ((int64_t)(b) << 16)
#define NN_LINEAR_TERM(w, x) ((int64_t)(w) * (x))
#define NN_LINEAR_OUT(acc) round_shift16(acc)
#define NN_LINEAR_ACTIVATION nn_q16_activation
#include "nn_linear_impl.h"

/* Average of a window's sum, rounded half away from zero. */
static inline int32_t avg_q16(int64_t sum, int64_t count)
{
    const int64_t half = count / 2;
    return (int32_t)(sum >= 0 ? (sum + half) / count : -((-sum + half) / count));
}

#define NN_POOL_MAXPOOL nn_q16_maxpool
#define NN_POOL_AVGPOOL nn_q16_avgpool
#define NN_POOL_T int32_t
#define NN_POOL_ARGS
#define NN_POOL_MAX_T int32_t
#define NN_POOL_MAX_INIT INT32_MIN
#define NN_POOL_SUM_T int64_t
#define NN_POOL_AVG(sum, count) avg_q16((sum), (count))
#define NN_POOL_OUT(v) (v)
#include "nn_pool_impl.h"
