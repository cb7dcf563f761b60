"""Regression gates: beyond the band fails, within passes, update rewrites."""

from __future__ import annotations

import json
import re
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
    data["entries"]["m/int8/rp2040"]["figures"]["cycles"]["tolerance"] = 0.1
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
    with pytest.raises(UsageError, match="not an object with value and tolerance"):
        load_baseline(path)


def test_version_1_baselines_still_read(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(
        '{"version": 1, "entries": {"k": {"cycles": {"value": 10, "tolerance": 0.02}}}}'
    )
    b = load_baseline(path)
    assert b.entries == {"k": {"cycles": (10.0, 0.02)}} and b.samples == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"version": 2, "entries": {"k": {"figures": {"cycles": {"value": NaN, '
         b'"tolerance": 0.02}}}}}', "value nan is not a finite non-negative number"),
        (b'{"version": 2, "entries": {"k": {"figures": {"cycles": {"value": 5, '
         b'"tolerance": -1}}}}}', "tolerance -1 is not a finite non-negative number"),
        (b'{"version": 2, "entries": {"k": {"figures": {"cycles": {"value": "5", '
         b'"tolerance": 0.1}}}}}', "value '5' is not a number"),
        (b'{"version": 2, "entries": {"k": {"figures": {"cycles": {"value": true, '
         b'"tolerance": 0.1}}}}}', "value True is not a number"),
        (b'{"version": 2, "entries": {"k": {"samples": 5, "figures": {}}}}', "malformed"),
        (b'{"version": 2, "entries": {"k": []}}', "entry 'k' is not an object"),
        (b'{"version": 2, "entries": []}', "no 'entries' object"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b"\x00\xff\xfe binary", "unreadable"),
        ('{"version": 2, "entries": {}}'.encode("utf-16"), "unreadable"),
    ],
    ids=["nan", "negative", "string", "bool", "samples-type", "entry-list", "entries-list",
         "list", "binary", "utf16"],
)  # fmt: skip
def test_hostile_baselines_refused_in_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        load_baseline(path)
    assert "\n" not in str(info.value) and info.value.exit_code == 2


def test_cycles_from_another_sample_set_are_not_compared(tmp_path: Path) -> None:
    """A --limit run is not gated against a full-set median (each batch starts cold)."""
    b = Baseline({})
    b.update("k", {"cycles": 1000.0, "flash_bytes": 100.0}, "test 10000")
    assert b.skipped("k", "test 50") == {"cycles"}
    (only,) = b.compare("k", {"cycles": 1670.0, "flash_bytes": 100.0}, "test 50")
    assert only.figure == "flash_bytes"
    (regressed,) = [f for f in b.compare("k", {"cycles": 1670.0}, "test 10000") if f.regressed]
    assert regressed.figure == "cycles"
    write_baseline(tmp_path / "b.json", b)
    assert load_baseline(tmp_path / "b.json").samples == {"k": "test 10000"}
