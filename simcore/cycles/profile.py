"""Per-function profile: exclusive cycles and instructions from block execution counts.

The C hook counts, per halfword, the blocks that started there and the blocks that
ended just before it; the executions of each instruction are the running sum of
starts minus ends, exact however unicorn split its blocks.

With ``extras`` (:meth:`simcore.cycles.native.BlockAccounting.extra_arrays`) each
function also carries the dynamic cycles charged in it: its taken-branch refills, its
cache misses and single-cycle IO savings, so that the functions add up to the total.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simcore.cycles.classify import Classification, RangeCosts


@dataclass(frozen=True)
class FunctionProfile:
    """Exclusive cost of one function."""

    name: str
    start: int
    size_bytes: int
    cycles: int
    instructions: int


def exec_counts(
    r: RangeCosts, block_starts: npt.NDArray[np.uint64], block_ends: npt.NDArray[np.uint64]
) -> npt.NDArray[np.int64]:
    """Executions of the instruction starting at each halfword of ``r`` (0 elsewhere)."""
    live = np.cumsum(block_starts.astype(np.int64) - block_ends[:-1].astype(np.int64))
    is_insn = np.diff(r.prefix[:, 1].astype(np.int64)) > 0
    return np.where(is_insn, live, 0)


def range_costs(
    classification: Classification,
    counts: Sequence[tuple[int, npt.NDArray[np.uint64], npt.NDArray[np.uint64]]],
    extras: Sequence[npt.NDArray[np.int64]] | None = None,
) -> Iterator[tuple[RangeCosts, npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """Per code range: the range, executions and cycles charged at each halfword.

    Cycles are the executions times the static cost, plus ``extras`` (the dynamic
    cycles the accounting charged there: refills, cache misses) when given.
    """
    for i, (r, (start, block_starts, block_ends)) in enumerate(
        zip(classification.ranges, counts, strict=True)
    ):
        if start != r.start:
            raise ValueError("counts do not match the classification's ranges")
        n = exec_counts(r, block_starts, block_ends)
        cyc = n * r.cost.astype(np.int64)
        yield r, n, cyc if extras is None else (cyc + extras[i]).astype(np.int64)


def function_profile(
    classification: Classification,
    counts: Sequence[tuple[int, npt.NDArray[np.uint64], npt.NDArray[np.uint64]]],
    symbols: Sequence[tuple[str, int, int]],
    extras: Sequence[npt.NDArray[np.int64]] | None = None,
) -> list[FunctionProfile]:
    """Exclusive cycles and instructions per function, most cycles first.

    ``counts`` are the per-range block-start counts of
    :meth:`simcore.cycles.native.BlockAccounting.count_arrays`; ``symbols`` are
    ``(name, start, size_bytes)`` of the functions (Thumb bit ignored). Code outside
    every symbol is reported as ``"[unknown]"``. ``extras``: per range, dynamic cycles
    charged at each halfword, added to the function holding that halfword.
    """
    ordered = sorted(((n, s & ~1, z) for n, s, z in symbols if z > 0), key=lambda t: t[1])
    totals: dict[tuple[str, int, int], list[int]] = {}
    for r, n, cyc in range_costs(classification, counts, extras):
        addresses = r.start + 2 * np.arange(r.nhalf, dtype=np.int64)
        covered = np.zeros(r.nhalf, dtype=bool)
        for name, fstart, size in ordered:
            lo = max(0, (fstart - r.start) >> 1)
            hi = min(r.nhalf, (fstart + size - r.start + 1) >> 1)
            if lo >= hi:
                continue
            covered[lo:hi] = True
            key = (name, fstart, size)
            acc = totals.setdefault(key, [0, 0])
            acc[0] += int(cyc[lo:hi].sum())
            acc[1] += int(n[lo:hi].sum())
        rest = ~covered & ((n > 0) | (cyc != 0))
        if rest.any():
            key = ("[unknown]", int(addresses[rest][0]), 0)
            acc = totals.setdefault(key, [0, 0])
            acc[0] += int(cyc[rest].sum())
            acc[1] += int(n[rest].sum())
    out = [
        FunctionProfile(name, start, size, c, i)
        for (name, start, size), (c, i) in totals.items()
        if i > 0 or c != 0
    ]
    out.sort(key=lambda f: (-f.cycles, f.start))
    return out


def cycles_by_tag(
    classification: Classification,
    counts: Sequence[tuple[int, npt.NDArray[np.uint64], npt.NDArray[np.uint64]]],
    within: Sequence[tuple[int, int]] | None = None,
) -> dict[str, int]:
    """Static cycles executed per confidence tag of the timing rows (exact, proxy, ...).

    ``within``: only the code ranges starting inside one of these ``[start, end)``.
    """
    rows = classification.table.rows
    per_row = np.zeros(len(rows), dtype=np.int64)
    for r, (_, block_starts, block_ends) in zip(classification.ranges, counts, strict=True):
        if within is not None and not any(lo <= r.start < hi for lo, hi in within):
            continue
        n = exec_counts(r, block_starts, block_ends)
        mask = r.row_index >= 0
        np.add.at(
            per_row, r.row_index[mask].astype(np.int64), n[mask] * r.cost[mask].astype(np.int64)
        )
    out: dict[str, int] = {}
    for row, cycles in zip(rows, per_row.tolist(), strict=True):
        if cycles:
            out[row.tag.value] = out.get(row.tag.value, 0) + int(cycles)
    return out
