"""Per-function profile: exclusive cycles and instructions from block execution counts.

The C hook counts, per halfword, the blocks that started there and the blocks that
ended just before it; the executions of each instruction are the running sum of
starts minus ends, exact however unicorn split its blocks.

With ``extras`` (:meth:`simcore.cycles.native.BlockAccounting.extra_arrays`) each
function also carries the dynamic cycles charged in it: its taken-branch refills, its
cache misses and single-cycle IO savings, so that the functions add up to the total.

A run's report (:func:`function_profile`, :func:`cycles_by_tag`, :func:`range_cycles`)
is computed in plain Python over the executed halfwords only: a warm ``simcore run``
then never imports numpy. The count arrays may be numpy arrays, memoryviews or
``array.array`` (anything with ``tolist``); :func:`range_costs`, for the detailed
profile, works on whole numpy arrays.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import sub
from typing import TYPE_CHECKING, Any

from simcore.cycles.classify import Classification, RangeCosts

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Per range: (start, blocks started at halfword i, blocks ended before halfword i).
CountArrays = Sequence[tuple[int, Any, Any]]


@dataclass(frozen=True)
class FunctionProfile:
    """Exclusive cost of one function."""

    name: str
    start: int
    size_bytes: int
    cycles: int
    instructions: int


def exec_counts(r: RangeCosts, block_starts: Any, block_ends: Any) -> npt.NDArray[np.int64]:
    """Executions of the instruction starting at each halfword of ``r`` (0 elsewhere)."""
    import numpy as np

    starts, ends = np.asarray(block_starts), np.asarray(block_ends)
    live = np.cumsum(starts.astype(np.int64) - ends[:-1].astype(np.int64))
    is_insn = np.diff(np.asarray(r.prefix)[:, 1].astype(np.int64)) > 0
    return np.where(is_insn, live, 0)


def range_costs(
    classification: Classification,
    counts: CountArrays,
    extras: Sequence[Any] | None = None,
) -> Iterator[tuple[RangeCosts, npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """Per code range: the range, executions and cycles charged at each halfword (numpy).

    Cycles are the executions times the static cost, plus ``extras`` (the dynamic
    cycles the accounting charged there: refills, cache misses) when given.
    """
    import numpy as np

    for i, (r, (start, block_starts, block_ends)) in enumerate(
        zip(classification.ranges, counts, strict=True)
    ):
        if start != r.start:
            raise ValueError("counts do not match the classification's ranges")
        n = exec_counts(r, block_starts, block_ends)
        cyc = n * np.asarray(r.cost).astype(np.int64)
        yield r, n, cyc if extras is None else (cyc + np.asarray(extras[i])).astype(np.int64)


def _executed(
    r: RangeCosts, start: int, block_starts: Any, block_ends: Any, extra: Any
) -> tuple[list[int], list[int], list[int]]:
    """The halfwords of ``r`` that executed or were charged (``extra``: signed cycles per
    halfword, or None), with the executions and the cycles charged at each: the
    non-zero entries of :func:`range_costs`' arrays, in plain Python."""
    if start != r.start:
        raise ValueError("counts do not match the classification's ranges")
    live = list(accumulate(map(sub, block_starts.tolist(), block_ends.tolist())))  # nhalf
    insns = r.prefix.cast("B").cast("Q").tolist()[1::2]  # instruction-count prefix
    cost = r.cost.tolist()
    index = [i for i, n in enumerate(live) if n and insns[i + 1] != insns[i]]
    execs = [live[i] for i in index]
    cycles = [live[i] * cost[i] for i in index]
    if extra is None:
        return index, execs, cycles
    charged = [(i, c) for i, c in enumerate(extra.tolist()[: r.nhalf]) if c]
    if not charged:
        return index, execs, cycles
    merged: dict[int, list[int]] = {i: [n, c] for i, n, c in zip(index, execs, cycles, strict=True)}
    for i, c in charged:
        merged.setdefault(i, [0, 0])[1] += c
    keys = sorted(merged)
    return keys, [merged[i][0] for i in keys], [merged[i][1] for i in keys]


