/*
 * simcore's own bootrom: the parts the RP2040 and RP2350 images share.
 * The hooks are empty, never inlined and never merged, so each has an address of
 * its own that simcore can watch.
 */
#include "rom_common.h"

#define HOOK __attribute__((noinline, used))

HOOK void simcore_rom_missing(uint32_t code) {
    __asm__ volatile("" : : "r"(code) : "memory");
}

HOOK void simcore_rom_unsupported(uint32_t code) {
    /* simcore stops the run at the hook; without it, park here. */
    __asm__ volatile("" : : "r"(code) : "memory");
    for (;;) {
        __asm__ volatile("nop");
    }
}

uint32_t rom_popcount32(uint32_t x) {
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (x * 0x01010101u) >> 24;
}

uint32_t rom_reverse32(uint32_t x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}

uint32_t rom_clz32(uint32_t x) {
    /* 32 for 0, as pico-sdk's __clzsi2 wrapper expects of the ROM. */
    uint32_t n = 0;
    if (x == 0) return 32;
    if (!(x & 0xffff0000u)) { n += 16; x <<= 16; }
    if (!(x & 0xff000000u)) { n += 8; x <<= 8; }
    if (!(x & 0xf0000000u)) { n += 4; x <<= 4; }
    if (!(x & 0xc0000000u)) { n += 2; x <<= 2; }
    if (!(x & 0x80000000u)) { n += 1; }
    return n;
}

uint32_t rom_ctz32(uint32_t x) {
    if (x == 0) return 32;
    return 31 - rom_clz32(x & (0u - x));
}

/* Distinct bodies so the profile names each one (-fno-ipa-icf keeps them apart). */
void rom_connect_internal_flash(void) { __asm__ volatile("" ::: "memory"); }
void rom_flash_exit_xip(void) { __asm__ volatile("" ::: "memory"); }
void rom_flash_flush_cache(void) { __asm__ volatile("" ::: "memory"); }
void rom_flash_enter_cmd_xip(void) { __asm__ volatile("" ::: "memory"); }

void rom_flash_range_erase(uint32_t offset, uint32_t count, uint32_t block_size, uint8_t cmd) {
    (void)offset; (void)count; (void)block_size; (void)cmd;
    simcore_rom_unsupported(ROM_CODE('R', 'E'));
}

void rom_flash_range_program(uint32_t offset, const uint8_t *data, uint32_t count) {
    (void)offset; (void)data; (void)count;
    simcore_rom_unsupported(ROM_CODE('R', 'P'));
}
