"""Run a firmware over any number of samples: one emulator start per batch, results merged.

A firmware's ``simcore_io`` buffers hold ``capacity`` samples. More samples
are run in batches of at most that many (:func:`simcore.inputs.batches`),
each batch a fresh reset of the board, as ``simcore validate`` does. The
batches' results merge into one :class:`~simcore.results.RunResult`:

- outputs, per-sample cycles and instructions, and traces in sample order
  (trace sample indices renumbered to the whole run);
- cycles, instructions, taken branches, cache counters, wall time and the
  per-function profile summed; the cycle-model shares weighted by cycles;
- flash and static RAM as in every batch; stack and heap peaks the largest;
- the console output of every batch, in order;
- the stop (reason, place, exit code) of the last batch run.

A batch that stops badly (a non-zero exit code, a breakpoint) ends the run
there: later batches are not run and a note says so. A fault raises as in a
single run, its message prefixed with the batch (``batch 2 of 3 (samples
16..31): ...``); the :class:`BatchRunner` keeps the console output and the
figures of the batches before it, so a caller can still report them.

Limits are for the whole run, not per batch: each batch gets what the
earlier ones left of the instruction budget and of the timeout.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from simcore.boards import BoardSpec
from simcore.cycles.model import MemoryModel, run_exactness
from simcore.elf import ElfImage
from simcore.errors import BudgetExhausted, SimError
from simcore.inputs import Batch, FirmwareIO, InputError, Inputs, batches
from simcore.limits import Limits
from simcore.memory import MemoryReport, Usage
from simcore.results import LayerSpan, RunResult, TraceRecord

Echo = Callable[[int, str], None]
#: A count of cycles in a note ("... (390605 cycles) ...").
_CYCLES = re.compile(r"(?<![\w.])[0-9]+(?= cycles\b)")
#: Counters of the cache report that add up over batches.
_CACHE_COUNTERS = ("fetch_hits", "fetch_misses", "data_hits", "data_misses", "miss_cycles")


@dataclass(frozen=True)
class BatchFigures:
    """What one batch (one emulator start) did."""

    index: int
    start: int
    samples: int
    cycles: int | None
    instructions: int | None
    wall_seconds: float
    exit_code: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": self.start,
            "samples": self.samples,
            "cycles": self.cycles,
            "instructions": self.instructions,
            "wall_seconds": round(self.wall_seconds, 6),
            "exit_code": self.exit_code,
        }


@dataclass
class BatchedRun:
    """A whole run: the merged result, each batch's figures and what was fed in."""

    result: RunResult
    batches: list[BatchFigures]
    #: Batches planned (more than ``len(batches)`` when a batch stopped the run early).
    planned: int
    capacity: int | None
    inputs: Inputs | None

    def as_dict(self) -> dict[str, Any]:
        """The result's dictionary plus ``batches`` and ``inputs``."""
        out = self.result.as_dict()
        out["batches"] = batches_dict(self.batches, self.planned, self.capacity)
        out["inputs"] = None if self.inputs is None else self.inputs.as_dict()
        return out


def batches_dict(done: list[BatchFigures], planned: int, capacity: int | None) -> dict[str, Any]:
    """``{"count", "planned", "capacity_samples", "runs"}``: how a run was split, as JSON."""
    return {
        "count": len(done),
        "planned": planned,
        "capacity_samples": capacity,
        "runs": [b.as_dict() for b in done],
    }


