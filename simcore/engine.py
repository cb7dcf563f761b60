"""Run firmware under Unicorn: the only module that creates a Unicorn engine.

A :class:`Machine` maps a board's memory, loads an ELF's PT_LOAD segments at
their load addresses, and starts the core from the vector table (SP from
entry 0, PC from entry 1). Python runs only on rare events, each hooked by
address: the first instruction of ``main`` (inputs are written then, after the
startup code has initialised .data and .bss), the harness hooks of
``simcore_abi.h``, ``_sbrk``, ``done``, breakpoints/semihosting, MMIO
registers and faults.

Unicorn facts this module depends on (DESIGN.md, measured on 2.1.4): the
engine is created in Thumb mode and given its CPU model before any other
call (``UC_MODE_MCLASS`` would silently make every core an M33); the M0 model
stands in for the M0+; BKPT arrives as interrupt 7 with PC at the BKPT; an
unaligned access on the M0 arrives as interrupt 4 (data abort); ``emu_start``
returns silently on timeout, so the stop reason is always checked.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import unicorn
from unicorn import arm_const

from simcore import memory as mem
from simcore.boards import BoardSpec, RegionKind, get_board
from simcore.cycles.model import CycleModel, MemoryModel
from simcore.cycles.native import StopReason as CycleStop
from simcore.disasm import describe_instruction, mnemonic
from simcore.elf import ElfImage, check_fits, load_elf
from simcore.errors import (
    BudgetExhausted,
    EmulationError,
    MemoryFault,
    StackOverflow,
    UnsupportedInstruction,
    UsageError,
)
from simcore.peripherals import PPB_BASE, PPB_SIZE, PrivatePeripheralBus, SioBlock
from simcore.results import RunResult, StopReason, TraceRecord
from simcore.semihosting import Exit, Semihost

log = logging.getLogger(__name__)

_CPU_MODELS = {
    "CORTEX_M0": arm_const.UC_CPU_ARM_CORTEX_M0,
    "CORTEX_M33": arm_const.UC_CPU_ARM_CORTEX_M33,
    "CORTEX_M7": arm_const.UC_CPU_ARM_CORTEX_M7,
}
_INTR_UNDEF = 1
_INTR_PREFETCH_ABORT = 3
_INTR_DATA_ABORT = 4
_INTR_BKPT = 7
_SEMIHOSTING_BKPT = 0xBEAB
#: An address no Thumb code executes at; `until` for emu_start.
_NEVER = 0xFFFFFFFE
_PAGE = 0x400  # unicorn's ARM page size: mappings must be 1 KB aligned
_IO_MAGIC = 0x434D4953
_IO_FORMAT = "<6I2I"  # simcore_io_t: magic, version, in, out, max, n, input*, output*


@dataclass(frozen=True)
class RunOptions:
    """How to run: inputs, limits, tracing."""

    inputs: bytes | None = None
    n_samples: int | None = None
    trace: bool = False
    max_instructions: int | None = None
    timeout_s: float | None = None
    echo: Callable[[int, str], None] | None = None
    #: Account cycles (the C block hook). Off only to measure raw emulation.
    cycles: bool = True
    memory_model: MemoryModel = MemoryModel.MODELED
    profile_limit: int | None = 50


@dataclass(frozen=True)
class IoDescriptor:
    """The firmware's ``simcore_io`` as read from RAM at ``main``."""

    address: int
    input_bytes: int
    output_bytes: int
    max_samples: int
    n_samples: int
    input: int
    output: int


class _Stop(Exception):
    """Raised inside the engine wrapper to carry a fault out of a hook."""

    def __init__(self, error: EmulationError) -> None:
        super().__init__(str(error))
        self.error = error


