"""The few memory-mapped registers firmware touches that unicorn does not model.

Plain Python register files; the engine maps them with MMIO callbacks, which
run only when firmware accesses these addresses (rare next to compute).

- The Private Peripheral Bus (0xE0000000-0xE0100000): CPUID, CPACR (writes
  accepted; unicorn's FPU is always on), DWT->CYCCNT and SysTick->VAL, which
  read the cycle model's count at that instant. SysTick interrupts are not
  delivered (the engine notes it when firmware enables them).
- RP2040/RP2350 SIO hardware divider, which pico-sdk uses for every ``/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

PPB_BASE = 0xE0000000
PPB_SIZE = 0x100000

DWT_CTRL = 0x1000
DWT_CYCCNT = 0x1004
SYST_CSR = 0xE010
SYST_RVR = 0xE014
SYST_CVR = 0xE018
SYST_CALIB = 0xE01C
CPUID = 0xED00

#: CPUID values from each core's TRM (implementer, variant, part, revision).
CPUID_BY_CORE = {
    "cortex-m0plus": 0x410CC601,  # Cortex-M0+ r0p1 (RP2040)
    "cortex-m33": 0x410FD214,  # Cortex-M33 r0p4 (RP2350)
    "cortex-m7": 0x411FC271,  # Cortex-M7 r1p1 (STM32H743 rev V)
}

#: Cycles before the instruction accessing ``address`` (``write``: a store), or
#: None when no cycle model is attached.
CycleSource = Callable[[int, bool], int | None]


@dataclass
class PrivatePeripheralBus:
    """CPUID, CPACR, DWT and SysTick; every other register reads back what was written."""

    core: str
    cycles: CycleSource
    registers: dict[int, int] = field(default_factory=dict)
    notes: set[str] = field(default_factory=set)
    _systick_start: int = 0
    _cyccnt_base: int = 0

    def _now(self, offset: int, write: bool = False) -> int:
        value = self.cycles(PPB_BASE + offset, write)
        if value is None:
            self.notes.add("DWT/SysTick were read but no cycle model was attached: they read 0")
            return 0
        return value

    def read(self, offset: int, size: int) -> int:
        if offset == CPUID:
            return CPUID_BY_CORE.get(self.core, 0)
        if offset == DWT_CYCCNT:
            return (self._now(offset) - self._cyccnt_base) & 0xFFFFFFFF
        if offset == SYST_CVR:
            reload = self.registers.get(SYST_RVR, 0) & 0xFFFFFF
            if not self.registers.get(SYST_CSR, 0) & 1 or reload == 0:
                return self.registers.get(SYST_CVR, 0)
            elapsed = self._now(offset) - self._systick_start
            return reload - (elapsed % (reload + 1))
        if offset == SYST_CALIB:
            return 0x80000000  # NOREF: no reference clock, TENMS unknown
        value = self.registers.get(offset & ~3, 0)
        return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == DWT_CYCCNT:
            # Firmware resets CYCCNT to 0 before timing a region.
            self._cyccnt_base = self._now(offset, True) - value
            return
        if offset == SYST_CSR and value & 1 and not self.registers.get(SYST_CSR, 0) & 1:
            self._systick_start = self._now(offset, True)
            if value & 2:
                self.notes.add("SysTick interrupts (TICKINT) are not delivered by simcore")
        if offset == SYST_CVR:
            self._systick_start = self._now(offset, True)  # any write clears the counter
        if size == 4:
            self.registers[offset] = value
        else:
            word = offset & ~3
            shift = 8 * (offset & 3)
            mask = ((1 << (8 * size)) - 1) << shift
            old = self.registers.get(word, 0)
            self.registers[word] = (old & ~mask) | ((value << shift) & mask)


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
    """RP2040/RP2350 SIO: CPUID (core 0) and the hardware divider; the rest is plain memory.

    The divider's result is ready at once (the real one takes 8 cycles; CSR
    reads READY). Division by zero gives what the RP2040 datasheet states:
    quotient -1 (or 0xFFFFFFFF unsigned) for a positive dividend, remainder
    the dividend.
    """

    registers: dict[int, int] = field(default_factory=dict)
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
        else:
            self.registers[offset] = value
            return
        self._divide()
