/*
 * A hand-written port of the first layer of the mnist_cnn int8 model (Conv2D
 * 3x3, 1 -> 8 channels, valid padding, fused ReLU, per-channel requantization)
 * as a user would write it: its own loops and its own fixed-point helpers,
 * following only the harness ABI. It traces layer 0 and writes zeros as the
 * model's outputs (the later layers are not ported), which is enough for the
 * layout doctor to find layer 0 and map its errors.
 *
 * mnist_conv_weights.h (written by the test) holds the layer's arrays:
 * weights[8][3][3] (OHWI with I = 1), bias[8], multiplier[8], shift[8], and
 * INPUT_OFFSET / OUTPUT_OFFSET. Each -D flag below is one porting mistake:
 *
 *   PER_TENSOR     requantize every channel with channel 0's multiplier/shift
 *   ROUND_ONCE     one rounding shift instead of TFLM's two roundings
 *   TRANSPOSED     store the output [w][h][c] instead of [h][w][c]
 *   SHIFTED        read each window one row lower (an off-by-one row index)
 *   DOUBLE_OFFSET  add the input offset twice
 */
#include <stdint.h>
#include "simcore_abi.h"
#include "mnist_conv_weights.h"

#define H 28
#define OH 26
#define C 8

SIMCORE_DEFINE_IO(H * H, 10, 4);

static int8_t out0[OH * OH * C];

static int32_t high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / (1ll << 31));
}

static int32_t round_shift(int32_t x, int exponent)
{
    int32_t mask = (int32_t)((1u << exponent) - 1u);
    int32_t rem = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (rem > threshold ? 1 : 0);
}

static int32_t scale(int32_t acc, int32_t m, int32_t s)
{
    int left = s > 0 ? s : 0;
    int right = s > 0 ? 0 : -s;
#ifdef ROUND_ONCE
    /* one 64-bit product, rounded once: what a port without TFLM's helpers does */
    int64_t p = (int64_t)(acc * (1 << left)) * m;
    int total = 31 + right;
    return (int32_t)((p + (1ll << (total - 1))) >> total);
#else
    return round_shift(high_mul(acc * (1 << left), m), right);
#endif
}

int main(void)
{
    for (uint32_t s = 0; s < simcore_io.n_samples; ++s) {
        const int8_t *in = (const int8_t *)(simcore_io.input + s * simcore_io.input_bytes);
        simcore_sample_begin(s);
        for (int y = 0; y < OH; ++y) {
            for (int x = 0; x < OH; ++x) {
                for (int c = 0; c < C; ++c) {
                    int32_t acc = bias[c];
                    for (int i = 0; i < 3; ++i) {
                        for (int j = 0; j < 3; ++j) {
#ifdef SHIFTED
                            int row = y + i + 1 < H ? y + i + 1 : H - 1;
#else
                            int row = y + i;
#endif
                            int32_t v = in[row * H + x + j] + INPUT_OFFSET;
#ifdef DOUBLE_OFFSET
                            v += INPUT_OFFSET;
#endif
                            acc += weights[c][i][j] * v;
                        }
                    }
#ifdef PER_TENSOR
                    int32_t q = scale(acc, multiplier[0], shift[0]) + OUTPUT_OFFSET;
#else
                    int32_t q = scale(acc, multiplier[c], shift[c]) + OUTPUT_OFFSET;
#endif
                    q = q < -128 ? -128 : q > 127 ? 127 : q;
#ifdef TRANSPOSED
                    out0[(x * OH + y) * C + c] = (int8_t)q;
#else
                    out0[(y * OH + x) * C + c] = (int8_t)q;
#endif
                }
            }
        }
        simcore_trace(0, out0, sizeof out0);
        for (int k = 0; k < 10; ++k) {
            simcore_io.output[s * 10 + k] = 0;
        }
        simcore_sample_end(s);
    }
    return 0;
}
