/*
 * Firmware that uses the bootrom exactly as pico-sdk does (pico/bootrom.h,
 * float_init_rom_rp2040.c, double_init_rom_rp2040.c, runtime_init.c): 16-bit
 * pointers read from the fixed addresses, functions found by two-character code,
 * the soft-float tables copied from the ROM's data table. Written for simcore's
 * tests; results go to the output buffer, word by word, and the test compares them
 * with Python's own arithmetic.
 *
 * Build with -DRP2040 or -DRP2350; -DCASE=n picks an ending (0: all checks).
 */
#include <stdint.h>
#include <string.h>

#include "simcore_abi.h"

#define N_OUT 64
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
    memcpy(simcore_io.output, out, sizeof out);
    ending(CASE);
    return (int)n_out;
}
