"""Profiles people can read: inclusive cycles, call counts, source lines and loops.

Everything here is computed after the run from the C hook's per-halfword block
counts (no extra hook, so it costs nothing while emulating):

- executions of every instruction (:func:`simcore.cycles.profile.exec_counts`);
- **calls**: executions of a function's first instruction (tail calls that
  branch to it count too); every executed ``BL``, and every branch to another
  function's first instruction (a tail call), is a call site, its target
  decoded from the instruction;
- **inclusive cycles** the way gprof apportions them: a function's own cycles
  plus, for each call site in it, the callee's inclusive cycles times the share
  of the callee's calls made from that site. Exact when a callee costs the same
  from every caller (NN kernels called once per layer: yes); calls through a
  register (``BLX Rm``) have no static target and stay in the caller's count of
  unattributed calls; recursion is cut at the repeated function;
- **source lines** from the DWARF line table, **loops** from backward branches
  (a loop is [branch target, branch], its cycles exclude the functions it calls).

With ``extras`` (:meth:`simcore.cycles.native.BlockAccounting.extra_arrays`),
as the per-function profile, each function, line and loop also carries the
taken-branch refills and memory stalls charged to its code, so the functions'
exclusive cycles add up to the run's (or the sample's) cycles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.cycles.classify import Classification
from simcore.cycles.profile import range_costs

Counts = Sequence[tuple[int, npt.NDArray[np.uint64], npt.NDArray[np.uint64]]]
LineAt = Callable[[int], "tuple[str, int] | None"]
#: Reads ``size`` bytes of code at an address (None when it is not in the image).
ReadCode = Callable[[int, int], "bytes | None"]


@dataclass
class FunctionCost:
    """One function: its own cycles, with callees, calls and instructions."""

    name: str
    start: int
    size_bytes: int
    exclusive_cycles: int = 0
    inclusive_cycles: float = 0.0
    instructions: int = 0
    calls: int = 0
    #: Executed call sites: (site address, target address, executions).
    sites: list[tuple[int, int | None, int]] = field(default_factory=list)

    def as_dict(self, total: int) -> dict[str, Any]:
        return {
            "function": self.name,
            "address": f"0x{self.start:08x}",
            "exclusive_cycles": self.exclusive_cycles,
            "inclusive_cycles": round(self.inclusive_cycles),
            "calls": self.calls,
            "instructions": self.instructions,
            "exclusive_share": round(self.exclusive_cycles / total, 6) if total else 0.0,
            "inclusive_share": round(self.inclusive_cycles / total, 6) if total else 0.0,
        }


@dataclass(frozen=True)
class LineCost:
    file: str
    line: int
    function: str
    cycles: int
    instructions: int

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function,
                "cycles": self.cycles, "instructions": self.instructions}  # fmt: skip


@dataclass(frozen=True)
class LoopCost:
    """A loop: the code from a backward branch's target to the branch."""

    function: str
    start: int
    end: int
    source: str
    cycles: int
    #: Executions of the loop's first instruction and of its backward branch.
    entries_plus_iterations: int
    back_branches: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "range": f"0x{self.start:08x}-0x{self.end:08x}",
            "source": self.source,
            "cycles": self.cycles,
            "header_executions": self.entries_plus_iterations,
            "back_branch_executions": self.back_branches,
        }


@dataclass
class DetailedProfile:
    """Functions (inclusive and exclusive), lines and loops of one run or one sample."""

    scope: str
    total_cycles: int
    functions: list[FunctionCost]
    lines: list[LineCost]
    loops: list[LoopCost]
    indirect_calls: int = 0

    def stacks(self, max_depth: int = 32) -> list[tuple[list[str], float]]:
        """Call stacks from the roots with the exclusive cycles spent in each, split
        by call counts the way the inclusive figures are (for flame graphs)."""
        by_start = {f.start: f for f in self.functions}
        callers: dict[int, list[tuple[FunctionCost, int]]] = defaultdict(list)
        for f in self.functions:
            for _, target, n in f.sites:
                if target in by_start:
                    callers[target].append((f, n))
        out: list[tuple[list[str], float]] = []

        def walk(f: FunctionCost, path: list[str], fraction: float, seen: set[int]) -> None:
            path = [*path, f.name]
            if f.exclusive_cycles and fraction > 0:
                out.append((path, f.exclusive_cycles * fraction))
            if len(path) >= max_depth:
                return
            for _, target, n in f.sites:
                callee = by_start.get(target) if target is not None else None
                if callee is None or callee.start in seen or not callee.calls:
                    continue
                walk(callee, path, fraction * min(1.0, n / callee.calls), seen | {callee.start})

        for f in self.functions:
            called = sum(n for _, n in callers.get(f.start, []))
            if called < f.calls or not callers.get(f.start):
                # A root: entered (at least partly) other than by a call from profiled code.
                share = 1.0 if not f.calls else (f.calls - called) / f.calls
                walk(f, [], share if called else 1.0, {f.start})
        merged: dict[tuple[str, ...], float] = {}  # one entry per stack (two call sites
        for path, cycles in out:  # of one callee in one caller give the same stack)
            merged[tuple(path)] = merged.get(tuple(path), 0.0) + cycles
        return [(list(path), cycles) for path, cycles in merged.items()]

    def as_dict(self, limit: int = 25) -> dict[str, Any]:
        total = self.total_cycles
        return {
            "scope": self.scope,
            "cycles": total,
            "functions": [f.as_dict(total) for f in self.functions[:limit]],
            "lines": [line.as_dict() for line in self.lines[:limit]],
            "loops": [loop.as_dict() for loop in self.loops[:limit]],
            "indirect_calls": self.indirect_calls,
            "method": "exclusive cycles counted; inclusive ones apportioned by call counts "
            "(gprof's method); each with the taken-branch refills and memory stalls of its "
            "own code",
        }


