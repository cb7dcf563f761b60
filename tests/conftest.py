"""Shared fixtures: the ARM toolchain, tiny assembly firmware, the example builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sim_support import BOARD_NAMES, HAVE_TOOLCHAIN, AsmBuilder

from simcore.boards import BoardSpec, get_board
from simcore.example import build_example

_ASM_CPU = {
    "cortex-m0plus": ("-mcpu=cortex-m0plus",),
    "cortex-m33": ("-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16"),
    "cortex-m7": ("-mcpu=cortex-m7", "-mfpu=fpv5-d16"),
}


def _ram_base(board: BoardSpec) -> tuple[int, int]:
    ram = next(r for r in board.memory if r.kind.value == "ram" and r.start >= 0x20000000)
    return ram.start, ram.end


@pytest.fixture
def asm_elf(tmp_path: Path) -> AsmBuilder:
    """Assemble and link a Thumb snippet into an ELF for a board.

    The snippet runs from the reset vector with SP at the top of the first RAM
    region at 0x20000000 or above; it ends by branching to ``done`` (the
    engine stops there and reports r0 as the exit code). ``as_cpu`` overrides
    the assembler's CPU so a test can place an instruction the board's core
    lacks; the ELF attributes are then stripped so the loader lets it run.
    """
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")

    def build(board_name: str, body: str, *, as_cpu: str | None = None, data: str = "") -> Path:
        board = get_board(board_name)
        flash = board.vector_table
        ram_start, ram_end = _ram_base(board)
        cpu = _ASM_CPU[as_cpu or board.core.name]
        src = tmp_path / f"{board_name}.s"
        src.write_text(
            f"""
    .syntax unified
    .thumb
    .section .vectors, "a"
    .word {ram_end:#x}
    .word _start + 1
    .text
    .global _start
    .thumb_func
_start:
{body}
    b done
    .global done
    .thumb_func
done:
    b done
    .data
{data}
"""
        )
        obj = tmp_path / f"{board_name}.o"
        elf = tmp_path / f"{board_name}.elf"
        lds = tmp_path / f"{board_name}.ld"
        lds.write_text(
            f"""
SECTIONS {{
  . = {flash:#x};
  .vectors : {{ KEEP(*(.vectors)) }}
  .text : {{ *(.text*) }}
  . = {ram_start:#x};
  .data : {{ *(.data*) }}
}}
"""
        )
        subprocess.run(
            ["arm-none-eabi-as", "-mthumb", *cpu, "-g", str(src), "-o", str(obj)], check=True
        )
        subprocess.run(["arm-none-eabi-ld", "-T", str(lds), str(obj), "-o", str(elf)], check=True)
        if as_cpu is not None:
            subprocess.run(
                ["arm-none-eabi-objcopy", "--remove-section=.ARM.attributes", str(elf)], check=True
            )
        return elf

    return build


@pytest.fixture(scope="session")
def example_elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example firmware built once per test session for every board."""
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    out = tmp_path_factory.mktemp("example")
    return {name: build_example(get_board(name), out / name).elf for name in BOARD_NAMES}
