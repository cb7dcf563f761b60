"""Classify executable code with capstone into per-halfword prefix sums of cost and count.

For each code range the result holds ``prefix[i] = (cost, count)`` summed over the
instructions that start at halfwords ``< i``, so the cost of a unicorn block
``[start, end)`` is ``prefix[end] - prefix[start]`` exactly, however unicorn splits
its translation blocks. Halfwords that are data (``$d``), undecodable, or an
instruction without a timing-table entry (or, on the M0+, not an Armv6-M
instruction) add :data:`UNKNOWN_COST` to the cost prefix: a block containing one
costs at least that much, which the C hook detects with a single compare.

Context-dependent costs are computed statically between address-consecutive
instructions, as if execution always fell through from the previous address. The
scheduler issues in order; each register a consumer reads has a role (address,
early/inline-shifted, multiplicand, accumulator, store data, flags, or normal), and
the producer's row gives its latency to that role. On dual-issue cores (M7, M33) two
consecutive instructions pair when the table's slot, unit and operand rules allow
(see the header of data/timing/cortex-m7.toml and simcore/data/timing/README.md). The M0+ table is
scalar with no latencies, so its costs are the table's cycles.

The scoreboard and pairing restart (all registers ready, no open issue slot) at the
start of a Thumb segment, after an unknown halfword, after any instruction that
always leaves the sequence (B, BL, BX, BLX, a write to PC, TBB/TBH) and at every
direct branch target in the code. What this misses: the real predecessor of an
instruction reached by a jump (a loop head's latencies and pairing with the loop's
last instruction, which are taken as "all ready"); latencies longer than a
straight-line run; pairing across a taken branch; data-dependent costs (divide early
termination, IT-skipped instructions are charged like executed ones).

Each distinct encoding is decoded with capstone and analysed once (timing-table row,
registers read by role and written, branch target); the analyses are kept on disk per
timing table (``encodings`` in simcore.cache), so a new ELF made mostly of encodings
other ELFs had (the C library, the runtime, a relinked program) is classified
without importing capstone for those; the scheduling above runs for every ELF.
"""

from __future__ import annotations

import array
import copy
import dataclasses
import enum
import functools
import itertools
import json
import math
import operator
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate, compress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simcore import cache as disk_cache
from simcore.boards import load_cores
from simcore.cycles.arm_ids import arm_constants, capstone_fingerprint
from simcore.cycles.tables import Issue, TimingRow, TimingTable, load_table
from simcore.errors import CycleModelError

if TYPE_CHECKING:
    import capstone

#: capstone.arm_const's values, without importing capstone (simcore.cycles.arm_ids): a run
#: whose classified code is cached decodes nothing. Code that decodes imports capstone.
arm_const = arm_constants()

#: Added to the cost prefix for each halfword that must never execute.
UNKNOWN_COST = 1 << 40
_U64 = (1 << 64) - 1

_BRANCH_IDS = frozenset(
    {arm_const.ARM_INS_B, arm_const.ARM_INS_BL, arm_const.ARM_INS_CBZ, arm_const.ARM_INS_CBNZ}
)
_ALWAYS_LEAVES = frozenset(
    {
        arm_const.ARM_INS_BL,
        arm_const.ARM_INS_BX,
        arm_const.ARM_INS_BLX,
        arm_const.ARM_INS_BXNS,
        arm_const.ARM_INS_BLXNS,
        arm_const.ARM_INS_TBB,
        arm_const.ARM_INS_TBH,
    }
)
_LIST_WITH_BASE = frozenset(
    {
        arm_const.ARM_INS_LDM,
        arm_const.ARM_INS_LDMDB,
        arm_const.ARM_INS_STM,
        arm_const.ARM_INS_STMDB,
        arm_const.ARM_INS_VLDMIA,
        arm_const.ARM_INS_VLDMDB,
        arm_const.ARM_INS_VSTMIA,
        arm_const.ARM_INS_VSTMDB,
    }
)
_LIST_NO_BASE = frozenset(
    {arm_const.ARM_INS_PUSH, arm_const.ARM_INS_POP, arm_const.ARM_INS_VPUSH, arm_const.ARM_INS_VPOP}
)
_LIST_LOADS = frozenset(
    {
        arm_const.ARM_INS_LDM,
        arm_const.ARM_INS_LDMDB,
        arm_const.ARM_INS_POP,
        arm_const.ARM_INS_VLDMIA,
        arm_const.ARM_INS_VLDMDB,
        arm_const.ARM_INS_VPOP,
    }
)
_WRITE_ONLY = 2  # capstone CS_AC_WRITE without CS_AC_READ
_FLAG_REGS = frozenset(
    {arm_const.ARM_REG_CPSR, arm_const.ARM_REG_APSR, arm_const.ARM_REG_APSR_NZCV}
)


def _ids(*names: str) -> frozenset[int]:
    return frozenset(getattr(arm_const, f"ARM_INS_{n}") for n in names)


