"""The engine's virtual TLB (simcore_plain_tlb_fill_hook / simcore_tlb_fill_hook): data
pages get entries without execute so that stores take unicorn's inline fast path, and the
memory hooks cover only the unmapped gaps and the read-only regions. What must still hold:
code written to RAM runs as written, however the page was used before, and stores to flash
and accesses to unmapped addresses still fault."""

from __future__ import annotations

import pytest
from sim_support import BOARD_NAMES, AsmBuilder

from simcore.engine import _gaps, run_firmware
from simcore.errors import MemoryFault

#: Calls a function in RAM, rewrites its first instruction (movs r0, #1 -> #2) with a
#: store to the same page that other stores made dirty first, calls it again; the exit
#: code is 16 * first + second.
_PATCH_AND_CALL = """
    ldr r5, =ramfunc
    subs r4, r5, #1
    ldr r1, =scratch
    movs r2, #7
    str r2, [r1]
    str r2, [r1, #4]
    blx r5
    mov r6, r0
    ldr r1, =0x2002
    strh r1, [r4]
    dsb
    isb
    blx r5
    lsls r6, r6, #4
    adds r0, r0, r6
"""
_RAM_FUNCTION = """
scratch:
    .word 0, 0
    .section .data.ramfunc, "awx"
    .align 2
    .thumb_func
ramfunc:
    movs r0, #1
    bx lr
"""


@pytest.mark.parametrize("board", BOARD_NAMES)
@pytest.mark.parametrize("cycles", [True, False], ids=["accounted", "raw"])
def test_code_rewritten_in_ram_runs_as_rewritten(
    asm_elf: AsmBuilder, board: str, cycles: bool
) -> None:
    elf = asm_elf(board, _PATCH_AND_CALL, data=_RAM_FUNCTION)
    result = run_firmware(elf, board, cycles=cycles, profile_limit=None)
    assert result.exit_code == 0x12


@pytest.mark.parametrize("board", ["rp2040", "rp2350", "stm32h743"])
def test_store_to_flash_still_faults(asm_elf: AsmBuilder, board: str) -> None:
    elf = asm_elf(board, "ldr r1, =_start\nsubs r1, r1, #1\nmovs r0, #1\nstr r0, [r1]")
    with pytest.raises(MemoryFault, match=r"store of 4 byte\(s\) to .* is read-only to the core"):
        run_firmware(elf, board)


def test_gaps_are_the_unmapped_ranges() -> None:
    rwx = 7
    assert _gaps([], 0xFF) == [(0, 0xFF)]
    assert _gaps([(0, 0xF, rwx), (0x10, 0x1F, rwx)], 0xFF) == [(0x20, 0xFF)]
    assert _gaps([(0x10, 0x1F, rwx), (0x40, 0xFF, rwx)], 0xFF) == [(0, 0xF), (0x20, 0x3F)]
    # Regions above the core's address space (the accounting's aliases) are ignored.
    assert _gaps([(0x10, 0x1F, rwx), (0x1000, 0x1FFF, rwx)], 0xFF) == [(0, 0xF), (0x20, 0xFF)]