class Machine:
    """One board with one firmware loaded, ready to run once."""

    def __init__(self, image: ElfImage, board: BoardSpec) -> None:
        check_fits(image, board)
        self.image = image
        self.board = board
        model = _CPU_MODELS.get(board.core.unicorn_model)
        if model is None:
            raise UsageError(f"core {board.core.name}: unknown unicorn model")
        uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB)
        uc.ctl_set_cpu_model(model)  # must precede every other call
        self.uc = uc
        vt = board.vector_table
        vectors = self._initial_bytes(vt, 8)
        self.initial_sp, reset = struct.unpack("<II", vectors)
        self.reset_pc = reset
        self.stack = mem.stack_layout(image, board, self.initial_sp)
        self._map_memory()
        for seg in image.segments:
            if seg.data:
                uc.mem_write(seg.load_address, seg.data)
        #: The cycle model of the current run (set by run()).
        self.cycle_model: CycleModel | None = None
        self.ppb = PrivatePeripheralBus(core=board.core.name, cycles=self._cycles_at_access)
        self._map_mmio(PPB_BASE, PPB_SIZE, self.ppb.read, self.ppb.write)
        for region in board.regions(RegionKind.IO):
            if region.name == "sio":
                sio = SioBlock()
                self._map_mmio(region.start, region.size_bytes, sio.read, sio.write)

    # -- set-up ---------------------------------------------------------------

    def _initial_bytes(self, address: int, size: int) -> bytes:
        """Bytes of the load image at ``address`` (before anything runs)."""
        for seg in self.image.segments:
            off = address - seg.load_address
            if off >= 0 and off + size <= len(seg.data):
                return seg.data[off : off + size]
        raise UsageError(
            f"{self.image.path.name}: no vector table at 0x{address:08x} "
            f"(the reset vector of {self.board.name})",
            hint="link the vector table at the start of flash",
        )

    def _map_memory(self) -> None:
        guard = self.stack.guard
        for region in self.board.memory:
            if region.kind is RegionKind.IO:
                continue  # mapped as MMIO
            pieces = [(region.start, region.end)]
            if (
                guard is not None
                and region.start <= guard[0] < guard[1] <= region.end
                and guard[0] % _PAGE == 0
                and guard[1] % _PAGE == 0
            ):
                pieces = [(region.start, guard[0]), (guard[1], region.end)]
            for start, end in pieces:
                if end > start:
                    self.uc.mem_map(start, end - start, unicorn.UC_PROT_ALL)
        if guard is not None and not self._guard_unmapped():
            log.info("stack guard 0x%08x-0x%08x is not page aligned; not enforced", *guard)

    def _guard_unmapped(self) -> bool:
        guard = self.stack.guard
        if guard is None:
            return False
        return not any(s <= guard[0] < e for s, e, _ in self.uc.mem_regions())

    def _map_mmio(
        self,
        base: int,
        size: int,
        read: Callable[[int, int], int],
        write: Callable[[int, int, int], None],
    ) -> None:
        def on_read(_uc: Any, offset: int, size_: int, _ud: Any) -> int:
            return read(offset, size_)

        def on_write(_uc: Any, offset: int, size_: int, value: int, _ud: Any) -> None:
            write(offset, size_, value)

        self.uc.mmio_map(base, size, on_read, None, on_write, None)

    def _cycles_at_access(self, address: int, write: bool) -> int | None:
        if self.cycle_model is None:
            return None
        return self.cycle_model.cycles_at_access(self.uc, address, write=write)

    # -- memory helpers -------------------------------------------------------

    def read(self, address: int, size: int) -> bytes:
        """Read emulated memory; an unmapped range is an EmulationError."""
        try:
            return bytes(self.uc.mem_read(address, size))
        except unicorn.UcError:
            raise EmulationError(
                f"firmware passed an unmapped buffer 0x{address:08x}+{size}"
            ) from None

    def write(self, address: int, data: bytes) -> None:
        try:
            self.uc.mem_write(address, data)
        except unicorn.UcError:
            raise EmulationError(f"cannot write {len(data)} bytes at 0x{address:08x}") from None

    def reg(self, name: str) -> int:
        return int(self.uc.reg_read(getattr(arm_const, f"UC_ARM_REG_{name.upper()}")))

    def where(self, address: int) -> str:
        return f"0x{address:08x} in {self.image.describe(address)}"

    def read_io_descriptor(self) -> IoDescriptor | None:
        sym = self.image.symbol("simcore_io")
        if sym is None:
            return None
        fields = struct.unpack(_IO_FORMAT, self.read(sym.address, struct.calcsize(_IO_FORMAT)))
        magic, version, in_b, out_b, cap, n, inp, outp = fields
        if magic != _IO_MAGIC:
            raise UsageError(
                f"{self.image.path.name}: simcore_io at 0x{sym.address:08x} has magic "
                f"0x{magic:08x}, not 0x{_IO_MAGIC:08x}",
                hint="define it with SIMCORE_DEFINE_IO from simcore_abi.h",
            )
        if version != 1:
            raise UsageError(
                f"{self.image.path.name}: harness ABI version {version}; simcore speaks 1"
            )
        return IoDescriptor(sym.address, in_b, out_b, cap, n, inp, outp)

    # -- running --------------------------------------------------------------

    def run(self, options: RunOptions | None = None) -> RunResult:
        """Reset and run to completion; raise an EmulationError subclass on a fault."""
        return _Run(self, options or RunOptions()).execute()