def _bl_target(address: int, hw1: int, hw2: int) -> int | None:
    """The target of a Thumb-2 ``BL`` at ``address`` (None if the pair is no BL)."""
    if hw1 & 0xF800 != 0xF000 or hw2 & 0xD000 != 0xD000:
        return None
    s = (hw1 >> 10) & 1
    i1 = 1 ^ (((hw2 >> 13) & 1) ^ s)
    i2 = 1 ^ (((hw2 >> 11) & 1) ^ s)
    imm = (s << 24) | (i1 << 23) | (i2 << 22) | ((hw1 & 0x3FF) << 12) | ((hw2 & 0x7FF) << 1)
    if s:
        imm -= 1 << 25
    return address + 4 + imm


def _back_branch(address: int, hw1: int, hw2: int) -> int | None:
    """The target of a backward B / B<cond> (16 or 32 bit) at ``address``, else None."""
    target = _branch_target(address, hw1, hw2)
    return target if target is not None and target <= address else None


def _branch_target(address: int, hw1: int, hw2: int) -> int | None:
    """The target of a B / B<cond> (16 or 32 bit) at ``address``, else None."""
    target: int | None = None
    if hw1 & 0xF000 == 0xD000 and hw1 & 0x0F00 not in (0x0E00, 0x0F00):  # B<c> T1
        off = hw1 & 0xFF
        target = address + 4 + ((off - 0x100 if off & 0x80 else off) << 1)
    elif hw1 & 0xF800 == 0xE000:  # B T2
        off = hw1 & 0x7FF
        target = address + 4 + ((off - 0x800 if off & 0x400 else off) << 1)
    elif hw1 & 0xF800 == 0xF000 and hw2 & 0xD000 == 0x9000:  # B.W T4
        s = (hw1 >> 10) & 1
        i1 = 1 ^ (((hw2 >> 13) & 1) ^ s)
        i2 = 1 ^ (((hw2 >> 11) & 1) ^ s)
        imm = (s << 24) | (i1 << 23) | (i2 << 22) | ((hw1 & 0x3FF) << 12) | ((hw2 & 0x7FF) << 1)
        target = address + 4 + (imm - (1 << 25) if s else imm)
    elif hw1 & 0xF800 == 0xF000 and hw2 & 0xD000 == 0x8000 and (hw1 >> 6) & 0xE != 0xE:
        s = (hw1 >> 10) & 1  # B<c>.W T3
        imm = (s << 20) | (((hw2 >> 11) & 1) << 19) | (((hw2 >> 13) & 1) << 18)
        imm |= ((hw1 & 0x3F) << 12) | ((hw2 & 0x7FF) << 1)
        target = address + 4 + (imm - (1 << 21) if s else imm)
    return target


