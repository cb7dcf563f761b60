"""How a program ends when main returns through vendor startup code.

simcore sets LR to its reset value 0xFFFFFFFF. The rule: once main has run,
a return to 0xFFFFFFFE (the reset handler returning with the reset LR, or main
tail-called with `b main`) and main returning to a `b .` right after its call
are the program's end, with r0 as the exit code. A reset handler returning
before main ran is a fault.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sim_support import BOARD_NAMES, HAVE_TOOLCHAIN

from simcore.boards import get_board
from simcore.cli import main
from simcore.engine import run_firmware
from simcore.errors import MemoryFault
from simcore.results import StopReason

#: Reset handlers as vendor startup code writes them.
STARTUPS = {
    # A C Reset_Handler that returns: its epilogue pops the reset LR into PC.
    "pop-reset-lr": "push {r4, lr}\n    bl main\n    pop {r4, pc}",
    # Tail call: main's `bx lr` uses the reset LR.
    "tail-call": "b main",
    # `bl main` then park, as most vendor startup files do.
    "bl-then-park": "bl main\n    b .",
    "blx-then-park": "ldr r0, =main\n    blx r0\n    b .",
    # STM32Cube startup files: `bl main; bx lr`, LR stale once main has returned.
    "bl-then-bx-lr": "bl main\n    bx lr",
}


def build(
    tmp_path: Path, board_name: str, reset: str, code: int, *, with_main: bool = True
) -> Path:
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    board = get_board(board_name)
    ram = next(r for r in board.memory if r.kind.value == "ram" and r.start >= 0x20000000)
    main_fn = (
        f"""
    .global main
    .type main, %function
    .thumb_func
main:
    movs r0, #{code}
    bx lr
"""
        if with_main
        else ""
    )
    src = tmp_path / "reset.s"
    src.write_text(
        f"""
    .syntax unified
    .thumb
    .section .vectors, "a"
    .word {ram.start + 0x1000:#x}
    .word Reset_Handler + 1
    .text
    .global Reset_Handler
    .type Reset_Handler, %function
    .thumb_func
Reset_Handler:
    {reset}
{main_fn}
    .ltorg
"""
    )
    lds = tmp_path / "reset.ld"
    lds.write_text(
        f"SECTIONS {{ . = {board.vector_table:#x}; .vectors : {{ KEEP(*(.vectors)) }} "
        ".text : { *(.text*) } }\n"
    )
    obj, elf = tmp_path / "reset.o", tmp_path / f"reset-{board_name}.elf"
    cpu = next(f for f in board.core.compiler_flags if f.startswith("-mcpu="))
    subprocess.run(["arm-none-eabi-as", "-mthumb", cpu, str(src), "-o", str(obj)], check=True)
    subprocess.run(["arm-none-eabi-ld", "-T", str(lds), str(obj), "-o", str(elf)], check=True)
    return elf


@pytest.mark.parametrize("startup", sorted(STARTUPS))
@pytest.mark.parametrize("board", BOARD_NAMES)
def test_main_returning_through_startup_ends_with_r0(
    tmp_path: Path, board: str, startup: str
) -> None:
    result = run_firmware(build(tmp_path, board, STARTUPS[startup], 3), board)
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 3)
    assert any("r0 is reported as the exit code" in note for note in result.notes)


@pytest.mark.parametrize("code", [0, 3])
def test_cli_exit_code_follows_main(
    tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = build(tmp_path, "rp2040", STARTUPS["pop-reset-lr"], code)
    assert main(["run", str(elf), "-b", "rp2040"]) == (0 if code == 0 else 1)
    out = capsys.readouterr().out
    assert f"exit code {code}" in out and "returned from its reset handler" in out


def test_stale_lr_return_after_main_is_named(tmp_path: Path) -> None:
    """On hardware that `bx lr` jumps to itself (LR = its own address + 1): the note says so."""
    result = run_firmware(build(tmp_path, "stm32h743", STARTUPS["bl-then-bx-lr"], 4), "stm32h743")
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 4)
    note = next(n for n in result.notes if "bx lr" in n)
    assert "LR is stale" in note and "Reset_Handler+0x4" in note


def test_reset_handler_returning_before_main_is_a_fault(tmp_path: Path) -> None:
    elf = build(tmp_path, "rp2040", "bx lr", 0, with_main=False)
    with pytest.raises(MemoryFault, match=r"reset handler returned .* before any call of main"):
        run_firmware(elf, "rp2040")


def test_park_not_after_main_still_runs_into_the_budget(tmp_path: Path) -> None:
    """A `b .` that main did not return to (an error handler's) is no end: no false pass."""
    elf = build(tmp_path, "rp2040", "bl other\n    b .\nother:\n    movs r0, #0\n    b .", 0)
    with pytest.raises(Exception, match="budget"):
        run_firmware(elf, "rp2040", max_instructions=10_000)