_STORE_IDS = _ids(
    "STR", "STRB", "STRH", "STRD", "STRT", "STRBT", "STRHT", "STREX", "STREXB", "STREXH",
    "STL", "STLB", "STLH", "STLEX", "STLEXB", "STLEXH", "VSTR",
)  # fmt: skip
#: Accumulator operands (indices into capstone's operand list) per instruction: the
#: ISA's own operand table, because capstone reports RdLo/RdHi of the long
#: multiply-accumulates as write-only and the accumulator of MLA as a plain source.
ACCUMULATOR_OPERANDS: dict[int, tuple[int, ...]] = {
    **dict.fromkeys(
        _ids(
            "MLA", "MLS", "SMLABB", "SMLABT", "SMLATB", "SMLATT", "SMLAWB", "SMLAWT",
            "SMLAD", "SMLADX", "SMLSD", "SMLSDX", "SMMLA", "SMMLAR", "SMMLS", "SMMLSR",
            "USADA8",
        ),
        (3,),
    ),
    **dict.fromkeys(
        _ids(
            "SMLAL", "UMLAL", "UMAAL", "SMLALBB", "SMLALBT", "SMLALTB", "SMLALTT",
            "SMLALD", "SMLALDX", "SMLSLD", "SMLSLDX",
        ),
        (0, 1),
    ),
    **dict.fromkeys(_ids("SXTAB", "SXTAH", "UXTAB", "UXTAH", "SXTAB16", "UXTAB16"), (1,)),
    **dict.fromkeys(
        _ids("VMLA", "VMLS", "VNMLA", "VNMLS", "VFMA", "VFMS", "VFNMA", "VFNMS"), (0,)
    ),
    **dict.fromkeys(_ids("MOVT"), (0,)),
}  # fmt: skip
#: Integer multiplies: their non-accumulator sources are read as multiplicands ("mul").
_MULTIPLY_IDS = _ids(
    "MUL", "MLA", "MLS", "SMULL", "UMULL", "SMLAL", "UMLAL", "UMAAL",
    "SMULBB", "SMULBT", "SMULTB", "SMULTT", "SMULWB", "SMULWT", "SMUAD", "SMUADX",
    "SMUSD", "SMUSDX", "SMMUL", "SMMULR", "SMLABB", "SMLABT", "SMLATB", "SMLATT",
    "SMLAWB", "SMLAWT", "SMLAD", "SMLADX", "SMLSD", "SMLSDX", "SMMLA", "SMMLAR",
    "SMMLS", "SMMLSR", "SMLALBB", "SMLALBT", "SMLALTB", "SMLALTT", "SMLALD",
    "SMLALDX", "SMLSLD", "SMLSLDX", "USAD8", "USADA8",
)  # fmt: skip
_VECTOR_DATA_NAMES = {v: k for k, v in vars(arm_const).items() if k.startswith("ARM_VECTORDATA_")}
_REG_ALIASES = {"sb": "r9", "sl": "r10", "fp": "r11", "ip": "r12"}


@dataclass(frozen=True)
class CodeRange:
    """Bytes of one executable section (or segment) at its load address."""

    start: int
    data: bytes

    @property
    def end(self) -> int:
        return self.start + len(self.data)


@dataclass(frozen=True)
class MappingSymbol:
    """An ARM ELF mapping symbol: ``kind`` is ``"t"`` (Thumb code), ``"d"`` (data) or ``"a"``."""

    address: int
    kind: str


@dataclass(frozen=True)
class RangeCosts:
    """Per-halfword arrays over one code range ``[start, start + 2 * nhalf)``.

    ``prefix`` has shape ``(nhalf + 1, 2)``, dtype uint64, C-contiguous: column 0 is the
    cost prefix (plus multiples of :data:`UNKNOWN_COST` that cancel over any block of
    whole, known instructions), column 1 the instruction-count prefix; ``cost`` is the
    per-halfword static cost (0 except at instruction starts). ``row_index[i]`` is
    the timing-table row of the instruction starting at halfword ``i`` (-1 for none)
    and ``unknown`` maps the address of each forbidden instruction or data run to a
    readable reason.

    The arrays are read-only memoryviews (formats ``Q``, ``I``, ``h``; see
    :func:`typed_view`), so that a run whose classification comes from the disk cache
    needs no numpy; ``numpy.asarray`` views them as arrays without a copy.
    """

    start: int
    nhalf: int
    prefix: memoryview
    cost: memoryview
    row_index: memoryview
    unknown: dict[int, str] = field(hash=False, compare=False)
    #: The halfwords where an instruction starts, ascending: computed from ``prefix``
    #: when not given (the disk cache keeps them: 2 to 3 ms for an rp2040 run's ranges).
    insn_starts: Sequence[int] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not len(self.insn_starts) and self.nhalf:
            count = self.prefix.cast("B").cast("Q").tolist()[1::2]
            starts = list(compress(range(self.nhalf), map(operator.ne, count[1:], count[:-1])))
            object.__setattr__(self, "insn_starts", starts)

    @property
    def end(self) -> int:
        return self.start + 2 * self.nhalf

    def contains(self, address: int) -> bool:
        return self.start <= address < self.end

    def block_cost(self, start: int, end: int) -> tuple[int, int]:
        """Cost and instruction count of the block ``[start, end)``, as the C hook sees them.

        A cost ``>= UNKNOWN_COST`` means the block must not execute.
        """
        i, j = (start - self.start) >> 1, (end - self.start) >> 1
        cost = (int(self.prefix[j, 0]) - int(self.prefix[i, 0])) % (1 << 64)
        return cost, int(self.prefix[j, 1]) - int(self.prefix[i, 1])


@dataclass(frozen=True)
class Classification:
    """The classified code of one program for one core."""

    table: TimingTable
    ranges: tuple[RangeCosts, ...]

    def range_at(self, address: int) -> RangeCosts | None:
        for r in self.ranges:
            if r.contains(address):
                return r
        return None

    def explain(self, start: int, end: int) -> str:
        """Say why the block ``[start, end)`` cannot be charged (for error messages)."""
        r = self.range_at(start)
        if r is None or end > r.end:
            return (
                f"block 0x{start:08x}-0x{end:08x} lies outside the classified code "
                f"({', '.join(f'0x{x.start:08x}-0x{x.end:08x}' for x in self.ranges)})"
            )
        for address in range(start, end, 2):
            if address in r.unknown:
                return f"0x{address:08x}: {r.unknown[address]}"
        # Inside a data run: report the run's first address.
        for address in sorted(r.unknown, reverse=True):
            if address < end:
                return f"0x{start:08x} lies in {r.unknown[address]} starting at 0x{address:08x}"
        return f"block 0x{start:08x}-0x{end:08x}: no timing entry"

    def error(self, start: int, end: int) -> CycleModelError:
        """The error to raise when the hook flagged the block ``[start, end)``."""
        return CycleModelError(
            f"cycle model ({self.table.core}): {self.explain(start, end)}",
            hint="add a row for it to the core's timing table (data/timing/"
            f"{self.table.core}.toml) or check that the ELF targets this core",
        )


