/*
 * Test firmware for batched runs: 4-byte int32 inputs, capacity 4 samples.
 *
 * Per sample it prints "x<value>\n" and outputs 2 * x, except:
 *   x == -1: reads unmapped memory (a fault, after printing);
 *   x == -2: returns 3 from main (exit code 3);
 *   x == -3: spins forever (for instruction budgets and timeouts).
 */
#include <stdint.h>
#include "simcore_abi.h"

SIMCORE_DEFINE_IO(4, 4, 4);

static void put_int(int32_t v, char end)
{
    char buf[16];
    int n = 0;
    uint32_t u = v < 0 ? (uint32_t)(-v) : (uint32_t)v;
    char tmp[12];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    if (v < 0) buf[n++] = '-';
    while (k > 0) buf[n++] = tmp[--k];
    buf[n++] = end;
    simcore_write(1, buf, (uint32_t)n);
}

int main(void)
{
    const int32_t *in = (const int32_t *)simcore_io.input;
    int32_t *out = (int32_t *)simcore_io.output;
    for (uint32_t s = 0; s < simcore_io.n_samples; ++s) {
        simcore_sample_begin(s);
        int32_t x = in[s];
        simcore_write(1, "x", 1);
        put_int(x, '\n');
        if (x == -1) {
            out[s] = *(volatile int32_t *)0xF0000000u;
        } else if (x == -2) {
            return 3;
        } else if (x == -3) {
            for (;;) {
                __asm__ volatile("nop");
            }
        }
        out[s] = 2 * x;
        simcore_sample_end(s);
    }
    return 0;
}