class BatchRunner:
    """Run one firmware on one board in batches, keeping console and figures as it goes.

    ``stdout``/``stderr`` and ``finished`` stay readable after :meth:`run`
    raised: they hold everything up to and including the failing batch's
    console output.
    """

    def __init__(
        self,
        image: ElfImage,
        board: BoardSpec,
        *,
        limits: Limits | None = None,
        trace: bool = False,
        memory_model: MemoryModel | str = MemoryModel.MODELED,
        profile_limit: int | None = 50,
        echo: Echo | None = None,
        profile_detail: bool = False,
        profile_sample: int | None = None,
        data_hits: bool = True,
    ) -> None:
        self.image = image
        #: Count the flash cache's data hits (RunOptions.data_hits).
        self.data_hits = data_hits
        self.board = board
        self.limits = limits or Limits()
        self.trace = trace
        self.memory_model = MemoryModel(memory_model)
        self.profile_limit = profile_limit
        #: The detailed profile: of sample ``profile_sample`` (in whichever batch runs
        #: it), else of the first batch.
        self.profile_detail = profile_detail
        self.profile_sample = profile_sample
        self._echo = echo
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        #: The batches run so far, the number planned and the firmware's capacity.
        self.finished: list[BatchFigures] = []
        self.planned = 0
        self.capacity: int | None = None

    @property
    def stdout(self) -> str:
        """Console output (fd 1) of every batch so far."""
        return "".join(self._stdout)

    @property
    def stderr(self) -> str:
        """Console output (fd 2) of every batch so far."""
        return "".join(self._stderr)

    def _capture(self, fd: int, text: str) -> None:
        (self._stderr if fd == 2 else self._stdout).append(text)
        if self._echo is not None:
            self._echo(fd, text)

    def run(
        self,
        fw: FirmwareIO | None,
        inputs: Inputs | None = None,
        n_samples: int | None = None,
    ) -> BatchedRun:
        """Run ``inputs`` (or ``n_samples`` samples of whatever the buffer holds) in batches.

        Without either, the firmware runs once with its own sample count.
        ``fw`` (from :func:`simcore.inputs.require_io`) is required with them.
        """
        if inputs is not None:
            n_samples = inputs.n_samples
        if n_samples is not None and fw is None:
            raise InputError(
                f"{self.image.path.name}: samples given without the firmware's simcore_io",
                hint="get it with simcore.inputs.require_io",
            )
        sample = self.profile_sample
        if sample is not None and (sample < 0 or (n_samples is not None and sample >= n_samples)):
            raise InputError(
                f"cannot profile sample {sample}: the run has "
                f"{n_samples if n_samples is not None else 'no'} samples",
                hint="give a sample index from 0 to the number of samples - 1",
            )
        if n_samples is None or fw is None:
            plan: list[Batch | None] = [None]
        else:
            plan = list(batches(n_samples, fw.capacity))
        self.planned = len(plan)
        self.capacity = None if fw is None else fw.capacity
        started = time.perf_counter()
        results: list[RunResult] = []
        for batch in plan:
            result = self._run_one(batch, len(plan), inputs, started)
            results.append(result)
            self.finished.append(
                BatchFigures(
                    index=0 if batch is None else batch.index,
                    start=0 if batch is None else batch.start,
                    samples=result.n_samples,
                    cycles=result.cycles,
                    instructions=result.instructions,
                    wall_seconds=result.wall_seconds,
                    exit_code=result.exit_code,
                )
            )
            if not result.ok:
                break
        merged = results[0] if len(results) == 1 else merge_results(results, self.profile_limit)
        notes = list(fw.notes) if fw is not None else []
        if len(results) < len(plan):
            left = plan[len(results)]
            assert left is not None
            notes.append(
                f"the run stopped in batch {len(results)} of {len(plan)}: samples "
                f"{left.start} and later were not run"
            )
        if notes:
            merged = replace(merged, notes=[*merged.notes, *notes])
        return BatchedRun(merged, list(self.finished), self.planned, self.capacity, inputs)

    def progress(self) -> dict[str, Any]:
        """How far the run got, as :func:`batches_dict` (for a report after a fault)."""
        return batches_dict(self.finished, self.planned, self.capacity)

    def _run_one(
        self, batch: Batch | None, total: int, inputs: Inputs | None, started: float
    ) -> RunResult:
        from simcore.api import unchecked
        from simcore.engine import run_firmware

        where = None if batch is None or total == 1 else batch.describe(total)
        timeout, budget = self._left(started, where)
        data = None
        if inputs is not None and batch is not None:
            data = inputs.sample_bytes(batch.start, batch.count)
        first = 0 if batch is None else batch.start
        count = None if batch is None else batch.count
        sample = self.profile_sample
        in_batch = sample is not None and (count is None or first <= sample < first + count)
        detail = self.profile_detail and (in_batch if sample is not None else first == 0)
        try:
            result = unchecked(run_firmware)(
                self.image,
                self.board,
                inputs=data,
                n_samples=None if batch is None else batch.count,
                trace=self.trace,
                max_instructions=budget,
                timeout_s=timeout,
                echo=self._capture,
                memory_model=self.memory_model,
                profile_limit=self.profile_limit if total == 1 else None,
                profile_detail=detail,
                profile_sample=None if sample is None or not detail else sample - first,
                data_hits=self.data_hits,
            )
            if result.profile_detail is not None:  # name the scope in the whole run's terms
                result.profile_detail.scope = (
                    f"sample {sample}"
                    if sample is not None
                    else "whole run"
                    if total == 1
                    else f"batch 1 of {total} (samples {first}..{first + (count or 1) - 1})"
                )
            return result
        except SimError as exc:
            if where is not None:
                if isinstance(exc, BudgetExhausted):
                    _reword(exc, self._whole_run_budget(exc.message))
                _reword(exc, f"{where}: {exc.message}")
            raise

    def _left(self, started: float, where: str | None) -> tuple[float | None, int | None]:
        """(timeout, instruction budget) left for the next batch; raise when none is."""
        timeout = self.limits.timeout_s
        if timeout is not None:
            timeout -= time.perf_counter() - started
        budget = self.limits.max_instructions
        if budget is not None:
            budget -= sum(b.instructions or 0 for b in self.finished)
        for left, what in (
            (timeout, f"timeout of {self.limits.timeout_s:g} s"),
            (budget, f"instruction budget of {self.limits.max_instructions or 0:,}"),
        ):
            if left is not None and left <= 0:
                raise BudgetExhausted(
                    f"{what} exhausted before {where}",
                    hint="raise --max-instructions/--timeout, or give fewer samples",
                )
        return timeout, budget

    def _whole_run_budget(self, message: str) -> str:
        """The engine names the limit it was given (what was left): name the run's own."""
        head, sep, rest = message.partition(" exhausted")
        if not sep:
            return message
        if head.startswith("timeout") and self.limits.timeout_s is not None:
            head = f"timeout of {self.limits.timeout_s:g} s"
        elif head.startswith("instruction budget") and self.limits.max_instructions is not None:
            head = f"instruction budget of {self.limits.max_instructions:,}"
        return f"{head}{sep}{rest}"


