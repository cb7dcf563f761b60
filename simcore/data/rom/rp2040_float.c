/*
 * The functions of the RP2040 ROM's soft-float ('SF') and soft-double ('SD')
 * tables (RP2040 datasheet 2.8.3.2-2.8.3.3; entry offsets: pico-sdk sf_table.h),
 * in C on top of libgcc and newlib's libm kernels (the tables: rp2040_rom.S).
 *
 * Conventions of the tables (AAPCS soft-float, as pico-sdk's wrappers call them):
 * conversions to integers round towards minus infinity and saturate; fix/ufix take
 * the number of fraction bits as the last argument; fsin also returns the cosine
 * in r1 (pico-sdk's sincosf reads it), dsincos returns the sine in r0:r1 and the
 * cosine in r2:r3 (rp2040_rom.S). The 32-bit patterns are moved through unions.
 *
 * The arithmetic is libgcc's IEEE single/double soft float (round to nearest even)
 * and newlib's libm kernels for the scientific functions, compiled for the
 * Cortex-M0+: results of +, -, *, / and sqrt are correctly rounded, as the real
 * ROM's are for normal numbers. Unlike the real ROM, denormals are not flushed to
 * zero, and sin/cos/tan/exp/ln/atan2 may differ from the real ROM's in the last bits.
 */
#include <float.h>
#include <stdint.h>

/* newlib's libm kernels: the public wrappers set errno, which needs RAM. */
float __ieee754_sqrtf(float);
float __ieee754_expf(float);
float __ieee754_logf(float);
float __ieee754_atan2f(float, float);
double __ieee754_sqrt(double);
double __ieee754_exp(double);
double __ieee754_log(double);
double __ieee754_atan2(double, double);
float sinf(float);
float cosf(float);
float tanf(float);
double sin(double);
double cos(double);
double tan(double);

typedef union { float f; uint32_t u; } f32;
typedef union { double d; uint64_t u; } f64;

/* x * 2**n, exact while the result stays normal (multiplications by powers of two). */
static double scale2(double x, int n) {
    while (n != 0) {
        int step = n > 1000 ? 1000 : n < -1000 ? -1000 : n;
        f64 p = {.u = (uint64_t)(1023 + step) << 52};
        x *= p.d;
        n -= step;
    }
    return x;
}

static int is_nan64(double x) { return x != x; }

/* floor(x) clamped to [lo, hi] (NaN: by its sign, as +-infinity). */
static int64_t floor_clamp(double x, double lo, double hi, int64_t ilo, int64_t ihi) {
    if (is_nan64(x)) {
        f64 v = {.d = x};
        return (v.u >> 63) ? ilo : ihi;
    }
    if (x <= lo) return ilo;
    if (x >= hi) return ihi;
    int64_t t = (int64_t)x; /* truncates; |x| < 2**63 here */
    if ((double)t > x) t -= 1;
    return t;
}

static uint64_t ufloor_clamp(double x, double hi, uint64_t ihi) {
    if (is_nan64(x)) {
        f64 v = {.d = x};
        return (v.u >> 63) ? 0 : ihi;
    }
    if (x < 1.0) return 0;
    if (x >= hi) return ihi;
    return (uint64_t)x; /* truncation is floor for x >= 1 */
}

#define TWO31 2147483648.0
#define TWO32 4294967296.0
#define TWO63 9223372036854775808.0
#define TWO64 18446744073709551616.0

/* A float's value scaled by 2**n, exactly in double (doubles hold any float * 2**n
   for |n| below ~900 without rounding). */
static double fscaled(float a, int n) { return scale2((double)a, n); }

