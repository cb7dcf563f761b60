/* float32 kernels of the simcore NN runtime (layouts in nn_common.h). */
#ifndef NN_F32_H
#define NN_F32_H

#include "nn_common.h"

/* Apply an activation in place to n values; softmax works on rows of
 * `depth` values (the last axis, as Keras does). */
void nn_f32_activation(float *x, uint32_t n, uint32_t depth, nn_act_t act, float alpha);

void nn_f32_dense(const float *in, float *out, const float *weights, const float *bias,
                  uint32_t n_in, uint32_t n_out, nn_act_t act, float alpha);

/* Dense over a pruned matrix (nn_sparse_t in nn_common.h): equal to nn_f32_dense
 * on the same weights. */
void nn_f32_dense_sparse(const float *in, float *out, const float *values,
                         const nn_sparse_t *s, const float *bias, uint32_t n_out, nn_act_t act,
                         float alpha);

void nn_f32_conv2d(const float *in, float *out, const float *weights, const float *bias,
                   const nn_geom_t *g, nn_act_t act, float alpha);

void nn_f32_maxpool(const float *in, float *out, const nn_geom_t *g);

/* Average over the window positions inside the input (padding not counted,
 * as TensorFlow does). */
void nn_f32_avgpool(const float *in, float *out, const nn_geom_t *g);

#endif /* NN_F32_H */