def _reword(exc: SimError, message: str) -> None:
    """Give a raised error a new message, keeping its class, exit code, hint and place."""
    exc.message = message
    exc.args = (message if exc.hint is None else f"{message}; {exc.hint}",)


# -- merging --------------------------------------------------------------------


def merge_results(results: list[RunResult], profile_limit: int | None = 50) -> RunResult:
    """One RunResult for batches run one after the other (see the module docstring)."""
    last = results[-1]
    traces: list[TraceRecord] = []
    spans: list[LayerSpan] = []
    offset = 0
    for r in results:
        traces.extend(replace(t, sample_index=t.sample_index + offset) for t in r.traces)
        spans.extend(replace(s, sample_index=s.sample_index + offset) for s in r.layer_spans)
        offset += r.n_samples
    counted = all(r.cycles is not None for r in results)
    return replace(
        last,
        stdout="".join(r.stdout for r in results),
        stderr="".join(r.stderr for r in results),
        outputs=b"".join(r.outputs for r in results),
        n_samples=sum(r.n_samples for r in results),
        memory=_merge_memory([r.memory for r in results]),
        wall_seconds=sum(r.wall_seconds for r in results),
        traces=traces,
        instructions=sum(r.instructions or 0 for r in results) if counted else None,
        cycles=sum(r.cycles or 0 for r in results) if counted else None,
        sample_cycles=[c for r in results for c in r.sample_cycles],
        sample_instructions=[n for r in results for n in r.sample_instructions],
        layer_spans=spans,
        profile_detail=next((r.profile_detail for r in results if r.profile_detail), None),
        cycle_report=_merge_reports([r.cycle_report for r in results], profile_limit)
        if counted
        else {},
        notes=merge_notes([r.notes for r in results]),
    )


