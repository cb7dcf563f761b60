"""Cycle model: per-core timing tables, static classification, native block accounting.

- :mod:`simcore.cycles.tables` loads the timing tables (data/timing/*.toml);
- :mod:`simcore.cycles.classify` turns executable code into per-halfword prefix sums;
- :mod:`simcore.cycles.native` installs the C block hook on a unicorn engine;
- :mod:`simcore.cycles.sysregs` serves DWT->CYCCNT and SysTick->VAL reads;
- :mod:`simcore.cycles.profile` turns block counts into a per-function profile.
"""
