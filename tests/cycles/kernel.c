/* A small NN-style program for the "accounting never changes execution" tests:
 * int8 dot products over weights in flash (.rodata), calls, early returns (cbz after
 * a call return on Thumb-2), a table lookup and a byte copy. */
#include <stdint.h>

#define N 96
static const int8_t weights[4][N] = {
#define ROW(k) { [0 ... N - 1] = (int8_t)(k * 37 - 60) }
    ROW(1), ROW(2), ROW(3), ROW(4),
};
static const uint8_t table[16] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
int8_t input[N];
int32_t out[8];
uint8_t copy[64];

__attribute__((noinline)) static int32_t dot(const int8_t *w, const int8_t *x, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

__attribute__((noinline)) static int first_zero(const int32_t *p, int n) {
    for (int i = 0; i < n; i++)
        if (!p[i]) return i;
    return -1;
}

__attribute__((noinline)) static void copy_bytes(uint8_t *d, const uint8_t *s, int n) {
    while (n--) *d++ = *s++;
}

void kernel(void) {
    for (int i = 0; i < N; i++) input[i] = (int8_t)(i * 7 - 50);
    for (int rep = 0; rep < 3; rep++)
        for (int k = 0; k < 4; k++) out[k] += dot(weights[k], input, N);
    out[4] = first_zero(out, 4);
    out[5] = table[out[0] & 15] + table[(out[1] >> 3) & 15];
    copy_bytes(copy, (const uint8_t *)weights[2], 64);
    out[6] = copy[5] + copy[63];
}
