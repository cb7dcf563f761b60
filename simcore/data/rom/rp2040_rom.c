/*
 * simcore's own RP2040 bootrom: the table lookup and the memory functions pico-sdk
 * uses (RP2040 datasheet 2.8.3; pico-sdk pico_bootrom, pico_mem_ops). Layout and
 * tables: rp2040_rom.S; the soft-float/soft-double functions: rp2040_float.c.
 */
#include <stdint.h>

#include "rom_common.h"

/* ---- table lookup (RP2040 datasheet 2.8.3.1) ----------------------------- */

/* The tables are pairs of halfwords (code, value) ended by a code of 0. */
void *rom_table_lookup(const uint16_t *table, uint32_t code) {
    for (; table[0] != 0; table += 2) {
        if (table[0] == code) return (void *)(uintptr_t)table[1];
    }
    simcore_rom_missing(code);
    return 0;
}

/* ---- memory (pico_mem_ops: memset, memset4, memcpy, memcpy44) -------------
   Word at a time where both pointers allow it. -fno-builtin and
   -fno-tree-loop-distribute-patterns keep gcc from turning the loops back into
   memset/memcpy calls (there is no C library in the ROM). */

uint8_t *rom_memset(uint8_t *ptr, uint8_t c, uint32_t n) {
    uint8_t *p = ptr;
    for (; n && ((uintptr_t)p & 3); n--) *p++ = c;
    uint32_t word = c * 0x01010101u;
    for (; n >= 4; n -= 4, p += 4) *(uint32_t *)p = word;
    while (n--) *p++ = c;
    return ptr;
}

/* ptr word aligned; n bytes (a multiple of 4 for the SDK). */
uint32_t *rom_memset4(uint32_t *ptr, uint8_t c, uint32_t n) {
    rom_memset((uint8_t *)ptr, c, n);
    return ptr;
}

uint8_t *rom_memcpy(uint8_t *dest, const uint8_t *src, uint32_t n) {
    uint8_t *d = dest;
    if ((((uintptr_t)d ^ (uintptr_t)src) & 3) == 0) {
        for (; n && ((uintptr_t)d & 3); n--) *d++ = *src++;
        for (; n >= 4; n -= 4, d += 4, src += 4) *(uint32_t *)d = *(const uint32_t *)src;
    }
    while (n--) *d++ = *src++;
    return dest;
}

/* dest and src word aligned; n bytes. */
uint32_t *rom_memcpy44(uint32_t *dest, const uint32_t *src, uint32_t n) {
    rom_memcpy((uint8_t *)dest, (const uint8_t *)src, n);
    return dest;
}

/* ---- reset to BOOTSEL: ends the run --------------------------------------- */

void rom_reset_usb_boot(uint32_t gpio_mask, uint32_t disable_mask) {
    (void)gpio_mask; (void)disable_mask;
    simcore_rom_unsupported(ROM_CODE('U', 'B'));
}

/* The soft-float and soft-double functions: rp2040_float.c. */