class _Run:
    """The state of one run: hooks, console, traces, stop reason."""

    def __init__(self, machine: Machine, options: RunOptions) -> None:
        self.m = machine
        self.opt = options
        self.semihost = Semihost(
            read_mem=machine.read,
            write_mem=machine.write,
            seconds=lambda: time.perf_counter() - self.started,
            echo=options.echo,
        )
        self.stop: tuple[StopReason, int, int | None] | None = None  # reason, pc, exit code
        self.fault: EmulationError | None = None
        self.unmapped: tuple[str, int, int] | None = None  # access, address, size
        self.traces: list[TraceRecord] = []
        self.sample_index = 0
        #: (sample index, begin?, cycles, instructions) at each sample hook.
        self.sample_marks: list[tuple[int, bool, int, int]] = []
        self.model: CycleModel | None = None
        self.io: IoDescriptor | None = None
        self.heap_now = 0
        self.heap_peak = 0
        self.started = 0.0
        self.n_samples = 0

    # hooks ------------------------------------------------------------------

    def _code_hook(self, address: int, fn: Callable[[], None]) -> None:
        def cb(_uc: Any, _addr: int, _size: int, _ud: Any) -> None:
            try:
                fn()
            except EmulationError as exc:
                self.fault = exc
                self.m.uc.emu_stop()

        self.m.uc.hook_add(unicorn.UC_HOOK_CODE, cb, begin=address, end=address)

    def _on_main(self) -> None:
        if self.io is not None:
            return  # main re-entered (recursion or a second call): inputs are already there
        m = self.m
        io = m.read_io_descriptor()
        if io is None:
            if self.opt.inputs is not None:
                raise EmulationError(
                    f"{m.image.path.name} has no simcore_io symbol, so inputs cannot be given",
                    hint="follow the harness ABI (firmware_builds/include/simcore_abi.h)",
                )
            return
        n = io.n_samples
        if self.opt.inputs is not None:
            data = self.opt.inputs
            n = self.opt.n_samples or (len(data) // io.input_bytes if io.input_bytes else 0)
            if n * io.input_bytes != len(data):
                raise EmulationError(
                    f"{len(data)} input bytes are not {n} samples of {io.input_bytes} bytes"
                )
            if n > io.max_samples:
                raise EmulationError(
                    f"{n} samples exceed the firmware's capacity of {io.max_samples}",
                    hint="run in batches of at most max_samples",
                )
            m.write(io.input, data)
        elif self.opt.n_samples is not None:
            n = min(self.opt.n_samples, io.max_samples)
        m.write(io.address + 20, struct.pack("<I", n))
        self.io = IoDescriptor(
            io.address, io.input_bytes, io.output_bytes, io.max_samples, n, io.input, io.output
        )
        self.n_samples = n

    def _on_done(self) -> None:
        pc = self.m.reg("pc")
        self.stop = (StopReason.DONE, pc, _signed(self.m.reg("r0")))
        self.m.uc.emu_stop()

    def _on_trace(self) -> None:
        layer, ptr, nbytes = self.m.reg("r0"), self.m.reg("r1"), self.m.reg("r2")
        self.traces.append(TraceRecord(self.sample_index, layer, self.m.read(ptr, nbytes)))

    def _on_sample(self, begin: bool) -> None:
        index = self.m.reg("r0")
        if begin:
            self.sample_index = index
        if self.model is not None:
            pc = self.m.reg("pc")
            cycles, insns = self.model.cycles_at(pc), self.model.accounting.instructions_at(pc)
            self.sample_marks.append((index, begin, cycles, insns))

    def _on_sbrk(self) -> None:
        self.heap_now += _signed(self.m.reg("r0"))
        self.heap_peak = max(self.heap_peak, self.heap_now)

    def _on_interrupt(self, _uc: Any, intno: int, _ud: Any) -> None:
        m = self.m
        pc = m.reg("pc")
        try:
            if intno == _INTR_BKPT:
                insn = struct.unpack("<H", m.read(pc, 2))[0]
                if insn == _SEMIHOSTING_BKPT:
                    answer = self.semihost.handle(m.reg("r0"), m.reg("r1"))
                    if isinstance(answer, Exit):
                        self.stop = (StopReason.EXIT, pc, answer.code)
                        m.uc.emu_stop()
                    else:
                        m.uc.reg_write(arm_const.UC_ARM_REG_R0, answer & 0xFFFFFFFF)
                        m.uc.reg_write(arm_const.UC_ARM_REG_PC, (pc + 2) | 1)
                    return
                self.stop = (StopReason.BKPT, pc, insn & 0xFF)
                m.uc.emu_stop()
                return
            if intno in (_INTR_DATA_ABORT, _INTR_PREFETCH_ABORT, _INTR_UNDEF):
                raise self._abort(intno, pc)
            # SVC and other exceptions are taken through the vector table as on hardware.
        except EmulationError as exc:
            self.fault = exc
            m.uc.emu_stop()

    def _abort(self, intno: int, pc: int) -> EmulationError:
        m = self.m
        code = m.read(pc, 4) if intno != _INTR_PREFETCH_ABORT else b""
        insn = describe_instruction(code, pc) if code else "?"
        if intno == _INTR_DATA_ABORT:
            detail = (
                " (Cortex-M0+ faults unaligned halfword and word accesses)"
                if not m.board.core.unaligned_access
                else ""
            )
            return MemoryFault(
                f"HardFault: invalid or unaligned access by '{insn}' at {m.where(pc)}{detail}",
                address=pc,
                access="data",
                pc=pc,
                location=m.image.describe(pc),
            )
        if intno == _INTR_PREFETCH_ABORT and m.board.region_at(pc) is None:
            lr = m.reg("lr") & ~1
            return MemoryFault(
                f"jump to unmapped address 0x{pc:08x} (LR 0x{lr:08x} in {m.image.describe(lr)})",
                address=pc,
                access="fetch",
                pc=pc,
                hint=f"{m.board.name} has {m.board.describe_map()}",
            )
        return EmulationError(f"HardFault at {m.where(pc)} ('{insn}')", pc=pc)

    def _on_unmapped(
        self, _uc: Any, access: int, address: int, size: int, _value: int, _ud: Any
    ) -> bool:
        kind = {
            unicorn.UC_MEM_READ_UNMAPPED: "read",
            unicorn.UC_MEM_WRITE_UNMAPPED: "write",
            unicorn.UC_MEM_FETCH_UNMAPPED: "fetch",
        }.get(access, "access")
        self.unmapped = (kind, address, size)
        return False

    # errors -----------------------------------------------------------------

    def _unsupported(self, pc: int) -> UnsupportedInstruction:
        m = self.m
        code = m.read(pc, 4) if m.board.region_at(pc, 4) else b""
        insn = describe_instruction(code, pc) if code else "?"
        name = mnemonic(code, pc) if code else "instruction"
        if insn.startswith(".inst"):
            msg = f"undefined instruction {insn[6:]} at {m.where(pc)}"
        else:
            msg = f"{name} at {m.where(pc)} is not available on {m.board.core.display_name}"
        return UnsupportedInstruction(
            msg,
            pc=pc,
            location=m.image.describe(pc),
            hint=f"rebuild for {m.board.core.display_name} ({_cpu_flag(m.board)})",
        )

    def _refused_block(self) -> EmulationError | None:
        """The cycle hook stopped before a block it has no timing for: say why.

        An instruction the core does not implement is an UnsupportedInstruction
        (as if the core had executed it); one the core has but the timing table
        lacks is left to the cycle model's own error.
        """
        assert self.model is not None
        acc = self.model.accounting
        if acc.stop_reason is not CycleStop.UNKNOWN_INSTRUCTION:
            return None
        snap = acc.snapshot()
        start, end = snap["fault_start"], snap["fault_end"]
        rng = self.model.classification.range_at(start)
        if rng is None:
            return None
        for address in range(start, end, 2):
            if address in rng.unknown and not _core_executes(self.m.board, self.m.read(address, 4)):
                return self._unsupported(address)
        return None

    def _translate(self, exc: unicorn.UcError) -> EmulationError:
        m = self.m
        pc = m.reg("pc")
        where = m.where(pc)
        if exc.errno == unicorn.UC_ERR_INSN_INVALID:
            return self._unsupported(pc)
        if self.unmapped is not None:
            kind, address, size = self.unmapped
            guard = m.stack.guard
            if kind == "write" and guard is not None and guard[0] <= address < guard[1] + 4:
                func = m.image.function_at(pc)
                return StackOverflow(
                    f"stack overflow in {func.name if func else f'0x{pc:08x}'}: write to "
                    f"0x{address:08x}, in the guard below the stack "
                    f"(0x{m.stack.limit:08x}-0x{m.stack.top:08x}, "
                    f"{m.stack.top - m.stack.limit} bytes), at {where}",
                    address=address,
                    access=kind,
                    pc=pc,
                    location=m.image.describe(pc),
                    hint="reduce stack use (large locals, recursion) or raise STACK_SIZE",
                )
            if kind == "fetch":
                lr = m.reg("lr") & ~1
                return MemoryFault(
                    f"jump to unmapped address 0x{address:08x} (LR 0x{lr:08x} in "
                    f"{m.image.describe(lr)})",
                    address=address,
                    access=kind,
                    pc=pc,
                    hint=f"{m.board.name} has {m.board.describe_map()}",
                )
            code = m.read(pc, 4)
            return MemoryFault(
                f"unmapped {kind} of {size} byte(s) at 0x{address:08x} by "
                f"'{describe_instruction(code, pc)}' at {where}",
                address=address,
                access=kind,
                pc=pc,
                location=m.image.describe(pc),
                hint=f"{m.board.name} has {m.board.describe_map()}",
            )
        return EmulationError(f"emulation failed at {where}: {exc}", pc=pc)

    # main loop --------------------------------------------------------------

    def _install_hooks(self) -> None:
        m, img = self.m, self.m.image
        uc = m.uc
        uc.hook_add(unicorn.UC_HOOK_INTR, self._on_interrupt)
        uc.hook_add(unicorn.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        for name, fn in (
            ("main", self._on_main),
            ("done", self._on_done),
            ("_sbrk", self._on_sbrk),
            ("simcore_sample_begin", lambda: self._on_sample(True)),
            ("simcore_sample_end", lambda: self._on_sample(False)),
        ):
            sym = img.symbol(name)
            if sym is not None and sym.kind == "func":
                self._code_hook(sym.address, fn)
        trace = img.symbol("simcore_trace")
        if self.opt.trace and trace is not None:
            self._code_hook(trace.address, self._on_trace)

    def _paint_stack(self) -> None:
        layout = self.m.stack
        size = layout.top - layout.limit
        if size > 0:
            self.m.write(layout.limit, bytes([mem.STACK_PAINT]) * size)

    def execute(self) -> RunResult:
        m = self.m
        self._install_hooks()
        self._paint_stack()
        uc = m.uc
        uc.reg_write(arm_const.UC_ARM_REG_SP, m.initial_sp)
        timeout_us = int(self.opt.timeout_s * 1e6) if self.opt.timeout_s else 0
        budget = self.opt.max_instructions or 0
        count = 0
        if self.opt.cycles:
            # The C hook enforces the budget; emu_start(count=) would add a
            # per-instruction hook inside unicorn.
            self.model = CycleModel(
                m.image, m.board, memory_model=self.opt.memory_model, budget=budget
            )
            self.model.install(uc)
            m.cycle_model = self.model
        else:
            count = budget
        self.started = time.perf_counter()
        try:
            uc.emu_start(m.reset_pc | 1, _NEVER, timeout=timeout_us, count=count)
        except unicorn.UcError as exc:
            if self.fault is None:
                self.fault = self._translate(exc)
        wall = time.perf_counter() - self.started
        m.cycle_model = None
        if self.fault is not None:
            raise self.fault
        if self.model is not None and not self.model.budget_exhausted:
            refused = self._refused_block()
            if refused is not None:
                raise refused
            self.model.check()  # an executed instruction without a timing entry
        if self.stop is None:
            pc = m.reg("pc")
            if self.model is not None and self.model.budget_exhausted:
                what = f"instruction budget of {budget:,}"
            elif timeout_us and wall >= self.opt.timeout_s * 0.99:  # type: ignore[operator]
                what = f"timeout of {self.opt.timeout_s:g} s"
            else:
                what = f"instruction budget of {budget:,}"
            raise BudgetExhausted(
                f"{what} exhausted at {m.where(pc)}",
                pc=pc,
                location=m.image.describe(pc),
                hint="the firmware may be spinning there; raise --max-instructions/--timeout "
                "if it is just long",
            )
        return self._result(wall)

    def _result(self, wall: float) -> RunResult:
        m = self.m
        assert self.stop is not None
        reason, pc, code = self.stop
        outputs = b""
        if self.io is not None and self.io.output_bytes:
            outputs = m.read(self.io.output, self.n_samples * self.io.output_bytes)
        layout = m.stack
        painted = (
            m.read(layout.limit, layout.top - layout.limit) if layout.top > layout.limit else b""
        )
        stack_peak, exhausted = mem.stack_peak_bytes(layout, painted)
        report = mem.MemoryReport(
            flash=mem.Usage(
                mem.flash_bytes(m.image, m.board),
                sum(r.size_bytes for r in m.board.regions(RegionKind.FLASH)),
            ),
            static_ram=mem.Usage(
                mem.static_ram_bytes(m.image, m.board),
                sum(r.size_bytes for r in m.board.regions(RegionKind.RAM)),
            ),
            stack_peak=mem.Usage(stack_peak, len(painted)),
            heap_peak=mem.Usage(self.heap_peak, mem.heap_capacity(m.image)),
            stack_overflowed_paint=exhausted,
        )
        notes = sorted(m.ppb.notes)
        if exhausted:
            notes.append("the whole painted stack region was used: the real peak may be higher")
        cycles = instructions = None
        cycle_report: dict[str, Any] = {}
        sample_cycles: list[int] = []
        sample_instructions: list[int] = []
        if self.model is not None:
            cycle_report = self.model.report(final_pc=pc, profile_limit=self.opt.profile_limit)
            cycles = int(cycle_report["cycles"])
            instructions = self.model.accounting.instructions_at(pc)
            cycle_report["instructions"] = instructions
            notes.extend(cycle_report.pop("notes", []))
            sample_cycles, sample_instructions = _per_sample(self.sample_marks)
        return RunResult(
            elf=str(m.image.path),
            board=m.board.name,
            core=m.board.core.display_name,
            stop_reason=reason,
            stop_pc=pc,
            stop_location=m.image.describe(pc),
            exit_code=code,
            stdout="".join(self.semihost.stdout),
            stderr="".join(self.semihost.stderr),
            outputs=outputs,
            n_samples=self.n_samples,
            memory=report,
            wall_seconds=wall,
            traces=self.traces,
            instructions=instructions,
            cycles=cycles,
            sample_cycles=sample_cycles,
            sample_instructions=sample_instructions,
            cycle_report=cycle_report,
            notes=notes,
        )


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


def _per_sample(marks: list[tuple[int, bool, int, int]]) -> tuple[list[int], list[int]]:
    """Cycles and instructions between each simcore_sample_begin and its _end."""
    cycles: list[int] = []
    insns: list[int] = []
    open_mark: tuple[int, int, int] | None = None
    for index, begin, c, n in marks:
        if begin:
            open_mark = (index, c, n)
        elif open_mark is not None and open_mark[0] == index:
            cycles.append(c - open_mark[1])
            insns.append(n - open_mark[2])
            open_mark = None
    return cycles, insns


def _core_executes(board: BoardSpec, code: bytes) -> bool:
    """Whether unicorn's model of the board's core decodes the first instruction of ``code``."""
    uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB)
    uc.ctl_set_cpu_model(_CPU_MODELS[board.core.unicorn_model])
    uc.mem_map(0, 0x1000)
    uc.mem_write(0x100, code)
    uc.reg_write(arm_const.UC_ARM_REG_SP, 0x800)
    uc.hook_add(unicorn.UC_HOOK_INTR, lambda u, *_: u.emu_stop())
    try:
        uc.emu_start(0x101, 0x100 + len(code), count=1)
    except unicorn.UcError as exc:
        return bool(exc.errno != unicorn.UC_ERR_INSN_INVALID)
    return True


def _cpu_flag(board: BoardSpec) -> str:
    return f"-mcpu={board.core.name}"


def run_firmware(
    elf: Path | str | ElfImage,
    board: BoardSpec | str,
    *,
    inputs: bytes | None = None,
    n_samples: int | None = None,
    trace: bool = False,
    max_instructions: int | None = None,
    timeout_s: float | None = None,
    echo: Callable[[int, str], None] | None = None,
    cycles: bool = True,
    memory_model: MemoryModel | str = MemoryModel.MODELED,
    profile_limit: int | None = 50,
) -> RunResult:
    """Load ``elf`` on ``board``, run it once, and return what it did.

    ``inputs`` (``n_samples * input_bytes``) go to the firmware's ``simcore_io``
    buffer when it reaches ``main``. Faults raise EmulationError subclasses;
    input problems raise UsageError subclasses.
    """
    spec = get_board(board) if isinstance(board, str) else board
    image = elf if isinstance(elf, ElfImage) else load_elf(elf)
    machine = Machine(image, spec)
    return machine.run(
        RunOptions(
            inputs=inputs,
            n_samples=n_samples,
            trace=trace,
            max_instructions=max_instructions,
            timeout_s=timeout_s,
            echo=echo,
            cycles=cycles,
            memory_model=MemoryModel(memory_model),
            profile_limit=profile_limit,
        )
    )
