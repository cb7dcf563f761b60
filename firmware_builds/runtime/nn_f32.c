/*
 * float32 kernels. Sums run in a fixed order (bias first, then the inputs in
 * memory order) and the build uses -ffp-contract=off, so results do not
 * depend on the core's FPU having fused multiply-add.
 */
#include <math.h>
#include "nn_f32.h"

static float act_one(float x, nn_act_t act, float alpha)
{
    switch (act) {
    case NN_ACT_RELU:
        return x > 0.0f ? x : 0.0f;
    case NN_ACT_LEAKY_RELU:
        return x >= 0.0f ? x : x * alpha;
    case NN_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case NN_ACT_TANH:
        return tanhf(x);
    default:
        return x;
    }
}

void nn_f32_activation(float *x, uint32_t n, uint32_t depth, nn_act_t act, float alpha)
{
    if (act == NN_ACT_LINEAR) {
        return;
    }
    if (act != NN_ACT_SOFTMAX) {
        for (uint32_t i = 0; i < n; ++i) {
            x[i] = act_one(x[i], act, alpha);
        }
        return;
    }
    /* Numerically stable softmax: subtract the row maximum before expf. */
    for (uint32_t row = 0; row + depth <= n; row += depth) {
        float *r = x + row;
        float max = r[0];
        for (uint32_t i = 1; i < depth; ++i) {
            max = r[i] > max ? r[i] : max;
        }
        float sum = 0.0f;
        for (uint32_t i = 0; i < depth; ++i) {
            r[i] = expf(r[i] - max);
            sum += r[i];
        }
        for (uint32_t i = 0; i < depth; ++i) {
            r[i] = r[i] / sum;
        }
    }
}

#define NN_LINEAR_DENSE nn_f32_dense
#define NN_LINEAR_DENSE_SPARSE nn_f32_dense_sparse
#define NN_LINEAR_CONV2D nn_f32_conv2d
#define NN_LINEAR_T float
#define NN_LINEAR_ACC_T float
#define NN_LINEAR_INIT(b) (b)
#define NN_LINEAR_TERM(w, x) ((w) * (x))
#define NN_LINEAR_OUT(acc) (acc)
#define NN_LINEAR_ACTIVATION nn_f32_activation
#include "nn_linear_impl.h"

#define NN_POOL_MAXPOOL nn_f32_maxpool
#define NN_POOL_AVGPOOL nn_f32_avgpool
#define NN_POOL_T float
#define NN_POOL_ARGS
#define NN_POOL_MAX_T float
#define NN_POOL_MAX_INIT (-INFINITY)
#define NN_POOL_SUM_T float
#define NN_POOL_AVG(sum, count) ((sum) / (float)(count))
#define NN_POOL_OUT(v) (v)
#include "nn_pool_impl.h"
