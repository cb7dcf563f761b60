"""Every fault class ends in a specific SimError that names the place, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_support import AsmBuilder, needs_toolchain

from simcore.boards import get_board
from simcore.cli import main
from simcore.engine import run_firmware
from simcore.errors import BudgetExhausted, MemoryFault, StackOverflow
from simcore.peripherals import SioBlock
from simcore.toolchain import build_elf


def test_unmapped_read(asm_elf: AsmBuilder) -> None:
    # 0x30000000: nothing on the RP2040 answers there (its peripheral spaces,
    # 0x40000000 and up, are mapped from the chip data and read back).
    elf = asm_elf("rp2040", "nop\nldr r1, =0x30000000\nldr r0, [r1, #8]")
    with pytest.raises(MemoryFault) as info:
        run_firmware(elf, "rp2040")
    err = info.value
    assert err.address == 0x30000008 and err.access == "read"
    msg = str(err)
    assert "unmapped read of 4 byte(s) at 0x30000008" in msg
    assert "'ldr r0, [r1, #8]' at 0x1000000c in _start+0x4 (rp2040.s:" in msg
    assert "sram 0x20000000-0x20042000" in msg  # says what memory exists


def test_unmapped_write(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("stm32h743", "ldr r1, =0x60000000\nmovs r0, #1\nstrb r0, [r1]")
    with pytest.raises(MemoryFault, match=r"unmapped write of 1 byte.* at 0x60000000") as info:
        run_firmware(elf, "stm32h743")
    assert info.value.access == "write"


def test_unmapped_fetch(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2350", "ldr r1, =0x50000001\nblx r1")
    with pytest.raises(
        MemoryFault, match=r"jump to unmapped address 0x50000000 \(LR 0x1000"
    ) as info:
        run_firmware(elf, "rp2350")
    assert info.value.access == "fetch"


def test_unaligned_word_load_faults_on_m0plus_only(asm_elf: AsmBuilder) -> None:
    body = "ldr r1, =0x20000001\nldr r0, [r1]"
    with pytest.raises(MemoryFault, match=r"unaligned.*Cortex-M0\+ faults unaligned"):
        run_firmware(asm_elf("rp2040", body), "rp2040")
    assert run_firmware(asm_elf("rp2350", body), "rp2350").stop_reason.value == "done"


def test_budget_exhausted_names_the_loop(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2040", "movs r0, #0\nspin:\nadds r0, #1\nb spin")
    with pytest.raises(BudgetExhausted) as info:
        run_firmware(elf, "rp2040", max_instructions=10_000)
    msg = str(info.value)
    assert msg.startswith("instruction budget of 10,000 exhausted at 0x1000000")
    assert "(rp2040.s:1" in msg and "spinning" in msg


def test_timeout(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2350", "spin:\nb spin")
    with pytest.raises(BudgetExhausted, match=r"timeout of 0\.2 s exhausted at 0x10000008"):
        run_firmware(elf, "rp2350", timeout_s=0.2)


RECURSE = r"""
#include "simcore_abi.h"
SIMCORE_DEFINE_IO(4, 4, 1);
__attribute__((noinline)) static unsigned deep(volatile unsigned *p, unsigned n)
{
    volatile unsigned frame[64];
    frame[0] = n + *p;
    return n == 0 ? frame[0] : deep(frame, n - 1) + frame[0];
}
int main(void)
{
    unsigned depth = *(unsigned *)simcore_io.input;
    *(unsigned *)simcore_io.output = deep((volatile unsigned *)simcore_io.input, depth);
    return 0;
}
"""


@needs_toolchain
@pytest.mark.parametrize("board", ["rp2040", "stm32h743"])
def test_stack_overflow_names_function(tmp_path: Path, board: str) -> None:
    src = tmp_path / "recurse.c"
    src.write_text(RECURSE)
    elf = build_elf([src], get_board(board), tmp_path / "recurse.elf", opt="-O1").elf
    shallow = run_firmware(elf, board, inputs=(3).to_bytes(4, "little"))
    assert shallow.exit_code == 0
    assert 4 * 64 * 4 < shallow.memory.stack_peak.used_bytes < 8192
    with pytest.raises(StackOverflow) as info:
        run_firmware(elf, board, inputs=(100).to_bytes(4, "little"))
    msg = str(info.value)
    assert msg.startswith("stack overflow in deep: write to 0x")
    assert "8192 bytes" in msg and "recurse.c:" in msg


def test_fault_at_cli_is_one_line_exit_1(
    asm_elf: AsmBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = asm_elf("rp2040", "ldr r1, =0x30000000\nldr r0, [r1]")
    assert main(["run", str(elf), "-b", "rp2040"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("simcore: error: unmapped read")


def test_sio_divider_matches_datasheet_semantics() -> None:
    sio = SioBlock()
    sio.write(0x068, 4, (-7) & 0xFFFFFFFF)  # SDIVIDEND
    sio.write(0x06C, 4, 2)  # SDIVISOR
    assert sio.read(0x070, 4) == (-3) & 0xFFFFFFFF  # truncating, like C
    assert sio.read(0x074, 4) == (-1) & 0xFFFFFFFF
    sio.write(0x060, 4, 7)
    sio.write(0x064, 4, 0)  # unsigned divide by zero
    assert (sio.read(0x070, 4), sio.read(0x074, 4)) == (0xFFFFFFFF, 7)
    assert sio.read(0x078, 4) & 1  # READY


def test_cpuid_and_cpacr(asm_elf: AsmBuilder) -> None:
    """Startup code that enables the FPU through CPACR runs; CPUID names the core."""
    body = """
    ldr r1, =0xE000ED88
    ldr r0, =0x00F00000
    str r0, [r1]
    ldr r1, =0xE000ED00
    ldr r0, [r1]
    lsls r0, r0, #16     @ PARTNO is bits 15:4
    lsrs r0, r0, #20
"""
    assert run_firmware(asm_elf("stm32h743", body), "stm32h743").exit_code == 0xC27
    assert run_firmware(asm_elf("rp2040", body), "rp2040").exit_code == 0xC60
