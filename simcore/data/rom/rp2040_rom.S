/*
 * simcore's own RP2040 bootrom: the header at the fixed addresses pico-sdk reads,
 * the function and data tables, and the routines whose register conventions C
 * cannot express. Facts used (not code): RP2040 datasheet 2.8.3 "Bootrom
 * contents" (0x10 magic 'M','u',1 and version, 0x14 function table, 0x16 data
 * table, 0x18 rom_table_lookup, all 16-bit pointers; tables of (code, pointer)
 * halfword pairs ended by 0), pico-sdk's bootrom_constants.h (codes) and sf_table.h
 * (soft-float table offsets; the byte before the table's pointer - 2 holds its
 * size in words). Version 3 (RP2040-B2): the version pico-sdk uses the whole
 * V3 tables of, with no checks of ROM internals.
 */
    .syntax unified
    .cpu cortex-m0plus
    .thumb

/* A 16-bit pointer to a Thumb function: the linker does not set bit 0 in a 16-bit
   relocation, so it is added here (checked by simcore's ROM tests). */
.macro fptr16 sym
    .hword \sym + 1
.endm
.macro func code1, code2, sym
    .hword (\code1) | ((\code2) << 8)
    fptr16 \sym
.endm
.macro data code1, code2, sym
    .hword (\code1) | ((\code2) << 8)
    .hword \sym
.endm

    .section .rom_header, "a"
    .word 0x20042000            /* initial SP: the top of SRAM */
    .word rom_reset_handler     /* reset, NMI, HardFault */
    .word rom_reset_handler
    .word rom_reset_handler
    .byte 'M', 'u', 1           /* 0x10: magic */
    .byte 3                     /* 0x13: ROM version (RP2040-B2) */
    .hword rom_func_table       /* 0x14 */
    .hword rom_data_table       /* 0x16 */
    fptr16 rom_table_lookup     /* 0x18 */
    .hword 0                    /* 0x1a: no helper here */

    .section .rodata.rom_tables, "a"
    .balign 2
rom_func_table:
    func 'P', '3', rom_popcount32
    func 'R', '3', rom_reverse32
    func 'L', '3', rom_clz32
    func 'T', '3', rom_ctz32
    func 'M', 'S', rom_memset
    func 'S', '4', rom_memset4
    func 'M', 'C', rom_memcpy
    func 'C', '4', rom_memcpy44
    func 'I', 'F', rom_connect_internal_flash
    func 'E', 'X', rom_flash_exit_xip
    func 'F', 'C', rom_flash_flush_cache
    func 'C', 'X', rom_flash_enter_cmd_xip
    func 'R', 'E', rom_flash_range_erase
    func 'R', 'P', rom_flash_range_program
    func 'U', 'B', rom_reset_usb_boot
    .hword 0, 0

rom_data_table:
    data 'C', 'R', rom_copyright
    data 'G', 'R', rom_git_revision
    data 'S', 'F', rom_sf_table
    data 'S', 'D', rom_sd_table
    .hword 0, 0

    .balign 4
rom_git_revision:
    .word 0x53494d43            /* "SIMC": not a git revision of the real ROM */
rom_copyright:
    .asciz "simcore RP2040 ROM (written for simcore; no vendor code)"

/* Each table: a halfword holding its size in words just before it (pico-sdk reads
   the byte at table - 2). 32 entries: the V2/V3 table size (SF_TABLE_V2_SIZE). */
.macro fn_table name, prefix
    .balign 4
    .hword 0
    .hword 32
\name:
    .word \prefix\()add, \prefix\()sub, \prefix\()mul, \prefix\()div         /* 0x00 */
    .word \prefix\()cmp, \prefix\()cmp_flags, \prefix\()sqrt                 /* 0x10 */
.endm

    fn_table rom_sf_table, rom_f
    .word rom_float2int, rom_float2fix, rom_float2uint, rom_float2ufix       /* 0x1c */
    .word rom_int2float, rom_fix2float, rom_uint2float, rom_ufix2float       /* 0x2c */
    .word rom_fcos, rom_fsin, rom_ftan, rom_fsin                             /* 0x3c; 0x48 sincos */
    .word rom_fexp, rom_fln, rom_fcmp, rom_fatan2                            /* 0x4c */
    .word rom_int642float, rom_fix642float, rom_uint642float, rom_ufix642float /* 0x5c */
    .word rom_float2int64, rom_float2fix64, rom_float2uint64, rom_float2ufix64 /* 0x6c */
    .word rom_float2double                                                   /* 0x7c */

    fn_table rom_sd_table, rom_d
    .word rom_double2int, rom_double2fix, rom_double2uint, rom_double2ufix   /* 0x1c */
    .word rom_int2double, rom_fix2double, rom_uint2double, rom_ufix2double   /* 0x2c */
    .word rom_dcos, rom_dsin, rom_dtan, rom_dsincos                          /* 0x3c; 0x48 sincos */
    .word rom_dexp, rom_dln, rom_dcmp, rom_datan2                            /* 0x4c */
    .word rom_int642double, rom_fix642double, rom_uint642double, rom_ufix642double
    .word rom_double2int64, rom_double2fix64, rom_double2uint64, rom_double2ufix64
    .word rom_double2float                                                   /* 0x7c */

    .text
    .balign 2

/* simcore starts firmware from its own vector table: the ROM's reset handler never
   runs there. Parked, should a program jump to it. */
    .thumb_func
    .global rom_reset_handler
    .type rom_reset_handler, %function
rom_reset_handler:
    b rom_reset_handler
    .size rom_reset_handler, . - rom_reset_handler

/* fcmp and dcmp with the result in the flags, registers kept (as pico-sdk's
   __aeabi_cfcmple): Z for equal, C for greater or equal (and unordered). */
    .thumb_func
    .global rom_fcmp_flags
    .type rom_fcmp_flags, %function
rom_fcmp_flags:
    push {r0-r3, lr}
    bl rom_fcmp
    b cmp_to_flags
    .size rom_fcmp_flags, . - rom_fcmp_flags

    .thumb_func
    .global rom_dcmp_flags
    .type rom_dcmp_flags, %function
rom_dcmp_flags:
    push {r0-r3, lr}
    bl rom_dcmp
cmp_to_flags:
    adds r0, #1                 /* -1, 0, 1 -> 0, 1, 2 */
    cmp r0, #1
    pop {r0-r3, pc}
    .size rom_dcmp_flags, . - rom_dcmp_flags

/* dsincos: the sine in r0:r1 and the cosine in r2:r3. */
    .thumb_func
    .global rom_dsincos
    .type rom_dsincos, %function
rom_dsincos:
    push {r4, lr}
    sub sp, #16
    mov r2, sp
    bl rom_dsincos_to
    pop {r0-r3}
    pop {r4, pc}
    .size rom_dsincos, . - rom_dsincos
