"""C++ firmware on the stock runtime: static constructors, libstdc++, exceptions.

Before the startup code ran the init arrays and the linker script kept
``.init_array``, a C++ test program (TFLM's micro_speech_test) exited 0 having
run no test: its tests register themselves from static constructors.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sim_support import BOARD_NAMES, HAVE_TOOLCHAIN

from simcore.boards import get_board
from simcore.engine import run_firmware
from simcore.results import StopReason
from simcore.toolchain import build_elf

HERE = Path(__file__).resolve().parent


def _have_libstdcxx() -> bool:
    """Debian ships libstdc++ apart from the compiler (libstdc++-arm-none-eabi-newlib)."""
    found = subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-print-file-name=libstdc++.a"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return "/" in found  # gcc echoes the bare name when it has no such file


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    if not _have_libstdcxx():
        pytest.skip("libstdc++ for arm-none-eabi missing (libstdc++-arm-none-eabi-newlib)")
    return tmp_path_factory.mktemp("cxx")


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_constructors_run_before_main(out_dir: Path, board: str) -> None:
    elf = build_elf([HERE / "cxx_fw.cpp"], get_board(board), out_dir / f"cxx-{board}.elf").elf
    result = run_firmware(elf, board)
    assert result.stdout == "ctor 101\nctor default\nctor Global\nmain\nok\n"
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 0)


def test_init_array_is_kept_with_newlib_symbols(out_dir: Path) -> None:
    elf = build_elf([HERE / "cxx_fw.cpp"], get_board("rp2040"), out_dir / "syms.elf").elf
    nm = subprocess.run(
        ["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    symbols = {line.split()[-1]: int(line.split()[0], 16) for line in nm.splitlines()}
    # Three entries: two constructor functions and the translation unit's initializer.
    assert symbols["__init_array_end"] - symbols["__init_array_start"] == 3 * 4
    # startup.c runs both arrays in one loop: they must touch.
    assert symbols["__preinit_array_end"] == symbols["__init_array_start"]


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_exceptions_and_rtti(out_dir: Path, board: str) -> None:
    """A throw is caught: -fexceptions links the full libstdc++ (nano has no unwind tables)."""
    elf = build_elf(
        [HERE / "cxx_exceptions_fw.cpp"],
        get_board(board),
        out_dir / f"exc-{board}.elf",
        extra_cflags=("-fexceptions", "-frtti"),
    ).elf
    result = run_firmware(elf, board)
    assert result.stdout == "caught boom\n"
    assert result.exit_code == 0


def test_c_only_build_is_one_gcc_command(out_dir: Path) -> None:
    """A C program is built exactly as before C++ support: no compile steps, no libstdc++."""
    result = build_elf([HERE.parent / "run" / "batch_fw.c"], get_board("rp2040"), out_dir / "c.elf")
    assert result.compile_commands == ()
    assert Path(result.command[0]).name == "arm-none-eabi-gcc"
    assert not any("stdc++" in arg for arg in result.command)
