"""A board of your own: its TOML, and a generated linker script or one of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sim_support import needs_toolchain

from simcore.cli import main

pytestmark = needs_toolchain

SHIPPED = Path(__file__).resolve().parents[2] / "simcore" / "data" / "boards" / "rp2040.toml"

TINY_LD = """/* A user's board: 512 KB flash, 64 KB RAM, a 4 KB stack. */
MEMORY
{
    FLASH (rx)  : ORIGIN = 0x10000000, LENGTH = 512K
    RAM   (rwx) : ORIGIN = 0x20000000, LENGTH = 64K
}
REGION_ALIAS("CODE", FLASH);
HEAP_SIZE = 2K;
STACK_SIZE = 4K;
INCLUDE common.ld
"""


@pytest.fixture
def tiny_board(tmp_path: Path) -> tuple[Path, Path]:
    text = SHIPPED.read_text().replace('name = "rp2040"', 'name = "tinyboard"')
    text = text.replace("size = 0x200000", "size = 0x80000").replace(
        "size = 0x42000", "size = 0x10000"
    )
    board = tmp_path / "tinyboard.toml"
    board.write_text(text)
    script = tmp_path / "tinyboard.ld"
    script.write_text(TINY_LD)
    return board, script


def test_build_with_your_linker_script_then_validate_and_diagnose_from_the_elf(
    tiny_board: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    board, script = tiny_board
    out = tmp_path / "fw"
    assert main(["build", "-m", "iris3", "-f", "int8", "-b", str(board), "--ld", str(script),
                 "--cflags=-DUSER_FLAG=1", "--out", str(out)]) == 0  # fmt: skip
    manifest = json.loads((out / "iris3-int8.json").read_text())
    assert manifest["board"] == "tinyboard" and manifest["board_file"] == str(board)
    assert any(
        f.startswith("-T") and f.endswith("tinyboard.ld") for f in manifest["compiler"]["flags"]
    )
    assert "-DUSER_FLAG=1" in manifest["compiler"]["flags"]
    capsys.readouterr()
    assert main(["validate", "--firmware", str(out / "iris3-int8.elf"), "-q"]) == 0
    assert "iris3/int8/tinyboard  PASS" in capsys.readouterr().out
    assert main(["diagnose", str(out / "iris3-int8.elf"), "-q"]) == 0


def test_board_of_your_own_gets_a_generated_script(
    tiny_board: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --ld, the script is generated from the board file and written beside the ELF."""
    board, _ = tiny_board
    out = tmp_path / "gen"
    assert main(["build", "-m", "iris3", "-f", "int8", "-b", str(board), "--out", str(out)]) == 0
    manifest = json.loads((out / "iris3-int8.json").read_text())
    assert manifest["link"]["generated"] and manifest["link"]["script"] == "iris3-int8.ld"
    script = (out / "iris3-int8.ld").read_text()
    assert "for board tinyboard" in script
    assert "sram (rwx) : ORIGIN = 0x20000000, LENGTH = 0x10000" in script
    capsys.readouterr()
    assert main(["validate", "--firmware", str(out / "iris3-int8.elf"), "-q"]) == 0
    assert "iris3/int8/tinyboard  PASS" in capsys.readouterr().out


def test_missing_linker_script_of_your_own(
    tiny_board: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    board, _ = tiny_board
    assert main(["build", "-m", "iris3", "-f", "int8", "-b", str(board), "--ld", "nope.ld"]) == 2
    assert "linker script nope.ld does not exist" in capsys.readouterr().err