@dataclass
class _Insn:
    address: int
    size: int
    row: TimingRow
    row_number: int
    cycles: int
    #: Registers read, by the role they are read in ("normal" or one of tables.ROLES);
    #: the flags are the pseudo-register "flags", read in the normal role (ready when
    #: the producer's result is).
    reads: tuple[tuple[str, frozenset[str]], ...]
    writes: frozenset[str]
    #: Written base registers (pre/post-indexed addressing): ready after 1 cycle.
    writeback: frozenset[str]
    shifted: bool
    leaves: bool
    target: int | None
    #: (base register, byte offset) of a load/store with an immediate offset, else None.
    memory: tuple[str, int] | None = None
    #: An unconditional B/BL to the next instruction: taken, but the block hook cannot
    #: tell it from falling through, so its refill is part of its static cost.
    to_next: bool = False

    @property
    def read_keys(self) -> frozenset[str]:
        return frozenset(k for _, keys in self.reads for k in keys)

    def reads_as(self, role: str) -> frozenset[str]:
        return next((keys for r, keys in self.reads if r == role), frozenset())


@cache
def disassembler() -> capstone.Cs:
    """The shared capstone decoder: Thumb, M-class, with instruction details."""
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    md.detail = True
    return md


@cache
def _reg_keys(reg: int) -> tuple[str, ...]:
    """Canonical register names for dependency tracking (flags and system state dropped)."""
    name = disassembler().reg_name(reg) or ""
    name = _REG_ALIASES.get(name, name)
    if name.startswith("d") and name[1:].isdigit():
        n = int(name[1:])
        return (f"s{2 * n}", f"s{2 * n + 1}") if n < 16 else (name,)
    if (name[:1] in ("r", "s") and name[1:].isdigit()) or name in ("sp", "lr", "pc"):
        return (name,)
    return ()


def _keys(regs: Iterable[int]) -> frozenset[str]:
    return frozenset(k for r in regs for k in _reg_keys(r))


def _hint_number(code: bytes) -> int | None:
    hw = int.from_bytes(code[:2], "little")
    if len(code) == 2 and hw & 0xFF0F == 0xBF00:
        return (hw >> 4) & 0xF
    if len(code) == 4:
        hw2 = int.from_bytes(code[2:4], "little")
        if hw == 0xF3AF and hw2 & 0xFF00 == 0x8000:
            return hw2 & 0xFF
    return None


def _words(insn: capstone.CsInsn, counts_pc: bool) -> int:
    """32-bit words in the register list (a D register is 2)."""
    ops = insn.operands
    if insn.id in _LIST_WITH_BASE:
        ops = ops[1:]
    elif insn.id not in _LIST_NO_BASE:
        return 0
    n = 0
    for op in ops:
        if op.type != arm_const.ARM_OP_REG:
            continue
        name = insn.reg_name(op.reg) or ""
        if name == "pc" and not counts_pc:
            continue
        n += 2 if name.startswith("d") else 1
    return n


def _matches(row: TimingRow, insn: capstone.CsInsn, writes_pc: bool) -> bool:
    w = row.when
    if w.writes_pc is not None and w.writes_pc != writes_pc:
        return False
    if w.conditional is not None:
        conditional = insn.cc not in (arm_const.ARM_CC_AL, arm_const.ARM_CC_INVALID)
        if conditional != w.conditional:
            return False
    if w.precision is not None:
        name = _VECTOR_DATA_NAMES.get(insn.vector_data, "")
        precision = "f64" if "F64" in name else "f32"
        if precision != w.precision:
            return False
    if w.operand2 is not None and operand2_class(insn) not in w.operand2:
        return False
    if w.sets_flags is not None and _sets_flags(insn) != w.sets_flags:
        return False
    if w.size_bytes is not None and insn.size != w.size_bytes:
        return False
    if w.double_regs is not None:
        double = any(
            op.type == arm_const.ARM_OP_REG and (insn.reg_name(op.reg) or "").startswith("d")
            for op in insn.operands
        )
        if double != w.double_regs:
            return False
    if w.core_regs_written is not None or w.core_regs_read is not None:
        regs_read, regs_write = insn.regs_access()
        if w.core_regs_written is not None and _core_count(regs_write) < w.core_regs_written:
            return False
        if w.core_regs_read is not None and _core_count(regs_read) < w.core_regs_read:
            return False
    return w.hint is None or _hint_number(bytes(insn.bytes)) in w.hint


def _core_count(regs: Iterable[int]) -> int:
    return sum(1 for k in _keys(regs) if k[:1] == "r" or k in ("sp", "lr"))


def _sets_flags(insn: capstone.CsInsn) -> bool:
    _, regs_write = insn.regs_access()
    return bool(insn.update_flags) or any(r in _FLAG_REGS for r in regs_write)


def operand2_class(insn: capstone.CsInsn) -> str:
    """Class of a data-processing instruction's second operand (tables.OPERAND2_CLASSES).

    Immediates are classed from the encoding: a Thumb-2 modified immediate (T1
    data-processing) whose top bits select a rotation is a shifted constant, one that
    selects a replicated byte is a pattern; 12/16-bit plain immediates (ADDW, MOVW)
    and 16-bit encodings are simple.
    """
    if any(op.type == arm_const.ARM_OP_REG and op.shift.type != 0 for op in insn.operands):
        return "shifted_reg"
    if not any(op.type == arm_const.ARM_OP_IMM for op in insn.operands):
        return "plain"
    if insn.size != 4:
        return "simple"
    code = bytes(insn.bytes)
    hw1, hw2 = int.from_bytes(code[:2], "little"), int.from_bytes(code[2:4], "little")
    if hw1 & 0xFA00 != 0xF000 or hw2 & 0x8000:  # not a modified-immediate encoding
        return "simple"
    imm12 = ((hw1 >> 10) & 1) << 11 | ((hw2 >> 12) & 7) << 8 | (hw2 & 0xFF)
    if imm12 >> 10:
        return "shifted_const"
    return "simple" if (imm12 >> 8) == 0 else "pattern"


