"""Install the C accounting hooks on a unicorn engine and read their counters.

This is the one module besides the engine that touches unicorn: it registers the C
callbacks of :mod:`simcore.cycles._native` through unicorn's own ctypes handle
(``uc._uch`` and ``unicorn.unicorn_py3.unicorn.uclib.uc_hook_add`` / ``uc_mmio_map``),
so no Python runs per block or per flash access. The C function pointers come from
``ctypes.CDLL(_native.__file__)``, and ``uc_emu_stop``, ``uc_reg_write``,
``uc_mem_read``/``uc_mem_write`` from the library unicorn's binding loaded (no
link-time dependency).

Lifetime: the C state lives in the :class:`_native.Accounting` object; ``install``
stores it in the engine's callback table under the hook handle, so the state cannot be
freed while the hook is registered (``uc.hook_del`` drops it).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from unicorn import (
    UC_HOOK_BLOCK,
    UC_HOOK_TLB_FILL,
    UC_TLB_CPU,
    UC_TLB_VIRTUAL,
    Uc,
    UcError,
    arm_const,
)
from unicorn.arm_const import UC_ARM_REG_PC
from unicorn.unicorn_py3.unicorn import uclib

from simcore.cycles import _native
from simcore.cycles.classify import Classification, disassembler
from simcore.cycles.tables import CacheConfig

if TYPE_CHECKING:  # numpy is imported where the arrays are read (see BlockAccounting._arrays)
    import numpy as np
    import numpy.typing as npt

_NO_DEADLINE = (1 << 64) - 1

#: Blocks go through the C hook's block records and, on caches of up to 8 ways, lazy fetch
#: stamps (see block_rec in _native.c): the same figures as the plain path, which False
#: selects (the reference the tests compare with; read when an accounting is created).
BLOCK_RECORDS = True


class StopReason(Enum):
    """Why the accounting hook stopped the emulator (``NONE`` if it did not)."""

    NONE = _native.STOP_NONE
    BUDGET = _native.STOP_BUDGET
    OUTSIDE_CODE = _native.STOP_OUTSIDE_CODE
    UNKNOWN_INSTRUCTION = _native.STOP_UNKNOWN_INSTRUCTION
    DEADLINE = _native.STOP_DEADLINE
    #: Resident flash pages lost the cache's LRU order (``lru_unknown``): the run stopped
    #: early, its figures unusable; run it again with the data hits counted.
    ORDER_LOST = _native.STOP_ORDER_LOST
    #: The wall-clock timeout of :meth:`BlockAccounting.set_timeout` passed.
    TIMEOUT = _native.STOP_TIMEOUT


@dataclass(frozen=True)
class CacheStats:
    """XIP cache counters; ``data_reads_modeled`` False means data hits/misses are not counted,
    ``data_hits`` None that the hits were not counted (see ``BlockAccounting(data_hits=)``)."""

    fetch_hits: int
    fetch_misses: int
    data_hits: int | None
    data_misses: int
    miss_cycles: int
    data_reads_modeled: bool
    note: str


@dataclass(frozen=True)
class _Natives:
    block_hook: int
    tlb_fill_hook: int
    plain_tlb_fill_hook: int
    flash_data_read: int
    fast_io_read: int
    fast_io_write: int
    emu_stop: int
    reg_write: int
    mem_read: int
    mem_write: int
    ctl: int


@cache
def _natives() -> _Natives:
    lib = ctypes.CDLL(_native.__file__)

    def address(fn: Any) -> int:
        return ctypes.cast(fn, ctypes.c_void_p).value or 0

    found = _Natives(
        block_hook=address(lib.simcore_block_hook),
        tlb_fill_hook=address(lib.simcore_tlb_fill_hook),
        plain_tlb_fill_hook=address(lib.simcore_plain_tlb_fill_hook),
        flash_data_read=address(lib.simcore_flash_data_read),
        fast_io_read=address(lib.simcore_fast_io_read),
        fast_io_write=address(lib.simcore_fast_io_write),
        emu_stop=address(uclib.uc_emu_stop),
        reg_write=address(uclib.uc_reg_write),
        mem_read=address(uclib.uc_mem_read),
        mem_write=address(uclib.uc_mem_write),
        ctl=address(uclib.uc_ctl),
    )
    if not all(vars(found).values()):
        raise RuntimeError("cannot resolve the native hook addresses")
    return found


def _mmio_map(uc: Uc, address: int, size: int, read: int, write: int, user_data: int) -> None:
    status = uclib.uc_mmio_map(
        uc._uch,
        ctypes.c_uint64(address),
        ctypes.c_uint64(size),
        ctypes.c_void_p(read or None),
        ctypes.c_void_p(user_data),
        ctypes.c_void_p(write or None),
        ctypes.c_void_p(user_data),
    )
    if status != 0:
        raise UcError(status)


#: Physical addresses of the MMIO aliases: above the 32-bit space the core can address, so
#: no firmware address ever reaches them except through the TLB fill hook.
_ALIAS_BASE = 1 << 32


def _hook_add(uc: Uc, htype: int, fn: int, user_data: int, begin: int, end: int) -> int:
    handle = ctypes.c_size_t()
    status = uclib.uc_hook_add(
        uc._uch,
        ctypes.byref(handle),
        htype,
        ctypes.c_void_p(fn),
        ctypes.c_void_p(user_data),
        ctypes.c_uint64(begin),
        ctypes.c_uint64(end),
    )
    if status != 0:
        raise UcError(status)
    return int(handle.value)


def install_virtual_tlb(uc: Uc) -> int:
    """Run ``uc`` on unicorn's virtual TLB with identity translation, so that stores reach
    unicorn's inline fast path (see plain_perms in _native.c); returns the hook handle.

    For runs without :class:`BlockAccounting`, whose ``install`` does the same with its own
    fill hook. The M-profile MPU is then not consulted for data accesses (simcore does not
    model MemManage faults)."""
    natives = _natives()
    uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
    return _hook_add(uc, UC_HOOK_TLB_FILL, natives.plain_tlb_fill_hook, natives.reg_write, 1, 0)


class BlockAccounting:
    """Cycle and instruction accounting of one run, done by C hooks.

    ``classification`` comes from :func:`simcore.cycles.classify.classify`; ``budget``
    stops the emulator once that many instructions have run (0: no budget; the stop
    lands at the end of the block that crossed it); ``cache`` adds the XIP cache model
    for instruction fetch, and for data reads when ``cache.data_reads`` and
    ``data_reads`` allow it (together with the single-cycle IO charge of
    ``cache.fast_io``: both through the virtual TLB and MMIO aliases, see
    :meth:`install`; each load from flash then takes unicorn's MMIO path, RAM loads do
    not). ``refill_cycles`` overrides the table's taken-branch cost.

    ``data_hits=False`` trades the data-hit count for speed where data reads share the
    cache with instruction fetch: once every line of a flash page is in the cache, loads
    from that page go to plain memory (``configure_resident_pages`` in _native.c). Cycles,
    misses and fetch counts stay exact; ``data_hits`` comes back None. If a later miss
    must evict from a set that holds such a page's line, the LRU victim is no longer
    known: :attr:`lru_unknown` is then True and the run's figures must not be used (run
    it again with ``data_hits=True``). Validation, which reports no hit counts, uses it.
    ``loaded`` (the image's loaded address ranges) leaves lines that hold none of the
    image's bytes out of "every line": a program reads them only by mistake (simcore
    reads such flash as 0, not what the chip holds), and the image's last page would
    otherwise never go resident.
    """

    def __init__(
        self,
        classification: Classification,
        *,
        budget: int = 0,
        cache: CacheConfig | None = None,
        data_reads: bool = True,
        refill_cycles: int | None = None,
        data_hits: bool = True,
        loaded: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        self.classification = classification
        #: The image's loaded ``[start, end)`` ranges: with resident pages, only lines
        #: holding loaded bytes must be cached for a page to go resident (None: all).
        self.loaded = None if loaded is None else tuple(loaded)
        refill = classification.table.refill_cycles if refill_cycles is None else refill_cycles
        self.refill_cycles = refill
        self._native = _native.Accounting(refill, budget)
        # uint64 buffers without numpy (a run's report reads them through buffers());
        # _counts, _ends and _extra view them as numpy arrays when something asks.
        self._buffers: list[tuple[int, memoryview, memoryview, memoryview]] = []
        for r in classification.ranges:
            counts = memoryview(bytearray(8 * (r.nhalf + 1))).cast("Q")  # + a spare slot (see C)
            ends = memoryview(bytearray(8 * (r.nhalf + 1))).cast("Q")
            extra = memoryview(bytearray(8 * (r.nhalf + 1))).cast("Q")
            self._native.add_range(r.start, r.prefix, counts, ends, extra)
            self._buffers.append((r.start, counts[: r.nhalf], ends, extra))
        self._native.set_block_records(BLOCK_RECORDS, BLOCK_RECORDS)
        self.cache = cache
        self.data_reads_modeled = bool(cache is not None and cache.data_reads and data_reads)
        #: Loads from wholly cached pages skip the alias (their hits go uncounted).
        self.resident_pages = bool(
            self.data_reads_modeled and not data_hits and cache is not None and not cache.data_cache
        )
        if cache is not None:
            self._native.configure_cache(
                cache.start,
                cache.end,
                cache.size_bytes,
                cache.ways,
                cache.line_bytes,
                cache.miss_cycles,
            )
            if cache.data_cache is not None:
                self._native.configure_data_cache(*cache.data_cache)
        self._handles: list[int] = []
        self._aliases: list[tuple[int, int]] = []
        self._accesses: dict[tuple[int, int, bool], tuple[_Access, ...]] = {}
        # Per direction (read/write): the last matched access of a block execution.
        self._last_access: dict[bool, tuple[int, int, int]] = {}

    def buffers(self) -> list[tuple[int, memoryview, memoryview, memoryview]]:
        """Per range: (start, counts, ends, extra) as the C hook writes them, uint64
        memoryviews (``counts`` of length nhalf, the others nhalf + 1; ``extra`` holds
        signed values: cast it to ``q``), read without numpy (see :meth:`count_arrays`);
        the block records folded into them first."""
        self._native.flush_blocks()
        return self._buffers

    @cached_property
    def _arrays(
        self,
    ) -> tuple[
        list[npt.NDArray[np.uint64]], list[npt.NDArray[np.uint64]], list[npt.NDArray[np.uint64]]
    ]:
        import numpy as np

        views = [[np.frombuffer(b, dtype=np.uint64) for b in bufs[1:]] for bufs in self._buffers]
        return [v[0] for v in views], [v[1] for v in views], [v[2] for v in views]

    @property
    def _counts(self) -> list[npt.NDArray[np.uint64]]:
        return self._arrays[0]

    @property
    def _ends(self) -> list[npt.NDArray[np.uint64]]:
        return self._arrays[1]

    @property
    def _extra(self) -> list[npt.NDArray[np.uint64]]:
        return self._arrays[2]

    def install(self, uc: Uc) -> None:
        """Register the C hooks on ``uc`` (call before ``emu_start``).

        The engine runs on unicorn's virtual TLB with simcore_tlb_fill_hook (_native.c):
        data pages get entries without execute, so stores take unicorn's inline fast path
        (see plain_perms there). With data reads modeled it also maps two MMIO aliases
        above 4 GB: no memory-read hook, so loads from RAM keep unicorn's fast path and
        loads inside IT blocks run as without accounting.
        """
        natives = _natives()
        self._native.set_emu_stop(natives.emu_stop)
        self._native.set_reg_write(natives.reg_write)
        state = self._native.state_address()
        hooks = [
            (UC_HOOK_BLOCK, natives.block_hook, 1, 0),
            (UC_HOOK_TLB_FILL, natives.tlb_fill_hook, 1, 0),
        ]
        uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        if self.data_reads_modeled and self.cache is not None:
            cache = self.cache
            flash_alias = _ALIAS_BASE + cache.start
            io_lo, io_hi = cache.fast_io if cache.fast_io and cache.fast_io_saving else (0, 0)
            io_alias = _ALIAS_BASE + io_lo
            # Flash is read-only to the core (and to the engine's host writes): loads are
            # served from a copy taken now instead of a uc_mem_read per access. The copy
            # ends with the loaded image (loads past it read unicorn's memory).
            copy_end = cache.end
            if self.loaded is not None:
                ends = [min(hi, cache.end) for lo, hi in self.loaded if lo < cache.end]
                copy_end = max([cache.start, *ends])
            copy: bytearray | None = None
            if copy_end > cache.start:
                try:
                    copy = uc.mem_read(cache.start, copy_end - cache.start)
                except UcError:
                    copy = None
            self._native.configure_aliases(
                flash_alias,
                io_lo,
                io_hi - io_lo,
                io_alias,
                natives.reg_write,
                natives.mem_read,
                natives.mem_write,
                copy,
            )
            if self.resident_pages:
                self._native.configure_resident_pages(
                    uc.ctl_get_page_size(), natives.ctl, self.loaded
                )
            _mmio_map(uc, flash_alias, cache.end - cache.start, natives.flash_data_read, 0, state)
            self._aliases.append((flash_alias, cache.end - cache.start))
            if io_hi > io_lo:
                self._native.set_fast_io_saving(cache.fast_io_saving)
                _mmio_map(
                    uc, io_alias, io_hi - io_lo, natives.fast_io_read, natives.fast_io_write, state
                )
                self._aliases.append((io_alias, io_hi - io_lo))
        for htype, fn, begin, end in hooks:
            handle = _hook_add(uc, htype, fn, state, begin, end)
            uc._callbacks[handle] = self._native  # keeps the C state alive with the hook
            self._handles.append(handle)

    def uninstall(self, uc: Uc) -> None:
        """Remove the hooks from ``uc``."""
        for handle in self._handles:
            uc.hook_del(handle)
        self._handles.clear()
        uc.ctl_set_tlb_mode(UC_TLB_CPU)
        for address, size in self._aliases:
            uc.mem_unmap(address, size)
        self._aliases.clear()

    @property
    def cycles(self) -> int:
        return self._native.cycles

    @property
    def instructions(self) -> int:
        return self._native.instructions

    @property
    def stop_reason(self) -> StopReason:
        return StopReason(self._native.stop_reason)

    @property
    def lru_unknown(self) -> bool:
        """True if the cache's LRU order was lost to resident pages (``data_hits=False``):
        the run's cycle figures are then not exact and it must run again with data hits."""
        return bool(self._native.snapshot()["lru_unknown"])

    @property
    def fault_address(self) -> int | None:
        """Start of the block that was refused (outside the code or unknown), if any."""
        if self.stop_reason in (StopReason.OUTSIDE_CODE, StopReason.UNKNOWN_INSTRUCTION):
            return self._native.snapshot()["fault_start"]
        return None

    def snapshot(self) -> dict[str, int]:
        """Every counter of the C state (cycles, instructions, blocks, taken_branches, ...)."""
        return self._native.snapshot()

    def set_budget(self, instructions: int) -> None:
        """Change the instruction budget (0: none); clears a previous budget stop."""
        self._native.set_budget(instructions)

    def set_timeout(self, at_ns: int | None) -> None:
        """Stop at the first block that starts once ``time.monotonic_ns()`` reached
        ``at_ns`` (None: no timeout), with :attr:`stop_reason` TIMEOUT.

        The hook looks at the clock every 100,000 cycles, instead of unicorn's
        ``emu_start(timeout=)``, whose thread wakes every few microseconds for the
        whole run (measured: about 33,000 context switches per second of emulation).
        """
        self._native.set_timeout(at_ns or 0)

    def set_deadline(self, cycles: int | None) -> None:
        """Stop at the first block starting at or after ``cycles`` (None: never; 0: at the
        next block); clears a previous deadline stop. The block that starts at the
        deadline still runs (see DESIGN: the hook cannot stop before its own block)."""
        self._native.set_deadline(_NO_DEADLINE if cycles is None else max(0, cycles))

    def clear_stop(self) -> None:
        """Forget why the hook stopped the emulator (before resuming)."""
        self._native.clear_stop()

    def charge(self, cycles: int) -> None:
        """Add cycles spent outside any block (exception entry and return, sleep)."""
        if cycles > 0:
            self._native.charge(cycles)

    def check(self) -> None:
        """Raise :class:`CycleModelError` if the hook refused a block (call after a run)."""
        if self.stop_reason in (StopReason.OUTSIDE_CODE, StopReason.UNKNOWN_INSTRUCTION):
            snap = self._native.snapshot()
            raise self.classification.error(snap["fault_start"], snap["fault_end"])

    def block_counts(self) -> dict[int, int]:
        """Executions of each block, keyed by block start address (non-zero only)."""
        import numpy as np

        self._native.flush_blocks()
        out: dict[int, int] = {}
        for r, counts in zip(self.classification.ranges, self._counts, strict=True):
            for i in np.flatnonzero(counts):
                out[r.start + 2 * int(i)] = int(counts[i])
        return out

    def count_arrays(
        self,
    ) -> list[tuple[int, npt.NDArray[np.uint64], npt.NDArray[np.uint64]]]:
        """Per range: (start, blocks started at halfword i, blocks ended before halfword i)."""
        self._native.flush_blocks()
        return [
            (r.start, c, e)
            for r, c, e in zip(self.classification.ranges, self._counts, self._ends, strict=True)
        ]

    def extra_arrays(self) -> list[npt.NDArray[np.int64]]:
        """Per range: the dynamic cycles charged at each halfword (length nhalf).

        Taken-branch refills sit at the last halfword of the block that branched, cache
        misses and single-cycle IO savings (negative) at the first halfword of the block
        that made the access, so ``static cycles of the executed blocks + sum(extra)``
        is the total.
        """
        import numpy as np

        self._native.flush_blocks()
        return [e[:-1].view(np.int64) + 0 for e in self._extra]

    def cut_at(self, pc: int) -> list[tuple[int, npt.NDArray[np.uint64], npt.NDArray[np.uint64]]]:
        """:meth:`count_arrays` with the current block ending at ``pc``.

        The block hook counts a whole block when it starts; a run stopped at ``pc``
        (the ``done`` hook) has not executed the block's instructions from ``pc`` on.
        """
        import numpy as np

        out = self.count_arrays()
        s = self._native.snapshot()
        start, end = s["block_start"], s["block_end"]
        if not start <= pc < end:
            return out
        r = self.classification.range_at(start)
        fixed = []
        for base, counts, ends in out:
            if r is not None and base == r.start:
                ends = ends.copy()
                ends[(pc - base) >> 1] += np.uint64(1)
                ends[(end - base) >> 1] -= np.uint64(1)
            fixed.append((base, counts, ends))
        return fixed

    def cache_stats(self) -> CacheStats | None:
        if self.cache is None:
            return None
        s = self._native.snapshot()
        return CacheStats(
            fetch_hits=s["fetch_hits"],
            fetch_misses=s["fetch_misses"],
            data_hits=None if self.resident_pages else s["data_hits"],
            data_misses=s["data_misses"],
            miss_cycles=s["cache_cycles"],
            data_reads_modeled=self.data_reads_modeled,
            note=self.cache.data_reads_note
            if self.data_reads_modeled or not self.cache.data_reads
            else "not modeled: data-read modeling turned off for this run",
        )

    def cycles_at(self, pc: int) -> int:
        """Cycles charged before the instruction at ``pc`` of the block executing now.

        The block hook charges a whole block when it starts; inside a memory callback
        this subtracts the static cost of the block's instructions from ``pc`` on. Cache
        misses of the block's later lines stay charged (they are counted at block entry).
        If ``pc`` is not inside the current block, the total is returned.
        """
        s = self._native.snapshot()
        start, end = s["block_start"], s["block_end"]
        if not start <= pc < end:
            return s["cycles"]
        r = self.classification.range_at(start)
        if r is None:
            return s["cycles"]
        remainder, _ = r.block_cost(pc, end)
        return s["cycles"] - remainder

    def instructions_at(self, pc: int) -> int:
        """Instructions retired before the one at ``pc`` (see :meth:`cycles_at`)."""
        s = self._native.snapshot()
        start, end = s["block_start"], s["block_end"]
        r = self.classification.range_at(start)
        if not start <= pc < end or r is None:
            return s["instructions"]
        _, remainder = r.block_cost(pc, end)
        return s["instructions"] - remainder

    def access_pc(self, uc: Uc, address: int, *, write: bool = False) -> int:
        """Return the address of the instruction making a memory access, from an MMIO callback.

        Measured on unicorn 2.1.4 (all three models): inside an MMIO callback the PC
        register holds the *start of the current block*, not the accessing instruction,
        unless a UC_HOOK_MEM_READ hook exists (which is not safe on the M33). Registers
        are up to date there, so the instruction is found among the block's loads (or
        stores) after the one matched by the previous access in this same block
        execution: the first whose effective address, computed from the current
        registers, is ``address``; failing that, the first candidate.
        """
        snap = self._native.snapshot()
        start, end = snap["block_start"], snap["block_end"]
        # One execution of a block is identified by its start and the instructions
        # retired before it.
        r = self.classification.range_at(start)
        blocks = snap["instructions"] - (r.block_cost(start, end)[1] if r is not None else 0)
        key = (start, end, write)
        candidates = self._accesses.get(key)
        if candidates is None:
            code = bytes(uc.mem_read(start, end - start)) if end > start else b""
            candidates = self._accesses[key] = _block_accesses(code, start, write)
        if not candidates:
            return int(uc.reg_read(UC_ARM_REG_PC))
        after = -1
        last = self._last_access.get(write)
        if last is not None and last[:2] == (blocks, start):
            after = last[2]
        pool = [(i, c) for i, c in enumerate(candidates) if i > after] or list(
            enumerate(candidates)
        )
        chosen = pool[0]
        for i, c in pool:
            if _effective_address(uc, c) == address:
                chosen = (i, c)
                break
        self._last_access[write] = (blocks, start, chosen[0])
        return chosen[1].address

    def cycles_at_access(self, uc: Uc, address: int, *, write: bool = False) -> int:
        """Cycles before the instruction accessing ``address`` (for DWT/SysTick MMIO reads)."""
        return self.cycles_at(self.access_pc(uc, address, write=write))


