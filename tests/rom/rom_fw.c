/*
 * Firmware that uses the bootrom exactly as pico-sdk does (pico/bootrom.h,
 * float_init_rom_rp2040.c, double_init_rom_rp2040.c, runtime_init.c): 16-bit
 * pointers read from the fixed addresses, functions found by two-character code,
 * the soft-float tables copied from the ROM's data table. Written for simcore's
 * tests; results go to the output buffer, word by word (its last word: how many),
 * and the test compares them with Python's own arithmetic.
 *
 * Build with -DRP2040 or -DRP2350; -DCASE=n picks an ending (0: all checks).
 */
#include <stdint.h>
#include <string.h>

#include "simcore_abi.h"

#define N_OUT 128
SIMCORE_DEFINE_IO(4, N_OUT * 4, 1);

#define CODE(c1, c2) ((uint32_t)(c1) | ((uint32_t)(c2) << 8))

/* A pointer near 0 that the compiler cannot see as NULL (no -Warray-bounds). */
static const volatile uint8_t *rom_at(uintptr_t address) {
    const volatile uint8_t *p;
    __asm__("" : "=r"(p) : "0"(address));
    return p;
}

static uintptr_t rom_hword(uintptr_t address) {
    const volatile uint8_t *p = rom_at(address);
    return (uintptr_t)(p[0] | (p[1] << 8));
}

static uint32_t out[N_OUT];
static unsigned n_out;

static void put(uint32_t word) { out[n_out++] = word; }

typedef union { float f; uint32_t u; } f32;
typedef union { double d; uint64_t u; } f64;

static void put_f(float f) { f32 v = {.f = f}; put(v.u); }
static void put_d(double d) { f64 v = {.d = d}; put((uint32_t)v.u); put((uint32_t)(v.u >> 32)); }

#ifdef RP2040
typedef void *(*table_lookup_fn)(const uint16_t *table, uint32_t code);

static void *func_lookup(uint32_t code) {
    table_lookup_fn lookup = (table_lookup_fn)rom_hword(0x18);
    return lookup((const uint16_t *)rom_hword(0x14), code);
}

static void *data_lookup(uint32_t code) {
    table_lookup_fn lookup = (table_lookup_fn)rom_hword(0x18);
    return lookup((const uint16_t *)rom_hword(0x16), code);
}

static uint32_t sf_table[32];
static uint32_t sd_table[32];

typedef float (*ff2_fn)(float, float);
typedef float (*ff1_fn)(float);
typedef uint64_t (*fsin_fn)(float);
typedef int32_t (*fi_fn)(float);
typedef float (*fix2f_fn)(int32_t, int);
typedef double (*dd2_fn)(double, double);
typedef double (*dd1_fn)(double);
typedef int64_t (*di64_fn)(double);
typedef float (*df_fn)(double);

typedef int32_t (*fix_fn)(float, int);
typedef uint32_t (*ufix_fn)(float, int);
typedef float (*i2f_fn)(int32_t);
typedef float (*u2f_fn)(uint32_t);
typedef float (*ufix2f_fn)(uint32_t, int);
typedef float (*l2f_fn)(int64_t);
typedef float (*lfix2f_fn)(int64_t, int);
typedef int64_t (*f2l_fn)(float);
typedef int64_t (*f2lfix_fn)(float, int);
typedef uint64_t (*f2ul_fn)(float);
typedef double (*f2d_fn)(float);
typedef int32_t (*d2i_fn)(double);
typedef int32_t (*d2fix_fn)(double, int);
typedef uint32_t (*d2u_fn)(double);
typedef uint32_t (*d2ufix_fn)(double, int);
typedef double (*i2d_fn)(int32_t);
typedef double (*fix2d_fn)(int32_t, int);
typedef double (*lfix2d_fn)(int64_t, int);
typedef double (*ul2d_fn)(uint64_t);
typedef int64_t (*d2lfix_fn)(double, int);
typedef uint64_t (*d2ul_fn)(double);
typedef int (*cmp_fn)(float, float);
typedef int (*dcmp_fn)(double, double);

static void put64(uint64_t v) { put((uint32_t)v); put((uint32_t)(v >> 32)); }

