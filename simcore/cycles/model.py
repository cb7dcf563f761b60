"""The cycle model of one run, assembled from an ELF image and a board: the engine's entry point.

The engine creates one :class:`CycleModel` per run, calls :meth:`CycleModel.install` on
its unicorn engine before ``emu_start`` (and passes its instruction budget here rather
than ``emu_start(count=)``, which adds a per-instruction hook), serves DWT/SysTick reads
with :meth:`CycleModel.cycles_at_access`, calls :meth:`CycleModel.check` after the run
and puts :meth:`CycleModel.report` into the run result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from simcore.boards import BoardSpec
from simcore.cycles.classify import Classification, CodeRange, MappingSymbol, classify
from simcore.cycles.native import BlockAccounting, StopReason
from simcore.cycles.profile import (
    CountArrays,
    RunCounts,
    cycles_by_tag,
    function_profile,
    range_cycles,
)
from simcore.cycles.tables import TimingTable, cache_for, table_for
from simcore.elf import CodeSection, ElfImage

if TYPE_CHECKING:  # the engine owns unicorn; this module only passes its object on
    import numpy as np
    import numpy.typing as npt
    from unicorn import Uc

    from simcore.cycles.callgraph import Counts, DetailedProfile


class MemoryModel(Enum):
    """``modeled``: misses cost what the board's [cache] says; ``ideal``: nothing (counts kept)."""

    MODELED = "modeled"
    IDEAL = "ideal"


@dataclass(frozen=True)
class ProfileEntry:
    """One line of the per-function profile (exclusive, static costs)."""

    function: str
    address: int
    cycles: int
    instructions: int
    share: float


#: The tag of the cycles spent in the bootrom's code (simcore.rom: not the real ROM's code).
ROM_CYCLE_TAG = "approximate"

#: A run is tagged "exact" only when less than this share of its cycles comes from rows
#: or charges that are not exact (cache misses, proxy or approximate timing rows).
EXACT_SHARE_THRESHOLD = 0.01


def run_exactness(table_exactness: str, share_by_tag: dict[str, float]) -> tuple[str, float]:
    """The tag a run's cycle figure deserves, and the share of its cycles that is not exact.

    An exact core table gives an "exact" run only while the inexact share (cache misses,
    rows tagged other than exact) stays below :data:`EXACT_SHARE_THRESHOLD`; otherwise
    the run is "approximate". A table that is not exact keeps its own tag.
    """
    inexact = sum(share for tag, share in share_by_tag.items() if tag != "exact")
    if table_exactness == "exact" and inexact >= EXACT_SHARE_THRESHOLD:
        return "approximate", inexact
    return table_exactness, inexact


def flash_data_bytes(image: ElfImage, start: int, end: int) -> int:
    """Bytes of ``image`` loaded into ``[start, end)`` that a program may read as data.

    Everything loaded there except Thumb code: rodata, literal pools ($d spans of code
    sections) and load images copied at start-up (.data, code run from RAM or TCM).
    """
    loaded = sum(
        max(0, min(end, seg.load_address + len(seg.data)) - max(start, seg.load_address))
        for seg in image.segments
    )
    code = 0
    for sec in image.code_sections:
        lo, hi = max(start, sec.address), min(end, sec.address + len(sec.data))
        if lo >= hi:
            continue
        marks = sorted(sec.mapping) or [(sec.address, "t")]
        bounds = [*marks[1:], (sec.address + len(sec.data), "")]
        for (at, kind), (nxt, _) in zip(marks, bounds, strict=True):
            if kind == "t":
                code += max(0, min(hi, nxt) - max(lo, at))
    return max(0, loaded - code)


