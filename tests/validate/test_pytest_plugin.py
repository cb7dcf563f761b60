"""The pytest plugin (loaded through its pytest11 entry point), exercised with pytester."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simcore.boards import load_boards

TEST_FILE = """
import numpy as np
from simcore.example import example_inputs, host_reference

ELFS = {elfs!r}

def test_example(simcore_run, simcore_board, simcore_baseline):
    x = example_inputs(4)
    result = simcore_run(ELFS[simcore_board.name], simcore_board, inputs=x.tobytes())
    assert result.outputs == host_reference(x).tobytes()
    simcore_baseline.check(f"example/{{simcore_board.name}}", {{
        "flash_bytes": result.memory.flash.used_bytes,
        "stack_peak_bytes": result.memory.stack_peak.used_bytes,
    }})
"""


def _write(pytester: pytest.Pytester, example_elfs: dict[str, Path]) -> None:
    pytester.makepyfile(test_fw=TEST_FILE.format(elfs={k: str(v) for k, v in example_elfs.items()}))


def test_boards_selected_and_baseline_cycle(
    pytester: pytest.Pytester, example_elfs: dict[str, Path]
) -> None:
    _write(pytester, example_elfs)
    # No baseline yet: the gate fails and says how to create one.
    res = pytester.runpytest("--simcore-board", "rp2040")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*no baseline for example/rp2040*--simcore-update-baseline*"])

    res = pytester.runpytest("--simcore-update-baseline", "--junitxml=out.xml")
    boards = sorted(load_boards())
    res.assert_outcomes(passed=len(boards))  # every shipped board
    baseline = pytester.path / "simcore-baseline.json"
    data = json.loads(baseline.read_text())
    assert sorted(data["entries"]) == [f"example/{b}" for b in boards]
    assert (pytester.path / "out.xml").read_text().count("<testcase") == len(boards)

    pytester.runpytest("--simcore-board", "rp2350").assert_outcomes(passed=1)

    # Shrink the recorded flash size: the current build now exceeds the band.
    data["entries"]["example/rp2350"]["figures"]["flash_bytes"]["value"] *= 0.9
    baseline.write_text(json.dumps(data))
    res = pytester.runpytest("--simcore-board", "rp2350")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*example/rp2350: flash_bytes regressed*"])