/* The flags a ..._flags entry leaves (APSR bits 31-28), registers r0-r3 as given. */
static uint32_t flags_of(uint32_t fn, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3) {
    register uint32_t r0 __asm__("r0") = a0;
    register uint32_t r1 __asm__("r1") = a1;
    register uint32_t r2 __asm__("r2") = a2;
    register uint32_t r3 __asm__("r3") = a3;
    uint32_t apsr;
    __asm__ volatile("blx %[fn]\n\tmrs %[apsr], apsr"
                     : [apsr] "=l"(apsr), "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3)
                     : [fn] "l"(fn)
                     : "r12", "lr", "cc", "memory");
    /* The flags, and whether r0-r3 came back unchanged. */
    return (apsr >> 28) | ((r0 == a0 && r1 == a1 && r2 == a2 && r3 == a3) << 4);
}

static void conversions(void) {
    volatile float f175 = 1.75f, fm13 = -1.3f, fm1 = -1.0f, f399 = 3.99f, f5e9 = 5e9f;
    volatile float f3e9 = 3e9f, fmhalf = -0.5f, f15 = 1.5f, f1e19 = 1e19f, f01 = 0.1f;
    put((uint32_t)((fix_fn)sf_table[0x20 / 4])(f175, 4));     /* float2fix: 28 */
    put((uint32_t)((fix_fn)sf_table[0x20 / 4])(fm13, 1));     /* floor(-2.6) = -3 */
    put(((ufix_fn)sf_table[0x28 / 4])(fm1, 3));                /* float2ufix(-1): 0 */
    put(((ufix_fn)sf_table[0x24 / 4])(f399, 0));               /* float2uint: 3 */
    put(((ufix_fn)sf_table[0x24 / 4])(f5e9, 0));               /* saturates */
    put((uint32_t)((fi_fn)sf_table[0x1c / 4])(f3e9));          /* float2int saturates */
    put_f(((i2f_fn)sf_table[0x2c / 4])(16777217));             /* rounds to even */
    put_f(((u2f_fn)sf_table[0x34 / 4])(0xFFFFFFFFu));
    put_f(((ufix2f_fn)sf_table[0x38 / 4])(3u, 1));             /* 1.5 */
    put_f(((l2f_fn)sf_table[0x5c / 4])(((int64_t)1 << 40) + 1));
    put_f(((lfix2f_fn)sf_table[0x60 / 4])(-5, 2));             /* -1.25 */
    put64((uint64_t)((f2l_fn)sf_table[0x6c / 4])(fmhalf));     /* float2int64: -1 */
    put64((uint64_t)((f2lfix_fn)sf_table[0x70 / 4])(f15, 40)); /* 1.5 * 2**40 */
    put64(((f2ul_fn)sf_table[0x74 / 4])(f1e19));
    f64 d01 = {.d = ((f2d_fn)sf_table[0x7c / 4])(f01)};
    put64(d01.u);
    put((uint32_t)((cmp_fn)sf_table[0x10 / 4])(f15, f175));    /* -1 */

    volatile double dm1e10 = -1e10, d075 = 0.75, dm1 = -1.0, d25 = 2.5, dm25 = -2.5, d1e19 = 1e19;
    put((uint32_t)((d2i_fn)sd_table[0x1c / 4])(dm1e10));       /* double2int saturates */
    put((uint32_t)((d2fix_fn)sd_table[0x20 / 4])(d075, 2));    /* 3 */
    put(((d2u_fn)sd_table[0x24 / 4])(dm1));                     /* 0 */
    put(((d2ufix_fn)sd_table[0x28 / 4])(d25, 1));               /* 5 */
    put_d(((i2d_fn)sd_table[0x2c / 4])(-7));
    put_d(((fix2d_fn)sd_table[0x30 / 4])(5, 3));                /* 0.625 */
    put_d(((lfix2d_fn)sd_table[0x60 / 4])((int64_t)1 << 60, 60)); /* 1.0 */
    put_d(((ul2d_fn)sd_table[0x64 / 4])(UINT64_MAX));           /* 2**64 */
    put64((uint64_t)((d2lfix_fn)sd_table[0x70 / 4])(dm25, 1));  /* -5 */
    put64(((d2ul_fn)sd_table[0x74 / 4])(d1e19));
    put((uint32_t)((dcmp_fn)sd_table[0x10 / 4])(d25, d075));    /* 1 */

    /* The flag-returning compares (as __aeabi_cfcmple): Z equal, C greater or equal. */
    f32 one = {.f = 1.0f}, two = {.f = 2.0f};
    put(flags_of(sf_table[0x14 / 4], one.u, two.u, 0x33, 0x44));
    put(flags_of(sf_table[0x14 / 4], two.u, two.u, 0x33, 0x44));
    put(flags_of(sf_table[0x14 / 4], two.u, one.u, 0x33, 0x44));
    f64 dtwo_ = {.d = 2.0}, done_ = {.d = 1.0};
    put(flags_of(sd_table[0x14 / 4], (uint32_t)done_.u, (uint32_t)(done_.u >> 32),
                 (uint32_t)dtwo_.u, (uint32_t)(dtwo_.u >> 32)));

    /* dsincos: the sine in r0:r1, the cosine in r2:r3. */
    f64 half = {.d = 0.5};
    register uint32_t r0 __asm__("r0") = (uint32_t)half.u;
    register uint32_t r1 __asm__("r1") = (uint32_t)(half.u >> 32);
    register uint32_t r2 __asm__("r2");
    register uint32_t r3 __asm__("r3");
    __asm__ volatile("blx %[fn]"
                     : "+r"(r0), "+r"(r1), "=r"(r2), "=r"(r3)
                     : [fn] "l"(sd_table[0x48 / 4])
                     : "r12", "lr", "cc", "memory");
    /* Copied before any call: a call may reuse r0-r3. */
    uint32_t sincos[4] = {r0, r1, r2, r3};
    for (unsigned i = 0; i < 4; i++) put(sincos[i]);
}

