"""Helpers shared by the test folders (imported by name; conftest.py holds the fixtures)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from simcore.boards import BoardSpec, get_board, load_boards

BOARD_NAMES = sorted(load_boards())
HAVE_TOOLCHAIN = shutil.which("arm-none-eabi-gcc") is not None
needs_toolchain = pytest.mark.skipif(not HAVE_TOOLCHAIN, reason="arm-none-eabi-gcc missing")

AsmBuilder = Callable[..., Path]

#: The assembler's CPU flags per core.
ASM_CPU = {
    "cortex-m0": ("-mcpu=cortex-m0",),
    "cortex-m0plus": ("-mcpu=cortex-m0plus",),
    "cortex-m4f": ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16"),
    "cortex-m33": ("-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16"),
    "cortex-m7": ("-mcpu=cortex-m7", "-mfpu=fpv5-d16"),
}


def ram_of(board: BoardSpec) -> tuple[int, int]:
    """The first RAM region at 0x20000000 or above, ``(start, end)``."""
    ram = next(r for r in board.memory if r.kind.value == "ram" and r.start >= 0x20000000)
    return ram.start, ram.end


def build_asm(
    directory: Path,
    board_name: str,
    body: str,
    *,
    data: str = "",
    extra: str = "",
    sp: str | None = None,
    reset: str = "_start + 1",
    as_cpu: str | None = None,
    tag: str = "fw",
    vectors: str = "",
) -> Path:
    """Assemble ``body`` (run from reset, ending at ``done``) into an ELF for a board.

    ``extra`` is more code after ``done`` (functions, literal data); ``data`` goes
    to .data in RAM, loaded by simcore. ``sp``/``reset`` are the vector table's words,
    ``vectors`` more of its entries (exception 2 on).
    """
    board = get_board(board_name)
    ram_start, ram_end = ram_of(board)
    src = directory / f"{tag}.s"
    src.write_text(
        f"""
    .syntax unified
    .thumb
    .section .vectors, "a"
    .word {sp if sp is not None else hex(ram_end)}
    .word {reset}
{vectors}
    .text
    .global _start
    .thumb_func
_start:
_start_arm:
{body}
    b done
    .global done
    .thumb_func
done:
    b done
{extra}
    .data
    .align 2
{data}
"""
    )
    obj, elf, lds = (directory / f"{tag}{ext}" for ext in (".o", ".elf", ".ld"))
    lds.write_text(
        f"SECTIONS {{ . = {board.vector_table:#x}; .vectors : {{ KEEP(*(.vectors)) }} "
        f".text : {{ *(.text*) }} . = {ram_start:#x}; .data : {{ *(.data*) }} }}"
    )
    cpu = ASM_CPU[as_cpu or board.core.name]
    subprocess.run(
        ["arm-none-eabi-as", "-mthumb", *cpu, "-g", str(src), "-o", str(obj)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["arm-none-eabi-ld", "-T", str(lds), str(obj), "-o", str(elf)],
        check=True,
        capture_output=True,
    )
    if as_cpu is not None:
        subprocess.run(
            ["arm-none-eabi-objcopy", "--remove-section=.ARM.attributes", str(elf)], check=True
        )
    return elf
