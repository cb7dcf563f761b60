"""Regression gates: committed baseline figures with tolerance bands.

A baseline file holds, per combination (e.g. ``mnist_cnn/int8/rp2040``), the
figures that must not regress (cycles per inference, flash, static RAM,
stack peak) and a relative tolerance band for each. Larger is worse for
every figure. Only :func:`write_baseline` writes the file, and callers reach
it only through an explicit update switch (``--update-baseline``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simcore.errors import UsageError

BASELINE_VERSION = 1
#: Default relative tolerance per figure: cycle estimates move with compiler
#: versions, memory figures should not move at all without a reason.
DEFAULT_TOLERANCE = {"cycles": 0.02, "flash_bytes": 0.01, "static_ram_bytes": 0.01}
FALLBACK_TOLERANCE = 0.02


@dataclass(frozen=True)
class Finding:
    """One figure compared with its baseline."""

    key: str
    figure: str
    baseline: float
    current: float
    tolerance: float

    @property
    def change(self) -> float:
        """Relative change; positive is worse."""
        if self.baseline == 0:
            return math.inf if self.current > 0 else 0.0
        return (self.current - self.baseline) / self.baseline

    @property
    def regressed(self) -> bool:
        return self.change > self.tolerance

    @property
    def improved(self) -> bool:
        return self.change < -self.tolerance

    def describe(self) -> str:
        verdict = "regressed" if self.regressed else "improved" if self.improved else "within band"
        return (
            f"{self.key}: {self.figure} {verdict}: {self.current:,.0f} vs baseline "
            f"{self.baseline:,.0f} ({self.change:+.2%}, band ±{self.tolerance:.1%})"
        )


@dataclass
class Baseline:
    """Figures per combination: ``entries[key][figure] = (value, tolerance)``."""

    entries: dict[str, dict[str, tuple[float, float]]]

    def compare(self, key: str, figures: dict[str, float]) -> list[Finding]:
        """Compare current figures of ``key`` with the baseline (figures it has only)."""
        known = self.entries.get(key, {})
        return [
            Finding(key, name, known[name][0], float(value), known[name][1])
            for name, value in sorted(figures.items())
            if name in known
        ]

    def missing(self, key: str) -> bool:
        return key not in self.entries

    def update(self, key: str, figures: dict[str, float]) -> None:
        entry = self.entries.setdefault(key, {})
        for name, value in figures.items():
            tol = entry.get(name, (0.0, DEFAULT_TOLERANCE.get(name, FALLBACK_TOLERANCE)))[1]
            entry[name] = (float(value), tol)


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; a missing file is an empty baseline."""
    if not path.exists():
        return Baseline({})
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"baseline {path} is unreadable: {exc}") from None
    if data.get("version") != BASELINE_VERSION:
        raise UsageError(
            f"baseline {path} has version {data.get('version')!r}, expected {BASELINE_VERSION}",
            hint="regenerate it with --update-baseline",
        )
    entries: dict[str, dict[str, tuple[float, float]]] = {}
    try:
        for key, figures in data["entries"].items():
            entries[key] = {
                name: (float(f["value"]), float(f["tolerance"])) for name, f in figures.items()
            }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"baseline {path} is malformed ({exc!r})") from None
    return Baseline(entries)


def write_baseline(path: Path, baseline: Baseline) -> None:
    """Write the baseline (sorted keys, so diffs in review stay small)."""
    data = {
        "version": BASELINE_VERSION,
        "entries": {
            key: {
                name: {"value": value, "tolerance": tol}
                for name, (value, tol) in sorted(figures.items())
            }
            for key, figures in sorted(baseline.entries.items())
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
