"""The cycle accounting's fast paths give the plain path's figures on real firmware.

The block hook's records and lazy fetch stamps (see ``block_rec`` in
simcore/cycles/_native.c) are only a faster way to reach the same numbers: a run of
the MNIST int8 firmware must report the same outputs, cycles per sample, profile and
cache figures with them as with the plain path (``native.BLOCK_RECORDS = False``), on
every kind of memory system: XIP caches with data reads (rp2040, rp2350, with resident
pages as validation runs them, and with every data hit counted), a 64-way ART
(stm32f446) and the M7's L1 caches (stm32h743).
"""

from __future__ import annotations

from typing import Any

import pytest
from fw_support import Builder

import simcore.cycles.native as native
from simcore.engine import run_firmware
from simcore.firmware.codec import encode_inputs
from simcore.golden.store import load_golden

SAMPLES = 3


def _figures(build: Any, board: str, data_hits: bool) -> dict[str, Any]:
    golden = load_golden("mnist_cnn")
    result = run_firmware(
        build.elf,
        board,
        inputs=encode_inputs("int8", golden.inputs_int8[:SAMPLES]),
        n_samples=SAMPLES,
        data_hits=data_hits,
        timeout_s=120,
    )
    assert result.exit_code == 0, result.stop_reason
    report = dict(result.cycle_report)
    return {
        "outputs": result.outputs,
        "cycles": result.cycles,
        "instructions": result.instructions,
        "sample_cycles": result.sample_cycles,
        "layers": result.layer_spans,
        "report": report,
    }


@pytest.mark.parametrize(
    ("board", "data_hits"),
    [
        ("rp2040", False),
        ("rp2040", True),
        ("rp2350", False),
        ("stm32f446", False),
        ("stm32h743", False),
    ],
)
def test_block_records_give_the_plain_paths_figures(
    fw_build: Builder, monkeypatch: pytest.MonkeyPatch, board: str, data_hits: bool
) -> None:
    build = fw_build("mnist_cnn", "int8", board)
    fast = _figures(build, board, data_hits)
    monkeypatch.setattr(native, "BLOCK_RECORDS", False)
    plain = _figures(build, board, data_hits)
    assert fast == plain
    assert fast["cycles"] > 0 and fast["report"]["profile"]