def merge_notes(per_run: list[list[str]]) -> list[str]:
    """The runs' notes, each once; cycle counts in notes that differ only by them are summed.

    Each batch notes e.g. "taken-branch refills (390605 cycles)": the run has one
    such note with the total. Other numbers (addresses, sizes) are not added up:
    a note that differs in them is kept once per distinct text.
    """
    sums: dict[str, list[int]] = {}
    for notes in per_run:
        for note in notes:
            counts = [int(m) for m in _CYCLES.findall(note)]
            total = sums.setdefault(_CYCLES.sub("\0", note), [0] * len(counts))
            for i, n in enumerate(counts):
                total[i] += n
    out = []
    for key, totals in sums.items():
        parts = key.split("\0")
        text = parts[0]
        for number, part in zip(totals, parts[1:], strict=True):
            text += f"{number}{part}"
        out.append(text)
    return out


def _merge_memory(reports: list[MemoryReport]) -> MemoryReport:
    first = reports[0]

    def peak(name: str) -> Usage:
        usages: list[Usage] = [getattr(m, name) for m in reports]
        return replace(usages[0], used_bytes=max(u.used_bytes for u in usages))

    def deepest(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    regions = tuple(
        replace(
            region,
            stack_peak_bytes=deepest([m.regions[i].stack_peak_bytes for m in reports]),
            heap_peak_bytes=deepest([m.regions[i].heap_peak_bytes for m in reports]),
        )
        for i, region in enumerate(first.regions)
    )
    return MemoryReport(
        flash=first.flash,
        static_ram=first.static_ram,
        stack_peak=peak("stack_peak"),
        heap_peak=peak("heap_peak"),
        stack_overflowed_paint=any(m.stack_overflowed_paint for m in reports),
        regions=regions,
        harness=first.harness,
    )


def _merge_reports(reports: list[dict[str, Any]], profile_limit: int | None) -> dict[str, Any]:
    """Sum the cycle model's reports of several runs of the same ELF on the same board."""
    out = dict(reports[-1])
    cycles = sum(int(r["cycles"]) for r in reports)
    out["cycles"] = cycles
    out["instructions"] = sum(int(r.get("instructions") or 0) for r in reports)
    out["seconds_at_clock"] = cycles / out["clock_hz"]
    out["taken_branches"] = sum(int(r.get("taken_branches") or 0) for r in reports)
    shares: dict[str, float] = {}
    for r in reports:
        weight = int(r["cycles"]) / (cycles or 1)
        for tag, share in r["cycle_model"]["share_by_tag"].items():
            shares[tag] = shares.get(tag, 0.0) + share * weight
    merged = {tag: round(v, 6) for tag, v in sorted(shares.items())}
    model = reports[-1]["cycle_model"]
    exactness, inexact = run_exactness(model.get("table_exactness", model["exactness"]), merged)
    out["cycle_model"] = {
        **model,
        "exactness": exactness,
        "inexact_share": round(inexact, 6),
        "share_by_tag": merged,
    }
    if reports[-1].get("cache"):
        cache = dict(reports[-1]["cache"])
        for key in _CACHE_COUNTERS:
            values = [(r.get("cache") or {}).get(key) for r in reports]
            cache[key] = None if any(v is None for v in values) else sum(values)
        out["cache"] = cache
    totals: dict[tuple[str, str], list[int]] = {}
    for r in reports:
        for entry in r.get("profile", []):
            t = totals.setdefault((entry["function"], entry["address"]), [0, 0])
            t[0] += int(entry["cycles"])
            t[1] += int(entry["instructions"])
    grand = sum(c for c, _ in totals.values()) or 1
    ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0][0]))
    profile = [
        {
            "function": function,
            "address": address,
            "cycles": c,
            "instructions": n,
            "share": round(c / grand, 6),
        }
        for (function, address), (c, n) in ranked
    ]
    out["profile"] = profile if profile_limit is None else profile[:profile_limit]
    return out


__all__ = [
    "BatchFigures",
    "BatchRunner",
    "BatchedRun",
    "batches_dict",
    "merge_notes",
    "merge_results",
]
