"""Values of DWT->CYCCNT and SysTick->VAL from the cycle model, for MMIO read callbacks.

The engine serves the System Control Space page with Python MMIO callbacks (rare
events). Inside such a callback unicorn's PC is the start of the current block, not
the reading instruction (measured, unicorn 2.1.4), so the callback must ask
:meth:`simcore.cycles.native.BlockAccounting.cycles_at_access` (once per access) for
the cycles before the reading instruction and pass them here.
"""

from __future__ import annotations

DWT_CYCCNT = 0xE0001004
SYST_CSR = 0xE000E010
SYST_RVR = 0xE000E014
SYST_CVR = 0xE000E018

_SYSTICK_MASK = 0xFFFFFF


def cyccnt(cycles_now: int, cycles_at_zero: int = 0) -> int:
    """CYCCNT: cycles since it was last written to zero, wrapping at 32 bits.

    ``cycles_at_zero`` is the model's count when firmware wrote 0 (a write of ``v``
    at count ``c`` is ``cycles_at_zero = c - v``).
    """
    return (cycles_now - cycles_at_zero) & 0xFFFFFFFF


def systick_value(
    cycles_now: int, *, reload: int, enabled_at: int, value_at_enable: int = 0
) -> int:
    """SysTick->VAL of a counter clocked by the core (CLKSOURCE = 1) enabled at ``enabled_at``.

    VAL decrements once per cycle; on the cycle after it reaches 0 it reloads with
    RVR (24 bits), so from VAL = 0 at enable it reads RVR one cycle later and the
    period is RVR + 1. A reload of 0 stops the counter.
    """
    reload &= _SYSTICK_MASK
    elapsed = cycles_now - enabled_at
    if elapsed <= value_at_enable:
        return value_at_enable - elapsed
    if reload == 0:
        return 0
    return reload - ((elapsed - value_at_enable - 1) % (reload + 1))
