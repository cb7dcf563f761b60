/*
 * simcore's own RP2350 bootrom: rom_table_lookup and the functions pico-sdk's
 * runtime looks up on Arm (RP2350 datasheet 5.4 "Bootrom APIs"; codes and flags:
 * pico-sdk bootrom_constants.h). Layout and table: rp2350_rom.S.
 *
 * Only the Secure Arm variants are listed (RT_FLAG_FUNC_ARM_SEC); a Non-secure
 * lookup finds nothing, and the run notes the code.
 */
#include <stdint.h>

#include "rom_common.h"

#define RT_FLAG_DATA 0x0040u

#define BOOTROM_ERROR_INVALID_ARG (-5)
#define BOOTROM_ERROR_BUFFER_TOO_SMALL (-13)

/* One entry of the table: a code, the flags of the variant, a 16-bit pointer
   (with the Thumb bit for functions). The table ends with a code of 0. */
struct rom_entry {
    uint16_t code;
    uint16_t flags;
    uint16_t pointer;
};

extern const struct rom_entry rom_entries[];

void *rom_table_lookup(uint32_t code, uint32_t mask) {
    for (const struct rom_entry *e = rom_entries; e->code != 0; e++) {
        if (e->code == code && (e->flags & mask) != 0) return (void *)(uintptr_t)e->pointer;
    }
    simcore_rom_missing(code);
    return 0;
}

/* runtime_init_bootrom_reset: the ROM keeps no state in simcore. */
void rom_bootrom_state_reset(uint32_t flags) { (void)flags; __asm__ volatile("" ::: "memory"); }
void rom_flash_reset_address_trans(void) { __asm__ volatile("" ::: "memory"); }
void rom_flash_select_xip_read_mode(uint32_t mode, uint8_t clkdiv) {
    (void)mode; (void)clkdiv;
    __asm__ volatile("" ::: "memory");
}

/*
 * get_sys_info: out[0] the flags answered, then per flag (lowest first) its words:
 * CHIP_INFO 3 (package select, device id, wafer id: zeros), CRITICAL 1 (0),
 * CPU_INFO 1 (0: Arm), FLASH_DEV_INFO 1 (0), BOOT_RANDOM 4 (a fixed, documented
 * value: runs are deterministic), NONCE 2 (fixed), BOOT_INFO 4 (zeros).
 * Returns the words written, or BOOTROM_ERROR_BUFFER_TOO_SMALL.
 */
int rom_get_sys_info(uint32_t *out, uint32_t out_words, uint32_t flags) {
    static const uint8_t words_of[7] = {3, 1, 1, 1, 4, 2, 4};
    static const uint32_t random[4] = {0x53494d43u, 0x4f524520u, 0x524f4d20u, 0x52414e44u};
    uint32_t known = flags & 0x7fu;
    uint32_t n = 1;
    for (uint32_t bit = 0; bit < 7; bit++) {
        if (known & (1u << bit)) n += words_of[bit];
    }
    if (out_words < n) return BOOTROM_ERROR_BUFFER_TOO_SMALL;
    uint32_t i = 0;
    out[i++] = known;
    for (uint32_t bit = 0; bit < 7; bit++) {
        if (!(known & (1u << bit))) continue;
        for (uint32_t w = 0; w < words_of[bit]; w++) {
            uint32_t value = 0;
            if (bit == 4) value = random[w];
            else if (bit == 5) value = random[3 - w];
            out[i++] = value;
        }
    }
    return (int)i;
}

int rom_reboot(uint32_t flags, uint32_t delay_ms, uint32_t p0, uint32_t p1) {
    (void)flags; (void)delay_ms; (void)p0; (void)p1;
    simcore_rom_unsupported(ROM_CODE('R', 'B'));
    return BOOTROM_ERROR_INVALID_ARG;
}

int rom_flash_op(uint32_t flags, uintptr_t addr, uint32_t size, uint8_t *buf) {
    (void)flags; (void)addr; (void)size; (void)buf;
    simcore_rom_unsupported(ROM_CODE('F', 'O'));
    return BOOTROM_ERROR_INVALID_ARG;
}

int rom_otp_access(uint8_t *buf, uint32_t len, uint32_t cmd) {
    (void)buf; (void)len; (void)cmd;
    simcore_rom_unsupported(ROM_CODE('O', 'A'));
    return BOOTROM_ERROR_INVALID_ARG;
}



