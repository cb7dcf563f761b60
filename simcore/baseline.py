"""Regression gates: committed baseline figures with tolerance bands.

A baseline file holds, per combination (e.g. ``mnist_cnn/int8/rp2040``), the
figures that must not regress (cycles per inference, flash, static RAM,
stack peak) and a relative tolerance band for each. Larger is worse for
every figure. Only :func:`write_baseline` writes the file, and callers reach
it only through an explicit update switch (``--update-baseline``).

Version 2 also records the sample set an entry was measured on (``"test
50"``): the median cycles per inference move with it (each batch starts with
cold caches), so cycles measured on another sample set are not compared
(a note says so) while the memory figures, which do not depend on it, are.
Every value is checked on load: a NaN or negative figure would switch the
gate off silently, so it is refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from simcore.errors import UsageError

BASELINE_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: Figures that depend on the sample set; the others are properties of the build.
SAMPLE_DEPENDENT = frozenset({"cycles"})
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

    def describe(self, *, with_key: bool = True) -> str:
        """One line; ``with_key=False`` where the combination is already named."""
        verdict = "regressed" if self.regressed else "improved" if self.improved else "within band"
        text = (
            f"{self.figure} {verdict}: {self.current:,.0f} vs baseline "
            f"{self.baseline:,.0f} ({self.change:+.2%}, band ±{self.tolerance:.1%})"
        )
        return f"{self.key}: {text}" if with_key else text


@dataclass
class Baseline:
    """Figures per combination: ``entries[key][figure] = (value, tolerance)``.

    ``samples[key]`` is the sample set the entry was measured on, when known.
    """

    entries: dict[str, dict[str, tuple[float, float]]]
    samples: dict[str, str] = field(default_factory=dict)

    def compare(
        self, key: str, figures: dict[str, float], samples: str | None = None
    ) -> list[Finding]:
        """Compare current figures of ``key`` with the baseline (figures it has only).

        With ``samples`` given and different from the entry's, the figures that
        depend on the sample set are left out (see :meth:`skipped`).
        """
        known = self.entries.get(key, {})
        skip = self.skipped(key, samples)
        return [
            Finding(key, name, known[name][0], float(value), known[name][1])
            for name, value in sorted(figures.items())
            if name in known and name not in skip
        ]

    def skipped(self, key: str, samples: str | None) -> frozenset[str]:
        """Figures not comparable because the entry was measured on another sample set."""
        recorded = self.samples.get(key)
        if samples is None or recorded is None or recorded == samples:
            return frozenset()
        return SAMPLE_DEPENDENT

    def missing(self, key: str) -> bool:
        return key not in self.entries

    def update(self, key: str, figures: dict[str, float], samples: str | None = None) -> None:
        entry = self.entries.setdefault(key, {})
        for name, value in figures.items():
            tol = entry.get(name, (0.0, DEFAULT_TOLERANCE.get(name, FALLBACK_TOLERANCE)))[1]
            entry[name] = (float(value), tol)
        if samples is not None:
            self.samples[key] = samples
        else:
            self.samples.pop(key, None)


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; a missing file is an empty baseline. Every value is checked."""
    if not path.exists():
        return Baseline({})
    if path.is_dir():
        raise UsageError(f"baseline {path} is a directory", hint="give the baseline's file name")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"baseline {path} is unreadable: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UsageError(f"baseline {path} is not a JSON object")
    if data.get("version") not in READABLE_VERSIONS:
        raise UsageError(
            f"baseline {path} has version {data.get('version')!r}, expected "
            f"{' or '.join(map(str, READABLE_VERSIONS))}",
            hint="regenerate it with --update-baseline",
        )
    raw = data.get("entries")
    if not isinstance(raw, dict):
        raise UsageError(f"baseline {path} has no 'entries' object")
    baseline = Baseline({})
    for key, entry in raw.items():
        if not isinstance(entry, dict):
            raise UsageError(f"baseline {path}: entry {key!r} is not an object")
        figures = entry.get("figures", {}) if data["version"] >= 2 else entry
        samples = entry.get("samples") if data["version"] >= 2 else None
        if not isinstance(figures, dict) or not (samples is None or isinstance(samples, str)):
            raise UsageError(f"baseline {path}: entry {key!r} is malformed")
        baseline.entries[key] = {name: _figure(path, key, name, f) for name, f in figures.items()}
        if samples is not None:
            baseline.samples[key] = samples
    return baseline


def _figure(path: Path, key: str, name: str, entry: object) -> tuple[float, float]:
    """(value, tolerance) of one figure: finite, non-negative numbers or UsageError."""
    where = f"baseline {path}: {key} {name}"
    if not isinstance(entry, dict):
        raise UsageError(f"{where} is not an object with value and tolerance")
    out = []
    for part in ("value", "tolerance"):
        v = entry.get(part)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise UsageError(f"{where}: {part} {v!r} is not a number")
        if not math.isfinite(v) or v < 0:
            raise UsageError(
                f"{where}: {part} {v!r} is not a finite non-negative number",
                hint="a NaN or negative figure would switch the gate off; fix or regenerate it",
            )
        out.append(float(v))
    return out[0], out[1]


def write_baseline(path: Path, baseline: Baseline) -> None:
    """Write the baseline (sorted keys, so diffs in review stay small)."""
    data = {
        "version": BASELINE_VERSION,
        "entries": {
            key: {
                **({"samples": baseline.samples[key]} if key in baseline.samples else {}),
                "figures": {
                    name: {"value": value, "tolerance": tol}
                    for name, (value, tol) in sorted(figures.items())
                },
            }
            for key, figures in sorted(baseline.entries.items())
        },
    }
    from simcore.outputs import write_output

    write_output(path, json.dumps(data, indent=2) + "\n", what="baseline")