def range_cycles(
    classification: Classification,
    counts: CountArrays,
    extras: Sequence[Any] | None = None,
    within: Sequence[tuple[int, int]] | None = None,
) -> int:
    """Cycles charged in the code ranges (only those starting inside one of ``within``'s
    ``[start, end)``, if given): static costs of the executed instructions plus extras."""
    total = 0
    for i, (r, (start, block_starts, block_ends)) in enumerate(
        zip(classification.ranges, counts, strict=True)
    ):
        if within is not None and not any(lo <= r.start < hi for lo, hi in within):
            continue
        extra = None if extras is None else extras[i]
        total += sum(_executed(r, start, block_starts, block_ends, extra)[2])
    return total


def function_profile(
    classification: Classification,
    counts: CountArrays,
    symbols: Sequence[tuple[str, int, int]],
    extras: Sequence[Any] | None = None,
) -> list[FunctionProfile]:
    """Exclusive cycles and instructions per function, most cycles first.

    ``counts`` are the per-range block-start counts of
    :meth:`simcore.cycles.native.BlockAccounting.count_arrays`; ``symbols`` are
    ``(name, start, size_bytes)`` of the functions (Thumb bit ignored). Code outside
    every symbol is reported as ``"[unknown]"``. ``extras``: per range, dynamic cycles
    charged at each halfword (signed), added to the function holding that halfword.
    """
    ordered = sorted(((n, s & ~1, z) for n, s, z in symbols if z > 0), key=lambda t: t[1])
    totals: dict[tuple[str, int, int], list[int]] = {}
    for k, (r, (start, block_starts, block_ends)) in enumerate(
        zip(classification.ranges, counts, strict=True)
    ):
        extra = None if extras is None else extras[k]
        index, execs, cycles = _executed(r, start, block_starts, block_ends, extra)
        # Running sums over the executed halfwords: a function's share is a difference.
        sum_n = [0, *accumulate(execs)]
        sum_c = [0, *accumulate(cycles)]
        covered: list[list[int]] = []  # merged [lo, hi) spans of the functions
        for name, fstart, size in ordered:
            lo = max(0, (fstart - r.start) >> 1)
            hi = min(r.nhalf, (fstart + size - r.start + 1) >> 1)
            if lo >= hi:
                continue
            if covered and lo <= covered[-1][1]:
                covered[-1][1] = max(covered[-1][1], hi)
            else:
                covered.append([lo, hi])
            a, b = bisect_left(index, lo), bisect_left(index, hi)
            acc = totals.setdefault((name, fstart, size), [0, 0])
            acc[0] += sum_c[b] - sum_c[a]
            acc[1] += sum_n[b] - sum_n[a]
        ends = [hi for _, hi in covered]
        rest = [
            j
            for j, i in enumerate(index)
            if (k := bisect_left(ends, i + 1)) == len(covered) or i < covered[k][0]
        ]
        if rest:
            acc = totals.setdefault(("[unknown]", r.start + 2 * index[rest[0]], 0), [0, 0])
            acc[0] += sum(cycles[j] for j in rest)
            acc[1] += sum(execs[j] for j in rest)
    out = [
        FunctionProfile(name, start, size, c, i)
        for (name, start, size), (c, i) in totals.items()
        if i > 0 or c != 0
    ]
    out.sort(key=lambda f: (-f.cycles, f.start))
    return out


def cycles_by_tag(
    classification: Classification,
    counts: CountArrays,
    within: Sequence[tuple[int, int]] | None = None,
) -> dict[str, int]:
    """Static cycles executed per confidence tag of the timing rows (exact, proxy, ...).

    ``within``: only the code ranges starting inside one of these ``[start, end)``.
    """
    rows = classification.table.rows
    per_row = [0] * len(rows)
    for r, (start, block_starts, block_ends) in zip(classification.ranges, counts, strict=True):
        if within is not None and not any(lo <= r.start < hi for lo, hi in within):
            continue
        row_index = r.row_index
        index, _, cycles = _executed(r, start, block_starts, block_ends, None)
        for i, c in zip(index, cycles, strict=True):
            number = row_index[i]
            if number >= 0:
                per_row[number] += c
    out: dict[str, int] = {}
    for row, cycles_of_row in zip(rows, per_row, strict=True):
        if cycles_of_row:
            out[row.tag.value] = out.get(row.tag.value, 0) + cycles_of_row
    return out
