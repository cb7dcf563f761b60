"""Run firmware under Unicorn: the only module that creates a Unicorn engine.

A :class:`Machine` maps a board's memory and its chip's peripheral spaces
(simcore.registers), loads an ELF's PT_LOAD segments at their load addresses,
and starts the core from the vector table (SP from entry 0, PC from entry 1),
or, on a chip whose bootrom runs a boot2 stage it finds at the start of flash
(RP2040), from that boot2 as the bootrom enters it. Python runs only on rare events, each hooked by
address: the first instruction of ``main`` (inputs are written then, after the
startup code has initialised .data and .bss), the harness hooks of
``simcore_abi.h``, ``_sbrk``, ``done``, SEV (and, while CCR.DIV_0_TRP is set,
SDIV/UDIV), breakpoints/semihosting, MMIO registers, stores to flash and faults.

Nothing the firmware supplies is trusted: the vector table is checked before
the run (a bad SP or reset vector is an ElfError), and every size or pointer
read from the firmware at run time (semihosting buffers, ``simcore_trace``,
``simcore_io``) must lie inside one region of the board's memory map, or the
run ends with a one-line fault.

Unicorn facts this module depends on (DESIGN.md, measured on 2.1.4): the
engine is created in Thumb mode and given its CPU model before any other
call (``UC_MODE_MCLASS`` would silently make every core an M33); the M0 model
stands in for the M0+; memory is mapped in 1 KB pages; BKPT arrives as
interrupt 7 with PC at the BKPT; an unaligned access on the M0 arrives as
interrupt 4 (data abort); SVC arrives as interrupt 2 with PC after it, a
branch to EXC_RETURN in Handler mode as interrupt 8 (simcore.exceptions performs
entry and return between two ``emu_start`` calls), and any interrupt the hook
returns from is consumed (execution continues, or repeats the faulting
instruction forever), so every one is turned into a stop here;
UDF and a branch that clears the Thumb bit (EPSR.T = 0: INVSTATE) stop with
UC_ERR_INSN_INVALID with PC at the instruction; WFE and YIELD stop with
UC_ERR_INSN_INVALID with PC after them; WFI makes ``emu_start`` return
silently with PC after it; ``emu_start`` also returns silently on timeout, so
the stop reason is always checked. A code hook added while running takes
effect only once the translated code is dropped (``ctl_remove_cache``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import unicorn
from unicorn import arm_const

from simcore import coprocessors as copro
from simcore import lazylog as logging
from simcore import memory as mem
from simcore import rom as bootrom
from simcore.api import public
from simcore.boards import BoardSpec, MemoryRegion, RegionKind, get_board
from simcore.cycles.classify import disassembler
from simcore.cycles.layers import layer_info, per_layer
from simcore.cycles.model import CycleModel, MemoryModel
from simcore.cycles.native import StopReason as CycleStop
from simcore.cycles.native import install_virtual_tlb
from simcore.disasm import describe_instruction, mnemonic
from simcore.elf import CodeSection, ElfImage, Symbol, check_fits, load_elf
from simcore.errors import (
    BudgetExhausted,
    BusFault,
    ElfError,
    EmulationError,
    MemoryFault,
    NotModeled,
    SimError,
    SleepForever,
    StackOverflow,
    UnsupportedInstruction,
    UsageError,
    UsageFault,
)
from simcore.exceptions import (
    EXC_RETURN_MIN,
    InterruptController,
    interrupt_spec,
)
from simcore.peripherals import (
    CCR_DIV_0_TRP,
    CPACR,
    PPB_BASE,
    PPB_SIZE,
    MicrosecondTimer,
    PrivatePeripheralBus,
    RegisterFile,
    SioBlock,
)
from simcore.results import LayerSpan, RunResult, StopReason, TraceRecord
from simcore.semihosting import Exit, Semihost, operation_name
from simcore.traces import elf_manifest

if TYPE_CHECKING:
    from simcore.cycles.callgraph import Counts, DetailedProfile
    from simcore.registers import PeripheralBus

log = logging.getLogger(__name__)

_CPU_MODELS = {
    "CORTEX_M0": arm_const.UC_CPU_ARM_CORTEX_M0,
    "CORTEX_M4": arm_const.UC_CPU_ARM_CORTEX_M4,
    "CORTEX_M33": arm_const.UC_CPU_ARM_CORTEX_M33,
    "CORTEX_M7": arm_const.UC_CPU_ARM_CORTEX_M7,
}
# QEMU's exception numbers, as unicorn's UC_HOOK_INTR reports them.
_INTR_UNDEF = 1
_INTR_SVC = 2
_INTR_PREFETCH_ABORT = 3
_INTR_DATA_ABORT = 4
_INTR_BKPT = 7
_INTR_NOCP = 17
_INTR_EXCEPTION_EXIT = 8
_INTR_NOCP = 17
_USAGE_FAULTS = {
    17: ("NOCP", "a coprocessor (FPU) instruction with the coprocessor disabled"),
    18: ("INVSTATE", "execution with the Thumb bit clear"),
    19: ("STKOF", "the stack pointer went below its limit (MSPLIM/PSPLIM)"),
    20: ("LAZYFP", "a fault during lazy floating-point state preservation"),
    22: ("UNALIGNED", "an unaligned access with CCR.UNALIGN_TRP set"),
    23: ("DIVBYZERO", "a division by zero with CCR.DIV_0_TRP set"),
}
_EXCEPTION_NAMES = {5: "IRQ", 6: "FIQ", 11: "HVC", 13: "SMC", 16: "semihosting", 21: "LSERR"}
_SEMIHOSTING_BKPT = 0xBEAB
_XPSR_THUMB = 1 << 24
#: An address no Thumb code executes at; `until` for emu_start.
_NEVER = 0xFFFFFFFE
#: LR at reset, as Cortex-M cores set it (the M3/M4/M7 TRMs give 0xFFFFFFFF; the
#: architecture says UNKNOWN). A return through it lands on _NEVER, where the run
#: stops: see _Run.returned_from_reset.
_RESET_LR = 0xFFFFFFFF
_PAGE = 0x400  # unicorn's ARM page size: mappings must be 1 KB aligned
_IO_MAGIC = 0x434D4953
_IO_FORMAT = "<6I2I"  # simcore_io_t: magic, version, in, out, max, n, input*, output*
_IO_BYTES = struct.calcsize(_IO_FORMAT)
#: simcore_trace data kept per run; more is a firmware tracing in a loop.
MAX_TRACE_BYTES = 256 << 20
# Thumb encodings recognised without a disassembler (ARMv7-M ARM A7.7).
_HINTS_16 = {0xBF10: "YIELD", 0xBF20: "WFE", 0xBF30: "WFI", 0xBF40: "SEV"}
_HINTS_32 = {0x8001: "YIELD", 0x8002: "WFE", 0x8003: "WFI", 0x8004: "SEV"}
_DIVIDE_OPS = {0xFB90: "sdiv", 0xFBB0: "udiv"}
_REGISTERS = (
    *(getattr(arm_const, f"UC_ARM_REG_R{i}") for i in range(13)),
    arm_const.UC_ARM_REG_SP,
    arm_const.UC_ARM_REG_LR,
    arm_const.UC_ARM_REG_PC,
)


def _halfwords(code: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(code) // 2}H", code[: len(code) // 2 * 2])


def _hint(code: bytes) -> str | None:
    """YIELD, WFE, WFI or SEV if ``code`` (2 or 4 bytes) is exactly that hint instruction."""
    hw = _halfwords(code)
    if len(hw) == 1:
        return _HINTS_16.get(hw[0])
    if len(hw) == 2 and hw[0] == 0xF3AF:
        return _HINTS_32.get(hw[1])
    return None


def _udf(code: bytes) -> int | None:
    """The immediate of a UDF (T1 or T2) at the start of ``code``, else None."""
    hw = _halfwords(code[:4])
    if hw and hw[0] & 0xFF00 == 0xDE00:
        return hw[0] & 0xFF
    if len(hw) == 2 and hw[0] & 0xFFF0 == 0xF7F0 and hw[1] & 0xF000 == 0xA000:
        return ((hw[0] & 0xF) << 12) | (hw[1] & 0xFFF)
    return None


@functools.lru_cache(maxsize=256)
def _scan(code: bytes, base: int, pattern: bytes) -> tuple[int, ...]:
    """Addresses of the halfwords of ``code`` where the regular expression ``pattern``
    (over the little-endian bytes, from that halfword on) matches.

    A match that is not an instruction start (data, or the second half of a
    32-bit instruction) is harmless to hook: no instruction executes there.
    The patterns below spell the Thumb encodings out byte by byte (ARMv7-M ARM
    A7.7); matching runs in the regular-expression engine, not once per halfword in
    Python (a tenth of a small run's start-up before). Remembered per code, base and
    pattern: every batch of a validation installs its hooks from the same sections.
    """
    end = len(code) // 2 * 2
    found = re.compile(b"(?=" + pattern + b")", re.DOTALL).finditer(code, 0, end)
    return tuple(base + m.start() for m in found if not m.start() & 1)


#: BX LR, POP {..,PC}, POP.W {..,PC} (0xE8BD, register list with bit 15) or
#: LDR PC, [SP], #4 (0xF85D 0xFB04).
_RETURNS = rb"\x70\x47|.\xbd|\xbd\xe8.[\x80-\xff]|\x5d\xf8\x04\xfb"
#: SEV (16-bit 0xBF40, 32-bit 0xF3AF 0x8004).
_SEV = rb"\x40\xbf|\xaf\xf3\x04\x80"
#: SDIV or UDIV: 0xFB9x or 0xFBBx, then a halfword with 0xF0F0 set.
_DIVIDES = rb"[\x90-\x9f\xb0-\xbf]\xfb[\xf0-\xff][\xf0-\xff]"
#: CPSIE i/f (0xB662, 0xB661), or MSR (0xF38x) to PRIMASK, BASEPRI(_MAX), FAULTMASK
#: (second halfword 0x8810-0x8813: mask 0b10, SYSm 16-19).
_UNMASKS = rb"[\x61\x62]\xb6|[\x80-\x8f]\xf3[\x10-\x13]\x88"
#: `b .` (0xE7FE) or `b.w .` (0xF7FF 0xBFFE), where startup code parks after main, or
#: `bx lr` (0x4770), which STM32Cube startup files put after `bl main`.
_PARKS = rb"\xfe\xe7|\x70\x47|\xff\xf7\xfe\xbf"


#: How far below SP an access still counts as the stack's (a PUSH of every register).
_STACK_SLACK = 256


#: The last address the core can reach (32-bit); the accounting's MMIO aliases lie above.
_ADDRESS_SPACE_END = 0xFFFF_FFFF


def _gaps(mapped: list[tuple[int, int, int]], last: int) -> list[tuple[int, int]]:
    """The inclusive address ranges in [0, last] that no (start, end inclusive, perms)
    region of the sorted ``mapped`` covers."""
    gaps: list[tuple[int, int]] = []
    at = 0
    for start, end, _ in mapped:
        if start > last:
            break
        if start > at:
            gaps.append((at, start - 1))
        at = max(at, end + 1)
    if at <= last:
        gaps.append((at, last))
    return gaps


def _returns(image: ElfImage, address: int) -> list[int]:
    """Addresses of the return instructions of the function at ``address``.

    BX LR, POP {..., PC} (16 and 32 bit) and LDR PC, [SP], #4: at any of them R0
    holds the return value.
    """
    func = image.function_at(address)
    section = next(
        (s for s in image.code_sections if s.address <= address < s.address + len(s.data)), None
    )
    if func is None or section is None:
        return []
    end = section.address + len(section.data)
    if func.size_bytes:
        end = min(end, func.address + func.size_bytes)
    else:
        later = [
            f.address for f in image.symbols.values() if f.kind == "func" and f.address > address
        ]
        end = min([end, *later])
    code = section.data[func.address - section.address : end - section.address]
    return list(_scan(code, func.address, _RETURNS))


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
    #: Functions kept in the cycle report's profile, the most cycles first (None: all;
    #: 0: none, and none computed).
    profile_limit: int | None = 50
    #: Compute the detailed profile (inclusive cycles, calls, lines, loops) after the run.
    profile_detail: bool = False
    #: Limit the detailed profile to this sample (between its begin and end marks).
    profile_sample: int | None = None
    #: Count data hits of the flash cache. False lets loads from wholly cached flash pages
    #: skip the cache model (much faster for weights in XIP flash; cycles stay exact, the
    #: hit count is not reported); see simcore.cycles.native.BlockAccounting. A run that
    #: then loses the cache's LRU order stops there and Machine.run raises
    #: _CacheOrderLost (run_firmware runs it again with the hits counted).
    data_hits: bool = True


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


def _relabel(exc: SimError, message: str, *, pc: int | None = None, location: str = "") -> SimError:
    """Give ``exc`` a message that says where it happened (in place: it is ours)."""
    exc.message = message
    exc.args = (message if exc.hint is None else f"{message}; {exc.hint}",)
    if isinstance(exc, EmulationError) and pc is not None:
        exc.pc, exc.location = pc, location
    return exc


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
        chip = None
        if board.peripherals:
            # Imported here: a board without chip data (peripheral windows) runs
            # without the module's ten dataclasses (a few % of a small run's start-up).
            from simcore.registers import PeripheralBus, boot2_valid, load_chip

            chip = load_chip(board.peripherals)
        #: Where the program's vector table is: after a boot2 the chip's bootrom runs
        #: first (RP2040), else the board's.
        self.vector_table = board.vector_table
        self.boot2 = False
        if chip is not None and chip.boot2 is not None:
            boot = self._image_bytes(board.vector_table, chip.boot2.size)
            if boot is not None and boot2_valid(chip.boot2, boot):
                self.vector_table, self.boot2 = chip.boot2.vector_table, True
                self.image = image = _boot2_as_code(image, board.vector_table, chip.boot2.size)
        vectors = self._initial_bytes(self.vector_table, 8)
        raw_sp, reset = struct.unpack("<II", vectors)
        # The core ignores bits [1:0] of the initial SP (SP_main reset value).
        self.initial_sp = raw_sp & ~3
        self.reset_pc = reset
        try:
            self._check_vectors(raw_sp, reset)
        except ElfError as exc:
            if chip is None or chip.boot2 is None or self.boot2:
                raise
            # An image for a chip whose bootrom runs boot2 first: most likely a boot2
            # with a bad checksum (the real bootrom would not start it either).
            raise ElfError(
                f"{exc.message}; nor does it start with a boot2 the {chip.name} bootrom "
                f"accepts (CRC-32 of its first {chip.boot2.size - 4} bytes does not match "
                f"the word after them)",
                hint=f"link a valid boot2 (pico-sdk's boot_stage2) at 0x{board.vector_table:08x} "
                f"and the vector table at 0x{chip.boot2.vector_table:08x}, or the vector table "
                f"at 0x{board.vector_table:08x}",
            ) from None
        #: PC, SP and LR the run starts with: the reset vector, or boot2 entered as the
        #: bootrom enters it (SP at the bootrom's stack, LR = 0: "vector into flash").
        self.entry = (reset, self.initial_sp, _RESET_LR)
        if self.boot2 and chip is not None and chip.boot2 is not None:
            self.entry = (board.vector_table | 1, chip.boot2.stack, 0)
        self.stack = mem.stack_layout(image, board, self.initial_sp)
        self._map_memory()
        for seg in image.segments:
            if seg.data:
                uc.mem_write(seg.load_address, seg.data)  # host writes ignore protection
        #: The board's bootroms (simcore.rom), mapped read/execute; their code joins
        #: the image's for classification and profiles (``rom:`` names).
        self.roms = bootrom.mappings(board)
        for rom in self.roms:
            if rom.image is not None:
                prot = unicorn.UC_PROT_READ | unicorn.UC_PROT_EXEC
                uc.mem_map(rom.region.start, rom.region.size_bytes, prot)
                uc.mem_write(rom.region.start, rom.image.contents)
        self.image = bootrom.with_roms(image, self.roms)
        #: The cycle model of the current run (set by run()).
        self.cycle_model: CycleModel | None = None
        #: The last run lost the cache's LRU order to resident pages (RunOptions.data_hits
        #: False): it stopped early and raised _CacheOrderLost (run_firmware runs it again).
        self.lru_unknown = False
        #: A SimError raised by an MMIO register, with the PC of the access.
        self.mmio_fault: tuple[SimError, int] | None = None
        #: Called with CCR after the firmware writes it (set by the current run).
        self.on_ccr: Callable[[int], None] | None = None
        notes: set[str] = set()
        #: Exceptions: NVIC, SysTick, entry and return (simcore.exceptions).
        self.interrupts = InterruptController(
            spec=interrupt_spec(board),
            has_fpu=board.core.fpu != "none",
            vector_table=self.vector_table,
            cycles=self._cycles_at_access,
            notes=notes,
            poke=self._poke,
            armv6=board.core.architecture == "Armv6-M",
            is_code=self._is_code,
        )
        #: Called when firmware changed what is pending or masked (set by the run).
        self.on_poke: Callable[[], None] | None = None
        self.ppb = PrivatePeripheralBus(
            core=board.core.name,
            cycles=self._cycles_at_access,
            on_ccr=self._ccr_written,
            interrupts=self.interrupts,
            notes=notes,
        )
        self._map_mmio(PPB_BASE, PPB_SIZE, self.ppb.read, self.ppb.write)
        #: Called with each byte firmware sends through a console register (UART TX).
        self.console: Callable[[int], None] | None = None
        #: The chip's peripheral windows (board data), or None for a board without.
        self.bus = PeripheralBus(chip, {}, self._console_byte) if chip is not None else None
        #: Coprocessors the chip has and unicorn lacks, by number (chip data).
        for region in board.regions(RegionKind.IO):
            # The board file names the model: the RP2040/RP2350 SIO has a divider, the
            # board's [timer] counts microseconds; other peripherals read back.
            regs: SioBlock | RegisterFile | MicrosecondTimer = (
                SioBlock() if region.peripheral == "rp2040-sio" else RegisterFile()
            )
            if board.timer is not None and region.name == board.timer.region:
                regs = MicrosecondTimer(
                    base=region.start,
                    offsets={offset: name for name, offset in board.timer.registers},
                    tick_hz=board.timer.tick_hz,
                    clock_hz=board.clock_hz,
                    cycles=self._cycles_at_access,
                    notes=self.ppb.notes,
                    alarms=self.interrupts.spec.alarms,
                    poke=self._poke,
                )
                if regs.alarms is not None:
                    self.interrupts.add_source(regs)
            if self.bus is not None and self.bus.add_model(region.start, region.size_bytes, regs):
                continue  # reached through the chip's space (with its atomic aliases)
            self._map_mmio(region.start, region.size_bytes, regs.read, regs.write)
        if self.bus is not None:
            for start, size in self.bus.spaces():
                self._map_space(self.bus, start, size)
        #: Coprocessors the chip has and unicorn lacks (chip data; simcore.coprocessors).
        self.coprocessors = copro.Coprocessors(
            chip.coprocessors if chip is not None else (), self.bus, image, board.name
        )

    # -- set-up ---------------------------------------------------------------

    def _map_space(self, bus: PeripheralBus, base: int, size: int) -> None:
        """Map one of the chip's peripheral spaces, routed by the bus."""

        def read(offset: int, n: int) -> int:
            return bus.read(base + offset, n)

        def write(offset: int, n: int, value: int) -> None:
            bus.write(base + offset, n, value)

        self._map_mmio(base, size, read, write)

    def _console_byte(self, byte: int) -> None:
        if self.console is not None:
            self.console(byte)

    def _image_bytes(self, address: int, size: int) -> bytes | None:
        """Bytes of the load image at ``address``, or None where nothing is loaded."""
        for seg in self.image.segments:
            off = address - seg.load_address
            if off >= 0 and off + size <= len(seg.data):
                return seg.data[off : off + size]
        return None

    def _initial_bytes(self, address: int, size: int) -> bytes:
        """Bytes of the load image at ``address`` (before anything runs)."""
        data = self._image_bytes(address, size)
        if data is not None:
            return data
        raise ElfError(
            f"{self.image.path.name}: no vector table at 0x{address:08x} "
            f"(the reset vector of {self.board.name})",
            hint="link the vector table at the start of flash",
        )

    def _check_vectors(self, raw_sp: int, reset: int) -> None:
        """Refuse an image whose vector table a real core could not start from."""
        name, board = self.image.path.name, self.board
        at = f"(vector table entry {{}} at 0x{self.vector_table:08x})"
        if mem.stack_region(board, self.initial_sp) is None:
            raise ElfError(
                f"{name}: initial SP 0x{raw_sp:08x} {at.format(0)} is not in RAM "
                f"({board.name} has {board.describe_map()})",
                hint="link the stack top (vector table entry 0) at the end of a RAM region",
            )
        if not reset & 1:
            raise ElfError(
                f"{name}: reset vector 0x{reset:08x} {at.format(1)} has the Thumb bit clear: "
                "a Cortex-M core takes a HardFault (INVSTATE) at reset",
                hint="mark the reset handler as Thumb code (.thumb_func in assembly) so its "
                "address is odd",
            )
        target = reset & ~1
        region = board.region_at(target, 2)
        loaded = any(
            s.load_address <= target and target + 2 <= s.load_address + len(s.data)
            for s in self.image.segments
        )
        if region is None or region.kind is RegionKind.IO or not loaded:
            raise ElfError(
                f"{name}: reset vector 0x{reset:08x} {at.format(1)} points where no code is "
                f"loaded at reset ({board.name} has {board.describe_map()})",
                hint="point vector table entry 1 at the reset handler's address in flash",
            )

    def _map_memory(self) -> None:
        guard = self.stack.guard
        for region in self.board.memory:
            if region.kind in (RegionKind.IO, RegionKind.ROM):
                continue  # mapped as MMIO, or with the ROM's image
            # A plain store does not change flash on the real boards: map it read-only
            # so such a store faults (UC_ERR_WRITE_PROT) instead of succeeding.
            prot = (
                unicorn.UC_PROT_READ | unicorn.UC_PROT_EXEC
                if region.kind is RegionKind.FLASH
                else unicorn.UC_PROT_ALL
            )
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
                    self.uc.mem_map(start, end - start, prot)
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
        def on_read(uc: Any, offset: int, size_: int, _ud: Any) -> int:
            try:
                return read(offset, size_)
            except SimError as exc:
                self._mmio_failed(exc, base + offset, write=False)
                return 0

        def on_write(uc: Any, offset: int, size_: int, value: int, _ud: Any) -> None:
            try:
                write(offset, size_, value)
            except SimError as exc:
                self._mmio_failed(exc, base + offset, write=True)

        self.uc.mmio_map(base, size, on_read, None, on_write, None)

    def _mmio_failed(self, exc: SimError, address: int, *, write: bool) -> None:
        if self.mmio_fault is None:
            model = self.cycle_model
            pc = (
                model.accounting.access_pc(self.uc, address, write=write)
                if model is not None
                else self.reg("pc")
            )
            self.mmio_fault = (exc, pc)
        self.uc.emu_stop()

    def _poke(self) -> None:
        if self.on_poke is not None:
            self.on_poke()

    def _is_code(self, address: int) -> bool:
        """Whether ``address`` lies in an executable section of the ELF (not the ROM's:
        an empty vector, 0, is a missing handler even where a bootrom sits at 0)."""
        if any(start <= address < end for start, end in bootrom.rom_ranges(self.roms)):
            return False
        return any(s.address <= address < s.address + len(s.data) for s in self.image.code_sections)

    def _ccr_written(self, value: int) -> None:
        if self.on_ccr is not None:
            self.on_ccr(value)

    def _cycles_at_access(self, address: int, write: bool) -> int | None:
        if self.cycle_model is None:
            return None
        return self.cycle_model.cycles_at_access(self.uc, address, write=write)

    # -- memory helpers -------------------------------------------------------

    def _buffer_region(self, address: int, size: int, access: str) -> MemoryRegion:
        """The flash or RAM region holding ``[address, address + size)``, or a MemoryFault."""
        region = self.board.region_at(address, max(size, 1))
        # Not a peripheral, nor the bootrom at 0x0: a NULL buffer stays a fault.
        if region is not None and region.kind in (RegionKind.FLASH, RegionKind.RAM):
            return region
        first = self.board.region_at(address)
        if first is not None and first.kind in (RegionKind.FLASH, RegionKind.RAM):
            problem = f"runs past the end of {first.name} (0x{first.start:08x}-0x{first.end:08x})"
        else:
            problem = "is in no flash or RAM region"
        raise MemoryFault(
            f"buffer 0x{address:08x}+{size:,} bytes {problem}",
            address=address,
            access=access,
            hint=f"check the pointer and length the firmware passes ({self.board.name} has "
            f"{self.board.describe_map()})",
        )

    def read(self, address: int, size: int) -> bytes:
        """Read a buffer the firmware names; it must lie inside one flash or RAM region."""
        if size == 0:
            return b""  # wherever it points
        self._buffer_region(address, size, "read")
        try:
            return bytes(self.uc.mem_read(address, size))
        except unicorn.UcError:
            raise MemoryFault(
                f"buffer 0x{address:08x}+{size:,} bytes touches unmapped memory (the stack guard)",
                address=address,
                access="read",
                hint="check the pointer and length the firmware passes",
            ) from None

    def write(self, address: int, data: bytes) -> None:
        """Write into RAM for the firmware (inputs, semihosting answers)."""
        region = self._buffer_region(address, len(data), "write")
        if region.kind is not RegionKind.RAM:
            raise MemoryFault(
                f"buffer 0x{address:08x}+{len(data):,} bytes is in {region.name}, "
                "which the core cannot write",
                address=address,
                access="write",
                hint="pass a buffer in RAM",
            )
        try:
            self.uc.mem_write(address, data)
        except unicorn.UcError:
            raise MemoryFault(
                f"cannot write {len(data):,} bytes at 0x{address:08x} (the stack guard)",
                address=address,
                access="write",
                hint="pass a buffer in RAM",
            ) from None

    def code_at(self, address: int, size: int = 4) -> bytes:
        """Up to ``size`` bytes of memory at ``address`` for messages; b"" if unreadable."""
        region = self.board.region_at(address)
        if region is None or region.kind is RegionKind.IO:
            return b""
        try:
            return bytes(self.uc.mem_read(address, min(size, region.end - address)))
        except unicorn.UcError:
            return b""

    def reg(self, name: str) -> int:
        return int(self.uc.reg_read(getattr(arm_const, f"UC_ARM_REG_{name.upper()}")))

    def thumb(self) -> bool:
        """EPSR.T: clear after a branch to an even address (INVSTATE on the next instruction)."""
        return bool(self.reg("xpsr") & _XPSR_THUMB)

    def at(self, address: int) -> dict[str, Any]:
        """The ``pc`` and ``location`` keywords of an EmulationError raised at ``address``."""
        return {"pc": address, "location": self.image.describe(address)}

    def where(self, address: int) -> str:
        """``0x10000234 in main+0x12 (main.c:41)``, or just the address when nothing is known."""
        place = self.image.describe(address)
        return place if place == f"0x{address:08x}" else f"0x{address:08x} in {place}"

    def read_io_descriptor(self) -> IoDescriptor | None:
        """The firmware's ``simcore_io`` as it is in RAM now, checked against the board.

        A descriptor whose buffers do not fit the board's RAM is an ElfError when the
        image holds it so, an EmulationError when the program changed it.
        """
        sym = self.image.symbol("simcore_io")
        if sym is None:
            return None
        name = self.image.path.name
        region = self.board.region_at(sym.address, _IO_BYTES)
        if region is None or region.kind is not RegionKind.RAM:
            raise ElfError(
                f"{name}: simcore_io at 0x{sym.address:08x} is not in RAM",
                hint="define it with SIMCORE_DEFINE_IO from simcore_abi.h (a writable object)",
            )
        raw = self.read(sym.address, _IO_BYTES)
        magic, version, in_b, out_b, cap, n, inp, outp = struct.unpack(_IO_FORMAT, raw)
        if magic != _IO_MAGIC:
            raise UsageError(
                f"{name}: simcore_io at 0x{sym.address:08x} has magic "
                f"0x{magic:08x}, not 0x{_IO_MAGIC:08x}",
                hint="define it with SIMCORE_DEFINE_IO from simcore_abi.h",
            )
        if version != 1:
            raise UsageError(f"{name}: harness ABI version {version}; simcore speaks 1")
        problem = None
        for what, ptr, per in (("input", inp, in_b), ("output", outp, out_b)):
            total = per * cap
            buf = self.board.region_at(ptr, total) if total else None
            if total and (buf is None or buf.kind is not RegionKind.RAM):
                problem = (
                    f"its {what} buffer 0x{ptr:08x} + {cap:,} samples x {per:,} bytes "
                    f"({total:,} bytes) is not inside one RAM region"
                )
                break
        if problem is None and n > cap:
            problem = f"n_samples {n:,} exceeds max_samples {cap:,}"
        if problem is None:
            return IoDescriptor(sym.address, in_b, out_b, cap, n, inp, outp)
        message = f"simcore_io at 0x{sym.address:08x}: {problem}"
        hint = (
            "fix SIMCORE_DEFINE_IO(input_bytes, output_bytes, capacity) "
            f"({self.board.name} has {self.board.describe_map()})"
        )
        if self.image.initial_bytes(sym.address, _IO_BYTES) == raw:
            raise ElfError(f"{name}: {message}", hint=hint)
        raise EmulationError(f"the program changed {message}", hint=hint)

    # -- running --------------------------------------------------------------

    def run(self, options: RunOptions | None = None) -> RunResult:
        """Reset and run to completion; raise an EmulationError subclass on a fault."""
        return _Run(self, options or RunOptions()).execute()


def _check_options(options: RunOptions) -> None:
    """Refuse limits that cannot be honoured (negative, infinite, not a number)."""
    budget, timeout, n = options.max_instructions, options.timeout_s, options.n_samples
    if budget is not None and not 0 <= budget < 1 << 63:
        raise UsageError(f"instruction budget {budget}", hint="give a whole number >= 0")
    if timeout is not None and not (math.isfinite(timeout) and 0 < timeout <= 1e7):
        raise UsageError(f"timeout {timeout} s", hint="give a number of seconds > 0")
    if n is not None and not 0 <= n < 1 << 32:
        raise UsageError(f"{n} samples", hint="give a whole number of samples >= 0")


class _Run:
    """The state of one run: hooks, console, traces, stop reason."""

    def __init__(self, machine: Machine, options: RunOptions) -> None:
        _check_options(options)
        self.m = machine
        self.opt = options
        self.semihost = Semihost(
            read_mem=machine.read,
            write_mem=machine.write,
            seconds=lambda: time.perf_counter() - self.started,
            echo=options.echo,
        )
        #: UART bytes not yet passed to the console (sent a line at a time, so
        #: UTF-8 sequences stay whole).
        self.uart = bytearray()
        machine.console = self._on_uart
        self.stop: tuple[StopReason, int, int | None] | None = None  # reason, pc, exit code
        self.fault: SimError | None = None
        self.unmapped: tuple[str, int, int] | None = None  # access, address, size
        self.protected: tuple[int, int] | None = None  # address, size of a store to flash
        self.traces: list[TraceRecord] = []
        self.trace_bytes = 0
        self.sample_index = 0
        #: (sample index, begin?, cycles, instructions) at each sample hook.
        self.sample_marks: list[tuple[int, bool, int, int]] = []
        #: Every sample hook and layer mark in run order: (kind, index or layer id,
        #: cycles, instructions), kind "begin", "end" or "layer".
        self.marks: list[tuple[str, int, int, int]] = []
        #: Block counts at the begin and end of ``options.profile_sample``.
        self.sample_counts: tuple[Counts, Counts | None] | None = None
        #: The accounting's dynamic cycles per halfword at the same two points.
        self.sample_extras: tuple[list[Any], list[Any] | None] = ([], None)
        self.model: CycleModel | None = None
        self.io: IoDescriptor | None = None
        self.heap_now = 0
        self.heap_peak = 0
        #: Return instructions of ``_sbrk`` (hooked to see its result) and the request
        #: between its entry and return.
        self.sbrk_returns: list[int] = []
        self.sbrk_pending: int | None = None
        #: The highest heap break ``_sbrk`` returned (None: not seen).
        self.heap_top: int | None = None
        self.started = 0.0
        self.n_samples = 0
        #: The event register WFE waits on (set by SEV; simcore has no other event source).
        self.event = False
        self.divide_hooks = False
        #: Stop and start again at the PC (the code hooks of the divides just added
        #: must apply to the block that enabled them too).
        self.restart = False
        #: Where the first call of main returns to (LR at its entry), and why the
        #: run ended there, if it did (a note for the result).
        self.main_return: int | None = None
        self.end_note: str | None = None
        #: Codes the ROM's table lookups did not find, in run order.
        self.rom_missing: list[int] = []
        #: An exception action the interrupt hook stopped for: ("svc", return address)
        #: or ("return", EXC_RETURN); performed between two emu_start calls.
        self.exc_action: tuple[str, int] | None = None

    # hooks ------------------------------------------------------------------

    def _code_hook(self, address: int, fn: Callable[[], None]) -> None:
        def cb(_uc: Any, _addr: int, _size: int, _ud: Any) -> None:
            try:
                fn()
            except SimError as exc:
                self.fault = exc
                self.m.uc.emu_stop()

        self.m.uc.hook_add(unicorn.UC_HOOK_CODE, cb, begin=address, end=address)

    def _at(self, pc: int) -> tuple[int, str]:
        return pc, self.m.image.describe(pc)

    def _on_main(self) -> None:
        if self.main_return is None:
            self.main_return = self.m.reg("lr") & ~1
        if self.io is not None:
            return  # main re-entered (recursion or a second call): inputs are already there
        m = self.m
        try:
            io = m.read_io_descriptor()
        except EmulationError as exc:
            pc = m.reg("pc")
            raise _relabel(exc, f"{exc.message} (at {m.where(pc)})", pc=pc) from None
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

    def _on_parked(self, address: int) -> None:
        """A `b .` or `bx lr` right after a call: if main returned to it, the program ended.

        Vendor startup code ends `bl main` (or `blx r0`) with `b .`: on hardware
        the core spins there for ever with main's result in r0. STM32Cube's
        startup files end it with `bx lr`, whose LR is stale once main has
        returned (it jumps back into main, or to itself). Any other such
        instruction is left to run, as before.
        """
        if address != self.main_return:
            return
        m = self.m
        self.stop = (StopReason.DONE, address, _signed(m.reg("r0")))
        if m.code_at(address, 2) == b"\x70\x47":  # bx lr
            self.end_note = (
                f"main returned to {m.where(address)}, the startup code's `bx lr` (its LR "
                "is stale once main has returned); r0 is reported as the exit code"
            )
        else:
            self.end_note = (
                f"main returned to an endless loop at {m.where(address)} (the startup "
                "code's `b .`); r0 is reported as the exit code"
            )
        m.uc.emu_stop()

    def returned_from_reset(self) -> bool:
        """The program returned from its reset handler: the PC is the reset LR's target.

        LR holds 0xFFFFFFFF at reset, so a reset handler that returns (a C
        Reset_Handler whose `pop {..., pc}` restores it, or one that tail-calls
        main with `b main`) branches to 0xFFFFFFFE. On hardware the fetch there
        faults, but the program's work ended when main returned, and r0 holds its
        result: simcore reports that as the exit code, with a note. Only once
        main has run: a reset handler returning before it is a fault (an exit
        code 0 from a program that ran nothing would be a false pass).
        """
        m = self.m
        if self.stop is not None or self.fault is not None or m.reg("pc") != _NEVER:
            return False
        self._end_at_reset_lr()
        return True

    def _end_at_reset_lr(self) -> None:
        """Stop with r0 as the exit code, or raise when main never ran."""
        m = self.m
        if self.main_return is None:
            raise MemoryFault(
                "the reset handler returned (to 0xfffffffe, from LR's reset value "
                "0xffffffff) before any call of main",
                address=_NEVER,
                access="fetch",
                pc=_NEVER,
                hint="call main from the reset handler (a program without main must end "
                "with done, bkpt or a semihosting exit)",
            )
        self.stop = (StopReason.DONE, _NEVER, _signed(m.reg("r0")))
        self.end_note = (
            "the program returned from its reset handler (to 0xfffffffe, from LR's "
            "reset value 0xffffffff); r0 is reported as the exit code"
        )

    def _caller(self) -> int | None:
        """The address of the BL/BLX whose return address is in LR, if there is one."""
        ret = self.m.reg("lr") & ~1
        hw = _halfwords(self.m.code_at(ret - 2, 2))
        if hw and hw[0] & 0xFF87 == 0x4780:  # BLX Rm
            return ret - 2
        hw = _halfwords(self.m.code_at(ret - 4, 4))
        if len(hw) == 2 and hw[0] & 0xF800 == 0xF000 and hw[1] & 0xD000 == 0xD000:  # BL
            return ret - 4
        return None

    def _mark(self, kind: str, index: int) -> None:
        """Record the cycles and instructions before the hooked call's first instruction."""
        if self.model is not None:
            pc = self.m.reg("pc")
            self.marks.append(
                (kind, index, self.model.cycles_at(pc), self.model.accounting.instructions_at(pc))
            )

    def _on_layer(self) -> None:
        """``simcore_layer(id)``: a per-layer mark without data."""
        self._mark("layer", self.m.reg("r0"))

    def _on_trace(self) -> None:
        m = self.m
        layer, ptr, nbytes = m.reg("r0"), m.reg("r1"), m.reg("r2")
        self._mark("layer", layer)
        if not self.opt.trace:
            return
        try:
            data = m.read(ptr, nbytes)
            self.trace_bytes += nbytes
            if self.trace_bytes > MAX_TRACE_BYTES:
                raise EmulationError(
                    f"trace data passed {MAX_TRACE_BYTES >> 20} MB",
                    hint="the firmware is probably tracing in a loop; trace fewer bytes",
                )
        except EmulationError as exc:
            site = self._caller() or m.reg("lr") & ~1
            raise _relabel(
                exc,
                f"simcore_trace({layer}, 0x{ptr:08x}, {nbytes:,}) called at {m.where(site)}: "
                f"{exc.message}",
                **m.at(site),
            ) from None
        self.traces.append(TraceRecord(self.sample_index, layer, data))

    def _on_sample(self, begin: bool) -> None:
        index = self.m.reg("r0")
        if begin:
            self.sample_index = index
        if self.model is not None:
            pc = self.m.reg("pc")
            cycles, insns = self.model.cycles_at(pc), self.model.accounting.instructions_at(pc)
            self.sample_marks.append((index, begin, cycles, insns))
            self.marks.append(("begin" if begin else "end", index, cycles, insns))
            if self.opt.profile_sample == index and self.opt.profile_detail:
                snapshot = [
                    (s, c.copy(), e.copy()) for s, c, e in self.model.accounting.count_arrays()
                ]
                extras = self.model.accounting.extra_arrays()  # copies
                if begin:
                    self.sample_counts = (snapshot, None)
                    self.sample_extras = (extras, None)
                elif self.sample_counts is not None and self.sample_counts[1] is None:
                    self.sample_counts = (self.sample_counts[0], snapshot)
                    self.sample_extras = (self.sample_extras[0], extras)

    def _on_sbrk(self) -> None:
        increment = _signed(self.m.reg("r0"))
        if self.sbrk_returns:
            self.sbrk_pending = increment  # counted at its return, if it succeeds
            return
        self.heap_now += increment  # no return found to watch: count the request
        self.heap_peak = max(self.heap_peak, self.heap_now)

    def _on_sbrk_return(self) -> None:
        """At a return of ``_sbrk``: count the request unless it failed (returned -1)."""
        increment, self.sbrk_pending = self.sbrk_pending, None
        if increment is None or self.m.reg("r0") == 0xFFFFFFFF:
            return
        self.heap_now += increment
        self.heap_peak = max(self.heap_peak, self.heap_now)
        # r0 is the old break: the heap now ends at r0 + increment.
        self.heap_top = max(self.heap_top or 0, (self.m.reg("r0") + increment) & 0xFFFFFFFF)

    def _on_uart(self, byte: int) -> None:
        self.uart.append(byte)
        if byte == 0x0A or len(self.uart) >= 4096:
            self._flush_uart()

    def _flush_uart(self) -> None:
        if self.uart:
            data, self.uart = bytes(self.uart), bytearray()
            self.semihost.console(1, data)

    def _on_sev(self) -> None:
        self.event = True

    def _on_rom_missing(self) -> None:
        """A ROM table lookup found nothing (it returns NULL): note the code."""
        code = self.m.reg("r0")
        self.rom_missing.append(code)
        self.m.ppb.notes.add(bootrom.missing_note(self.m.board.name, code))

    def _on_rom_unsupported(self, symbol: str) -> None:
        """The firmware called a ROM function simcore does not carry out: end the run."""
        m = self.m
        site = self._caller() or m.reg("lr") & ~1
        raise bootrom.unsupported_error(symbol, m.where(site), site, m.image.describe(site))

    def _on_rom_null(self) -> None:
        raise self._jump_fault(0)

    def _on_ccr(self, ccr: int) -> None:
        """CCR.DIV_0_TRP set: hook every SDIV/UDIV (once) so a zero divisor faults."""
        m = self.m
        if not ccr & CCR_DIV_0_TRP or self.divide_hooks or not m.board.core.divide:
            return
        self.divide_hooks = True
        for section in m.image.code_sections:
            found = _scan(section.data, section.address, _DIVIDES)
            for address in found:
                hw, nxt = _halfwords(section.data[address - section.address :][:4])
                self._code_hook(address, self._divide_check(address, hw, nxt))
            if found:
                # Code already translated would not call the new hooks.
                m.uc.ctl_remove_cache(section.address, section.address + len(section.data))
                self.restart = True
        if self.restart:
            # Stopping inside an MMIO write leaves PC at the store, not yet retired: it
            # runs again on restart (writing CCR again does nothing more). The rest of
            # its block is then counted twice: a few cycles, once per run.
            m.uc.emu_stop()

    def _divide_check(self, address: int, hw: int, nxt: int) -> Callable[[], None]:
        divisor = _REGISTERS[nxt & 0xF]
        op = _DIVIDE_OPS[hw & 0xFFF0]

        def check() -> None:
            m = self.m
            if m.ppb.ccr & CCR_DIV_0_TRP and int(m.uc.reg_read(divisor)) == 0:
                insn = describe_instruction(m.code_at(address), address)
                raise UsageFault(
                    f"DIVBYZERO: '{insn}' at {m.where(address)} divides by zero with "
                    "CCR.DIV_0_TRP set",
                    kind="DIVBYZERO",
                    **m.at(address),
                    hint=f"check the divisor before the {op} (with DIV_0_TRP clear the "
                    "quotient is 0)",
                )

        return check

    def _on_interrupt(self, _uc: Any, intno: int, _ud: Any) -> None:
        m = self.m
        pc = m.reg("pc")
        try:
            if intno == _INTR_NOCP and self._coprocessor(pc):
                return
            if intno == _INTR_BKPT:
                insn = struct.unpack("<H", m.code_at(pc, 2).ljust(2, b"\0"))[0]
                if insn == _SEMIHOSTING_BKPT:
                    op, arg = m.reg("r0"), m.reg("r1")
                    try:
                        answer = self.semihost.handle(op, arg)
                    except EmulationError as exc:
                        raise _relabel(
                            exc,
                            f"semihosting {operation_name(op)} at {m.where(pc)}: {exc.message}",
                            **m.at(pc),
                        ) from None
                    if isinstance(answer, Exit):
                        self.stop = (StopReason.EXIT, pc, answer.code)
                        m.uc.emu_stop()
                    else:
                        m.uc.reg_write(arm_const.UC_ARM_REG_R0, answer & 0xFFFFFFFF)
                        m.uc.reg_write(arm_const.UC_ARM_REG_PC, (pc + 2) | 1)
                    return
                function = m.image.function_at(pc)
                if function is not None and function.name == "_exit":
                    # pico-sdk's _exit (after exit(), after main returns) is a
                    # `bkpt #0` loop with the status still in r0.
                    self.stop = (StopReason.EXIT, pc, _signed(m.reg("r0")))
                    self.end_note = (
                        f"the program called exit() and stopped at the breakpoint in _exit "
                        f"({m.where(pc)}); r0 is reported as the exit code"
                    )
                else:
                    self.stop = (StopReason.BKPT, pc, insn & 0xFF)
                m.uc.emu_stop()
                return
            if pc == _NEVER and intno in (_INTR_EXCEPTION_EXIT, _INTR_PREFETCH_ABORT):
                # A `pop {pc}` of the reset LR: the M33 model takes it as an exception
                # return, the M7 model faults the fetch at 0xfffffffe (the M0 model
                # branches there, and emu_start stops). simcore runs no handlers, so
                # this is Thread mode: the reset handler returned.
                self._end_at_reset_lr()
                m.uc.emu_stop()
                return
            if intno == _INTR_NOCP and self._coprocessor(pc):
                return
            if intno == _INTR_SVC:
                self.exc_action = ("svc", pc)
                m.uc.emu_stop()
                return
            if intno == _INTR_EXCEPTION_EXIT and m.interrupts.active and pc >= EXC_RETURN_MIN:
                self.exc_action = ("return", pc | 1)
                m.uc.emu_stop()
                return
            if intno in (_INTR_DATA_ABORT, _INTR_PREFETCH_ABORT, _INTR_UNDEF):
                raise self._abort(intno, pc)
            # Unicorn does not enter exception handlers: returning from this hook would
            # skip the instruction (SVC) or repeat it forever (a UsageFault).
            raise self._exception(intno, pc)
        except SimError as exc:
            self.fault = exc
            m.uc.emu_stop()

    def _coprocessor(self, pc: int) -> bool:
        """A NOCP for a coprocessor instruction: run it on the chip's coprocessor model
        and go on after it (True), or raise its fault; False for the FPU's (p10/p11)."""
        m = self.m
        insn = copro.decode(m.code_at(pc, 4))
        if insn is None or insn.coproc >= 8:
            return False
        cpacr = m.ppb.registers.get(CPACR, 0)
        cpu = copro.Cpu(m.uc)
        try:
            m.coprocessors.execute(insn, cpu, cpacr, m.where(pc))
        except SimError as exc:
            raise _relabel(exc, exc.message, **m.at(pc)) from None
        cpu.advance_it()  # a conditional one in an IT block ran: its slot is used
        m.uc.reg_write(arm_const.UC_ARM_REG_PC, (pc + 4) | 1)
        return True

    def _on_dcp_function(self, function: copro.DcpFunction) -> None:
        """A pico-sdk DCP function: its result from the host, its cycles from its code."""
        m = self.m
        dcp = m.coprocessors.dcp
        assert dcp is not None
        try:
            dcp.call(function, copro.Cpu(m.uc))
        except SimError as exc:
            raise _relabel(exc, exc.message, **m.at(function.address)) from None
        if self.model is not None:
            # The block hook charged PCMP and BMI (the entry block); the straight path
            # after them to the BX LR is charged here, as the core table costs it.
            r = self.model.classification.range_at(function.address)
            if r is not None and function.end <= r.end:
                self._charge(r.block_cost(function.address + 6, function.end)[0])

    def _exception(self, intno: int, pc: int) -> SimError:
        m = self.m
        if intno == 18:
            return self._invstate(pc)
        if intno in _USAGE_FAULTS:
            kind, what = _USAGE_FAULTS[intno]
            return UsageFault(
                f"{kind}: {what} at {m.where(pc)}",
                kind=kind,
                **m.at(pc),
                hint="on hardware this is a UsageFault; fix the code at that place",
            )
        if intno == _INTR_EXCEPTION_EXIT:
            return UsageFault(
                f"INVPC: branch to EXC_RETURN 0x{pc | 1:08x} in Thread mode (no exception "
                f"is active; {self._lr_note()})",
                kind="INVPC",
                pc=pc,
                hint="only an exception handler returns through EXC_RETURN; a return address "
                "was corrupted",
            )
        what = f"exception {_EXCEPTION_NAMES.get(intno, intno)}"
        return NotModeled(
            f"{what} at {m.where(pc)}: simcore does not model this exception",
            **m.at(pc),
            hint="run code that does not raise it",
        )

    def _abort(self, intno: int, pc: int) -> EmulationError:
        m = self.m
        code = m.code_at(pc) if intno != _INTR_PREFETCH_ABORT else b""
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
                **m.at(pc),
            )
        region = m.board.region_at(pc)
        if intno == _INTR_PREFETCH_ABORT and (region is None or region.kind is RegionKind.IO):
            return self._jump_fault(pc)
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

    def _on_write_protected(
        self, _uc: Any, _access: int, address: int, size: int, _value: int, _ud: Any
    ) -> bool:
        self.protected = (address, size)
        return False

    # errors -----------------------------------------------------------------

    def _lr_note(self) -> str:
        lr = self.m.reg("lr") & ~1
        where = self.m.image.describe(lr)
        return f"LR 0x{lr:08x}" if where == f"0x{lr:08x}" else f"LR 0x{lr:08x} in {where}"

    def _jump_fault(self, target: int) -> MemoryFault:
        """A jump to ``target`` where there is no memory, only peripherals, or to address 0."""
        m = self.m
        region = m.board.region_at(target)
        peripheral = (
            "the Private Peripheral Bus"
            if PPB_BASE <= target < PPB_BASE + PPB_SIZE
            else f"peripheral region {region.name}"
            if region is not None and region.kind is RegionKind.IO
            else None
        )
        if peripheral is not None:
            return MemoryFault(
                f"jump to 0x{target:08x} in {peripheral}, which is execute-never "
                f"({self._lr_note()})",
                address=target,
                access="fetch",
                pc=target,
                hint="a return address or function pointer was corrupted",
            )
        if target & ~1 == 0:
            site = self._caller()
            looked_up = ""
            if self.rom_missing:
                code = bootrom.code_name(self.rom_missing[-1])
                looked_up = f"; the last ROM lookup that found nothing was {code}"
            what = (
                f"call through a NULL pointer at {m.where(site)}"
                if site is not None
                else f"jump through a NULL pointer to address 0x00000000 ({self._lr_note()})"
            )
            return MemoryFault(
                what,
                address=0,
                access="fetch",
                pc=target,
                location=m.image.describe(site) if site is not None else None,
                hint="check the function pointer before calling it (a callback never set, "
                f"a weak function never defined{looked_up})",
            )
        return MemoryFault(
            f"jump to unmapped address 0x{target:08x} ({self._lr_note()})",
            address=target,
            access="fetch",
            pc=target,
            hint=f"{m.board.name} has {m.board.describe_map()}",
        )

    def _invstate(self, target: int) -> SimError:
        """EPSR.T is clear: the program branched to an address with bit 0 clear."""
        if target & ~1 == 0:
            return self._jump_fault(target)
        m = self.m
        return UsageFault(
            f"INVSTATE: branch to {m.where(target)}, an address without the Thumb bit "
            f"(bit 0 clear; {self._lr_note()})",
            kind="INVSTATE",
            **m.at(target),
            hint="branch through addresses with bit 0 set (a Thumb function's address; "
            "in assembly, .thumb_func or +1)",
        )

    def _outside_code(self, start: int) -> EmulationError:
        """The cycle hook saw a block in no executable section of the ELF."""
        m = self.m
        region = m.board.region_at(start)
        where = f" in {region.name}" if region is not None else ""
        if region is not None and region.kind is RegionKind.RAM:
            hint = (
                "simcore times only code linked into the ELF's executable sections: link "
                "code that runs from RAM into one; otherwise a return address or function "
                "pointer was corrupted"
            )
        else:
            hint = "a return address or function pointer was corrupted, or code jumped into data"
        return EmulationError(
            f"execution reached 0x{start:08x}{where}, outside the ELF's executable sections "
            f"({self._lr_note()})",
            pc=start,
            hint=hint,
        )

    def _not_an_instruction(self, start: int) -> EmulationError:
        m = self.m
        if start & ~1 == 0:
            return self._jump_fault(start)  # the ROM's header at 0: a call through NULL
        return EmulationError(
            f"execution reached {m.where(start)}, which is not the start of an instruction "
            f"(data, or the middle of an instruction; {self._lr_note()})",
            **m.at(start),
            hint="a return address or function pointer was corrupted, or code jumped into data",
        )

    def _udf(self, pc: int, imm: int) -> UsageFault:
        m = self.m
        return UsageFault(
            f"UDF #{imm} (permanently undefined) executed at {m.where(pc)}",
            kind="UNDEFINSTR",
            **m.at(pc),
            hint="the program reached a trap (__builtin_trap, an unreachable path, a failed "
            "check): find why it got there",
        )

    def _sleep(self, hint: str, at: int) -> SleepForever:
        m = self.m
        if hint == "WFI":
            what = "WFI with no interrupt source"
        else:
            what = "WFE with no event pending (no SEV before it, and no interrupt source)"
        if self.model is None:
            hint = (
                "SysTick and TIMER interrupts need the cycle model (run without --no-cycles); "
                "otherwise end the program instead of waiting"
            )
        else:
            hint = (
                "nothing armed can wake the core (SysTick with TICKINT, a TIMER alarm with "
                "its interrupt enabled in the timer and the NVIC): arm one, or end the "
                "program instead of waiting (return from main, bkpt or SYS_EXIT)"
            )
        return SleepForever(
            f"{what} at {m.where(at)}: the core would sleep forever", **m.at(at), hint=hint
        )

    def _unsupported(self, pc: int) -> SimError:
        m = self.m
        code = m.code_at(pc)
        imm = _udf(code)
        if imm is not None:
            return self._udf(pc, imm)
        insn = describe_instruction(code, pc) if code else "?"
        name = mnemonic(code, pc) if code else "instruction"
        elsewhere = [model for model in _CPU_MODELS if code and _model_executes(model, code)]
        if not insn.startswith(".inst") and elsewhere:
            return UnsupportedInstruction(
                f"{name} at {m.where(pc)} is not available on {m.board.core.display_name}",
                **m.at(pc),
                hint=f"rebuild for {m.board.core.display_name} ({_cpu_flag(m.board)})",
            )
        shown = insn[6:] if insn.startswith(".inst") else f"'{insn}'"
        return UnsupportedInstruction(
            f"undefined instruction {shown} at {m.where(pc)}: no Cortex-M core executes it "
            f"({self._lr_note()})",
            **m.at(pc),
            hint="execution ran into data or corrupted code: check the jump that led there",
        )

    def _waiting_hint(self, pc: int) -> tuple[str, int] | None:
        """(YIELD/WFE/WFI, its address) if the instruction just before ``pc`` is one.

        With accounting, the last block must end at ``pc`` (unicorn ends a block after
        these hints); without, the bytes before ``pc`` decide.
        """
        m = self.m
        if self.model is not None:
            snap = self.model.accounting.snapshot()
            if snap["block_end"] != pc:
                return None
        for size in (2, 4):
            hint = _hint(m.code_at(pc - size, size))
            if hint is not None and hint != "SEV":
                return hint, pc - size
        return None

    def _refused_block(self) -> SimError | None:
        """The cycle hook stopped before a block it has no timing for: say why.

        A Thumb bit cleared by a branch is INVSTATE; a block outside the ELF's code
        or not starting at an instruction is a wild jump; an instruction the core does
        not implement is an UnsupportedInstruction (as if the core had executed it);
        one the core has but the timing table lacks is left to the cycle model's own
        error.
        """
        assert self.model is not None
        acc = self.model.accounting
        if acc.stop_reason not in (CycleStop.UNKNOWN_INSTRUCTION, CycleStop.OUTSIDE_CODE):
            return None
        snap = acc.snapshot()
        start, end = snap["fault_start"], snap["fault_end"]
        if not self.m.thumb():
            return self._invstate(start)
        rng = self.model.classification.range_at(start)
        if acc.stop_reason is CycleStop.OUTSIDE_CODE or rng is None or end > rng.end:
            return self._outside_code(start)
        for address in range(start, end, 2):
            reason = rng.unknown.get(address)
            if reason is None:
                continue
            if reason.startswith("data"):
                return self._not_an_instruction(address)
            code = self.m.code_at(address)
            imm = _udf(code)
            if imm is not None:
                return self._udf(address, imm)
            if not _core_executes(self.m.board, code):
                return self._unsupported(address)
            return None  # a real instruction without a timing row
        if rng.row_index[(start - rng.start) >> 1] < 0:
            return self._not_an_instruction(start)
        return None

    def _translate(self, exc: unicorn.UcError) -> SimError:
        m = self.m
        pc = m.reg("pc")
        where = m.where(pc)
        if not m.thumb():
            return self._invstate(pc)
        if exc.errno == unicorn.UC_ERR_WRITE_PROT and self.protected is not None:
            address, size = self.protected
            region = m.board.region_at(address)
            name = region.name if region is not None else "read-only memory"
            extent = f" 0x{region.start:08x}-0x{region.end:08x}" if region is not None else ""
            insn = describe_instruction(m.code_at(pc), pc)
            return BusFault(
                f"BusFault: store of {size} byte(s) to 0x{address:08x} in {name} by '{insn}' "
                f"at {where}: {name}{extent} is read-only to the core",
                address=address,
                access="write",
                **m.at(pc),
                hint="flash is programmed through its controller (or the bootrom's flash "
                "routines), not by plain stores; keep data the program writes in RAM",
            )
        if exc.errno == unicorn.UC_ERR_FETCH_PROT:
            return self._jump_fault(pc)
        if exc.errno == unicorn.UC_ERR_INSN_INVALID:
            waiting = self._waiting_hint(pc)
            if waiting is not None and _udf(m.code_at(pc)) is None:
                return self._sleep(*waiting)
            return self._unsupported(pc)
        if self.unmapped is not None:
            kind, address, size = self.unmapped
            rom_error = bootrom.error_at(m.roms, address)
            if rom_error is not None and not (kind == "fetch" and address & ~1 == 0):
                return rom_error  # (a jump to 0 stays a NULL call, ROM or not)
            guard = m.stack.guard
            sp = m.reg("sp")
            if (kind == "write" and guard is not None and guard[0] <= address < guard[1] + 4) or (
                # A frame larger than the guard skipped it: SP is below the stack and
                # the access is near SP (a push, or the frame's own locals).
                kind in ("write", "read")
                and sp < m.stack.limit
                and sp - _STACK_SLACK <= address < m.stack.limit
            ):
                func = m.image.function_at(pc)
                depth = m.stack.top - min(sp, address)
                below = (
                    "in the guard below the stack"
                    if guard is not None and guard[0] <= address < guard[1] + 4
                    else f"{m.stack.limit - address:,} bytes below the stack"
                )
                return StackOverflow(
                    f"stack overflow in {func.name if func else f'0x{pc:08x}'}: {kind} "
                    f"{'to' if kind == 'write' else 'of'} 0x{address:08x}, {below} "
                    f"(0x{m.stack.limit:08x}-0x{m.stack.top:08x}, "
                    f"{m.stack.top - m.stack.limit} bytes) at a stack depth of {depth:,} "
                    f"bytes, at {where}",
                    address=address,
                    access=kind,
                    **m.at(pc),
                    hint="reduce stack use (large locals, recursion) or build with a larger "
                    "--stack-size",
                )
            if kind == "fetch":
                return self._jump_fault(address)
            code = m.code_at(pc)
            return MemoryFault(
                f"unmapped {kind} of {size} byte(s) at 0x{address:08x} by "
                f"'{describe_instruction(code, pc)}' at {where}",
                address=address,
                access=kind,
                **m.at(pc),
                hint=f"{m.board.name} has {m.board.describe_map()}",
            )
        return EmulationError(f"emulation failed at {where}: {exc}", pc=pc)

    # main loop --------------------------------------------------------------

    def _install_hooks(self) -> None:
        m, img = self.m, self.m.image
        uc = m.uc
        uc.hook_add(unicorn.UC_HOOK_INTR, self._on_interrupt)
        # Memory hooks only where they can fire: unicorn keeps every store to an address
        # that any memory hook covers on its slow path (see plain_perms in _native.c).
        mapped = sorted((start, end, perms) for start, end, perms in uc.mem_regions())
        for begin, end in _gaps(mapped, _ADDRESS_SPACE_END):
            uc.hook_add(unicorn.UC_HOOK_MEM_UNMAPPED, self._on_unmapped, begin=begin, end=end)
        for begin, end, perms in mapped:
            if begin < _ADDRESS_SPACE_END and not perms & unicorn.UC_PROT_WRITE:
                uc.hook_add(
                    unicorn.UC_HOOK_MEM_WRITE_PROT, self._on_write_protected, begin=begin, end=end
                )
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
        sbrk = img.symbol("_sbrk")
        if sbrk is not None and sbrk.kind == "func":
            self.sbrk_returns = _returns(img, sbrk.address)
            for address in self.sbrk_returns:
                self._code_hook(address, self._on_sbrk_return)
        # Both are layer marks (cycles per layer) whenever cycles are counted; only
        # --trace copies simcore_trace's bytes. A Python hook per call costs nothing
        # next to a layer.
        trace = img.symbol("simcore_trace")
        if trace is not None and (self.opt.trace or self.opt.cycles):
            self._code_hook(trace.address, self._on_trace)
        layer = img.symbol("simcore_layer")
        if layer is not None and layer.kind == "func" and self.opt.cycles:
            self._code_hook(layer.address, self._on_layer)
        for section in img.code_sections:
            for address in _scan(section.data, section.address, _SEV):
                self._code_hook(address, self._on_sev)
            # Unmasking (CPSIE, MSR PRIMASK/BASEPRI/FAULTMASK) may let a pending
            # exception in: look again at the next block boundary.
            for address in _scan(section.data, section.address, _UNMASKS):
                self._code_hook(address, self._unmasking)
        m.on_poke = self._poke
        if img.symbol("main") is not None:
            for address in _parks_after_calls(img.code_sections):
                self._code_hook(address, functools.partial(self._on_parked, address))
        for rom in m.roms:
            if rom.image is None:
                continue
            missing = rom.image.hook(bootrom.MISSING_HOOK)
            if missing is not None:
                self._code_hook(missing, self._on_rom_missing)
            for symbol in bootrom.UNSUPPORTED:
                entry = rom.image.hook(symbol)
                if entry is not None:
                    self._code_hook(entry, functools.partial(self._on_rom_unsupported, symbol))
            if rom.region.start == 0:
                # Address 0 holds the ROM's initial SP, not code: a call through NULL.
                self._code_hook(0, self._on_rom_null)
        m.on_ccr = self._on_ccr
        dcp = m.coprocessors.dcp
        for function in dcp.functions.values() if dcp is not None else ():
            self._code_hook(function.address, functools.partial(self._on_dcp_function, function))

    def _paint_stack(self) -> None:
        layout = self.m.stack
        size = layout.top - layout.limit
        if size > 0:
            self.m.write(layout.limit, bytes([mem.STACK_PAINT]) * size)

    def _emulate(self, timeout_us: int, count: int) -> None:
        """Run from reset until a stop or fault; YIELD, and WFE after SEV, continue."""
        m, uc = self.m, self.m.uc
        begin = m.entry[0] | 1
        while True:
            remaining = 0
            if timeout_us:
                remaining = timeout_us - int((time.perf_counter() - self.started) * 1e6)
                if remaining <= 0:
                    return
            if self.model is not None:
                # The C hook watches the clock (unicorn's timeout thread would wake
                # every few microseconds for the whole run).
                self.model.accounting.set_timeout(
                    time.monotonic_ns() + remaining * 1000 if remaining else None
                )
            try:
                uc.emu_start(
                    begin, _NEVER, timeout=0 if self.model is not None else remaining, count=count
                )
            except unicorn.UcError as exc:
                if self.fault is not None or m.mmio_fault is not None:
                    return
                pc = m.reg("pc")
                waiting = (
                    self._waiting_hint(pc)
                    if exc.errno == unicorn.UC_ERR_INSN_INVALID and m.thumb()
                    else None
                )
                if waiting is not None and (
                    waiting[0] == "YIELD" or (waiting[0] == "WFE" and self.event)
                ):
                    # A YIELD is a NOP on a single core; a WFE with the event
                    # register set clears it and goes on.
                    self.event = self.event and waiting[0] != "WFE"
                    begin = pc | 1
                    continue
                if waiting is not None and waiting[0] == "WFE":
                    try:
                        if self._sleep_until_event():
                            begin = m.reg("pc") | 1
                            continue
                    except SimError as fault:
                        self.fault = fault
                        return
                if pc == _NEVER:
                    try:
                        self._end_at_reset_lr()
                    except SimError as fault:
                        self.fault = fault
                    return
                self.fault = self._translate(exc)
                return
            if self.fault is not None or self.stop is not None or m.mmio_fault is not None:
                return
            if self.model is not None and self.model.accounting.stop_reason in (
                CycleStop.ORDER_LOST,
                CycleStop.TIMEOUT,
            ):
                return
            # Both may hold at once (a CCR write stopped the run at a deadline).
            carry_on = self._exceptions_continue()
            if self.fault is None and (self.restart or carry_on):
                self.restart = False
                begin = m.reg("pc") | 1
                continue
            return

    # exceptions -----------------------------------------------------------------

    def _poke(self) -> None:
        """Firmware changed what is pending or masked: look again at the next block."""
        if self.model is not None:
            self.model.accounting.set_deadline(0)
        elif self.m.interrupts.pending:
            self.m.ppb.notes.add(
                "an interrupt was pended but is not delivered without the cycle model "
                "(--no-cycles): simcore takes exceptions at block boundaries it finds "
                "through the cycle accounting"
            )

    def _unmasking(self) -> None:
        """CPSIE or MSR to a mask register: only a pending exception can be let in (events
        still to come have their deadline), so stop only then; critical sections that
        find nothing pending (pico-sdk's spin locks) cost no stop."""
        if self.m.interrupts.pending:
            self._poke()

    def _charge(self, cycles: int) -> None:
        if self.model is not None:
            self.model.accounting.charge(cycles)

    def _exceptions_continue(self) -> bool:
        """After emu_start returned without a stop: perform an exception action (SVC,
        return), deliver what became due at the deadline, or sleep through a WFI.
        True when emulation goes on at the (new) PC."""
        m, ctl = self.m, self.m.interrupts
        action, self.exc_action = self.exc_action, None
        try:
            if action is not None:
                kind, value = action
                if kind == "svc":
                    self._take_svc(value)
                else:
                    if self.model is not None:
                        # What became pending while the handler ran is tail-chained.
                        ctl.update(self.model.accounting.cycles)
                    self._charge(ctl.exit(m.uc, value))
                self._deliver()
                return True
            if self.model is not None and self.model.accounting.stop_reason is CycleStop.DEADLINE:
                self._deliver()
                return True
            waiting = self._waiting_hint(m.reg("pc"))
            if (
                waiting is not None
                and waiting[0] == "WFI"
                and not (self.model is not None and self.model.budget_exhausted)
            ):
                return self._sleep_until_event()
        except SimError as exc:
            self.fault = exc
        return False

    def _take_svc(self, after: int) -> None:
        """SVC (PC after it): SVCall is taken at once, or it is a fault when it cannot be."""
        m, ctl = self.m, self.m.interrupts
        at = after - 2
        code = m.code_at(at, 2)
        imm = f" #{code[0]}" if len(code) == 2 and code[1] == 0xDF else ""
        if ctl.group(11) >= ctl.execution_priority(m.uc):
            raise UsageFault(
                f"SVC{imm} at {m.where(at)} with SVCall masked or already active: on "
                "hardware this escalates to HardFault",
                kind="HARDFAULT",
                **m.at(at),
                hint="make supervisor calls with interrupts enabled, from Thread mode or a "
                "handler of lower priority than SVCall",
            )
        try:
            self._charge(ctl.enter(m.uc, 11, after))
        except SimError as exc:
            raise _relabel(exc, f"SVC{imm} at {m.where(at)}: {exc.message}", **m.at(at)) from None

    def _deliver(self) -> None:
        """Take the pending exception that may preempt now, if any; set the next deadline."""
        m, ctl = self.m, self.m.interrupts
        if self.model is None:
            return
        acc = self.model.accounting
        if acc.stop_reason is CycleStop.DEADLINE:
            acc.clear_stop()
        now = acc.cycles
        ctl.update(now)
        number = ctl.to_take(m.uc)
        if number is not None:
            self._charge(ctl.enter(m.uc, number, m.reg("pc")))
        acc.set_deadline(ctl.next_event(acc.cycles))

    def _sleep_until_event(self) -> bool:
        """WFI/WFE without an event: skip to the next interrupt that wakes the core.

        The skipped cycles are charged as the sleep's cost. False when nothing can ever
        wake it (the run then ends with SleepForever).
        """
        ctl = self.m.interrupts
        if self.model is None:
            return False
        acc = self.model.accounting
        now = acc.cycles
        ctl.update(now)
        while not ctl.wakes():
            at = ctl.next_event(now)
            if at is None:
                return False
            acc.charge(at - now)
            now = at
            ctl.update(now)
        self._deliver()
        return True

    def execute(self) -> RunResult:
        m = self.m
        self._install_hooks()
        self._paint_stack()
        uc = m.uc
        _, entry_sp, entry_lr = m.entry  # the PC is emu_start's begin
        uc.reg_write(arm_const.UC_ARM_REG_SP, entry_sp)
        uc.reg_write(arm_const.UC_ARM_REG_LR, entry_lr)
        timeout_us = int(self.opt.timeout_s * 1e6) if self.opt.timeout_s else 0
        budget = self.opt.max_instructions or 0
        count = 0
        if self.opt.cycles:
            # The C hook enforces the budget; emu_start(count=) would add a
            # per-instruction hook inside unicorn.
            self.model = CycleModel(
                m.image,
                m.board,
                memory_model=self.opt.memory_model,
                budget=budget,
                rom_ranges=bootrom.rom_ranges(m.roms),
                data_hits=self.opt.data_hits,
            )
            self.model.install(uc)
            m.cycle_model = self.model
        else:
            count = budget
            install_virtual_tlb(uc)
        self.started = time.perf_counter()
        try:
            self._emulate(timeout_us, count)
        finally:
            wall = time.perf_counter() - self.started
            m.lru_unknown = self.model is not None and self.model.accounting.lru_unknown
            m.cycle_model = None
            m.on_ccr = None
            m.console = None
            try:
                self._flush_uart()
            except SimError as console_error:  # the console limit
                self.fault = self.fault or console_error
        if m.lru_unknown:
            raise _CacheOrderLost
        if self.fault is None and m.mmio_fault is not None:
            exc, pc = m.mmio_fault
            self.fault = _relabel(
                exc, f"{exc.message} (at {m.where(pc)})", pc=pc, location=m.image.describe(pc)
            )
        if self.fault is not None:
            raise self.fault
        if self.model is not None and not self.model.budget_exhausted:
            refused = self._refused_block()
            if refused is not None:
                raise refused
            self.model.check()  # an executed instruction without a timing entry
        if self.stop is None and not self.returned_from_reset():
            raise self._no_stop(budget, timeout_us, wall)
        nocp = self._fpu_used_while_off()
        if nocp is not None:
            raise nocp
        result = self._result(wall)
        if self.end_note is not None:
            result.notes.append(self.end_note)
        return result

    def _detailed_profile(self, final_pc: int) -> DetailedProfile | None:
        """The detailed profile asked for: of one sample, or of the whole run (stopped at
        ``final_pc``: the rest of the block holding it never ran)."""
        if self.model is None or not self.opt.profile_detail:
            return None
        sample = self.opt.profile_sample
        if sample is None:
            return self.model.detailed_profile(final_pc=final_pc)
        if self.sample_counts is None or self.sample_counts[1] is None:
            raise UsageError(
                f"sample {sample} never ran between simcore_sample_begin({sample}) and "
                f"simcore_sample_end({sample})",
                hint=f"give a sample below {self.n_samples}, or profile the whole run",
            )
        before, after = self.sample_counts
        extras_before, extras_after = self.sample_extras
        assert after is not None and extras_after is not None  # checked above
        extras = [a - b for a, b in zip(extras_after, extras_before, strict=True)]
        return self.model.detailed_profile(_count_diff(before, after), f"sample {sample}", extras)

    def _fpu_used_while_off(self) -> UsageFault | None:
        """An FPU instruction ran, but CPACR never enabled the FPU: a NOCP UsageFault.

        Unicorn's FPU is always on. Checked after the run from the executed blocks,
        and only when CPACR never granted CP10 access (an FPU instruction run before
        the firmware enables it is not caught).
        """
        m = self.m
        if m.board.core.fpu == "none" or m.ppb.fpu_enabled or self.model is None:
            return None
        import numpy as np

        for start, counts, ends in self.model.accounting.count_arrays():
            live = np.cumsum(counts.astype(np.int64) - ends[: len(counts)].astype(np.int64))
            covered = np.flatnonzero(live > 0)
            if not len(covered):
                continue
            # Runs of executed halfwords, each starting at an instruction.
            breaks = np.flatnonzero(np.diff(covered) != 1)
            for lo, hi in zip(
                np.concatenate(([covered[0]], covered[breaks + 1])),
                np.concatenate((covered[breaks], [covered[-1]])),
                strict=True,
            ):
                first, last = start + 2 * int(lo), start + 2 * int(hi) + 2
                for insn in disassembler().disasm(m.code_at(first, last - first), first):
                    if insn.mnemonic.startswith("v"):
                        text = f"{insn.mnemonic} {insn.op_str}".strip()
                        return UsageFault(
                            f"NOCP: '{text}' at {m.where(insn.address)} ran with the FPU "
                            "disabled: the firmware never enabled CP10/CP11 in CPACR",
                            kind="NOCP",
                            **m.at(insn.address),
                            hint="enable the FPU before its first use (SCB->CPACR |= 0xF << 20), "
                            "as startup code normally does",
                        )
        return None

    def _no_stop(self, budget: int, timeout_us: int, wall: float) -> SimError:
        """emu_start returned without a stop or a fault: a budget, a timeout or WFI."""
        m = self.m
        pc = m.reg("pc")
        if self.model is not None and self.model.budget_exhausted:
            what = f"instruction budget of {budget:,}"
        elif timeout_us and wall * 1e6 >= timeout_us * 0.99:
            what = f"timeout of {timeout_us / 1e6:g} s"
        else:
            waiting = self._waiting_hint(pc)
            if waiting is not None and waiting[0] == "WFI":
                return self._sleep(*waiting)
            if not budget:
                return EmulationError(
                    f"the emulator stopped at {m.where(pc)} without reaching done, an exit, "
                    "a breakpoint or a fault",
                    **m.at(pc),
                    hint="report this to the simcore developers with the firmware",
                )
            what = f"instruction budget of {budget:,}"
        return BudgetExhausted(
            f"{what} exhausted at {m.where(pc)}",
            **m.at(pc),
            hint="the firmware may be spinning there; raise --max-instructions/--timeout "
            "if it is just long",
        )

    def _result(self, wall: float) -> RunResult:
        m = self.m
        assert self.stop is not None
        reason, pc, code = self.stop
        outputs = b""
        if self.io is not None and self.io.output_bytes:
            outputs = m.read(self.io.output, self.n_samples * self.io.output_bytes)
        layout = m.stack
        if self.heap_top is not None and layout.limit < self.heap_top < layout.top:
            # A heap that grows up into the painted region (a vendor linker script's
            # heap-and-stack block): the stack's room is what the heap left.
            layout = dataclasses.replace(layout, limit=(self.heap_top + 3) & ~3)
        painted = (
            m.read(layout.limit, layout.top - layout.limit) if layout.top > layout.limit else b""
        )
        report = mem.memory_report(m.image, m.board, layout, painted, self.heap_peak)
        exhausted = report.stack_overflowed_paint
        notes = sorted(m.ppb.notes)
        if exhausted:
            notes.append("the whole painted stack region was used: the real peak may be higher")
        touched = m.bus.touched() if m.bus is not None else []
        bus_note = m.bus.note() if m.bus is not None else None
        if bus_note is not None:
            notes.append(bus_note)
        if m.boot2:
            notes.append(
                f"boot2 ran from 0x{m.board.vector_table:08x} (its CRC checked as the bootrom "
                f"does); the program's vector table is at 0x{m.vector_table:08x}"
            )
        if m.interrupts.taken:
            notes.append(m.interrupts.summary())
        notes.extend(m.coprocessors.report_notes())
        cycles = instructions = None
        cycle_report: dict[str, Any] = {}
        sample_cycles: list[int] = []
        sample_instructions: list[int] = []
        layer_spans: list[LayerSpan] = []
        if self.model is not None:
            cycle_report = self.model.report(final_pc=pc, profile_limit=self.opt.profile_limit)
            cycles = int(cycle_report["cycles"])
            instructions = self.model.accounting.instructions_at(pc)
            cycle_report["instructions"] = instructions
            notes.extend(cycle_report.pop("notes", []))
            sample_cycles, sample_instructions = _per_sample(self.sample_marks)
            layer_spans = per_layer(self.marks)
        layers = layer_info(elf_manifest(m.image.path)) if layer_spans else {}
        detail = self._detailed_profile(pc)
        return RunResult(
            elf=str(m.image.path),
            board=m.board.name,
            core=m.board.core.display_name,
            stop_reason=reason,
            stop_pc=pc,
            # A clean stop's source line tells nothing and costs the DWARF decode.
            stop_location=m.image.describe(
                pc, lines=code not in (0, None) or reason is StopReason.BKPT
            ),
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
            layer_spans=layer_spans,
            layer_info=layers,
            profile_detail=detail,
            cycle_report=cycle_report,
            notes=notes,
            peripheral_registers=touched,
        )