/* -- single precision ('SF') -- */
float rom_fadd(float a, float b) { return a + b; }
float rom_fsub(float a, float b) { return a - b; }
float rom_fmul(float a, float b) { return a * b; }
float rom_fdiv(float a, float b) { return a / b; }
/* -1, 0 or 1 for a < b, a == b, a > b; unordered (NaN) compares as 1. */
int rom_fcmp(float a, float b) { return a < b ? -1 : a == b ? 0 : 1; }
float rom_fsqrt(float a) { return __ieee754_sqrtf(a); }
int32_t rom_float2int(float a) { return (int32_t)floor_clamp(a, -TWO31, TWO31, INT32_MIN, INT32_MAX); }
int32_t rom_float2fix(float a, int n) {
    return (int32_t)floor_clamp(fscaled(a, n), -TWO31, TWO31, INT32_MIN, INT32_MAX);
}
uint32_t rom_float2uint(float a) { return (uint32_t)ufloor_clamp(a, TWO32, UINT32_MAX); }
uint32_t rom_float2ufix(float a, int n) { return (uint32_t)ufloor_clamp(fscaled(a, n), TWO32, UINT32_MAX); }
float rom_int2float(int32_t m) { return (float)m; }
float rom_uint2float(uint32_t m) { return (float)m; }
/* m * 2**-n: the conversion rounds once, the scaling is exact (normal results). */
float rom_fix2float(int32_t m, int n) { return (float)scale2((double)m, -n); }
float rom_ufix2float(uint32_t m, int n) { return (float)scale2((double)m, -n); }
float rom_fcos(float a) { return cosf(a); }
float rom_ftan(float a) { return tanf(a); }
float rom_fexp(float a) { return __ieee754_expf(a); }
float rom_fln(float a) { return __ieee754_logf(a); }
float rom_fatan2(float y, float x) { return __ieee754_atan2f(y, x); }
/* The sine in r0 and the cosine in r1. */
uint64_t rom_fsin(float a) {
    f32 s = {.f = sinf(a)}, c = {.f = cosf(a)};
    return ((uint64_t)c.u << 32) | s.u;
}
float rom_int642float(int64_t m) { return (float)m; }
float rom_uint642float(uint64_t m) { return (float)m; }
/* (float)m rounds once; the scaling by 2**-n is exact while the result is normal. */
float rom_fix642float(int64_t m, int n) { return (float)scale2((double)(float)m, -n); }
float rom_ufix642float(uint64_t m, int n) { return (float)scale2((double)(float)m, -n); }
int64_t rom_float2int64(float a) { return floor_clamp(a, -TWO63, TWO63, INT64_MIN, INT64_MAX); }
int64_t rom_float2fix64(float a, int n) {
    return floor_clamp(fscaled(a, n), -TWO63, TWO63, INT64_MIN, INT64_MAX);
}
uint64_t rom_float2uint64(float a) { return ufloor_clamp(a, TWO64, UINT64_MAX); }
uint64_t rom_float2ufix64(float a, int n) { return ufloor_clamp(fscaled(a, n), TWO64, UINT64_MAX); }
double rom_float2double(float a) { return (double)a; }

/* -- double precision ('SD') -- */
double rom_dadd(double a, double b) { return a + b; }
double rom_dsub(double a, double b) { return a - b; }
double rom_dmul(double a, double b) { return a * b; }
double rom_ddiv(double a, double b) { return a / b; }
int rom_dcmp(double a, double b) { return a < b ? -1 : a == b ? 0 : 1; }
double rom_dsqrt(double a) { return __ieee754_sqrt(a); }
int32_t rom_double2int(double a) { return (int32_t)floor_clamp(a, -TWO31, TWO31, INT32_MIN, INT32_MAX); }
int32_t rom_double2fix(double a, int n) {
    return (int32_t)floor_clamp(scale2(a, n), -TWO31, TWO31, INT32_MIN, INT32_MAX);
}
uint32_t rom_double2uint(double a) { return (uint32_t)ufloor_clamp(a, TWO32, UINT32_MAX); }
uint32_t rom_double2ufix(double a, int n) { return (uint32_t)ufloor_clamp(scale2(a, n), TWO32, UINT32_MAX); }
double rom_int2double(int32_t m) { return (double)m; }
double rom_uint2double(uint32_t m) { return (double)m; }
double rom_fix2double(int32_t m, int n) { return scale2((double)m, -n); }
double rom_ufix2double(uint32_t m, int n) { return scale2((double)m, -n); }
double rom_dcos(double a) { return cos(a); }
double rom_dsin(double a) { return sin(a); }
double rom_dtan(double a) { return tan(a); }
double rom_dexp(double a) { return __ieee754_exp(a); }
double rom_dln(double a) { return __ieee754_log(a); }
double rom_datan2(double y, double x) { return __ieee754_atan2(y, x); }
/* Helper of rom_dsincos (rp2040_rom.S): both results through memory. */
void rom_dsincos_to(double a, double *out) {
    out[0] = sin(a);
    out[1] = cos(a);
}
double rom_int642double(int64_t m) { return (double)m; }
double rom_uint642double(uint64_t m) { return (double)m; }
double rom_fix642double(int64_t m, int n) { return scale2((double)m, -n); }
double rom_ufix642double(uint64_t m, int n) { return scale2((double)m, -n); }
int64_t rom_double2int64(double a) { return floor_clamp(a, -TWO63, TWO63, INT64_MIN, INT64_MAX); }
int64_t rom_double2fix64(double a, int n) {
    return floor_clamp(scale2(a, n), -TWO63, TWO63, INT64_MIN, INT64_MAX);
}
uint64_t rom_double2uint64(double a) { return ufloor_clamp(a, TWO64, UINT64_MAX); }
uint64_t rom_double2ufix64(double a, int n) { return ufloor_clamp(scale2(a, n), TWO64, UINT64_MAX); }
float rom_double2float(double a) { return (float)a; }
