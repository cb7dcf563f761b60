/*
 * simcore's own RP2350 bootrom: the header at the fixed addresses pico-sdk reads
 * and the lookup table. Facts used (not code): RP2350 datasheet 5.4 (0x10 magic
 * 'M','u',2 and the ROM version byte; 0x14 a 16-bit pointer to the function table,
 * 0x16 a 16-bit pointer to rom_table_lookup(code, mask)), pico-sdk
 * bootrom_constants.h (codes; RT_FLAG_FUNC_ARM_SEC 0x4, RT_FLAG_DATA 0x40).
 * The table's own format is simcore's: (code, flags, pointer) halfwords.
 */
    .syntax unified
    .cpu cortex-m33
    .thumb

.macro fptr16 sym
    .hword \sym + 1             /* 16-bit relocations do not set the Thumb bit */
.endm
.macro func code1, code2, sym
    .hword (\code1) | ((\code2) << 8), 0x0004   /* RT_FLAG_FUNC_ARM_SEC */
    fptr16 \sym
.endm
.macro data code1, code2, sym
    .hword (\code1) | ((\code2) << 8), 0x0040   /* RT_FLAG_DATA */
    .hword \sym
.endm

    .section .rom_header, "a"
    .word 0x20082000            /* initial SP: the top of SRAM */
    .word rom_reset_handler     /* reset, NMI, HardFault */
    .word rom_reset_handler
    .word rom_reset_handler
    .byte 'M', 'u', 2           /* 0x10: magic */
    .byte 2                     /* 0x13: ROM version (RP2350 A2) */
    .hword rom_entries          /* 0x14: the table */
    fptr16 rom_table_lookup     /* 0x16 */
    .word 0                     /* 0x18: unused here */

    .section .rodata.rom_tables, "a"
    .balign 2
    .global rom_entries
rom_entries:
    func 'S', 'R', rom_bootrom_state_reset
    func 'I', 'F', rom_connect_internal_flash
    func 'E', 'X', rom_flash_exit_xip
    func 'F', 'C', rom_flash_flush_cache
    func 'C', 'X', rom_flash_enter_cmd_xip
    func 'R', 'A', rom_flash_reset_address_trans
    func 'X', 'M', rom_flash_select_xip_read_mode
    func 'R', 'E', rom_flash_range_erase
    func 'R', 'P', rom_flash_range_program
    func 'G', 'S', rom_get_sys_info
    func 'R', 'B', rom_reboot
    func 'F', 'O', rom_flash_op
    func 'O', 'A', rom_otp_access
    data 'G', 'R', rom_git_revision
    data 'C', 'R', rom_copyright
    .hword 0, 0, 0

    .balign 4
rom_git_revision:
    .word 0x53494d43            /* "SIMC": not a git revision of the real ROM */
rom_copyright:
    .asciz "simcore RP2350 ROM (written for simcore; no vendor code)"

    .text
    .balign 2
/* simcore starts firmware from its own vector table: parked, should a program
   jump to the ROM's reset handler. */
    .thumb_func
    .global rom_reset_handler
    .type rom_reset_handler, %function
rom_reset_handler:
    b rom_reset_handler
    .size rom_reset_handler, . - rom_reset_handler
