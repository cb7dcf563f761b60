/*
 * Shared definitions of the simcore neural-network runtime (nn_f32, nn_q16,
 * nn_int8). Generated model sources include the format's header, which
 * includes this one.
 *
 * Tensor layout: activations are NHWC with N = 1 (a Dense layer's input is
 * the flattened H*W*C vector in that order, which is Keras' Flatten order).
 * Weight layout, all formats:
 *   Dense   weights [out][in]            (Keras kernel [in][out], transposed)
 *   Conv2D  weights [out][kh][kw][in]    (OHWI, TFLite order; Keras is HWIO)
 *   bias    [out]
 * Each layer's arrays are const (flash) under `layer<N>_weights`,
 * `layer<N>_bias` (int8 also `layer<N>_multiplier`, `layer<N>_shift`).
 * A sparse Dense layer (see nn_sparse_t) has `layer<N>_sparse_values`,
 * `layer<N>_sparse_gaps` and `layer<N>_sparse_rows` instead of its weights.
 *
 * No kernel allocates: the generator sizes a static arena of two ping-pong
 * buffers and passes pointers into it.
 */
#ifndef NN_COMMON_H
#define NN_COMMON_H

#include <stdint.h>
#include "simcore_abi.h"

typedef enum {
    NN_ACT_LINEAR = 0,
    NN_ACT_RELU = 1,
    NN_ACT_SIGMOID = 2,
    NN_ACT_TANH = 3,
    NN_ACT_LEAKY_RELU = 4,
    NN_ACT_SOFTMAX = 5,
} nn_act_t;

/* Geometry of a Conv2D or pooling layer. Padding is the number of implicit
 * zero rows/columns before the first input row/column (TFLite's SAME rule:
 * total = max((out-1)*stride + k - in, 0), before = total / 2). */
typedef struct {
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint8_t k_h, k_w;
    uint8_t stride_h, stride_w;
    uint8_t pad_top, pad_left;
} nn_geom_t;

/* The part of one window axis that lies inside the input: the window over
 * output index `o` starts at input index `start` (negative inside the
 * padding) and its taps [lo, hi) fall inside the input. Pooling and
 * convolution kernels loop over [lo, hi) instead of testing every tap. */
typedef struct {
    int32_t start, lo, hi;
} nn_span_t;

static inline nn_span_t nn_window_span(int32_t o, int32_t stride, int32_t pad, int32_t k,
                                       int32_t in_len)
{
    const int32_t start = o * stride - pad;
    nn_span_t s = {start, start < 0 ? -start : 0, start + k > in_len ? in_len - start : k};
    return s;
}

/* A pruned Dense weight matrix [out][in] without its zeros (simcore.firmware.sparse).
 * Row o's entries are k in [rows[o-1], rows[o]) (rows[-1] is 0), each a weight
 * values[k] (in the format's element type, held by the caller) at input column
 * col(k) = col(k-1) + gaps[k], with col(first entry of a row) = gaps[k]. A gap of
 * more than 255 columns is bridged by entries of weight 0 and gap 255, so every
 * gap fits a byte; their product adds an exact zero. Kernels visit the entries
 * of a row in column order, which keeps the dense kernel's sum order. */
typedef struct {
    const uint16_t *rows;
    const uint8_t *gaps;
} nn_sparse_t;

/* After each layer: simcore_trace (its output bytes) in --trace builds, a
 * data-free simcore_layer mark (cycles per layer) in release builds, nothing
 * with -DSIMCORE_NO_MARKS. */
#if defined(SIMCORE_TRACE)
#define NN_TRACE(layer_id, ptr, nbytes) simcore_trace((layer_id), (ptr), (nbytes))
#elif !defined(SIMCORE_NO_MARKS)
#define NN_TRACE(layer_id, ptr, nbytes) simcore_layer((layer_id))
#else
#define NN_TRACE(layer_id, ptr, nbytes) ((void)0)
#endif

#endif /* NN_COMMON_H */
