"""Regression gates: beyond the band fails, within passes, update rewrites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simcore.baseline import Baseline, load_baseline, write_baseline
from simcore.errors import UsageError


def _baseline(tmp_path: Path) -> Path:
    path = tmp_path / "baseline.json"
    b = Baseline({})
    b.update("m/int8/rp2040", {"cycles": 1000.0, "flash_bytes": 5000.0})
    write_baseline(path, b)
    return path


def test_within_band_passes_beyond_fails(tmp_path: Path) -> None:
    b = load_baseline(_baseline(tmp_path))
    ok = b.compare("m/int8/rp2040", {"cycles": 1019.0, "flash_bytes": 5000.0})
    assert not any(f.regressed for f in ok)
    bad = b.compare("m/int8/rp2040", {"cycles": 1021.0, "flash_bytes": 5000.0})
    (finding,) = [f for f in bad if f.regressed]
    assert finding.figure == "cycles" and finding.change == pytest.approx(0.021)
    assert "regressed: 1,021 vs baseline 1,000 (+2.10%, band ±2.0%)" in finding.describe()


def test_improvement_is_not_a_failure(tmp_path: Path) -> None:
    b = load_baseline(_baseline(tmp_path))
    (f,) = b.compare("m/int8/rp2040", {"cycles": 500.0})
    assert f.improved and not f.regressed


def test_update_rewrites_and_keeps_tolerance(tmp_path: Path) -> None:
    path = _baseline(tmp_path)
    data = json.loads(path.read_text())
    data["entries"]["m/int8/rp2040"]["cycles"]["tolerance"] = 0.1
    path.write_text(json.dumps(data))
    b = load_baseline(path)
    b.update("m/int8/rp2040", {"cycles": 2000.0})
    write_baseline(path, b)
    again = load_baseline(path)
    assert again.entries["m/int8/rp2040"]["cycles"] == (2000.0, 0.1)
    assert again.missing("other") and not again.missing("m/int8/rp2040")


def test_malformed_baseline_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"version": 99, "entries": {}}')
    with pytest.raises(UsageError, match="version 99"):
        load_baseline(path)
    path.write_text('{"version": 1, "entries": {"k": {"cycles": 3}}}')
    with pytest.raises(UsageError, match="malformed"):
        load_baseline(path)
