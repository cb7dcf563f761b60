"""Exceptions and time: the NVIC, the SCB's exception registers, SysTick, and the
architectural exception entry and return that unicorn does not perform.

Unicorn runs no NVIC: it reports SVC (interrupt 2) and a branch to an EXC_RETURN value
in Handler mode (interrupt 8, PC = the value with bit 0 clear: the same on the M0, M33
and M7 models, measured on unicorn 2.1.4) and consumes every interrupt its hook
returns from. So simcore keeps the exception state here and performs entry and return
itself between two ``emu_start`` calls, writing the frame to memory and the core's
registers through unicorn: IPSR (Handler mode, which makes the models raise the
EXC_RETURN interrupt), CONTROL (SPSEL, FPCA: unicorn swaps MSP and PSP on a CONTROL
write and sets FPCA when an FP instruction runs), PRIMASK, BASEPRI and FAULTMASK (read
here; CPSID/CPSIE and MSR work in all three models).

Asynchronous exceptions (SysTick, timer alarms, a PendSV or interrupt pended by a
register write) are taken at a block boundary: the cycle accounting's C hook stops the
emulator at the first block starting at or after the next event's cycle (its
*deadline*), or at the next block when firmware changed what is pending or masked.
The interrupted block completes first, so an exception is taken at most one block
late. Without the cycle accounting (``--no-cycles``) there is no time and no
deadline: SVC is still taken, timed and pended interrupts are not (a note says so).

Simplifications (stated in the README): floating-point context is stacked eagerly
into the extended frame when CONTROL.FPCA is set (lazy stacking's register contents
are the same; its cycles are those of lazy stacking with a handler that does not use
the FPU); the FP frame holds S0-S15 and FPSCR; no faults are escalated to HardFault
(a fault is reported as an error, as before); no NMI source; the security extension
of the M33 is not modeled (everything runs Secure, as RP2350 firmware does by default).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Protocol

from unicorn import arm_const

from simcore.boards import BoardSpec
from simcore.cache import parsed_toml
from simcore.errors import BoardError, MemoryFault, NotModeled, UsageFault

# Exception numbers (Armv7-M ARM B1.5.2).
HARDFAULT = 3
SVCALL = 11
PENDSV = 14
SYSTICK = 15
FIRST_IRQ = 16

#: Cycles before the accessing instruction, or None when no cycle model is attached.
CycleSource = Callable[[int, bool], int | None]

# PPB offsets (from 0xE0000000) served here.
SYST_CSR = 0xE010
SYST_RVR = 0xE014
SYST_CVR = 0xE018
NVIC_ISER = 0xE100
NVIC_ICER = 0xE180
NVIC_ISPR = 0xE200
NVIC_ICPR = 0xE280
NVIC_IABR = 0xE300
NVIC_IPR = 0xE400
NVIC_IPR_END = 0xE5F0
ICSR = 0xED04
VTOR = 0xED08
SHPR1 = 0xED18
SHPR3_END = 0xED24
SHCSR = 0xED24
STIR = 0xEF00

ICSR_PENDSVSET = 1 << 28
ICSR_PENDSVCLR = 1 << 27
ICSR_PENDSTSET = 1 << 26
ICSR_PENDSTCLR = 1 << 25
CSR_ENABLE = 1
CSR_TICKINT = 2
CSR_CLKSOURCE = 4
CSR_COUNTFLAG = 1 << 16

EXC_RETURN_MIN = 0xFFFFFF00
_FTYPE = 1 << 4  # EXC_RETURN bit 4: 1 = basic frame, 0 = extended (FP) frame
_MODE = 1 << 3  # 1 = return to Thread mode
_SPSEL = 1 << 2  # 1 = the frame is on the PSP
_CONTROL_SPSEL = 2
_CONTROL_FPCA = 4
_CONTROL_SFPA = 8
_XPSR_ALIGN = 1 << 9
_XPSR_T = 1 << 24
_XPSR_FLAGS = 0xF80F0000  # N, Z, C, V, Q and GE[3:0]
_BASIC_FRAME = 0x20
_EXTENDED_FRAME = 0x68

_R = arm_const
_FRAME_REGS = (
    _R.UC_ARM_REG_R0,
    _R.UC_ARM_REG_R1,
    _R.UC_ARM_REG_R2,
    _R.UC_ARM_REG_R3,
    _R.UC_ARM_REG_R12,
    _R.UC_ARM_REG_LR,
)
_FP_REGS = tuple(getattr(_R, f"UC_ARM_REG_S{i}") for i in range(16))

NAMES = {
    2: "NMI",
    3: "HardFault",
    4: "MemManage",
    5: "BusFault",
    6: "UsageFault",
    11: "SVCall",
    12: "DebugMonitor",
    14: "PendSV",
    15: "SysTick",
}


def exception_name(number: int) -> str:
    return NAMES.get(number, f"IRQ {number - FIRST_IRQ}" if number >= FIRST_IRQ else str(number))


# -- data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExceptionTiming:
    """Cycles of entry, return and tail-chain (data/interrupts.toml, per core)."""

    entry: int
    exit: int
    tail_chain: int
    tag: str
    source: str


@dataclass(frozen=True)
class AlarmSpec:
    """The alarms of a board's microsecond timer (data/interrupts.toml)."""

    alarm0: int
    armed: int
    intr: int
    inte: int
    intf: int
    ints: int
    count: int
    irq: int


