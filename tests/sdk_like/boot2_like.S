/* A boot2-like first stage for the RP2040, as pico-sdk's boot2_w25q080.S works:
 * entered by the bootrom with LR = 0, it programs the XIP SSI, polls its status
 * register, reads the flash status through DR0, then points VTOR at the vector
 * table after it (0x10000100), loads SP and jumps to the reset handler.
 * Position independent (the real one runs from an SRAM copy). The build appends
 * the CRC-32 word the bootrom checks. Register offsets: RP2040 datasheet 4.10.13.
 */
    .syntax unified
    .cpu cortex-m0plus
    .thumb
    .section .text
    .global _stage2_boot
    .thumb_func
_stage2_boot:
    push {lr}
    ldr r3, =0x18000000        /* XIP_SSI */
    movs r1, #0
    str r1, [r3, #0x08]        /* SSIENR = 0 */
    movs r1, #2
    str r1, [r3, #0x14]        /* BAUDR = 2 */
    ldr r1, =0x001f0300        /* CTRLR0: 32 clocks per frame, EEPROM read */
    str r1, [r3, #0x00]
    movs r1, #1
    str r1, [r3, #0x08]        /* SSIENR = 1 */
    movs r0, #0x35             /* read status register 2 */
    str r0, [r3, #0x60]
    str r0, [r3, #0x60]
1:  ldr r1, [r3, #0x28]        /* SR: wait for TFE and not BUSY */
    movs r2, #4
    tst r1, r2
    beq 1b
    movs r2, #1
    tst r1, r2
    bne 1b
    ldr r0, [r3, #0x60]
    ldr r0, [r3, #0x60]        /* the status byte */
    pop {r0}
    cmp r0, #0
    beq vector_into_flash
    bx r0
vector_into_flash:
    ldr r0, =0x10000100
    ldr r1, =0xe000ed08        /* VTOR */
    str r0, [r1]
    ldmia r0, {r0, r1}
    msr msp, r0
    bx r1
    .ltorg