def _boot2_as_code(image: ElfImage, start: int, size: int) -> ElfImage:
    """``image`` with its boot2 bytes classified as Thumb code, named ``boot2``.

    pico-sdk links boot2 in as bytes (``.byte`` directives: ``$d`` mapping symbols);
    the bootrom runs them, so the cycle model must decode them. The last word is the
    CRC, data.
    """
    end = start + size
    sections = []
    for sec in image.code_sections:
        sec_end = sec.address + len(sec.data)
        if sec.address >= end or sec_end <= start:
            sections.append(sec)
            continue
        kind_after = "t"
        for at, kind in sec.mapping:
            if at <= end:
                kind_after = kind
        mapping = [m for m in sec.mapping if not start <= m[0] <= end]
        mapping += [(max(start, sec.address), "t"), (end - 4, "d")]
        if sec_end > end:
            mapping.append((end, kind_after))
        sections.append(dataclasses.replace(sec, mapping=tuple(sorted(mapping))))
    symbols = dict(image.symbols)
    if not any(s.kind == "func" and s.address == start for s in symbols.values()):
        symbols["boot2"] = Symbol("boot2", start, size - 4, "func")
    return dataclasses.replace(image, code_sections=tuple(sections), symbols=symbols)


def _count_diff(before: Counts, after: Counts) -> Counts:
    """Block counts of what ran between two snapshots."""
    return [(s, a - b, ae - be) for (s, b, be), (_, a, ae) in zip(before, after, strict=True)]