def _lookup(table: TimingTable, insn: capstone.CsInsn) -> tuple[TimingRow, int] | str:
    """Return the matching row and its number, or the reason there is none."""
    text = f"{insn.mnemonic} {insn.op_str}".strip()
    if table.thumb32_ids is not None and insn.size == 4 and insn.id not in table.thumb32_ids:
        return f"'{text}' is not an instruction of {table.core} (32-bit Thumb-2 encoding)"
    if "F64" in _VECTOR_DATA_NAMES.get(insn.vector_data, "") and _fpu(table.core) != "double":
        return (
            f"'{text}' is a double-precision FPU instruction; {table.core} has "
            f"{'a single-precision FPU only' if _fpu(table.core) == 'single' else 'no FPU'}"
        )
    _, regs_write = insn.regs_access()
    writes_pc = arm_const.ARM_REG_PC in regs_write
    for row in table.rows_for(insn.id):
        if _matches(row, insn, writes_pc):
            # By identity (rows_for gives the table's own rows): rows.index would compare
            # rows field by field, a tenth of classifying a new ELF.
            return row, next(i for i, r in enumerate(table.rows) if r is row)
    return f"'{text}' has no entry in the {table.core} timing table"


def _fpu(core: str) -> str:
    """The core's FPU (data/cores.toml): "none", "single" or "double"."""
    spec = load_cores().get(core)
    return spec.fpu if spec is not None else "double"


class _Scheduler:
    """Static in-order timing of address-consecutive instructions (see module doc)."""

    def __init__(self, table: TimingTable) -> None:
        self.table = table
        self.reset()

    def reset(self) -> None:
        self.t_next = 0
        #: register -> (issue cycle of its producer, that producer's row, writeback?)
        self.ready: dict[str, tuple[int, TimingRow, bool]] = {}
        self.prev: _Insn | None = None
        self.open_slot: tuple[int, _Insn] | None = None  # (issue cycle, older insn)
        self.fp_mac_at: int | None = None  # issue cycle of the last FP multiply-accumulate
        self.last_narrow_store: tuple[int, _Insn] | None = None

    def _latency(self, row: TimingRow, role: str, writeback: bool) -> int:
        if writeback:
            return 1
        base = row.latency if row.latency is not None else row.cycles
        if role == "store" and "store" not in row.role_latency:
            store = self.table.store_data_latency
            return base if store is None else store
        return row.role_latency.get(role, base) if role != "normal" else base

    def ready_time(self, x: _Insn) -> int:
        """Earliest cycle at which every operand of ``x`` is available in its role."""
        t = 0
        for role, keys in x.reads:
            for k in keys:
                producer = self.ready.get(k)
                if producer is not None:
                    issue, row, wb = producer
                    t = max(t, issue + self._latency(row, role, wb))
        return t

    def _earliest(self, x: _Insn) -> int:
        """Structural limits on the issue cycle of ``x``: FP MAC shadow, store buffer."""
        t = 0
        row = x.row
        if self.fp_mac_at is not None and row.after_fp_mac == "blocked":
            t = max(t, self.fp_mac_at + self.table.fp_mac_shadow_cycles + 1)
        if row.repeat_interval and self.last_narrow_store is not None:
            at, prev = self.last_narrow_store
            same = (
                x.memory is not None
                and prev.memory is not None
                and x.memory[0] == prev.memory[0]
                and not prev.writeback
                and (x.memory[1] >> 2) % 2 == (prev.memory[1] >> 2) % 2
            )
            gap = row.repeat_interval_same_bank if same else row.repeat_interval
            t = max(t, at + gap)
        return t

    def cost(self, x: _Insn) -> int:
        row = x.row
        c = x.cycles
        prev = self.prev
        if (
            row.pipelined_cycles is not None
            and prev is not None
            and prev.row.pipeline_head
            and not (x.read_keys & prev.writes)
        ):
            c = row.pipelined_cycles
        ready_t = max(self.ready_time(x), self._earliest(x))
        before = self.t_next
        if self.table.dual_issue:
            issue = self._try_pair(x, c, ready_t)
            if issue is None:
                issue = max(self.t_next, ready_t)
                end = issue + c
                pairable = row.issue is not Issue.SINGLE and (c == 1 or row.pair_cycle is not None)
                if self.table.pair_16bit_only and x.size != 2:
                    pairable = False
                slot = issue + c - 1 if row.pair_cycle == "last" else issue
                self.open_slot = (slot, x) if pairable else None
            else:
                end = issue + 1
                self.open_slot = None
        else:
            issue = max(self.t_next, ready_t)
            end = issue + c
        self.t_next = max(self.t_next, end)
        for r in x.writes:
            self.ready[r] = (issue, row, r in x.writeback)
        if row.fp_mac:
            self.fp_mac_at = issue
        if row.repeat_interval:
            self.last_narrow_store = (issue, x)
        self.prev = x
        return self.t_next - before

    def _try_pair(self, x: _Insn, c: int, ready_t: int) -> int | None:
        if self.open_slot is None or c != 1 or x.row.issue is not Issue.DUAL:
            return None
        cycle, older = self.open_slot
        if ready_t > cycle:
            return None
        if self.table.pair_16bit_only and x.size != 2:
            return None
        # A register written by both (flags aside) only pairs when the younger merges
        # into it (MOVW + MOVT).
        if (x.writes & older.writes) - {"flags"} - x.reads_as("acc"):
            return None
        if (
            self.fp_mac_at is not None
            and x.row.after_fp_mac == "older_only"
            and cycle <= self.fp_mac_at + self.table.fp_mac_shadow_cycles
        ):
            return None
        if self.table.load_banks and _same_bank(older, x, self.table.load_banks):
            return None
        use: dict[str, int] = {}
        for insn in (older, x):
            for unit in insn.row.units:
                use[unit] = use.get(unit, 0) + 1
            if insn.shifted and "shift" not in insn.row.units:
                use["shift"] = use.get("shift", 0) + 1
        if any(n > self.table.unit_capacity.get(u, 1) for u, n in use.items()):
            return None
        return cycle


