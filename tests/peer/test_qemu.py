"""Peer cross-check: the example firmware under Debian's qemu-system-arm prints what simcore prints.

QEMU's machines have other memory maps than the boards, so the example is
linked for each QEMU machine (addresses from DESIGN.md "Peers") and run
under both emulators with the same default input (one sample of zeros).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from simcore.boards import BoardSpec, MemoryRegion, RegionKind, get_board
from simcore.engine import run_firmware
from simcore.example import SOURCE
from simcore.toolchain import HAVE_GCC, build_elf

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm missing"),
    pytest.mark.skipif(not HAVE_GCC, reason="arm-none-eabi-gcc missing"),
]

#: QEMU machine -> (flash base, RAM base, board whose core and flags to use).
MACHINES = {
    "mps2-an505": (0x10000000, 0x38000000, "rp2350"),
    "mps2-an500": (0x00000000, 0x20000000, "stm32h743"),
    "microbit": (0x00000000, 0x20000000, "rp2040"),
}


def _peer_board(base: BoardSpec, flash: int, ram: int) -> BoardSpec:
    """The board's core on the QEMU machine's memory map."""
    return BoardSpec(
        name=f"{base.name}-on-qemu",
        description="peer memory map",
        core=base.core,
        clock_hz=base.clock_hz,
        vector_table=flash,
        memory=(
            MemoryRegion("flash", RegionKind.FLASH, flash, 256 * 1024),
            MemoryRegion("ram", RegionKind.RAM, ram, 16 * 1024),
        ),
    )


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_example_output_matches_qemu(machine: str, tmp_path: Path) -> None:
    flash, ram, board_name = MACHINES[machine]
    script = tmp_path / "peer.ld"
    script.write_text(
        f"MEMORY {{ FLASH (rx) : ORIGIN = {flash:#x}, LENGTH = 256K\n"
        f"         RAM (rwx) : ORIGIN = {ram:#x}, LENGTH = 16K }}\n"
        'REGION_ALIAS("CODE", FLASH);\nHEAP_SIZE = 4K;\nSTACK_SIZE = 2K;\nINCLUDE common.ld\n'
    )
    base = get_board(board_name)
    elf = build_elf([SOURCE], base, tmp_path / "example.elf", script=script).elf
    qemu = subprocess.run(
        [
            "qemu-system-arm",
            "-M",
            machine,
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
            str(elf),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert qemu.returncode == 0, qemu.stderr
    ours = run_firmware(elf, _peer_board(base, flash, ram))
    assert ours.exit_code == 0
    assert "checksum" in ours.stdout
    assert ours.stdout == qemu.stdout
