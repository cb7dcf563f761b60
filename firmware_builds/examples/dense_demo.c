/*
 * simcore example firmware: one float32 dense layer with ReLU, run over a
 * batch of inputs given through the harness ABI, plus an integer checksum.
 *
 * Every output is printed as its IEEE-754 bit pattern so a host computation
 * can be compared exactly (the build uses -ffp-contract=off: no fused
 * multiply-add, so float32 results equal NumPy's).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "simcore_abi.h"

#define N_IN 4
#define N_OUT 3

SIMCORE_DEFINE_IO(N_IN * sizeof(float), N_OUT * sizeof(float), 16);

static const float weights[N_OUT][N_IN] = {
    {0.25f, -0.5f, 0.125f, 1.0f},
    {-0.75f, 0.3f, 0.9f, -0.2f},
    {0.6f, 0.1f, -0.4f, 0.05f},
};
static const float bias[N_OUT] = {0.1f, -0.2f, 0.05f};

static void dense_relu(const float *in, float *out)
{
    for (int o = 0; o < N_OUT; ++o) {
        float acc = bias[o];
        for (int i = 0; i < N_IN; ++i) {
            acc += weights[o][i] * in[i];
        }
        out[o] = acc > 0.0f ? acc : 0.0f;
    }
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int main(void)
{
    uint32_t checksum = 0;
    printf("simcore example: dense %dx%d relu, %lu sample(s)\n", N_IN, N_OUT,
           (unsigned long)simcore_io.n_samples);
    for (uint32_t s = 0; s < simcore_io.n_samples; ++s) {
        const float *in = (const float *)(simcore_io.input + s * simcore_io.input_bytes);
        float *out = (float *)(simcore_io.output + s * simcore_io.output_bytes);
        simcore_sample_begin(s);
        dense_relu(in, out);
        simcore_sample_end(s);
        printf("sample %lu:", (unsigned long)s);
        for (int o = 0; o < N_OUT; ++o) {
            printf(" %08lx", (unsigned long)bits(out[o]));
            checksum = checksum * 31u + bits(out[o]);
        }
        printf("\n");
        simcore_trace(0, out, N_OUT * sizeof(float));
    }
    printf("checksum %08lx\n", (unsigned long)checksum);
    return 0;
}