def _parks_after_calls(sections: tuple[CodeSection, ...]) -> list[int]:
    """Addresses of `b .`, `b.w .` or `bx lr` right after a BL or BLX Rm: where startup
    code parks (or returns with a stale LR) after main."""
    found = []
    for section in sections:
        data, base = section.data, section.address
        for address in _scan(data, base, _PARKS):
            before = _halfwords(data[max(0, address - base - 4) : address - base])
            blx = len(before) >= 1 and before[-1] & 0xFF87 == 0x4780
            bl = len(before) == 2 and before[0] & 0xF800 == 0xF000 and before[1] & 0xD000 == 0xD000
            if bl or blx:
                found.append(address)
    return found


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
    return _model_executes(board.core.unicorn_model, code)


def _model_executes(model: str, code: bytes) -> bool:
    """Whether unicorn's ``model`` (CORTEX_M0, ...) decodes the first instruction of ``code``.

    Only for messages: a scratch engine runs the one instruction.
    """
    uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB)
    uc.ctl_set_cpu_model(_CPU_MODELS[model])
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
    """The core's compiler target flags (cortex-m4f builds with -mcpu=cortex-m4 -mfpu=...)."""
    return " ".join(board.core.compiler_flags)


@public
def run_firmware(
    elf: Path | str | ElfImage,
    board: BoardSpec | str | Path,
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
    profile_detail: bool = False,
    profile_sample: int | None = None,
    data_hits: bool = True,
) -> RunResult:
    """Load ``elf`` on ``board``, run it once, and return what it did.

    ``inputs`` (``n_samples * input_bytes``) go to the firmware's ``simcore_io``
    buffer when it reaches ``main``. Faults raise EmulationError subclasses;
    input problems raise UsageError subclasses. ``data_hits=False``: see
    :attr:`RunOptions.data_hits`; a run that loses the cache order that way is run
    again with the hits counted, from the start, with what is left of ``timeout_s``;
    ``echo`` sees the console output once (the second run replays the same output up
    to where the first stopped, and that part is not echoed again).
    """
    spec = board if isinstance(board, BoardSpec) else get_board(board)
    image = elf if isinstance(elf, ElfImage) else load_elf(elf)
    machine = Machine(image, spec)
    options = RunOptions(
        inputs=inputs,
        n_samples=n_samples,
        trace=trace,
        max_instructions=max_instructions,
        timeout_s=timeout_s,
        echo=echo,
        cycles=cycles,
        memory_model=MemoryModel(memory_model),
        profile_limit=profile_limit,
        profile_detail=profile_detail,
        profile_sample=profile_sample,
        data_hits=data_hits,
    )
    if data_hits or not cycles:
        return machine.run(options)
    echoed = _EchoOnce(echo)
    started = time.perf_counter()
    try:
        return machine.run(replace(options, echo=echoed.first if echo else None))
    except _CacheOrderLost:
        log.debug("%s: cache order lost to resident pages; running again", image.path.name)
    if timeout_s:
        # The first run's time counts; an exhausted timeout still runs a moment, so that
        # the second run stops as a timeout does, with its figures so far.
        timeout_s = max(timeout_s - (time.perf_counter() - started), 1e-3)
    again = replace(
        options, data_hits=True, timeout_s=timeout_s, echo=echoed.again if echo else None
    )
    return Machine(image, spec).run(again)


class _EchoOnce:
    """Console echo for a run that may be run again from the start: the second run
    prints what the first did first (same program, same inputs, same cycles up to
    where the first stopped), so that much of each stream is not echoed twice."""

    def __init__(self, echo: Callable[[int, str], None] | None) -> None:
        self.echo = echo
        self.sent: dict[int, int] = {}

    def first(self, fd: int, text: str) -> None:
        self.sent[fd] = self.sent.get(fd, 0) + len(text)
        if self.echo is not None:
            self.echo(fd, text)

    def again(self, fd: int, text: str) -> None:
        skip = min(self.sent.get(fd, 0), len(text))
        self.sent[fd] = self.sent.get(fd, 0) - skip
        if text[skip:] and self.echo is not None:
            self.echo(fd, text[skip:])


class _CacheOrderLost(Exception):
    """A run with ``data_hits=False`` lost the cache's LRU order to resident pages (see
    :attr:`RunOptions.data_hits`); raised out of :meth:`Machine.run` so that
    :func:`run_firmware` runs the program again with every load seen."""