def classify_image(
    image: ElfImage, core: str | TimingTable, apart: Sequence[tuple[int, int]] = ()
) -> Classification:
    """Classify the executable sections of ``image`` with their own mapping symbols.

    Sections starting inside ``apart`` (the bootrom: the same code under every
    program) are classified, and cached, on their own: each new firmware then
    classifies only its own code.
    """
    groups: tuple[list[CodeSection], list[CodeSection]] = ([], [])
    for s in image.code_sections:
        if s.data:
            groups[any(lo <= s.address < hi for lo, hi in apart)].append(s)
    parts = [
        classify(
            core,
            [CodeRange(s.address, s.data) for s in group],
            [MappingSymbol(address, kind) for s in group for address, kind in s.mapping],
        )
        for group in groups
        if group or group is groups[0]
    ]
    if len(parts) == 1:
        return parts[0]
    ranges = sorted((r for part in parts for r in part.ranges), key=lambda r: r.start)
    return Classification(table=parts[0].table, ranges=tuple(ranges))


class CycleModel:
    """Cycle and cache accounting of one firmware run on one board.

    ``budget`` is an instruction budget (0: none) enforced by the C hook;
    ``data_reads=False`` turns off flash data-read modeling where the board has it
    (each load from flash then stays on unicorn's fast path: faster, and uncharged);
    ``data_hits=False`` keeps it exact but leaves the data hits uncounted (see
    :class:`~simcore.cycles.native.BlockAccounting`).
    """

    def __init__(
        self,
        image: ElfImage,
        board: BoardSpec,
        *,
        memory_model: MemoryModel = MemoryModel.MODELED,
        budget: int = 0,
        data_reads: bool = True,
        rom_ranges: Sequence[tuple[int, int]] = (),
        data_hits: bool = True,
    ) -> None:
        self.image = image
        #: ``[start, end)`` of the board's bootrom code (simcore.rom): its cycles are
        #: reported apart and tagged approximate.
        self.rom_ranges = tuple(rom_ranges)
        self.board = board
        self.memory_model = memory_model
        self.table = table_for(board)
        self.classification = classify_image(image, self.table, self.rom_ranges)
        self.cache = cache_for(board, ideal=memory_model is MemoryModel.IDEAL)
        self.accounting = BlockAccounting(
            self.classification,
            budget=budget,
            cache=self.cache,
            data_reads=data_reads,
            data_hits=data_hits,
            loaded=[
                (seg.load_address, seg.load_address + len(seg.data))
                for seg in image.segments
                if seg.data
            ],
        )

    def install(self, uc: Uc) -> None:
        """Register the C hooks on the engine (before ``emu_start``)."""
        self.accounting.install(uc)

    @property
    def cycles(self) -> int:
        return self.accounting.cycles

    @property
    def instructions(self) -> int:
        return self.accounting.instructions

    @property
    def budget_exhausted(self) -> bool:
        return self.accounting.stop_reason is StopReason.BUDGET

    def cycles_at(self, pc: int) -> int:
        """Cycles before the instruction at ``pc`` of the current block.

        At a ``done`` hook (PC = start of the ``done`` block) this is the run's total
        without the ``done`` loop itself.
        """
        return self.accounting.cycles_at(pc)

    def cycles_at_access(self, uc: Uc, address: int, *, write: bool = False) -> int:
        """Cycles before the instruction reading (or writing) ``address``: call from an
        MMIO callback, exactly once per access (it tracks the accesses of the block)."""
        return self.accounting.cycles_at_access(uc, address, write=write)

    def check(self) -> None:
        """Raise :class:`~simcore.errors.CycleModelError` if an executed block had no
        timing entry (unknown instruction, data, or code outside the ELF's sections)."""
        self.accounting.check()

    def profile(
        self, limit: int | None = None, *, final_pc: int | None = None
    ) -> list[ProfileEntry]:
        """Exclusive cycles per function, most first: the static costs of its executed
        instructions plus its taken-branch refills and memory stalls. They add up to
        :meth:`cycles_at` ``(final_pc)`` (the run's total when ``final_pc`` is None).
        """
        return self._profile(self._run_counts(final_pc), limit)

    def _profile(self, run: RunCounts, limit: int | None) -> list[ProfileEntry]:
        if limit == 0:  # none wanted (a human summary without --profile): none computed
            return []
        # Aliases (one body, several names, as newlib's _vfiprintf_r/_vfprintf_r) are
        # reported once, named "a/b".
        names: dict[tuple[int, int], list[str]] = {}
        for s in self.image.symbols.values():
            if s.kind == "func" and s.size_bytes > 0:
                names.setdefault((s.address, s.size_bytes), []).append(s.name)
        symbols = [("/".join(sorted(n)), a, z) for (a, z), n in names.items()]
        entries = function_profile(self.classification, run, symbols)
        total = sum(e.cycles for e in entries) or 1
        out = [
            ProfileEntry(e.name, e.start, e.cycles, e.instructions, e.cycles / total)
            for e in entries
        ]
        return out if limit is None else out[:limit]

    def detailed_profile(
        self,
        counts: Counts | None = None,
        scope: str = "whole run",
        extras: Sequence[npt.NDArray[np.int64]] | None = None,
        final_pc: int | None = None,
    ) -> DetailedProfile:
        """Inclusive and exclusive cycles, calls, lines and loops (:mod:`simcore.cycles.callgraph`)
        of the whole run, or of ``counts`` and ``extras`` (block counts and dynamic
        cycles of a part of it). ``final_pc``: where the whole run stopped."""
        from simcore.cycles.callgraph import detailed_profile

        symbols = [
            (s.name, s.address, s.size_bytes)
            for s in self.image.symbols.values()
            if s.kind == "func" and s.size_bytes > 0
        ]
        return detailed_profile(
            self.classification,
            self._counts(final_pc) if counts is None else counts,
            symbols,
            self.image.line_at,
            self.image.initial_bytes,
            scope,
            self.accounting.extra_arrays() if counts is None else extras,
        )

    def _rom_report(self, run: RunCounts, by_tag: dict[str, int]) -> dict[str, Any] | None:
        """Cycles spent in the bootrom's code (with its refills and stalls), moved to the
        approximate tag in ``by_tag``; None when no ROM code ran."""
        if not self.rom_ranges:
            return None
        static = cycles_by_tag(self.classification, run, self.rom_ranges)
        total = range_cycles(self.classification, run, within=self.rom_ranges)
        if total == 0:
            return None
        for tag, cycles in static.items():
            by_tag[tag] -= cycles
        by_tag[ROM_CYCLE_TAG] = by_tag.get(ROM_CYCLE_TAG, 0) + sum(static.values())
        return {
            "cycles": total,
            "tag": ROM_CYCLE_TAG,
            "note": f"cycles in the bootrom ({total:,}, in functions named rom:...) are those "
            "of simcore's own ROM code timed with the core's table; the real bootrom's code "
            "differs: tagged approximate",
        }

    def _counts(
        self, final_pc: int | None
    ) -> list[tuple[int, npt.NDArray[np.uint64], npt.NDArray[np.uint64]]]:
        if final_pc is None:
            return self.accounting.count_arrays()
        return self.accounting.cut_at(final_pc)

    def _plain_counts(self, final_pc: int | None) -> CountArrays:
        """:meth:`_counts` without numpy: the accounting's buffers, the ends of the block
        that ``final_pc`` cut copied and moved (as ``BlockAccounting.cut_at`` does)."""
        out = [(start, counts, ends) for start, counts, ends, _ in self.accounting.buffers()]
        if final_pc is None:
            return out
        snap = self.accounting.snapshot()
        start, end = snap["block_start"], snap["block_end"]
        r = self.classification.range_at(start)
        if not start <= final_pc < end or r is None:
            return out
        fixed: list[tuple[int, Any, Any]] = []
        for base, counts, ends in out:
            if base == r.start:
                ends = memoryview(bytearray(ends)).cast("Q")
                ends[(final_pc - base) >> 1] += 1
                ends[(end - base) >> 1] -= 1
            fixed.append((base, counts, ends))
        return fixed

    def _run_counts(self, final_pc: int | None) -> RunCounts:
        """What ran, with the dynamic cycles, for the report's functions to share (read
        without numpy: :meth:`_plain_counts`, and the accounting's extra cycles as signed
        views with one spare slot at the end, which RunCounts leaves out)."""
        extras = [extra.cast("B").cast("q") for _, _, _, extra in self.accounting.buffers()]
        return RunCounts(self.classification, self._plain_counts(final_pc), extras)

    def report(
        self, *, final_pc: int | None = None, profile_limit: int | None = 50
    ) -> dict[str, Any]:
        """JSON-ready figures of the run (``final_pc``: the stop PC, to leave out the
        ``done`` block when the run stopped at its start)."""
        cycles = self.cycles if final_pc is None else self.cycles_at(final_pc)
        snap = self.accounting.snapshot()
        run = self._run_counts(final_pc)
        by_tag = cycles_by_tag(self.classification, run)
        refill = snap["taken_branches"] * self.accounting.refill_cycles
        by_tag[self.table.refill_tag.value] = by_tag.get(self.table.refill_tag.value, 0) + refill
        notes = [
            "profile: exclusive cycles per function, with its taken-branch refills "
            f"({refill} cycles in all) and memory stalls; the functions add up to the total"
        ]
        rom = self._rom_report(run, by_tag)
        if rom is not None:
            notes.append(rom["note"])
        cache: dict[str, Any] | None = None
        stats = self.accounting.cache_stats()
        if stats is not None and self.cache is not None:
            # Say that data reads are left out only when this binary has data there.
            data_reads, data_note = "modeled", stats.note
            if not stats.data_reads_modeled:
                data_reads = "not modeled"
                if not flash_data_bytes(self.image, self.cache.start, self.cache.end):
                    data_reads = "none"
                    data_note = "nothing to model: this binary loads no data into the region"
            by_tag[self.cache.tag.value] = by_tag.get(self.cache.tag.value, 0) + stats.miss_cycles
            cache = {
                "region": f"0x{self.cache.start:08x}-0x{self.cache.end:08x}",
                "size_bytes": self.cache.size_bytes,
                "ways": self.cache.ways,
                "line_bytes": self.cache.line_bytes,
                "miss_cycles_each": self.cache.miss_cycles,
                "fetch_hits": stats.fetch_hits,
                "fetch_misses": stats.fetch_misses,
                "data_hits": stats.data_hits if stats.data_reads_modeled else None,
                "data_misses": stats.data_misses if stats.data_reads_modeled else None,
                "data_reads": data_reads,
                "data_reads_note": data_note,
                "miss_cycles": stats.miss_cycles,
            }
        total_tagged = sum(by_tag.values()) or 1
        shares = {tag: round(n / total_tagged, 6) for tag, n in sorted(by_tag.items())}
        exactness, inexact = run_exactness(self.table.exactness.value, shares)
        return {
            "cycles": cycles,
            "instructions": self.instructions,
            "seconds_at_clock": cycles / self.board.clock_hz,
            "clock_hz": self.board.clock_hz,
            "cycle_model": {
                "core": self.table.core,
                "exactness": exactness,
                "table_exactness": self.table.exactness.value,
                "inexact_share": round(inexact, 6),
                "exact_share_threshold": EXACT_SHARE_THRESHOLD,
                "summary": self.table.summary,
                "share_by_tag": shares,
                "memory_model": self.memory_model.value,
            },
            "taken_branches": snap["taken_branches"],
            "rom": rom,
            "cache": cache,
            "profile": [
                {
                    "function": e.function,
                    "address": f"0x{e.address:08x}",
                    "cycles": e.cycles,
                    "instructions": e.instructions,
                    "share": round(e.share, 6),
                }
                for e in self._profile(run, profile_limit)
            ],
            "notes": notes,
        }


__all__ = [
    "EXACT_SHARE_THRESHOLD",
    "CycleModel",
    "MemoryModel",
    "ProfileEntry",
    "classify_image",
    "run_exactness",
]