def detailed_profile(
    classification: Classification,
    counts: Counts,
    symbols: Sequence[tuple[str, int, int]],
    line_at: LineAt,
    read_code: ReadCode,
    scope: str = "whole run",
    extras: Sequence[npt.NDArray[np.int64]] | None = None,
) -> DetailedProfile:
    """Build the profile from block counts and dynamic extras (see the module docstring)."""
    ordered = sorted(((n, s & ~1, z) for n, s, z in symbols if z > 0), key=lambda t: t[1])
    funcs = [FunctionCost(n, s, z) for n, s, z in ordered]
    starts = np.asarray([f.start for f in funcs], dtype=np.int64)
    by_start = {f.start: f for f in funcs}
    unknown = FunctionCost("[unknown]", 0, 0)
    lines: dict[tuple[str, int], list[Any]] = {}
    loops: list[LoopCost] = []
    indirect = 0
    total = 0

    def owner(address: int) -> FunctionCost:
        i = int(np.searchsorted(starts, address, side="right")) - 1
        if i >= 0 and address < funcs[i].start + funcs[i].size_bytes:
            return funcs[i]
        return unknown

    for r, n, cyc in range_costs(classification, counts, extras):
        total += int(cyc.sum())
        code = read_code(r.start, 2 * r.nhalf)
        hw = None if code is None else np.frombuffer(code, dtype="<u2")
        executed = np.flatnonzero((n > 0) | (cyc != 0))  # extras may sit on a 2nd halfword
        for i in executed.tolist():
            address = r.start + 2 * i
            f = owner(address)
            c, k = int(cyc[i]), int(n[i])
            f.exclusive_cycles += c
            f.instructions += k
            if address == f.start:
                f.calls += k
            where = line_at(address)
            if where is not None:
                acc = lines.setdefault(where, [f.name, 0, 0])
                acc[1] += c
                acc[2] += k
            if hw is None:
                continue
            h1 = int(hw[i])
            h2 = int(hw[i + 1]) if i + 1 < len(hw) else 0
            target = _bl_target(address, h1, h2)
            if target is not None:
                f.sites.append((address, target, k))
            elif h1 & 0xFF87 == 0x4780:  # BLX Rm
                f.sites.append((address, None, k))
                indirect += k
            jump = _branch_target(address, h1, h2)
            if jump is not None and jump != f.start and jump in by_start:
                f.sites.append((address, jump, k))  # a tail call: the callee runs for f
                continue
            back = jump if jump is not None and jump <= address else None
            if back is not None and back >= f.start and back >= r.start:
                lo, hi = (back - r.start) >> 1, i + 1
                src = line_at(back)
                loops.append(
                    LoopCost(
                        f.name, back, address, f"{src[0]}:{src[1]}" if src else "",
                        int(cyc[lo:hi].sum()), int(n[lo]), k,
                    )
                )  # fmt: skip
    if unknown.instructions:
        funcs.append(unknown)
    _inclusive(funcs, by_start)
    live = [f for f in funcs if f.instructions]
    live.sort(key=lambda f: (-f.inclusive_cycles, -f.exclusive_cycles, f.start))
    line_rows = [LineCost(file, line, fn, c, k) for (file, line), (fn, c, k) in lines.items() if c]
    line_rows.sort(key=lambda x: (-x.cycles, x.file, x.line))
    loops.sort(key=lambda x: (-x.cycles, x.start))
    return DetailedProfile(scope, total, live, line_rows, loops, indirect)


def _inclusive(funcs: list[FunctionCost], by_start: dict[int, FunctionCost]) -> None:
    """Fill ``inclusive_cycles`` bottom-up through the call sites (recursion cut)."""
    done: dict[int, float] = {}

    def incl(f: FunctionCost, stack: set[int]) -> float:
        if f.start in done:
            return done[f.start]
        value = float(f.exclusive_cycles)
        for _, target, n in f.sites:
            callee = by_start.get(target) if target is not None else None
            if callee is None or callee.start in stack or not callee.calls:
                continue
            value += incl(callee, stack | {callee.start}) * min(1.0, n / callee.calls)
        done[f.start] = value
        return value

    for f in funcs:
        f.inclusive_cycles = incl(f, {f.start})


def speedscope(profile: DetailedProfile, name: str, exporter: str) -> dict[str, Any]:
    """The profile as a speedscope file: one sampled profile, weights in cycles.

    The format is speedscope's own (https://www.speedscope.app/file-format-schema.json,
    src/lib/file-format-spec.ts in jlfwong/speedscope): shared frames, and per
    profile a list of stacks (frame indices, root first) with a weight each.
    """
    frames: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    samples: list[list[int]] = []
    weights: list[float] = []
    for path, cycles in profile.stacks():
        stack = []
        for fn in path:
            if fn not in index:
                index[fn] = len(frames)
                frames.append({"name": fn})
            stack.append(index[fn])
        samples.append(stack)
        weights.append(round(cycles, 3))
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": f"{name} ({profile.scope}, cycles)",
                "unit": "none",
                "startValue": 0,
                "endValue": round(sum(weights), 3),
                "samples": samples,
                "weights": weights,
            }
        ],
        "name": name,
        "activeProfileIndex": 0,
        "exporter": exporter,
    }


def chrome_trace(profile: DetailedProfile, name: str) -> dict[str, Any]:
    """The call tree as Chrome trace-event JSON ("X" complete events, 1 cycle = 1 us),
    for chrome://tracing and Perfetto. Events are laid out per stack, not in time order."""
    events: list[dict[str, Any]] = []
    # Lay out each distinct stack prefix once, children after their parent's start.
    tree: dict[tuple[str, ...], float] = defaultdict(float)
    for path, cycles in profile.stacks():
        for depth in range(1, len(path) + 1):
            tree[tuple(path[:depth])] += cycles
    cursor: dict[tuple[str, ...], float] = {}
    for key in sorted(tree, key=lambda k: (len(k), k)):
        parent = key[:-1]
        start = cursor.get(parent, 0.0) if parent else cursor.get((), 0.0)
        if parent:
            cursor[parent] = start + tree[key]
        else:
            cursor[()] = start + tree[key]
        cursor[key] = start
        events.append({"name": key[-1], "ph": "X", "ts": round(start, 3),
                       "dur": round(tree[key], 3), "pid": 1, "tid": 1})  # fmt: skip
    return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"name": name,
            "unit": "1 us = 1 modeled cycle"}}  # fmt: skip
