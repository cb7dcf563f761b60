"""Cycle model: per-core timing tables, static classification, native block accounting.

- :mod:`simcore.cycles.tables` loads the timing tables and cache models (data/timing/);
- :mod:`simcore.cycles.classify` turns executable code into per-halfword prefix sums;
- :mod:`simcore.cycles.native` installs the C hooks (``_native.c``) on a unicorn engine;
- :mod:`simcore.cycles.model` puts them together for one ELF on one board (the engine's
  entry point: ``CycleModel``);
- :mod:`simcore.cycles.sysregs` computes DWT->CYCCNT and SysTick->VAL values;
- :mod:`simcore.cycles.profile` turns block counts into a per-function profile;
- :mod:`simcore.cycles.bench` measures raw against accounted unicorn throughput.
"""
