/*
 * simcore's own bootrom: declarations shared by the RP2040 and RP2350 images.
 *
 * Written for simcore (no vendor code): the images put at the fixed addresses what
 * pico-sdk reads (RP2040 datasheet 2.8.3, RP2350 datasheet 5.4, pico-sdk
 * bootrom_constants.h), and implement the functions the SDK looks up there.
 * simcore builds them with arm-none-eabi-gcc on first use (simcore/rom.py).
 */
#ifndef SIMCORE_ROM_COMMON_H
#define SIMCORE_ROM_COMMON_H

#include <stdint.h>

/* ROM_TABLE_CODE of pico-sdk: two ASCII characters, the first in the low byte. */
#define ROM_CODE(c1, c2) ((uint32_t)(c1) | ((uint32_t)(c2) << 8))

/*
 * Hooks simcore watches by address (simcore/rom.py). They do nothing on their own:
 * - simcore_rom_missing(code): a lookup found no entry for code; the lookup then
 *   returns NULL, as the real ROM does, and simcore notes the code in the run.
 * - simcore_rom_unsupported(code): the end of the ROM functions simcore does not
 *   carry out (flash programming, reboot). simcore ends the run at their entry
 *   (simcore/rom.py UNSUPPORTED), naming the caller; without simcore they park here.
 */
void simcore_rom_missing(uint32_t code);
void simcore_rom_unsupported(uint32_t code);

/* Bit and memory helpers (both images use the bit ops for their own needs). */
uint32_t rom_popcount32(uint32_t x);
uint32_t rom_reverse32(uint32_t x);
uint32_t rom_clz32(uint32_t x);
uint32_t rom_ctz32(uint32_t x);

/* Flash helpers that firmware calls at boot: nothing to do in simcore. */
void rom_connect_internal_flash(void);
void rom_flash_exit_xip(void);
void rom_flash_flush_cache(void);
void rom_flash_enter_cmd_xip(void);
/* Flash programming: not carried out (simcore_rom_unsupported). */
void rom_flash_range_erase(uint32_t offset, uint32_t count, uint32_t block_size, uint8_t cmd);
void rom_flash_range_program(uint32_t offset, const uint8_t *data, uint32_t count);

#endif
