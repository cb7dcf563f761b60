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
from itertools import accumulate, compress, pairwise
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


class RunCounts:
    """The halfwords of a run's count arrays that executed or were charged, per code
    range: computed once per range (and once more with the extras) however many of
    :func:`cycles_by_tag`, :func:`range_cycles` and :func:`function_profile` read them.

    ``counts`` as :meth:`simcore.cycles.native.BlockAccounting.count_arrays` gives them
    (or its ``buffers``); ``extras``: per range, the signed dynamic cycles charged at
    each halfword (length nhalf or more), or None.
    """

    def __init__(
        self,
        classification: Classification,
        counts: CountArrays,
        extras: Sequence[Any] | None = None,
    ) -> None:
        if len(counts) != len(classification.ranges):
            raise ValueError("counts do not match the classification's ranges")
        for r, (start, _, _) in zip(classification.ranges, counts, strict=True):
            if start != r.start:
                raise ValueError("counts do not match the classification's ranges")
        self.classification = classification
        self.counts = counts
        self.extras = extras
        self._static: dict[int, tuple[list[int], list[int], list[int]]] = {}
        self._charged: dict[int, tuple[list[int], list[int], list[int]]] = {}

    def static(self, k: int) -> tuple[list[int], list[int], list[int]]:
        """Range ``k``'s executed instruction starts (halfword indices, ascending), their
        executions and static cycles."""
        found = self._static.get(k)
        if found is None:
            r, (_, block_starts, block_ends) = self.classification.ranges[k], self.counts[k]
            starts, ends = block_starts.tolist(), block_ends.tolist()
            # Executions change only where blocks start or end: the loops over every
            # halfword (tolist, compress) run in C, Python code sees those places and
            # the instructions that ran.
            places = sorted(
                {*compress(range(r.nhalf), starts), *compress(range(r.nhalf + 1), ends)}
            )
            index: list[int] = []
            execs: list[int] = []
            cycles: list[int] = []
            cost, insns = r.cost, r.insn_starts
            live = 0
            for at, after in pairwise(places):
                live += starts[at] - ends[at]
                if live:
                    ran = insns[bisect_left(insns, at) : bisect_left(insns, after)]
                    index += ran
                    execs += [live] * len(ran)
                    cycles += [live * cost[i] for i in ran]
            found = self._static[k] = (index, execs, cycles)
        return found

    def charged(self, k: int) -> tuple[list[int], list[int], list[int]]:
        """:meth:`static` with the extras added: every halfword that executed or was
        charged, its executions and all its cycles (the non-zero entries of
        :func:`range_costs`' arrays)."""
        if self.extras is None:
            return self.static(k)
        found = self._charged.get(k)
        if found is None:
            index, execs, cycles = self.static(k)
            values = self.extras[k].tolist()
            nhalf = self.classification.ranges[k].nhalf
            extra = {i: values[i] for i in compress(range(nhalf), values)}
            if not extra:
                found = (index, execs, cycles)
            else:
                merged = dict(zip(index, zip(execs, cycles, strict=True), strict=True))
                for i, c in extra.items():
                    n, static = merged.get(i, (0, 0))
                    merged[i] = (n, static + c)
                keys = sorted(merged)
                found = (keys, [merged[i][0] for i in keys], [merged[i][1] for i in keys])
            self._charged[k] = found
        return found

    def selected(self, within: Sequence[tuple[int, int]] | None) -> list[int]:
        """The ranges starting inside one of ``within``'s ``[start, end)`` (None: all)."""
        return [
            k
            for k, r in enumerate(self.classification.ranges)
            if within is None or any(lo <= r.start < hi for lo, hi in within)
        ]


def _run_counts(
    classification: Classification, counts: CountArrays | RunCounts, extras: Sequence[Any] | None
) -> RunCounts:
    if isinstance(counts, RunCounts):
        if extras is not None:
            raise ValueError("give the extras to RunCounts")
        return counts
    return RunCounts(classification, counts, extras)


def range_cycles(
    classification: Classification,
    counts: CountArrays | RunCounts,
    extras: Sequence[Any] | None = None,
    within: Sequence[tuple[int, int]] | None = None,
) -> int:
    """Cycles charged in the code ranges (only those starting inside one of ``within``'s
    ``[start, end)``, if given): static costs of the executed instructions plus extras."""
    run = _run_counts(classification, counts, extras)
    return sum(sum(run.charged(k)[2]) for k in run.selected(within))


def function_profile(
    classification: Classification,
    counts: CountArrays | RunCounts,
    symbols: Sequence[tuple[str, int, int]],
    extras: Sequence[Any] | None = None,
) -> list[FunctionProfile]:
    """Exclusive cycles and instructions per function, most cycles first.

    ``counts`` are the per-range block-start counts of
    :meth:`simcore.cycles.native.BlockAccounting.count_arrays` (or a :class:`RunCounts`
    of them); ``symbols`` are ``(name, start, size_bytes)`` of the functions (Thumb bit
    ignored). Code outside every symbol is reported as ``"[unknown]"``. ``extras``: per
    range, dynamic cycles charged at each halfword (signed), added to the function
    holding that halfword.
    """
    run = _run_counts(classification, counts, extras)
    ordered = sorted(((n, s & ~1, z) for n, s, z in symbols if z > 0), key=lambda t: t[1])
    totals: dict[tuple[str, int, int], list[int]] = {}
    for k, r in enumerate(classification.ranges):
        index, execs, cycles = run.charged(k)
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
            if (at := bisect_left(ends, i + 1)) == len(covered) or i < covered[at][0]
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
    counts: CountArrays | RunCounts,
    within: Sequence[tuple[int, int]] | None = None,
) -> dict[str, int]:
    """Static cycles executed per confidence tag of the timing rows (exact, proxy, ...).

    ``within``: only the code ranges starting inside one of these ``[start, end)``.
    """
    run = _run_counts(classification, counts, None)
    rows = classification.table.rows
    per_row = [0] * len(rows)
    for k in run.selected(within):
        row_index = classification.ranges[k].row_index
        index, _, cycles = run.static(k)
        for i, c in zip(index, cycles, strict=True):
            number = row_index[i]
            if number >= 0:
                per_row[number] += c
    out: dict[str, int] = {}
    for row, cycles_of_row in zip(rows, per_row, strict=True):
        if cycles_of_row:
            out[row.tag.value] = out.get(row.tag.value, 0) + cycles_of_row
    return out
