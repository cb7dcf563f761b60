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

void nn_f32_dense(const float *in, float *out, const float *weights, const float *bias,
                  uint32_t n_in, uint32_t n_out, nn_act_t act, float alpha)
{
    for (uint32_t o = 0; o < n_out; ++o) {
        const float *w = weights + o * n_in;
        float acc = bias[o];
        for (uint32_t i = 0; i < n_in; ++i) {
            acc += w[i] * in[i];
        }
        out[o] = acc;
    }
    nn_f32_activation(out, n_out, n_out, act, alpha);
}

void nn_f32_conv2d(const float *in, float *out, const float *weights, const float *bias,
                   const nn_geom_t *g, nn_act_t act, float alpha)
{
    const int32_t in_h = g->in_h, in_w = g->in_w, in_c = g->in_c;
    float *o_ptr = out;
    for (int32_t oy = 0; oy < g->out_h; ++oy) {
        const nn_span_t ys = nn_window_span(oy, g->stride_h, g->pad_top, g->k_h, in_h);
        for (int32_t ox = 0; ox < g->out_w; ++ox) {
            const nn_span_t xs = nn_window_span(ox, g->stride_w, g->pad_left, g->k_w, in_w);
            for (int32_t oc = 0; oc < g->out_c; ++oc) {
                const float *w_oc = weights + (uint32_t)oc * g->k_h * g->k_w * in_c;
                float acc = bias[oc];
                for (int32_t ky = ys.lo; ky < ys.hi; ++ky) {
                    const int32_t y = ys.start + ky;
                    const float *w = w_oc + (ky * g->k_w + xs.lo) * in_c;
                    const float *x = in + (y * in_w + xs.start + xs.lo) * in_c;
                    const int32_t n = (xs.hi - xs.lo) * in_c;
                    for (int32_t i = 0; i < n; ++i) {
                        acc += w[i] * x[i];
                    }
                }
                *o_ptr++ = acc;
            }
        }
    }
    const uint32_t n_out = (uint32_t)g->out_h * g->out_w * g->out_c;
    nn_f32_activation(out, n_out, g->out_c, act, alpha);
}

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
