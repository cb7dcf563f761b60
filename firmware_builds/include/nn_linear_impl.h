/*
 * Dense and Conv2D for the float-model formats (f32, q16), written once.
 *
 * A template like nn_pool_impl.h: runtime/nn_f32.c and nn_q16.c define the
 * macros below and include it once, which defines their two kernels. The
 * sum order is fixed and documented in GENERATED.md: bias first, then the
 * taps in memory order (OHWI weights, NHWC input), padding taps skipped.
 *
 *   NN_LINEAR_DENSE, NN_LINEAR_CONV2D   names of the two functions
 *   NN_LINEAR_DENSE_SPARSE              name of the sparse Dense (nn_sparse_t weights)
 *   NN_LINEAR_T                         element type (weights, bias, activations)
 *   NN_LINEAR_ACC_T                     accumulator type
 *   NN_LINEAR_INIT(b)                   the accumulator holding bias value b
 *   NN_LINEAR_TERM(w, x)                one weight x input product, as NN_LINEAR_ACC_T
 *   NN_LINEAR_OUT(acc)                  the element stored for a finished sum
 *   NN_LINEAR_ACTIVATION                the format's activation function
 */

void NN_LINEAR_DENSE(const NN_LINEAR_T *in, NN_LINEAR_T *out, const NN_LINEAR_T *weights,
                     const NN_LINEAR_T *bias, uint32_t n_in, uint32_t n_out, nn_act_t act,
                     NN_LINEAR_T alpha)
{
    for (uint32_t o = 0; o < n_out; ++o) {
        const NN_LINEAR_T *w = weights + o * n_in;
        NN_LINEAR_ACC_T acc = NN_LINEAR_INIT(bias[o]);
        for (uint32_t i = 0; i < n_in; ++i) {
            acc += NN_LINEAR_TERM(w[i], in[i]);
        }
        out[o] = NN_LINEAR_OUT(acc);
    }
    NN_LINEAR_ACTIVATION(out, n_out, n_out, act, alpha);
}

/* Dense over a pruned weight matrix: the same sum as NN_LINEAR_DENSE without its
 * zero-weight terms, in the same order (each skipped term adds an exact zero for
 * finite inputs). */
void NN_LINEAR_DENSE_SPARSE(const NN_LINEAR_T *in, NN_LINEAR_T *out, const NN_LINEAR_T *values,
                            const nn_sparse_t *s, const NN_LINEAR_T *bias, uint32_t n_out,
                            nn_act_t act, NN_LINEAR_T alpha)
{
    uint32_t k = 0;
    for (uint32_t o = 0; o < n_out; ++o) {
        const uint32_t end = s->rows[o];
        const NN_LINEAR_T *x = in;
        NN_LINEAR_ACC_T acc = NN_LINEAR_INIT(bias[o]);
        for (; k < end; ++k) {
            x += s->gaps[k];
            acc += NN_LINEAR_TERM(values[k], *x);
        }
        out[o] = NN_LINEAR_OUT(acc);
    }
    NN_LINEAR_ACTIVATION(out, n_out, n_out, act, alpha);
}

void NN_LINEAR_CONV2D(const NN_LINEAR_T *in, NN_LINEAR_T *out, const NN_LINEAR_T *weights,
                      const NN_LINEAR_T *bias, const nn_geom_t *g, nn_act_t act,
                      NN_LINEAR_T alpha)
{
    const int32_t in_h = g->in_h, in_w = g->in_w, in_c = g->in_c;
    NN_LINEAR_T *o_ptr = out;
    for (int32_t oy = 0; oy < g->out_h; ++oy) {
        const nn_span_t ys = nn_window_span(oy, g->stride_h, g->pad_top, g->k_h, in_h);
        for (int32_t ox = 0; ox < g->out_w; ++ox) {
            const nn_span_t xs = nn_window_span(ox, g->stride_w, g->pad_left, g->k_w, in_w);
            for (int32_t oc = 0; oc < g->out_c; ++oc) {
                const NN_LINEAR_T *w_oc = weights + (uint32_t)oc * g->k_h * g->k_w * in_c;
                NN_LINEAR_ACC_T acc = NN_LINEAR_INIT(bias[oc]);
                for (int32_t ky = ys.lo; ky < ys.hi; ++ky) {
                    const int32_t y = ys.start + ky;
                    const NN_LINEAR_T *w = w_oc + (ky * g->k_w + xs.lo) * in_c;
                    const NN_LINEAR_T *x = in + (y * in_w + xs.start + xs.lo) * in_c;
                    const int32_t n = (xs.hi - xs.lo) * in_c;
                    for (int32_t i = 0; i < n; ++i) {
                        acc += NN_LINEAR_TERM(w[i], x[i]);
                    }
                }
                *o_ptr++ = NN_LINEAR_OUT(acc);
            }
        }
    }
    const uint32_t n_out = (uint32_t)g->out_h * g->out_w * g->out_c;
    NN_LINEAR_ACTIVATION(out, n_out, g->out_c, act, alpha);
}

#undef NN_LINEAR_DENSE
#undef NN_LINEAR_DENSE_SPARSE
#undef NN_LINEAR_CONV2D
#undef NN_LINEAR_T
#undef NN_LINEAR_ACC_T
#undef NN_LINEAR_INIT
#undef NN_LINEAR_TERM
#undef NN_LINEAR_OUT
#undef NN_LINEAR_ACTIVATION