def _same_bank(a: _Insn, b: _Insn, banks: int) -> bool:
    """Two loads whose addresses are known relative to one base and fall in one bank."""
    if "load" not in a.row.units or "load" not in b.row.units:
        return False
    if a.memory is None or b.memory is None or a.memory[0] != b.memory[0] or a.writeback:
        return False
    return (a.memory[1] >> 2) % banks == (b.memory[1] >> 2) % banks


def _thumb_spans(rng: CodeRange, symbols: Sequence[MappingSymbol]) -> list[tuple[int, int, bool]]:
    """Split a range into (start, end, is_code) spans by its mapping symbols."""
    inside = sorted(
        (s for s in symbols if rng.start <= s.address < rng.end), key=lambda s: s.address
    )
    before = [s for s in symbols if s.address < rng.start]
    kind = max(before, key=lambda s: s.address).kind if before else "t"
    spans: list[tuple[int, int, bool]] = []
    cur = rng.start
    for s in inside:
        if s.address > cur:
            spans.append((cur, s.address, kind == "t"))
        cur = max(cur, s.address)
        kind = s.kind
    if cur < rng.end:
        spans.append((cur, rng.end, kind == "t"))
    return spans


def _decode(
    table: TimingTable,
    rng: CodeRange,
    start: int,
    end: int,
    memo: dict[bytes, _Insn | str],
) -> list[_Insn | str]:
    """Decode ``[start, end)``, one entry per halfword.

    An entry is an :class:`_Insn` at an instruction start, ``""`` for the second half
    of a 32-bit instruction, or a non-empty string (the reason) for a forbidden or
    undecodable one. Instructions are analysed once per encoding (``memo``, decoded at
    address 0; only a direct branch's target depends on the address, and it is
    relative), so capstone is imported only for an encoding ``memo`` lacks (and for a
    forbidden one's message, which names its address).

    An instruction's length follows from its first halfword: 32 bits when the top five
    bits are 0b11101, 0b11110 or 0b11111 (ARMv7-M ARM A5.1), as capstone decodes it.
    Capstone decodes each encoding alone; inside an IT block it decodes leniently (CBZ,
    a nested IT), as it does in a run of instructions.
    """
    out: list[_Insn | str] = []
    data, base = rng.data, rng.start
    address = start
    while address < end:
        i = address - base
        size = 4 if data[i + 1] >> 3 >= 0b11101 else 2
        enc = data[i : i + size] if address + size <= end else b""
        template = memo.get(enc) if enc else None
        if template is None and enc:
            insn = next(disassembler().disasm(enc, 0), None)
            if insn is not None:
                found = _lookup(table, insn)
                template = found if isinstance(found, str) else _make_insn(insn, *found)
                memo[enc] = template
        if template is None:  # capstone cannot decode it, or it runs past the span
            out.append(f"undecodable halfword 0x{data[i] | data[i + 1] << 8:04x}")
            address += 2
            continue
        if isinstance(template, str):
            # Decode again at the real address so the message shows real targets.
            found = _lookup(table, next(disassembler().disasm(enc, address)))
            out.append(found if isinstance(found, str) else template)
        else:
            out.append(_placed(template, address))
        if size == 4:
            out.append("")
        address += size
    return out


def _placed(template: _Insn, address: int) -> _Insn:
    """``template`` (analysed at address 0) at ``address``."""
    insn = copy.copy(template)  # dataclasses.replace: 5x the time
    insn.address = address
    if template.target is not None:
        insn.target = (template.target + address) & 0xFFFFFFFF
    return insn


