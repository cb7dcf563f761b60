"""The few memory-mapped registers firmware touches that unicorn does not model.

Plain Python register files; the engine maps them with MMIO callbacks, which
run only when firmware accesses these addresses (rare next to compute).

- The Private Peripheral Bus (0xE0000000-0xE0100000): CPUID, CPACR (writes
  accepted; unicorn's FPU is always on), DWT->CYCCNT, which reads the cycle
  model's count at that instant; SysTick, the NVIC and the SCB's exception
  registers are served by :class:`simcore.exceptions.InterruptController`.
- RP2040/RP2350 SIO hardware divider, which pico-sdk uses for every ``/``.
- A board's microsecond TIMER (the ``[timer]`` table of its board file: RP2040 TIMER,
  RP2350 TIMER0), counting from the cycle model. The Cortex-M0+ has no DWT cycle
  counter: DWT->CYCCNT reads 0 there, as on silicon, and the run says so.
- Any other board region of kind ``io``: registers that read back what was written.
- The rest of a chip (resets, clocks, UARTs, spin locks...) is data: the board's
  chip file, run by :mod:`simcore.registers`; the SIO model defers to it for the
  registers it does not implement.

Writes the emulation cannot honour are never dropped silently: a reset request
(AIRCR) raises :class:`~simcore.errors.NotModeled`, CCR.DIV_0_TRP is passed to the
engine (which then traps divides by zero), and enabling interrupts or unaligned
trapping leaves a note in the run's result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from simcore.boards import CoreSpec, load_cores
from simcore.errors import NotModeled
from simcore.exceptions import AlarmSpec, InterruptController

PPB_BASE = 0xE0000000
PPB_SIZE = 0x100000

DWT_CTRL = 0x1000
DWT_CYCCNT = 0x1004
SYST_CALIB = 0xE01C
CPUID = 0xED00
AIRCR = 0xED0C
CCR = 0xED14
CPACR = 0xED88

AIRCR_VECTKEY = 0x05FA
AIRCR_RESET_BITS = 0x5  # SYSRESETREQ (bit 2) and, on Armv7-M, VECTRESET (bit 0)
CCR_UNALIGN_TRP = 1 << 3
CCR_DIV_0_TRP = 1 << 4

#: Cycles before the instruction accessing ``address`` (``write``: a store), or
#: None when no cycle model is attached.
CycleSource = Callable[[int, bool], int | None]

M0PLUS_CYCCNT_NOTE = (
    "firmware read DWT->CYCCNT, which the Cortex-M0+ does not have: it read 0, as on "
    "silicon; time with the board's TIMER (TIMELR/TIMEHR) or SysTick->VAL instead"
)


class RegisterWindow(Protocol):
    """Registers declared as data (simcore.registers.Window) behind a model."""

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


def _merge(registers: dict[int, int], offset: int, size: int, value: int) -> int:
    """Store a ``size``-byte write into the word holding ``offset``; return the new word."""
    word = offset & ~3
    shift = 8 * (offset & 3)
    mask = (((1 << (8 * size)) - 1) << shift) & 0xFFFFFFFF
    new = (registers.get(word, 0) & ~mask) | ((value << shift) & mask)
    registers[word] = new
    return new


def _extract(registers: dict[int, int], offset: int, size: int) -> int:
    value = registers.get(offset & ~3, 0)
    return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)


@dataclass
class RegisterFile:
    """A peripheral simcore does not model: its registers read back what was written."""

    registers: dict[int, int] = field(default_factory=dict)

    def read(self, offset: int, size: int) -> int:
        return _extract(self.registers, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        _merge(self.registers, offset, size, value)


@dataclass
class PrivatePeripheralBus:
    """CPUID, CPACR, CCR, AIRCR and DWT; SysTick, NVIC and the SCB's exception registers
    through ``interrupts``; other registers read back what was written.

    ``on_ccr`` is called with the new CCR value after every write to it (the engine
    traps divides by zero while DIV_0_TRP is set).
    """

    core: str
    cycles: CycleSource
    on_ccr: Callable[[int], None] | None = None
    #: NVIC, SCB exception registers and SysTick (simcore.exceptions), when delivered.
    interrupts: InterruptController | None = None
    registers: dict[int, int] = field(default_factory=dict)
    notes: set[str] = field(default_factory=set)
    #: Whether CPACR ever granted access to CP10 (the FPU): unicorn's FPU is always
    #: on, so the engine checks afterwards that no FPU instruction ran without it.
    fpu_enabled: bool = False
    _cyccnt_base: int = 0

    def __post_init__(self) -> None:
        self.registers.setdefault(CCR, self._spec.ccr_reset if self._spec else 0)

    @property
    def _spec(self) -> CoreSpec | None:
        """The core's data (CPUID, CCR; data/cores.toml), None for a core simcore lacks."""
        return load_cores().get(self.core)

    @property
    def ccr(self) -> int:
        return self.registers.get(CCR, 0)

    def _now(self, offset: int, write: bool = False) -> int:
        value = self.cycles(PPB_BASE + offset, write)
        if value is None:
            self.notes.add("DWT/SysTick were read but no cycle model was attached: they read 0")
            return 0
        return value

    def read(self, offset: int, size: int) -> int:
        if self.interrupts is not None and self.interrupts.serves(offset & ~3):
            return self.interrupts.read(offset, size)
        if offset == CPUID:
            return self._spec.cpuid if self._spec else 0
        if offset == DWT_CYCCNT and self._spec is not None and self._spec.architecture == "Armv6-M":
            # Armv6-M's DWT has no CYCCNT (Armv6-M ARM C1.8): the word reads as zero.
            self.notes.add(M0PLUS_CYCCNT_NOTE)
            return 0
        if offset == DWT_CYCCNT:
            return (self._now(offset) - self._cyccnt_base) & 0xFFFFFFFF
        if offset == SYST_CALIB:
            return 0x80000000  # NOREF: no reference clock, TENMS unknown
        return _extract(self.registers, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if self.interrupts is not None and self.interrupts.serves(offset & ~3):
            self.interrupts.write(offset, size, value)
            return
        if offset == DWT_CYCCNT:
            # Firmware resets CYCCNT to 0 before timing a region.
            self._cyccnt_base = self._now(offset, True) - value
            return
        word = offset & ~3
        if (
            word == AIRCR
            and size == 4
            and value >> 16 == AIRCR_VECTKEY
            and value & AIRCR_RESET_BITS
        ):
            raise NotModeled(
                f"the firmware requested a reset (AIRCR = 0x{value:08x}); "
                "simcore does not model a reset",
                hint="stop the program by returning from main, bkpt or semihosting "
                "SYS_EXIT instead",
            )
        if self.interrupts is not None and word == AIRCR and value >> 16 == AIRCR_VECTKEY:
            self.interrupts.prigroup = (value >> 8) & 7
        if word == CCR:
            if self._spec is not None and not self._spec.ccr_writable:
                return  # Armv6-M: CCR is read-only
            ccr = _merge(self.registers, offset, size, value)
            if ccr & CCR_UNALIGN_TRP:
                self.notes.add(
                    "CCR.UNALIGN_TRP was set: simcore does not trap unaligned accesses "
                    "on this core (they complete as with the bit clear)"
                )
            if self.on_ccr is not None:
                self.on_ccr(ccr)
            return
        if word == CPACR:
            cpacr = _merge(self.registers, offset, size, value)
            self.fpu_enabled = self.fpu_enabled or (cpacr >> 20) & 3 in (1, 3)
            return
        _merge(self.registers, offset, size, value)


SIO_DIV_UDIVIDEND = 0x060
SIO_DIV_UDIVISOR = 0x064
SIO_DIV_SDIVIDEND = 0x068
SIO_DIV_SDIVISOR = 0x06C
SIO_DIV_QUOTIENT = 0x070
SIO_DIV_REMAINDER = 0x074
SIO_DIV_CSR = 0x078


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


@dataclass
class SioBlock:
    """RP2040/RP2350 SIO: CPUID (core 0) and the hardware divider.

    The other registers (spin locks, the inter-core FIFO status, GPIO) are the chip
    data's ``sio`` window (``extra``, simcore.registers), or plain memory without one.

    The divider's result is ready at once (the real one takes 8 cycles; CSR
    reads READY). Division by zero gives what the RP2040 datasheet states:
    quotient -1 (or 0xFFFFFFFF unsigned) for a positive dividend, remainder
    the dividend.
    """

    registers: dict[int, int] = field(default_factory=dict)
    #: The chip data's window for the registers this model does not implement.
    extra: RegisterWindow | None = None
    _dividend: int = 0
    _divisor: int = 0
    _signed_op: bool = False
    _quotient: int = 0
    _remainder: int = 0

    def _divide(self) -> None:
        n, d = self._dividend, self._divisor
        if self._signed_op:
            sn, sd = _signed(n), _signed(d)
            if sd == 0:
                q, r = (-1 if sn >= 0 else 1), sn
            else:
                q = abs(sn) // abs(sd) * (1 if (sn < 0) == (sd < 0) else -1)
                r = sn - q * sd
        else:
            q, r = (0xFFFFFFFF, n) if d == 0 else divmod(n, d)
        self._quotient, self._remainder = q & 0xFFFFFFFF, r & 0xFFFFFFFF

    def read(self, offset: int, size: int) -> int:
        if offset == 0x000:
            return 0  # CPUID: core 0
        if offset == SIO_DIV_QUOTIENT:
            return self._quotient
        if offset == SIO_DIV_REMAINDER:
            return self._remainder
        if offset == SIO_DIV_CSR:
            return 0x1  # READY, not DIRTY
        if offset in (SIO_DIV_UDIVIDEND, SIO_DIV_SDIVIDEND):
            return self._dividend
        if offset in (SIO_DIV_UDIVISOR, SIO_DIV_SDIVISOR):
            return self._divisor
        if self.extra is not None:
            return self.extra.read(offset, size)
        return self.registers.get(offset, 0)

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFFFFFFFF
        if offset in (SIO_DIV_UDIVIDEND, SIO_DIV_SDIVIDEND):
            self._dividend, self._signed_op = value, offset == SIO_DIV_SDIVIDEND
        elif offset in (SIO_DIV_UDIVISOR, SIO_DIV_SDIVISOR):
            self._divisor, self._signed_op = value, offset == SIO_DIV_SDIVISOR
        elif offset == SIO_DIV_QUOTIENT:
            self._quotient = value
            return
        elif offset == SIO_DIV_REMAINDER:
            self._remainder = value
            return
        elif self.extra is not None:
            self.extra.write(offset, size, value)
            return
        else:
            self.registers[offset] = value
            return
        self._divide()


@dataclass
class MicrosecondTimer:
    """The RP2040/RP2350 TIMER: a 64-bit tick count derived from the cycle model, and alarms.

    ``ticks = cycles before the accessing instruction * tick_hz // clock_hz``, plus what
    firmware set through TIMELW/TIMEHW. A TIMELR read latches the high half for TIMEHR
    (read TIMELR first, as pico-sdk's ``time_us_64`` does); TIMERAWL/TIMERAWH read the
    count without latching.

    With ``alarms`` (data/interrupts.toml): writing ALARMn arms alarm n; it fires when
    the low 32 bits of the count equal it (RP2040 datasheet 4.6: a target already
    passed fires only after the count wraps, as on silicon), which disarms it and sets
    its INTR bit; INTR and ARMED are write-1-to-clear, INTE and INTF read back, INTS is
    (INTR | INTF) & INTE. Each INTS bit is the level of NVIC line ``irq + n``: the
    timer is an event source of :class:`~simcore.exceptions.InterruptController`.
    Writes to the atomic aliases (+0x1000 XOR, +0x2000 set, +0x3000 clear), where the
    region maps them, act on the register. Other registers read back what was written.
    """

    base: int
    offsets: dict[int, str]
    tick_hz: int
    clock_hz: int
    cycles: CycleSource
    notes: set[str]
    alarms: AlarmSpec | None = None
    #: Called after a write that may change the interrupt lines.
    poke: Callable[[], None] = lambda: None
    registers: dict[int, int] = field(default_factory=dict)
    _latched_high: int = 0
    _set_ticks: int = 0
    _written_low: int = 0
    _targets: dict[int, int] = field(default_factory=dict)
    #: Cycle at which each armed alarm fires.
    _fire: dict[int, int] = field(default_factory=dict)
    _intr: int = 0
    _inte: int = 0
    _intf: int = 0

    def _raw(self, offset: int, write: bool = False) -> int:
        value = self.cycles(self.base + offset, write)
        if value is None:
            self.notes.add("the TIMER was read but no cycle model was attached: it reads 0")
            return 0
        return value * self.tick_hz // self.clock_hz

    def _now(self, offset: int) -> int:
        return (self._raw(offset) + self._set_ticks) & 0xFFFFFFFFFFFFFFFF

    # alarms ------------------------------------------------------------------------

    def _alarm(self, offset: int) -> int | None:
        """The alarm number of an ALARMn offset, else None."""
        a = self.alarms
        if a is None or not a.alarm0 <= offset < a.alarm0 + 4 * a.count:
            return None
        return (offset - a.alarm0) // 4

    def _cycle_now(self, offset: int, write: bool = False) -> int:
        value = self.cycles(self.base + offset, write)
        if value is None:
            self.notes.add("TIMER alarms need the cycle model (run without --no-cycles)")
            return 0
        return value

    def _arm(self, alarm: int, target: int, now: int) -> None:
        ticks = now * self.tick_hz // self.clock_hz + self._set_ticks
        fire_tick = ticks + ((target - ticks) & 0xFFFFFFFF)
        needed = fire_tick - self._set_ticks
        self._fire[alarm] = max(now, -((-needed * self.clock_hz) // self.tick_hz))

    def poll(self, now: int) -> None:
        for alarm, at in list(self._fire.items()):
            if at <= now:
                del self._fire[alarm]
                self._intr |= 1 << alarm

    def next_event(self, now: int) -> int | None:
        times = [at for alarm, at in self._fire.items() if self._inte >> alarm & 1]
        return min(times) if times else None

    def lines(self) -> set[int]:
        if self.alarms is None:
            return set()
        ints = (self._intr | self._intf) & self._inte
        first = 16 + self.alarms.irq
        return {first + i for i in range(self.alarms.count) if ints >> i & 1}

    def _alarm_read(self, offset: int) -> int | None:
        a = self.alarms
        assert a is not None
        alarm = self._alarm(offset)
        if alarm is not None:
            return self._targets.get(alarm, 0)
        if offset in (a.armed, a.intr, a.ints):
            self.poll(self._cycle_now(offset))
        mask = (1 << a.count) - 1
        if offset == a.armed:
            return sum(1 << n for n in self._fire)
        if offset == a.intr:
            return self._intr
        if offset == a.inte:
            return self._inte
        if offset == a.intf:
            return self._intf
        if offset == a.ints:
            return (self._intr | self._intf) & self._inte & mask
        return None

    def _alarm_write(self, offset: int, value: int) -> bool:
        a = self.alarms
        assert a is not None
        mask = (1 << a.count) - 1
        alarm = self._alarm(offset)
        if alarm is not None:
            now = self._cycle_now(offset, True)
            self.poll(now)
            self._targets[alarm] = value & 0xFFFFFFFF
            self._arm(alarm, value & 0xFFFFFFFF, now)
        elif offset == a.armed:
            for n in range(a.count):
                if value >> n & 1:
                    self._fire.pop(n, None)
        elif offset == a.intr:
            self.poll(self._cycle_now(offset, True))
            self._intr &= ~value & mask
        elif offset == a.inte:
            self._inte = value & mask
        elif offset == a.intf:
            self._intf = value & mask
        else:
            return False
        self.poke()
        return True

    # registers -----------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        name = self.offsets.get(offset & ~3)
        if name == "timelr":
            now = self._now(offset)
            self._latched_high = now >> 32
            return now & 0xFFFFFFFF
        if name == "timehr":
            return self._latched_high
        if name == "timerawl":
            return self._now(offset) & 0xFFFFFFFF
        if name == "timerawh":
            return self._now(offset) >> 32
        if self.alarms is not None and size == 4:
            value = self._alarm_read(offset & 0xFFF)
            if value is not None:
                return value
        return _extract(self.registers, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        alias, offset = offset >> 12 & 3, offset & 0xFFF
        if alias and self.alarms is not None and size == 4:
            # RP2040 datasheet 2.1.2: XOR, set and clear aliases. On the
            # write-1-to-clear registers the set alias writes the ones (clears them).
            a = self.alarms
            w1c = offset in (a.armed, a.intr)
            current = 0 if w1c else self.read(offset, 4)
            if alias == 1:
                value ^= current
            elif alias == 2:
                value |= current
            else:
                value = 0 if w1c else current & ~value
        name = self.offsets.get(offset & ~3)
        if name == "timelw":
            self._written_low = value & 0xFFFFFFFF
        elif name == "timehw":
            wanted = ((value & 0xFFFFFFFF) << 32) | self._written_low
            self._set_ticks = wanted - self._raw(offset, True)
        elif self.alarms is not None and size == 4 and self._alarm_write(offset, value):
            return
        else:
            _merge(self.registers, offset, size, value)
