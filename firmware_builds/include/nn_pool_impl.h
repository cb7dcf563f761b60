/*
 * Max and average pooling, written once for every number format.
 *
 * C has no generics, so this file is a template: runtime/nn_f32.c,
 * nn_q16.c and nn_int8.c each define the macros below and include it once,
 * which defines their two pooling kernels. It has no include guard on
 * purpose, and it undefines its parameters at the end.
 *
 *   NN_POOL_MAXPOOL, NN_POOL_AVGPOOL  names of the two functions
 *   NN_POOL_T                         element type
 *   NN_POOL_ARGS                      extra parameters after the geometry (may be empty)
 *   NN_POOL_MAX_T, NN_POOL_MAX_INIT   type and start value of the running maximum
 *   NN_POOL_SUM_T                     type of a window's sum
 *   NN_POOL_AVG(sum, count)           the average of a window (count > 0 taps)
 *   NN_POOL_OUT(v)                    the element stored for a result v
 *
 * Only the taps inside the input count (nn_window_span): padding never
 * wins a maximum and is not part of an average, as in TensorFlow. The
 * maximum keeps the first largest tap (v > m), so a float NaN never wins.
 */

void NN_POOL_MAXPOOL(const NN_POOL_T *in, NN_POOL_T *out, const nn_geom_t *g NN_POOL_ARGS)
{
    const int32_t c_n = g->in_c;
    for (int32_t oy = 0; oy < g->out_h; ++oy) {
        const nn_span_t ys = nn_window_span(oy, g->stride_h, g->pad_top, g->k_h, g->in_h);
        for (int32_t ox = 0; ox < g->out_w; ++ox) {
            const nn_span_t xs = nn_window_span(ox, g->stride_w, g->pad_left, g->k_w, g->in_w);
            for (int32_t c = 0; c < c_n; ++c) {
                NN_POOL_MAX_T m = NN_POOL_MAX_INIT;
                for (int32_t ky = ys.lo; ky < ys.hi; ++ky) {
                    const NN_POOL_T *row = in + ((ys.start + ky) * g->in_w + xs.start) * c_n + c;
                    for (int32_t kx = xs.lo; kx < xs.hi; ++kx) {
                        const NN_POOL_MAX_T v = row[kx * c_n];
                        m = v > m ? v : m;
                    }
                }
                out[(oy * g->out_w + ox) * c_n + c] = NN_POOL_OUT(m);
            }
        }
    }
}

void NN_POOL_AVGPOOL(const NN_POOL_T *in, NN_POOL_T *out, const nn_geom_t *g NN_POOL_ARGS)
{
    const int32_t c_n = g->in_c;
    for (int32_t oy = 0; oy < g->out_h; ++oy) {
        const nn_span_t ys = nn_window_span(oy, g->stride_h, g->pad_top, g->k_h, g->in_h);
        for (int32_t ox = 0; ox < g->out_w; ++ox) {
            const nn_span_t xs = nn_window_span(ox, g->stride_w, g->pad_left, g->k_w, g->in_w);
            for (int32_t c = 0; c < c_n; ++c) {
                NN_POOL_SUM_T sum = 0;
                for (int32_t ky = ys.lo; ky < ys.hi; ++ky) {
                    const NN_POOL_T *row = in + ((ys.start + ky) * g->in_w + xs.start) * c_n + c;
                    for (int32_t kx = xs.lo; kx < xs.hi; ++kx) {
                        sum += row[kx * c_n];
                    }
                }
                const int32_t count = (ys.hi - ys.lo) * (xs.hi - xs.lo);
                out[(oy * g->out_w + ox) * c_n + c] = NN_POOL_OUT(NN_POOL_AVG(sum, count));
            }
        }
    }
}

#undef NN_POOL_MAXPOOL
#undef NN_POOL_AVGPOOL
#undef NN_POOL_T
#undef NN_POOL_ARGS
#undef NN_POOL_MAX_T
#undef NN_POOL_MAX_INIT
#undef NN_POOL_SUM_T
#undef NN_POOL_AVG
#undef NN_POOL_OUT