static void checks(void) {
    const volatile uint8_t *header = rom_at(0x10);
    put(header[0] | (header[1] << 8) | (header[2] << 16) | ((uint32_t)header[3] << 24));

    uint32_t (*popcount)(uint32_t) = func_lookup(CODE('P', '3'));
    uint32_t (*reverse)(uint32_t) = func_lookup(CODE('R', '3'));
    uint32_t (*clz)(uint32_t) = func_lookup(CODE('L', '3'));
    uint32_t (*ctz)(uint32_t) = func_lookup(CODE('T', '3'));
    put(popcount(0xF0F01234u));
    put(reverse(0x12345678u));
    put(clz(1u << 20));
    put(clz(0));
    put(ctz(0x80u));

    static uint8_t buf[40];
    static uint32_t words[8];
    static const uint32_t pattern[8] = {1, 2, 3, 4, 5, 6, 7, 0xdeadbeefu};
    uint8_t *(*rom_memset)(uint8_t *, uint8_t, uint32_t) = func_lookup(CODE('M', 'S'));
    uint32_t *(*rom_memset4)(uint32_t *, uint8_t, uint32_t) = func_lookup(CODE('S', '4'));
    uint8_t *(*rom_memcpy)(uint8_t *, const uint8_t *, uint32_t) = func_lookup(CODE('M', 'C'));
    uint32_t *(*rom_memcpy44)(uint32_t *, const uint32_t *, uint32_t) = func_lookup(CODE('C', '4'));
    put(rom_memset(buf + 1, 0xA5, 7) == buf + 1);
    put(buf[0] | (buf[1] << 8) | (buf[7] << 16) | ((uint32_t)buf[8] << 24));
    rom_memset4(words, 0x3C, 8);
    put(words[0]);
    put(words[1]);
    put(words[2]);
    rom_memcpy(buf + 3, (const uint8_t *)"simcore", 7);
    put(buf[3] | (buf[4] << 8) | (buf[9] << 16) | ((uint32_t)buf[10] << 24));
    rom_memcpy44(words, pattern, sizeof pattern);
    put(words[7]);

    /* As __aeabi_float_init / __aeabi_double_init: version check, size byte, copy. */
    uint8_t version = rom_at(0x13)[0];
    const uint8_t *sf = data_lookup(CODE('S', 'F'));
    const uint8_t *sd = data_lookup(CODE('S', 'D'));
    put(version);
    put(rom_at((uintptr_t)sf - 2)[0]);
    memcpy(sf_table, sf, sizeof sf_table);
    memcpy(sd_table, sd, sizeof sd_table);

    volatile float a = 1.1f, b = 3.3f, neg = -2.5f, two = 2.0f;
    put_f(((ff2_fn)sf_table[0x00 / 4])(a, b));
    put_f(((ff2_fn)sf_table[0x04 / 4])(a, b));
    put_f(((ff2_fn)sf_table[0x08 / 4])(a, b));
    put_f(((ff2_fn)sf_table[0x0c / 4])(a, b));
    put_f(((ff1_fn)sf_table[0x18 / 4])(two));
    put((uint32_t)((fi_fn)sf_table[0x1c / 4])(neg)); /* float2int: rounds down */
    put_f(((fix2f_fn)sf_table[0x30 / 4])(-3, 2));       /* fix2float(-3, 2) */
    uint64_t sc = ((fsin_fn)sf_table[0x40 / 4])(a);     /* sine in r0, cosine in r1 */
    put((uint32_t)sc);
    put((uint32_t)(sc >> 32));
    put_f(((ff1_fn)sf_table[0x4c / 4])(a));             /* exp */

    volatile double x = 1.1, y = 3.3, dtwo = 2.0, dneg = -7.25;
    put_d(((dd2_fn)sd_table[0x00 / 4])(x, y));
    put_d(((dd2_fn)sd_table[0x08 / 4])(x, y));
    put_d(((dd2_fn)sd_table[0x0c / 4])(x, y));
    put_d(((dd1_fn)sd_table[0x18 / 4])(dtwo));
    int64_t i64 = ((di64_fn)sd_table[0x6c / 4])(dneg);  /* double2int64: rounds down */
    put((uint32_t)i64);
    put((uint32_t)((uint64_t)i64 >> 32));
    put_f(((df_fn)sd_table[0x7c / 4])(x));              /* double2float */

    put((uint32_t)(uintptr_t)func_lookup(CODE('X', 'Y'))); /* not in the ROM: NULL */
    conversions();
}

