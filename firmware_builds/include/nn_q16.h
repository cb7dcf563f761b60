/*
 * Q16.16 fixed-point kernels of the simcore NN runtime (layouts in
 * nn_common.h). A value x is stored as the int32 round(x * 65536). The
 * arithmetic is defined here and mirrored bit for bit by
 * simcore/firmware/q16_ref.py:
 *
 *   dense/conv  acc = (bias << 16) + sum(w * x) in int64, in memory order;
 *               y = sat32((acc + 2^15) >> 16)              (>> is floor)
 *   avgpool     y = sum / count, rounded half away from zero
 *   leaky relu  y = x >= 0 ? x : (x * alpha) >> 16
 *   sigmoid     256-entry table T[k] = sigmoid(k/32) on [0, 8), linear
 *               interpolation (frac 11 bits, floor), end point sigmoid(8);
 *               |x| >= 8 saturates to the end point; sigmoid(-x) = 1 - sigmoid(x)
 *   tanh        2 * sigmoid(2x) - 1 (x clamped to +-16 first)
 *   softmax     e = 2^(-(m - x) * log2(e)) from a 256-entry table of
 *               2^(-j/256) with interpolation (frac 8 bits, floor), then a
 *               right shift by the integer part; y = (e << 16) / sum(e)
 *
 * The generator emits the two tables (nn_q16_sigmoid_table,
 * nn_q16_exp2_table) into the model source, from the same Python code that
 * the reference uses.
 */
#ifndef NN_Q16_H
#define NN_Q16_H

#include "nn_common.h"

#define NN_Q16_ONE 65536
#define NN_Q16_TABLE_SIZE 256

extern const int32_t nn_q16_sigmoid_table[NN_Q16_TABLE_SIZE];
extern const int32_t nn_q16_sigmoid_end;
extern const int32_t nn_q16_exp2_table[NN_Q16_TABLE_SIZE];

int32_t nn_q16_sigmoid(int32_t x);
int32_t nn_q16_tanh(int32_t x);

void nn_q16_activation(int32_t *x, uint32_t n, uint32_t depth, nn_act_t act, int32_t alpha);

void nn_q16_dense(const int32_t *in, int32_t *out, const int32_t *weights, const int32_t *bias,
                  uint32_t n_in, uint32_t n_out, nn_act_t act, int32_t alpha);

/* Dense over a pruned matrix (nn_sparse_t in nn_common.h): equal to nn_q16_dense
 * on the same weights. */
void nn_q16_dense_sparse(const int32_t *in, int32_t *out, const int32_t *values,
                         const nn_sparse_t *s, const int32_t *bias, uint32_t n_out, nn_act_t act,
                         int32_t alpha);

void nn_q16_conv2d(const int32_t *in, int32_t *out, const int32_t *weights, const int32_t *bias,
                   const nn_geom_t *g, nn_act_t act, int32_t alpha);

void nn_q16_maxpool(const int32_t *in, int32_t *out, const nn_geom_t *g);
void nn_q16_avgpool(const int32_t *in, int32_t *out, const nn_geom_t *g);

#endif /* NN_Q16_H */