@dataclass(frozen=True)
class _Access:
    address: int
    base: int | None  # unicorn register id
    index: int | None
    disp: int
    lshift: int
    subtracted: bool
    post_indexed: bool


@cache
def _uc_reg(name: str) -> int | None:
    name = {"sb": "r9", "sl": "r10", "fp": "r11", "ip": "r12"}.get(name, name)
    value = getattr(arm_const, f"UC_ARM_REG_{name.upper()}", None)
    return value if isinstance(value, int) else None


def _block_accesses(code: bytes, start: int, write: bool) -> tuple[_Access, ...]:
    """Single loads (or stores) of a block with their address operands."""
    import capstone  # here, not at import: a run whose classified code is cached decodes nothing
    from capstone import arm_const as cs_arm

    out = []
    for insn in disassembler().disasm(code, start):
        mems = [op for op in insn.operands if op.type == cs_arm.ARM_OP_MEM]
        if not mems or insn.operands[0].type != cs_arm.ARM_OP_REG:
            continue
        # The transfer register is written by a load, read by a store (capstone 5
        # leaves the access of a post-indexed memory operand empty).
        is_store = not insn.operands[0].access & capstone.CS_AC_WRITE
        if is_store != write:
            continue
        mem = mems[0].mem
        post = insn.operands[-1].type != cs_arm.ARM_OP_MEM and insn.writeback
        out.append(
            _Access(
                address=insn.address,
                base=_uc_reg(insn.reg_name(mem.base)) if mem.base else None,
                index=_uc_reg(insn.reg_name(mem.index)) if mem.index else None,
                disp=mem.disp,
                lshift=mem.lshift,
                subtracted=bool(mems[0].subtracted),
                post_indexed=bool(post),
            )
        )
    return tuple(out)


def _effective_address(uc: Uc, a: _Access) -> int | None:
    if a.base is None or a.base == UC_ARM_REG_PC:
        return None
    addr = int(uc.reg_read(a.base))
    if a.post_indexed:
        return addr
    if a.index is not None:
        off = int(uc.reg_read(a.index)) << a.lshift
        addr = addr - off if a.subtracted else addr + off
    return (addr + a.disp) & 0xFFFFFFFF


def bare_engine(core: str, regions: list[tuple[int, int]]) -> Uc:
    """A unicorn engine for ``core`` with plain RAM mapped at ``regions`` (start, size).

    For the benchmark (raw unicorn against accounting); the simulator proper gets its
    engine from simcore.engine. The CPU model is set before anything else (DESIGN.md).
    """
    from unicorn import UC_ARCH_ARM, UC_MODE_THUMB, UC_PROT_ALL

    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
    from simcore.boards import load_cores

    model = load_cores()[core].unicorn_model
    uc.ctl_set_cpu_model(getattr(arm_const, f"UC_CPU_ARM_{model}"))
    for start, size in regions:
        uc.mem_map(start, size, UC_PROT_ALL)
    return uc