@dataclass(frozen=True)
class InterruptSpec:
    """What the NVIC of a board implements, and its exception timing."""

    priority_bits: int
    irqs: int
    timing: ExceptionTiming
    alarms: AlarmSpec | None = None


def _integer(table: dict[str, Any], key: str, where: str, lo: int, hi: int) -> int:
    value = table.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise BoardError(
            f"data/interrupts.toml: {where}.{key} = {value!r}", hint=f"give {lo} to {hi}"
        )
    return value


_CORE_KEYS = frozenset({"entry", "exit", "tail_chain", "priority_bits", "irqs", "tag", "source"})
_BOARD_KEYS = frozenset({"priority_bits", "irqs", "alarms"})
_ALARM_KEYS = frozenset({"alarm0", "armed", "intr", "inte", "intf", "ints", "count", "irq"})


def _check_keys(table: object, allowed: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise BoardError(f"data/interrupts.toml: {where} is not a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise BoardError(
            f"data/interrupts.toml: {where} has unknown key(s) {', '.join(unknown)}",
            hint=f"use {', '.join(sorted(allowed))}",
        )
    return table


@cache
def _interrupt_data() -> dict[str, Any]:
    path = resources.files("simcore") / "data" / "interrupts.toml"
    data = parsed_toml(path.read_text(encoding="utf-8"))
    _check_keys(data, frozenset({"cores", "boards"}), "the file")
    for name, core in data.get("cores", {}).items():
        _check_keys(core, _CORE_KEYS, f"cores.{name}")
    for name, board in data.get("boards", {}).items():
        _check_keys(board, _BOARD_KEYS, f"boards.{name}")
        if "alarms" in board:
            alarms = _check_keys(board["alarms"], _ALARM_KEYS, f"boards.{name}.alarms")
            missing = sorted(_ALARM_KEYS - set(alarms))
            if missing:
                raise BoardError(
                    f"data/interrupts.toml: boards.{name}.alarms lacks {', '.join(missing)}"
                )
    return data


def interrupt_spec(board: BoardSpec) -> InterruptSpec:
    """The board's NVIC and its core's exception timing (data/interrupts.toml)."""
    data = _interrupt_data()
    core = data.get("cores", {}).get(board.core.name)
    if core is None:
        raise BoardError(
            f"data/interrupts.toml has no exception timing for core {board.core.name}",
            hint="add a [cores.<core>] table with entry, exit and tail_chain cycles",
        )
    where = f"cores.{board.core.name}"
    timing = ExceptionTiming(
        entry=_integer(core, "entry", where, 0, 1000),
        exit=_integer(core, "exit", where, 0, 1000),
        tail_chain=_integer(core, "tail_chain", where, 0, 1000),
        tag=str(core.get("tag", "approximate")),
        source=str(core.get("source", "")),
    )
    own = data.get("boards", {}).get(board.name, {})
    where = f"boards.{board.name}"
    merged = {**core, **own}
    alarms = None
    if "alarms" in own and board.timer is not None:
        a = own["alarms"]
        aw = f"{where}.alarms"
        alarms = AlarmSpec(
            **{k: _integer(a, k, aw, 0, 0xFFC) for k in ("alarm0", "armed", "intr")},
            **{k: _integer(a, k, aw, 0, 0xFFC) for k in ("inte", "intf", "ints")},
            count=_integer(a, "count", aw, 1, 8),
            irq=_integer(a, "irq", aw, 0, 479),
        )
    return InterruptSpec(
        priority_bits=_integer(merged, "priority_bits", where, 2, 8),
        irqs=_integer(merged, "irqs", where, 1, 480),
        timing=timing,
        alarms=alarms,
    )


# -- event sources ----------------------------------------------------------------------


class EventSource(Protocol):
    """A peripheral that raises interrupts at cycle counts known in advance."""

    def poll(self, now: int) -> None:
        """Bring the state up to cycle ``now`` (alarms fired, underflows counted)."""

    def next_event(self, now: int) -> int | None:
        """The first cycle after ``now`` at which an interrupt may be raised, or None."""

    def lines(self) -> set[int]:
        """Exception numbers this source asserts now (level-sensitive)."""


@dataclass
class SysTick:
    """SysTick (Armv7-M ARM B3.3) counting the cycle model's cycles.

    The counter loads RVR when enabled (or when CVR is written) and counts down once a
    cycle; it reaches 0 ``reload`` cycles after loading and every ``reload + 1``
    cycles after that, which sets COUNTFLAG and, with TICKINT, pends exception 15.
    CLKSOURCE = 0 (the vendor's reference clock) is counted at the core clock as
    well, with a note. An RVR change takes effect at once (on silicon: at the next
    reload).
    """

    notes: set[str]
    csr: int = 0
    rvr: int = 0
    cvr: int = 0
    start: int = 0
    _counted: int = 0
    _flag_read: int = 0
    _pended: bool = False

    @property
    def running(self) -> bool:
        return bool(self.csr & CSR_ENABLE) and self.rvr & 0xFFFFFF != 0

    def _zeros(self, after: int, upto: int) -> int:
        """How many times the counter reached 0 in cycles (after, upto]."""
        if not self.running or upto <= after:
            return 0
        reload = self.rvr & 0xFFFFFF
        first = self.start + reload

        def reached(t: int) -> int:
            return 0 if t < first else (t - first) // (reload + 1) + 1

        return reached(upto) - reached(after)

    def value(self, now: int) -> int:
        if not self.running:
            return self.cvr
        reload = self.rvr & 0xFFFFFF
        return reload - ((now - self.start) % (reload + 1))

    def poll(self, now: int) -> None:
        if self._zeros(self._counted, now) and self.csr & CSR_TICKINT:
            self._pended = True
        self._counted = max(self._counted, now)

    def take_pend(self) -> bool:
        """Whether a tick pended SysTick since the last call."""
        pended, self._pended = self._pended, False
        return pended

    def next_event(self, now: int) -> int | None:
        if not self.running or not self.csr & CSR_TICKINT:
            return None
        reload = self.rvr & 0xFFFFFF
        first = self.start + reload
        if now < first:
            return first
        return first + ((now - first) // (reload + 1) + 1) * (reload + 1)

    def lines(self) -> set[int]:
        return set()

    def read_csr(self, now: int) -> int:
        flag = CSR_COUNTFLAG if self._zeros(self._flag_read, now) else 0
        self._flag_read = now
        return (self.csr & 0x7) | flag

    def write_csr(self, now: int, value: int) -> None:
        self.poll(now)
        if value & CSR_ENABLE and not self.csr & CSR_ENABLE:
            self.start = self._counted = self._flag_read = now
        if value & CSR_ENABLE and not value & CSR_CLKSOURCE:
            self.notes.add(
                "SysTick runs on the reference clock (CLKSOURCE = 0): simcore counts it "
                "at the core clock"
            )
        if self.csr & CSR_ENABLE and not value & CSR_ENABLE:
            self.cvr = self.value(now)
        self.csr = value & 0x7

    def write_cvr(self, now: int) -> None:
        """Any write clears the counter and COUNTFLAG; it reloads on the next cycle."""
        self.poll(now)
        self.cvr = 0
        self.start = self._counted = self._flag_read = now


def _rebuild_flags(uc: Any) -> None:
    """Make unicorn see a changed IPSR when it next translates code.

    Unicorn 2.1.4 writes IPSR and xPSR without rebuilding QEMU's cached translation
    flags, which hold Handler mode: code would be translated as Thread-mode code, and
    a handler's return to EXC_RETURN would be a plain branch to 0xFFFFFFF8. A CPSR write
    (here of its own value) rebuilds them.
    """
    uc.reg_write(_R.UC_ARM_REG_CPSR, int(uc.reg_read(_R.UC_ARM_REG_CPSR)))


# -- the controller ---------------------------------------------------------------------


@dataclass
class InterruptController:
    """NVIC + SCB exception state + SysTick of one run, and entry/return on the engine.

    ``cycles`` gives the cycle count at an MMIO access (None without a cycle model);
    ``now`` the count between blocks. ``poke`` is called when firmware changed what is
    pending, enabled or masked, so the engine looks again at the next block boundary.
    """

    spec: InterruptSpec
    has_fpu: bool
    vector_table: int
    cycles: CycleSource
    notes: set[str]
    poke: Callable[[], None] = lambda: None
    enabled: set[int] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)
    #: Active exceptions, oldest first (the last is the one running).
    active: list[int] = field(default_factory=list)
    priority: dict[int, int] = field(default_factory=dict)
    vtor: int = 0
    prigroup: int = 0
    sources: list[EventSource] = field(default_factory=list)
    systick: SysTick = field(init=False)
    #: Exceptions taken, by number (for the run's report).
    taken: dict[int, int] = field(default_factory=dict)
    tail_chains: int = 0
    #: Register words read back as written (reserved NVIC words).
    registers: dict[int, int] = field(default_factory=dict)
    #: Armv6-M: no BASEPRI, FAULTMASK or priority grouping.
    armv6: bool = False
    #: Whether an address is code of the ELF (a vector pointing elsewhere is refused).
    is_code: Callable[[int], bool] = lambda _address: True

    def __post_init__(self) -> None:
        self.vtor = self.vector_table
        self.systick = SysTick(self.notes)
        self.sources.append(self.systick)

    # registers -----------------------------------------------------------------------

    @staticmethod
    def serves(offset: int) -> bool:
        """Whether a PPB offset is one of the registers modeled here."""
        return (
            SYST_CSR <= offset < SYST_CVR + 4
            or NVIC_ISER <= offset < NVIC_IPR_END
            or offset in (ICSR, VTOR, STIR)
            or SHPR1 <= offset < SHPR3_END
        )

    def _now(self, offset: int, write: bool = False) -> int | None:
        return self.cycles(0xE0000000 + offset, write)

    def _prio_mask(self) -> int:
        return (0xFF << (8 - self.spec.priority_bits)) & 0xFF

    def _irq_bits(self, base: int, offset: int, which: set[int]) -> int:
        first = (offset - base) // 4 * 32
        return sum(1 << i for i in range(32) if first + i + FIRST_IRQ in which)

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        value = self._read_word(word)
        return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def _read_word(self, word: int) -> int:
        now = self._now(word)
        if word == SYST_CSR:
            return self.systick.read_csr(now) if now is not None else self.systick.csr
        if word == SYST_RVR:
            return self.systick.rvr
        if word == SYST_CVR:
            if now is None:
                self.notes.add("SysTick was read but no cycle model was attached: it reads 0")
                return 0
            return self.systick.value(now)
        if now is not None:
            self.update(now)
        for base, which in (
            (NVIC_ISER, self.enabled),
            (NVIC_ICER, self.enabled),
            (NVIC_ISPR, self.pending),
            (NVIC_ICPR, self.pending),
            (NVIC_IABR, set(self.active)),
        ):
            if base <= word < base + 0x40:
                return self._irq_bits(base, word, which)
        if NVIC_IPR <= word < NVIC_IPR_END:
            first = FIRST_IRQ + (word - NVIC_IPR)
            return sum(self.priority.get(first + i, 0) << (8 * i) for i in range(4))
        if SHPR1 <= word < SHPR3_END:
            first = 4 + (word - SHPR1)
            return sum(self.priority.get(first + i, 0) << (8 * i) for i in range(4))
        if word == ICSR:
            return self._icsr()
        if word == VTOR:
            return self.vtor
        return self.registers.get(word, 0)

    def _icsr(self) -> int:
        value = self.active[-1] if self.active else 0
        if len(self.active) <= 1:
            value |= 1 << 11  # RETTOBASE
        best = self._best_pending(enabled_only=True)
        if best is not None:
            value |= (best & 0x1FF) << 12
        if any(p >= FIRST_IRQ for p in self.pending):
            value |= 1 << 22  # ISRPENDING
        if PENDSV in self.pending:
            value |= ICSR_PENDSVSET
        if SYSTICK in self.pending:
            value |= ICSR_PENDSTSET
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        shift = 8 * (offset & 3)
        mask = ((1 << (8 * size)) - 1) << shift
        value = (value << shift) & mask
        now = self._now(word, True)
        if SYST_CSR <= word <= SYST_CVR:
            if now is None:
                if word == SYST_CSR and value & CSR_TICKINT:
                    self.notes.add(
                        "SysTick interrupts need the cycle model (run without --no-cycles)"
                    )
                now = 0
            if word == SYST_CSR:
                self.systick.write_csr(now, value)
            elif word == SYST_RVR:
                self.systick.poll(now)
                self.systick.rvr = value & 0xFFFFFF
            else:
                self.systick.write_cvr(now)
        elif NVIC_IPR <= word < NVIC_IPR_END or SHPR1 <= word < SHPR3_END:
            first = (FIRST_IRQ + word - NVIC_IPR) if word < NVIC_IPR_END else 4 + word - SHPR1
            for i in range(4):
                if mask >> (8 * i) & 0xFF:
                    self.priority[first + i] = (value >> (8 * i)) & self._prio_mask()
        elif NVIC_ISER <= word < NVIC_IABR:
            base = word & ~0x7F
            first = (word - base) // 4 * 32 + FIRST_IRQ
            numbers = {first + i for i in range(32) if value >> i & 1}
            numbers = {n for n in numbers if n - FIRST_IRQ < self.spec.irqs}
            if base == NVIC_ISER:
                self.enabled |= numbers
            elif base == NVIC_ICER:
                self.enabled -= numbers
            elif base == NVIC_ISPR:
                self.pending |= numbers
            else:
                self.pending -= numbers
        elif word == STIR:
            if (value & 0x1FF) < self.spec.irqs:
                self.pending.add(FIRST_IRQ + (value & 0x1FF))
        elif word == ICSR:
            if value & ICSR_PENDSVSET:
                self.pending.add(PENDSV)
            elif value & ICSR_PENDSVCLR:
                self.pending.discard(PENDSV)
            if value & ICSR_PENDSTSET:
                self.pending.add(SYSTICK)
            elif value & ICSR_PENDSTCLR:
                self.pending.discard(SYSTICK)
            if value & (1 << 31):
                raise NotModeled(
                    "the firmware pended an NMI (ICSR.NMIPENDSET): simcore does not model NMI",
                    hint="run code that does not raise NMI",
                )
        elif word == VTOR:
            self.vtor = value & 0xFFFFFF80
        else:
            old = self.registers.get(word, 0)
            self.registers[word] = (old & ~mask) | value
            return
        self.poke()

    # state ---------------------------------------------------------------------------

    def add_source(self, source: EventSource) -> None:
        self.sources.append(source)

    def update(self, now: int) -> None:
        """Bring every source up to ``now`` and pend what it raised."""
        for source in self.sources:
            source.poll(now)
            self.pending |= {n for n in source.lines() if n not in self.active}
        if self.systick.take_pend():
            self.pending.add(SYSTICK)

    def next_event(self, now: int) -> int | None:
        times = [t for s in self.sources if (t := s.next_event(now)) is not None]
        return min(times) if times else None

    def group(self, number: int) -> int:
        """The group (preemption) priority of an exception."""
        if number == HARDFAULT:
            return -1
        value = self.priority.get(number, 0)
        return value & ~((2 << self.prigroup) - 1) & 0xFF if self.prigroup < 7 else 0

    def execution_priority(self, uc: Any) -> int:
        """Armv7-M B1.5.4: the active exceptions' and the mask registers' boost."""
        prio = min((self.group(n) for n in self.active), default=256)
        if int(uc.reg_read(_R.UC_ARM_REG_PRIMASK)) & 1:
            prio = min(prio, 0)
        if not self.armv6:
            basepri = int(uc.reg_read(_R.UC_ARM_REG_BASEPRI)) & self._prio_mask()
            if basepri:
                prio = min(prio, basepri & ~((2 << self.prigroup) - 1) & 0xFF)
            if int(uc.reg_read(_R.UC_ARM_REG_FAULTMASK)) & 1:
                prio = min(prio, -1)
        return prio

    def _best_pending(self, *, enabled_only: bool) -> int | None:
        ready = [n for n in self.pending if n < FIRST_IRQ or not enabled_only or n in self.enabled]
        return min(ready, key=lambda n: (self.group(n), self.priority.get(n, 0), n), default=None)

    def to_take(self, uc: Any) -> int | None:
        """The pending exception that preempts what runs now, if any."""
        best = self._best_pending(enabled_only=True)
        if best is None or best in self.active:
            return None
        return best if self.group(best) < self.execution_priority(uc) else None

    def wakes(self) -> bool:
        """Whether an enabled exception is pending (WFI wakes even with PRIMASK set)."""
        return self._best_pending(enabled_only=True) is not None

    # entry and return ----------------------------------------------------------------

    def enter(self, uc: Any, number: int, return_address: int) -> int:
        """Take exception ``number`` (stack the frame, enter Handler mode); the cycles."""
        xpsr = int(uc.reg_read(_R.UC_ARM_REG_XPSR))
        control = int(uc.reg_read(_R.UC_ARM_REG_CONTROL))
        thread = not self.active
        on_psp = thread and bool(control & _CONTROL_SPSEL)
        extended = self.has_fpu and bool(control & _CONTROL_FPCA)
        size = _EXTENDED_FRAME if extended else _BASIC_FRAME
        sp_reg = _R.UC_ARM_REG_PSP if on_psp else _R.UC_ARM_REG_MSP
        sp = int(uc.reg_read(sp_reg))
        aligned = (sp - size) & ~7
        pad = (sp - size) - aligned
        words = [int(uc.reg_read(r)) for r in _FRAME_REGS]
        words += [return_address & ~1, (xpsr & ~_XPSR_ALIGN) | (_XPSR_ALIGN if pad else 0)]
        frame = struct.pack("<8I", *words)
        if extended:
            frame += struct.pack("<16I", *(int(uc.reg_read(r)) for r in _FP_REGS))
            frame += struct.pack("<2I", int(uc.reg_read(_R.UC_ARM_REG_FPSCR)), 0)
        self._store(uc, aligned, frame, number)
        uc.reg_write(sp_reg, aligned)
        new_control = control & ~(_CONTROL_SPSEL | _CONTROL_FPCA | _CONTROL_SFPA)
        if new_control != control:
            uc.reg_write(_R.UC_ARM_REG_CONTROL, new_control)  # to MSP if it was on PSP
        exc_return = 0xFFFFFFE1 | (0 if extended else _FTYPE)
        if thread:
            exc_return |= _MODE | (_SPSEL if on_psp else 0)
        self._dispatch(uc, number, exc_return)
        return self.spec.timing.entry

    def _dispatch(self, uc: Any, number: int, exc_return: int) -> None:
        """Enter Handler mode for ``number`` with LR = ``exc_return``, PC = its vector."""
        self.pending.discard(number)
        self.active.append(number)
        self.taken[number] = self.taken.get(number, 0) + 1
        vector_at = self.vtor + 4 * number
        try:
            vector = struct.unpack("<I", bytes(uc.mem_read(vector_at, 4)))[0]
        except Exception:  # an unmapped vector table
            raise MemoryFault(
                f"{exception_name(number)}: its vector at 0x{vector_at:08x} (VTOR "
                f"0x{self.vtor:08x}) is not readable",
                address=vector_at,
                access="read",
                hint="point SCB->VTOR at the vector table",
            ) from None
        if not self.is_code(vector & ~1):
            raise MemoryFault(
                f"{exception_name(number)}: its vector (entry {number} at 0x{vector_at:08x}, "
                f"VTOR 0x{self.vtor:08x}) is 0x{vector:08x}, which is not code of the ELF",
                address=vector & ~1,
                access="fetch",
                pc=vector & ~1,
                hint=f"define a handler for {exception_name(number)} in the vector table "
                "(or point SCB->VTOR at the table)",
            )
        if not vector & 1:
            raise UsageFault(
                f"INVSTATE: the vector of {exception_name(number)} at 0x{vector_at:08x} is "
                f"0x{vector:08x} (Thumb bit clear)",
                kind="INVSTATE",
                pc=vector,
                hint="put the handler's address with bit 0 set in the vector table "
                "(a missing handler?)",
            )
        # Handler mode: IPSR = the exception, EPSR's IT bits cleared (the handler does
        # not continue an interrupted IT block), T set; the flags are left as they are.
        xpsr = int(uc.reg_read(_R.UC_ARM_REG_XPSR))
        uc.reg_write(_R.UC_ARM_REG_XPSR, (xpsr & _XPSR_FLAGS) | _XPSR_T | number)
        _rebuild_flags(uc)
        uc.reg_write(_R.UC_ARM_REG_LR, exc_return)
        uc.reg_write(_R.UC_ARM_REG_PC, vector & ~1)

    def _store(self, uc: Any, address: int, frame: bytes, number: int) -> None:
        try:
            uc.mem_write(address, frame)
        except Exception:
            raise MemoryFault(
                f"{exception_name(number)}: stacking its {len(frame)}-byte frame at "
                f"0x{address:08x} failed (stack overflow?)",
                address=address,
                access="write",
                hint="give the stack more room",
            ) from None

    def exit(self, uc: Any, exc_return: int) -> int:
        """Return from the running exception through ``exc_return``; the cycles.

        A pending exception that may preempt the code returned to is tail-chained:
        entered with the frame still stacked.
        """
        number = self.active.pop()
        if exc_return & 0xFFFFFFE0 != 0xFFFFFFE0 or exc_return & 3 != 1:
            raise UsageFault(
                f"INVPC: exception return from {exception_name(number)} with the invalid "
                f"EXC_RETURN 0x{exc_return:08x}",
                kind="INVPC",
                pc=exc_return,
                hint="return from a handler with the LR value it was entered with",
            )
        to_thread = bool(exc_return & _MODE)
        if to_thread != (not self.active):
            raise UsageFault(
                f"INVPC: EXC_RETURN 0x{exc_return:08x} returns to "
                f"{'Thread' if to_thread else 'Handler'} mode but "
                f"{len(self.active)} exception(s) would stay active",
                kind="INVPC",
                pc=exc_return,
                hint="return from a handler with the LR value it was entered with",
            )
        chained = self.to_take(uc)
        if chained is not None:
            self.tail_chains += 1
            self._dispatch(uc, chained, exc_return)
            return self.spec.timing.tail_chain
        on_psp = to_thread and bool(exc_return & _SPSEL)
        extended = not exc_return & _FTYPE
        sp_reg = _R.UC_ARM_REG_PSP if on_psp else _R.UC_ARM_REG_MSP
        sp = int(uc.reg_read(sp_reg))
        size = _EXTENDED_FRAME if extended else _BASIC_FRAME
        try:
            raw = bytes(uc.mem_read(sp, size))
        except Exception:
            raise MemoryFault(
                f"return from {exception_name(number)}: its frame at 0x{sp:08x} is not readable",
                address=sp,
                access="read",
                hint="the handler moved the stack pointer",
            ) from None
        words = struct.unpack(f"<{size // 4}I", raw)
        for reg, value in zip(_FRAME_REGS, words[:6], strict=True):
            uc.reg_write(reg, value)
        xpsr = words[7]
        uc.reg_write(sp_reg, sp + size + (4 if xpsr & _XPSR_ALIGN else 0))
        uc.reg_write(_R.UC_ARM_REG_XPSR, xpsr & ~_XPSR_ALIGN)
        _rebuild_flags(uc)
        control = int(uc.reg_read(_R.UC_ARM_REG_CONTROL))
        if extended:
            for reg, value in zip(_FP_REGS, words[8:24], strict=True):
                uc.reg_write(reg, value)
            uc.reg_write(_R.UC_ARM_REG_FPSCR, words[24])
        new_control = (control & ~(_CONTROL_FPCA | _CONTROL_SPSEL)) | (
            _CONTROL_FPCA if extended else 0
        )
        if on_psp:
            new_control |= _CONTROL_SPSEL
        if new_control != control:
            uc.reg_write(_R.UC_ARM_REG_CONTROL, new_control)
        uc.reg_write(_R.UC_ARM_REG_PC, words[6] & ~1)
        return self.spec.timing.exit

    def summary(self) -> str:
        """One line for the run's notes: what was taken and what it was charged."""
        taken = ", ".join(f"{exception_name(n)} {c}" for n, c in sorted(self.taken.items()))
        t = self.spec.timing
        chains = f", {self.tail_chains} tail-chained" if self.tail_chains else ""
        return (
            f"exceptions taken: {taken}{chains} (entry {t.entry}, return {t.exit}, "
            f"tail-chain {t.tail_chain} cycles each, {t.tag})"
        )

    def report(self) -> dict[str, Any]:
        """Exceptions taken (by name), tail-chains and the timing used, for the result."""
        return {
            "taken": {exception_name(n): c for n, c in sorted(self.taken.items())},
            "tail_chains": self.tail_chains,
            "timing": {
                "entry": self.spec.timing.entry,
                "exit": self.spec.timing.exit,
                "tail_chain": self.spec.timing.tail_chain,
                "tag": self.spec.timing.tag,
            },
        }
