"""The per-function profile adds up to the run's total, refills and memory stalls included.

Runs one MNIST int8 image through the generated firmware on each board: its functions'
cycles (with their taken-branch refills, XIP/L1 cache misses and single-cycle IO
savings) must sum to the reported cycle count exactly, and the instructions of the
``done`` block, which never execute, must not be in the profile.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simcore.boards import load_boards
from simcore.engine import run_firmware
from simcore.firmware.build import build_model_firmware
from simcore.golden.store import load_golden

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed"
)


@pytest.mark.parametrize("board", sorted(load_boards()))
def test_profile_adds_up_to_the_total(tmp_path: Path, board: str) -> None:
    build = build_model_firmware("mnist_cnn", "int8", board, tmp_path, capacity=1)
    image = load_golden("mnist_cnn").inputs_int8[:1].tobytes()
    result = run_firmware(build.elf, board, inputs=image, profile_limit=None)
    report = result.cycle_report
    profile = report["profile"]
    assert result.cycles is not None and result.instructions is not None
    assert sum(p["cycles"] for p in profile) == result.cycles
    assert sum(p["instructions"] for p in profile) == result.instructions
    # The dynamic part is really in there: refills at least (and misses on the RP boards).
    assert report["taken_branches"] > 0
    if board.startswith("rp"):
        assert report["cache"]["fetch_misses"] > 0 and report["cache"]["data_misses"] > 0