static void ending(int which) {
    if (which == 1) {
        void (*reset_usb_boot)(uint32_t, uint32_t) = func_lookup(CODE('U', 'B'));
        reset_usb_boot(0, 0);
    } else if (which == 2) {
        void (*missing)(void) = func_lookup(CODE('Q', 'Q'));
        missing();
    }
}
#endif

#ifdef RP2350
#define RT_FLAG_FUNC_ARM_SEC 0x0004u
#define RT_FLAG_FUNC_ARM_NONSEC 0x0010u
#define RT_FLAG_DATA 0x0040u
typedef void *(*table_lookup_fn)(uint32_t code, uint32_t mask);

static void *lookup(uint32_t code, uint32_t mask) {
    table_lookup_fn f = (table_lookup_fn)rom_hword(0x16);
    return f(code, mask);
}

static void checks(void) {
    const volatile uint8_t *header = rom_at(0x10);
    put(header[0] | (header[1] << 8) | (header[2] << 16) | ((uint32_t)header[3] << 24));

    /* runtime_init_bootrom_reset */
    void (*state_reset)(uint32_t) = lookup(CODE('S', 'R'), RT_FLAG_FUNC_ARM_SEC);
    state_reset(0x4);
    put(state_reset != 0);
    /* hardware_flash's boot-time calls */
    void (*connect)(void) = lookup(CODE('I', 'F'), RT_FLAG_FUNC_ARM_SEC);
    void (*exit_xip)(void) = lookup(CODE('E', 'X'), RT_FLAG_FUNC_ARM_SEC);
    void (*flush)(void) = lookup(CODE('F', 'C'), RT_FLAG_FUNC_ARM_SEC);
    void (*enter)(void) = lookup(CODE('C', 'X'), RT_FLAG_FUNC_ARM_SEC);
    connect();
    exit_xip();
    flush();
    enter();
    /* rom_get_boot_random */
    int (*sys_info)(uint32_t *, uint32_t, uint32_t) = lookup(CODE('G', 'S'), RT_FLAG_FUNC_ARM_SEC);
    uint32_t info[5];
    put((uint32_t)sys_info(info, 5, 0x10));
    put(info[0]);
    put(info[1]);
    put((uint32_t)sys_info(info, 2, 0x10)); /* too small: BOOTROM_ERROR_BUFFER_TOO_SMALL */
    const uint32_t *revision = lookup(CODE('G', 'R'), RT_FLAG_DATA);
    put(*revision);
    put((uint32_t)(uintptr_t)lookup(CODE('G', 'R'), RT_FLAG_FUNC_ARM_SEC)); /* data only */
    put((uint32_t)(uintptr_t)lookup(CODE('S', 'R'), RT_FLAG_FUNC_ARM_NONSEC)); /* secure only */
}

static void ending(int which) {
    if (which == 1) {
        int (*reboot)(uint32_t, uint32_t, uint32_t, uint32_t) = lookup(CODE('R', 'B'), RT_FLAG_FUNC_ARM_SEC);
        reboot(0x2, 10, 0, 0);
    } else if (which == 2) {
        void (*missing)(void) = lookup(CODE('Q', 'Q'), RT_FLAG_FUNC_ARM_SEC);
        missing();
    }
}
#endif

#ifndef CASE
#define CASE 0
#endif

int main(void) {
    checks();
    out[N_OUT - 1] = n_out; /* how many words the checks wrote */
    memcpy(simcore_io.output, out, sizeof out);
    ending(CASE);
    return 0;
}
