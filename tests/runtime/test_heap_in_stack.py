"""A vendor linker script's heap-and-stack block: the heap grows up into the region
simcore paints for the stack (CubeMX's ``._user_heap_stack`` only reserves a minimum
heap, and its ``_sbrk`` grows from ``end`` towards the stack).

The stack peak must be measured above the heap's highest break, not counted from the
bottom of the block: the heap's bytes are not stack use (a HAL program reported a
100% full stack before).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sim_support import HAVE_TOOLCHAIN

from simcore.boards import get_board
from simcore.engine import run_firmware
from simcore.results import StopReason

SOURCE = r"""
#include <stdlib.h>
extern char end;
static char *brk;
void *_sbrk(int incr) {           /* CubeMX's syscalls.c: the heap starts at `end` */
    if (!brk) brk = &end;
    char *prev = brk;
    brk += incr;
    return prev;
}
int main(void) {
    volatile char *p = malloc(3000);  /* volatile: the writes must happen */
    if (!p) return 1;
    for (int i = 0; i < 3000; i++) p[i] = 0x5a;
    int r = p[2999] == 0x5a ? 7 : 2;
    free((void *)p);
    return r;
}
__attribute__((naked, noreturn)) void Reset_Handler(void) {
    __asm volatile("bl main\n b .");
}
__attribute__((section(".isr_vector"), used)) static const void *vectors[2] = {
    (void *)0x20020000, (void *)Reset_Handler};  /* Thumb: bit 0 set */
"""

# .data and .bss are linked where they run (no copy), then a 512-byte minimum heap
# reservation as CubeMX writes it; the 3000-byte malloc grows past it into the
# space simcore paints for the stack, up to the top of the DTCM.
LINKER = """
ENTRY(Reset_Handler)
MEMORY { FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 128K
         DTCM (rwx) : ORIGIN = 0x20000000, LENGTH = 128K }
SECTIONS {
  .isr_vector : { KEEP(*(.isr_vector)) } > FLASH
  .text : { *(.text*) *(.rodata*) } > FLASH
  .data : { *(.data*) } > DTCM
  .bss : { *(.bss*) *(COMMON) . = ALIGN(8); } > DTCM
  ._user_heap_stack : { PROVIDE(end = .); PROVIDE(_end = .); . = . + 0x200; } > DTCM
}
"""


def test_heap_below_the_stack_is_not_counted_as_stack(tmp_path: Path) -> None:
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    board = get_board("stm32h743")
    (tmp_path / "heap.c").write_text(SOURCE)
    (tmp_path / "heap.ld").write_text(LINKER)
    elf = tmp_path / "heap.elf"
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            *board.core.compiler_flags,
            "-mthumb",
            "-O1",
            "--specs=nano.specs",
            "-nostartfiles",
            "-T",
            str(tmp_path / "heap.ld"),
            str(tmp_path / "heap.c"),
            "-o",
            str(elf),
        ],
        check=True,
    )
    result = run_firmware(elf, "stm32h743")
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 7)
    memory = result.memory
    assert memory is not None
    assert memory.heap_peak.used_bytes >= 3000
    # main and malloc need a few hundred bytes of stack, far from the whole block.
    assert 0 < memory.stack_peak.used_bytes < 1024
    assert not memory.stack_overflowed_paint
    assert not any("whole painted stack region" in note for note in result.notes)