def _make_insn(insn: capstone.CsInsn, row: TimingRow, number: int) -> _Insn:
    regs_read, regs_write = insn.regs_access()
    target = None
    if insn.id in _BRANCH_IDS:
        imms = [op.imm for op in insn.operands if op.type == arm_const.ARM_OP_IMM]
        target = imms[-1] if imms else None
    unconditional = insn.cc in (arm_const.ARM_CC_AL, arm_const.ARM_CC_INVALID)
    leaves = (
        insn.id in _ALWAYS_LEAVES
        or (arm_const.ARM_REG_PC in regs_write and insn.id not in _BRANCH_IDS)
        or (insn.id == arm_const.ARM_INS_B and unconditional)
    )
    reads, writes, writeback, memory = _operand_roles(insn, row, regs_read, regs_write)
    words = _words(insn, row.per_register_counts_pc)
    op2 = operand2_class(insn)
    return _Insn(
        address=insn.address,
        size=insn.size,
        row=row,
        row_number=number,
        cycles=row.cycles + row.per_register * -(-words // row.per_register_divisor),
        reads=reads,
        writes=writes,
        writeback=writeback,
        shifted=row.shifted or op2 in ("shifted_reg", "shifted_const"),
        leaves=leaves,
        target=target,
        memory=memory,
        to_next=unconditional
        and insn.id in (arm_const.ARM_INS_B, arm_const.ARM_INS_BL)
        and target == insn.address + insn.size,
    )


def _operand_roles(
    insn: capstone.CsInsn, row: TimingRow, regs_read: Sequence[int], regs_write: Sequence[int]
) -> tuple[
    tuple[tuple[str, frozenset[str]], ...], frozenset[str], frozenset[str], tuple[str, int] | None
]:
    """Split the registers ``insn`` reads by role and find its written base and address.

    Roles: "address" (base/index of a memory operand or register list), "store" (data
    stored), "acc" (an accumulator, from :data:`ACCUMULATOR_OPERANDS`: capstone reports
    RdLo/RdHi of the long MACs as write-only), "early" (an inline shifted register, or
    every source of a row with ``early_sources``), "mul" (a multiplicand), "normal".
    """
    ops = list(insn.operands)
    reads: dict[str, set[str]] = {}
    writes = set(_keys(regs_write))
    claimed: set[str] = set()

    def add(role: str, keys: Iterable[str]) -> None:
        keys = set(keys)
        reads.setdefault(role, set()).update(keys)
        claimed.update(keys)

    memory = None
    writeback: set[str] = set()
    for op in ops:
        if op.type == arm_const.ARM_OP_MEM:
            base = _keys([op.mem.base]) if op.mem.base else frozenset()
            index = _keys([op.mem.index]) if op.mem.index else frozenset()
            add("address", base | index)
            if insn.writeback:
                writeback |= base & writes
            if base and not index and base != {"pc"}:  # literal loads: PC differs per site
                memory = (next(iter(base)), op.mem.disp)
    list_op = insn.id in _LIST_WITH_BASE or insn.id in _LIST_NO_BASE
    if insn.id in _LIST_WITH_BASE and ops and ops[0].type == arm_const.ARM_OP_REG:
        add("address", _keys([ops[0].reg]))
        if insn.writeback:
            writeback |= _keys([ops[0].reg])
        ops = ops[1:]
    if insn.id in _LIST_NO_BASE:
        add("address", {"sp"})
        writeback.add("sp")
        writes.add("sp")
    if list_op:
        regs = {k for op in ops if op.type == arm_const.ARM_OP_REG for k in _keys([op.reg])}
        if insn.id in _LIST_LOADS:
            writes |= regs  # capstone lists VLDM/VPOP destinations as neither read nor written
        else:
            add("store", regs)
    elif insn.id in _STORE_IDS:  # not STREX's status register (written only)
        data = [op for op in ops if op.type == arm_const.ARM_OP_REG and op.access != _WRITE_ONLY]
        add("store", {k for op in data for k in _keys([op.reg])})
    acc = ACCUMULATOR_OPERANDS.get(insn.id, ())
    add("acc", {k for i in acc if i < len(ops) for k in _keys([ops[i].reg])})
    for op in ops:
        if op.type == arm_const.ARM_OP_REG and op.shift.type != 0:
            add("early", _keys([op.reg]))
            if op.shift.type >= arm_const.ARM_SFT_ASR_REG:
                add("early", _keys([op.shift.value]))
    # Sources capstone omits (UXTAB's Rm): register operands after the destination.
    sources = set(_keys(regs_read))
    if not list_op and insn.id not in _STORE_IDS:
        for i, op in enumerate(ops):
            if i > 0 and op.type == arm_const.ARM_OP_REG and op.access == 0:
                sources |= _keys([op.reg])
    rest = sources - claimed - {"pc"}
    if row.early_sources:
        add("early", rest)
    elif insn.id in _MULTIPLY_IDS:
        add("mul", rest)
    else:
        add("normal", rest)
    flags_read = any(r in _FLAG_REGS for r in regs_read) or (
        insn.cc not in (arm_const.ARM_CC_AL, arm_const.ARM_CC_INVALID)
        and insn.id != arm_const.ARM_INS_IT
    )
    if flags_read:
        reads.setdefault("normal", set()).add("flags")
    if _sets_flags(insn):
        writes.add("flags")
    out = tuple((role, frozenset(keys)) for role, keys in reads.items() if keys)
    return out, frozenset(writes), frozenset(writeback), memory


def classify_range(
    table: TimingTable,
    rng: CodeRange,
    symbols: Sequence[MappingSymbol],
    memo: dict[bytes, _Insn | str] | None = None,
) -> RangeCosts:
    """Classify one code range (see the module docstring). ``memo``: the analysis of
    each encoding seen so far for ``table`` (see :func:`_decode`), shared and extended."""
    if rng.start % 2 or len(rng.data) % 2:
        raise CycleModelError(
            f"code range 0x{rng.start:08x}+{len(rng.data)} is not halfword aligned",
            hint="pass whole executable sections",
        )
    nhalf = len(rng.data) // 2
    # Plain lists and arrays, not numpy: a run of a new ELF then imports no numpy
    # (60 to 70 ms of a process), and element writes in this loop are faster on lists.
    cost = [0] * nhalf
    count = [0] * nhalf
    # +1 per forbidden halfword; +1/-1 on the two halves of a 32-bit instruction, so a
    # block that starts or ends between them also differs by a multiple of
    # UNKNOWN_COST (modulo 2**64) and is flagged as a decode disagreement.
    guard = [0] * nhalf
    row_index = array.array("h", [-1]) * nhalf
    unknown: dict[int, str] = {}
    decoded: list[tuple[int, list[_Insn | str]]] = []
    memo = {} if memo is None else memo
    for span_start, span_end, is_code in _thumb_spans(rng, symbols):
        if is_code:
            decoded.append((span_start, _decode(table, rng, span_start, span_end, memo)))
        else:
            i0, i1 = (span_start - rng.start) >> 1, min(nhalf, (span_end - rng.start + 1) >> 1)
            guard[i0:i1] = [1] * max(0, i1 - i0)
            unknown[span_start] = f"data ($d mapping symbol) 0x{span_start:08x}-0x{span_end:08x}"
    targets = {item.target for _, items in decoded for item in items if isinstance(item, _Insn)}
    sched = _Scheduler(table)
    for span_start, items in decoded:
        sched.reset()
        address = span_start
        for item in items:
            i = (address - rng.start) >> 1
            if isinstance(item, _Insn):
                if item.address in targets:
                    sched.reset()
                cost[i] = sched.cost(item) + (table.refill_cycles if item.to_next else 0)
                count[i] = 1
                row_index[i] = item.row_number
                if item.size == 4:
                    guard[i] += 1
                    guard[i + 1] -= 1
                if item.leaves:
                    sched.reset()
            elif item:
                guard[i] = 1
                unknown[address] = item
                sched.reset()
            address += 2
    # Rows (cost prefix + UNKNOWN_COST x guard prefix, modulo 2**64; count prefix).
    prefix = array.array("Q", bytes(16 * (nhalf + 1)))
    sums = zip(accumulate(cost), accumulate(guard), strict=True)
    prefix[2::2] = array.array("Q", [(c + g * UNKNOWN_COST) & _U64 for c, g in sums])
    prefix[3::2] = array.array("Q", accumulate(count))
    return RangeCosts(
        start=rng.start,
        nhalf=nhalf,
        prefix=typed_view(prefix, "Q", (nhalf + 1, 2)),
        cost=typed_view(array.array("I", cost), "I", (nhalf,)),
        row_index=typed_view(row_index, "h", (nhalf,)),
        unknown=unknown,
    )


def typed_view(data: Any, fmt: str, shape: tuple[int, ...]) -> memoryview:
    """A read-only memoryview of the bytes of ``data`` (any C-contiguous buffer) as items of
    ``fmt`` in ``shape``; ValueError if the sizes disagree. An empty array stays
    one-dimensional (a memoryview's shape cannot hold a zero)."""
    view: Any = memoryview(data).cast("B").toreadonly()  # Any: typeshed wants literal formats
    count = math.prod(shape)
    if view.nbytes != count * struct.calcsize(fmt):
        raise ValueError(f"{view.nbytes} bytes are not {shape} items of {fmt!r}")
    typed: memoryview = view.cast(fmt) if len(shape) == 1 or count == 0 else view.cast(fmt, shape)
    return typed


def classify(
    core: str | TimingTable,
    ranges: Sequence[CodeRange],
    mapping_symbols: Sequence[MappingSymbol] = (),
) -> Classification:
    """Classify the executable code of a program for ``core``.

    ``ranges`` are the executable sections' bytes at their run addresses and
    ``mapping_symbols`` the ``$t``/``$d`` symbols *of those sections only* (libgcc's
    debug-frame ``$d`` symbols can point into ``.text``; trusting them drops code).
    Without mapping symbols everything is decoded as Thumb. Results are cached per
    process (the arrays are read-only), so repeated runs of one ELF classify it once.
    """
    table = core if isinstance(core, TimingTable) else load_table(core)
    return _classify_cached(table, tuple(ranges), tuple(mapping_symbols))


@functools.lru_cache(maxsize=16)
def _classify_cached(
    table: TimingTable, ranges: tuple[CodeRange, ...], mapping_symbols: tuple[MappingSymbol, ...]
) -> Classification:
    ordered = sorted(ranges, key=lambda r: r.start)
    for a, b in itertools.pairwise(ordered):
        if a.end > b.start:
            raise CycleModelError(
                f"code ranges 0x{a.start:08x}-0x{a.end:08x} and 0x{b.start:08x}-0x{b.end:08x} "
                "overlap",
                hint="pass each executable section once",
            )
    key = cache_key(table, ordered, mapping_symbols)
    found = _from_disk(table, ordered, key)
    if found is not None:
        return found
    memo = _known_encodings(table)
    stored = len(memo.stored)
    result = Classification(
        table=table,
        ranges=tuple(classify_range(table, r, mapping_symbols, memo) for r in ordered),
    )
    _to_disk(result, key)
    if stored < MAX_ENCODINGS:
        _save_encodings(table, memo, stored)
    return result


# -- the on-disk cache (simcore.cache) ----------------------------------------------

_CACHE_KIND = "classify"


_PLAIN = (int, str, bool, float, type(None))


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    """The fields of a table dataclass that its digest covers."""
    return tuple(
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in ("path", "by_id", "origin")  # where it came from; derived
    )


def _canonical(value: Any) -> Any:
    """A JSON-ready, order-independent form of a timing table's fields.

    Computed on every run (a cache hit needs the table's digest), so the plain values
    that make up most of a table return first.
    """
    if type(value) in _PLAIN:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _canonical(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset | set):
        if all(type(v) is int for v in value) or all(type(v) is str for v in value):
            return sorted(value)  # instruction ids, hints, operand classes: the usual sets
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    return value


@cache
def _code_digest() -> str:
    """The classifier's own source and the installed capstone: a change to either changes costs.

    capstone is identified by :func:`~simcore.cycles.arm_ids.capstone_fingerprint` (its
    files), so a cache hit needs no ``import capstone``.
    """
    here = Path(__file__).resolve().parent
    return disk_cache.source_digest(here / "classify.py", here / "tables.py") + (
        f" capstone {capstone_fingerprint()}"
    )


def table_digest(table: TimingTable) -> str:
    """A digest of everything in ``table`` (not where it was read from): the data it was
    built from when it has that (``TimingTable.origin``), else its contents walked."""
    if table.origin is not None:
        return table.origin
    return _contents_digest(table)


@functools.lru_cache(maxsize=8)
def _contents_digest(table: TimingTable) -> str:
    return "contents " + json.dumps(_canonical(table), sort_keys=True)


def cache_key(
    table: TimingTable, ranges: Sequence[CodeRange], mapping_symbols: Sequence[MappingSymbol]
) -> str:
    """The on-disk cache key of a classification: code bytes, mapping symbols, table, code."""
    parts: list[bytes | str] = [_code_digest(), table_digest(table)]
    for r in ranges:
        parts += [f"range 0x{r.start:08x}", r.data]
    parts.append(json.dumps(sorted((s.address, s.kind) for s in mapping_symbols)))
    return disk_cache.digest(_CACHE_KIND, parts)


#: The analysis of each instruction encoding met so far, per timing table (and classifier
#: source and capstone, like every key here): a new ELF mostly repeats encodings other
#: ELFs had (the C library, the runtime, the compiler's idioms), and analysing one with
#: capstone's details is most of classifying it.
_ENCODINGS_KIND = "encodings"
#: Encodings kept at most per table (about 90 bytes each on disk; a store is read whole
#: by a classification, and each entry built when looked up); past it, what a save would
#: add is dropped.
MAX_ENCODINGS = 20_000


def _encodings_key(table: TimingTable) -> str:
    return disk_cache.digest(_ENCODINGS_KIND, [_code_digest(), table_digest(table)])


class _Encodings(dict[bytes, "_Insn | str"]):
    """The analyses of encodings (a :func:`_decode` memo) over the stored ones, each
    built when first looked up (a store holds thousands; an ELF uses some)."""

    def __init__(self, table: TimingTable, stored: dict[bytes, list[Any]]) -> None:
        super().__init__()
        self.table = table
        self.stored = stored

    def get(self, enc: bytes, default: Any = None) -> Any:
        found = dict.get(self, enc)
        if found is None and enc in self.stored:
            try:
                found = self[enc] = _insn_of(self.table, self.stored.pop(enc))
            except (IndexError, TypeError, ValueError) as exc:  # decoded again instead
                disk_cache._debug("ignoring a malformed stored encoding: %s", exc)
        return default if found is None else found

    def as_stored(self) -> dict[str, list[Any]]:
        """What :func:`_save_encodings` writes: the stored fields and the new analyses."""
        out = {enc.hex(): fields for enc, fields in self.stored.items()}
        for enc, t in self.items():
            if len(out) >= MAX_ENCODINGS:
                break
            if isinstance(t, _Insn):
                out[enc.hex()] = [
                    t.size, t.row_number, t.cycles,
                    [[role, sorted(keys)] for role, keys in t.reads],
                    sorted(t.writes), sorted(t.writeback), t.shifted, t.leaves, t.target,
                    None if t.memory is None else list(t.memory), t.to_next,
                ]  # fmt: skip
        return out


def _insn_of(table: TimingTable, fields: list[Any]) -> _Insn:
    (size, number, cycles, reads, writes, writeback, shifted, leaves, target, memory,
     to_next) = fields  # fmt: skip
    if not 0 <= number < len(table.rows):
        raise ValueError(f"row {number} of {len(table.rows)}")
    return _Insn(
        address=0,
        size=int(size),
        row=table.rows[number],
        row_number=int(number),
        cycles=int(cycles),
        reads=tuple((str(role), frozenset(map(str, keys))) for role, keys in reads),
        writes=frozenset(map(str, writes)),
        writeback=frozenset(map(str, writeback)),
        shifted=bool(shifted),
        leaves=bool(leaves),
        target=None if target is None else int(target),  # relative: decoded at address 0
        memory=None if memory is None else (str(memory[0]), int(memory[1])),
        to_next=bool(to_next),
    )


def _known_encodings(table: TimingTable) -> _Encodings:
    """The stored analyses for ``table`` (none when there are none or the entry is
    malformed: then everything is decoded)."""
    found = disk_cache.load(_ENCODINGS_KIND, _encodings_key(table))
    stored: dict[bytes, list[Any]] = {}
    if found is not None:
        try:
            insns = found[1]["insns"]
            stored = {bytes.fromhex(enc): f for enc, f in insns.items() if isinstance(f, list)}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            disk_cache._debug("ignoring malformed encodings cache entry: %s", exc)
            stored = {}
    return _Encodings(table, stored)


def _save_encodings(table: TimingTable, memo: _Encodings, stored: int = 0) -> None:
    """Store the analyses of ``memo`` if there are more than the ``stored`` read (not
    forbidden encodings: their message names the address, so they are decoded again)."""
    insns = memo.as_stored()
    if len(insns) > stored:
        disk_cache.store(_ENCODINGS_KIND, _encodings_key(table), {}, {"insns": insns})


def _to_disk(result: Classification, key: str) -> None:
    arrays: dict[str, memoryview] = {}
    unknown: list[list[list[int | str]]] = []
    for i, r in enumerate(result.ranges):
        arrays[f"prefix{i}"] = r.prefix
        arrays[f"cost{i}"] = r.cost
        arrays[f"row_index{i}"] = r.row_index
        arrays[f"insn{i}"] = memoryview(array.array("I", r.insn_starts))
        unknown.append([[a, text] for a, text in sorted(r.unknown.items())])
    disk_cache.store(_CACHE_KIND, key, arrays, {"unknown": unknown})


def _from_disk(table: TimingTable, ranges: Sequence[CodeRange], key: str) -> Classification | None:
    """The cached classification of ``ranges``, or None (missing or not of the right shape)."""
    found = disk_cache.load(_CACHE_KIND, key)
    if found is None:
        return None
    arrays, data = found
    try:
        out = []
        for i, rng in enumerate(ranges):
            nhalf = len(rng.data) // 2
            parts = [(f"prefix{i}", "Q", (nhalf + 1, 2)), (f"cost{i}", "I", (nhalf,))]
            parts.append((f"row_index{i}", "h", (nhalf,)))
            for name, fmt, shape in parts:
                found_shape = tuple(arrays[name].shape or ())
                if arrays[name].format != fmt or found_shape != shape:
                    raise ValueError(f"{name} is {arrays[name].format} {found_shape}, not {shape}")
            prefix, cost, row_index = (arrays[name] for name, _, _ in parts)
            insns = arrays[f"insn{i}"]
            if insns.format != "I" or insns.ndim != 1 or len(insns) > nhalf:
                raise ValueError(f"insn{i} is not a list of halfwords")
            unknown = {int(a): str(text) for a, text in data["unknown"][i]}
            out.append(RangeCosts(rng.start, nhalf, prefix, cost, row_index, unknown, insns))
        if len(data["unknown"]) != len(ranges):
            raise ValueError("wrong number of ranges")
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        disk_cache._debug("ignoring malformed classification cache entry %s: %s", key, exc)
        return None
    return Classification(table=table, ranges=tuple(out))
