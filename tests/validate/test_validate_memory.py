"""simcore validate's memory dict: regions, harness buffers apart, the program's static RAM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sim_support import needs_toolchain

from simcore.golden.store import Golden
from simcore.report import render_html
from simcore.validate import Combination, validate, validate_many

pytestmark = needs_toolchain


def test_validation_memory_per_region_and_owner() -> None:
    result = validate(Combination("mnist_cnn", "int8", "stm32h743"), limit=2)
    assert result.passed, result.failures
    memory = result.memory
    static = memory["static_ram"]
    harness = memory["harness_io"]
    regions = {r["name"]: r for r in memory["regions"]}
    assert static["region"] == "dtcm" and static["capacity_bytes"] == 128 * 1024
    assert harness["used_bytes"] >= 784 * 16  # the batch input buffer
    # The program's static RAM leaves the harness buffers out; the region holds both.
    dtcm = regions["dtcm"]
    assert dtcm["harness_bytes"] == harness["used_bytes"]
    assert dtcm["used_bytes"] == (
        dtcm["program_bytes"] + dtcm["harness_bytes"] + dtcm["reserved_bytes"]
    )
    assert static["used_bytes"] == sum(
        r["program_bytes"] for r in regions.values() if r["kind"] == "ram"
    )
    assert static["percent"] == dtcm["program_percent"] < dtcm["percent"]
    assert memory["stack_peak"]["region"] == "dtcm"
    assert memory["arena_bytes"] and memory["weights_bytes"]
    # What validate --json writes, the report reads (schema included).
    row = json.loads(json.dumps(result.as_dict()))
    assert "dtcm" in render_html([row])


def test_validate_json_memory_loads_in_report(tmp_path: Path) -> None:
    from simcore.cli import main
    from simcore.report import load_results

    out = tmp_path / "v.json"
    args = ["validate", "-m", "iris3", "-f", "int8", "-b", "rp2040", "--limit", "3", "-q"]
    assert main([*args, "--json", str(out)]) == 0
    results = load_results(out)
    assert results[0]["memory"]["static_ram"]["region"] == "sram"
    assert results[0]["memory"]["harness_io"]["used_bytes"] > 0


def test_combinations_of_one_model_share_one_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    """validate_many loads each golden once (a load checks every file's sha256 and holds
    the whole data set), whichever threads plan the combinations that use it."""
    loads: list[str] = []
    original = Combination.load_golden

    def counting(self: Combination) -> Golden:
        loads.append(self.model)
        return original(self)

    monkeypatch.setattr(Combination, "load_golden", counting)
    combos = [Combination("iris3", fmt, "stm32h743") for fmt in ("f32", "int8", "q16")]
    combos.append(Combination("iris_anne6", "int8", "stm32h743"))
    results = validate_many(combos, limit=2, jobs=2)
    assert [r.passed for r in results] == [True] * 4
    assert sorted(loads) == ["iris3", "iris_anne6"]
