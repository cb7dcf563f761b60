"""The silicon suite: sequences measured on an STM32H743 (M7) and an RP2350 (M33).

Every sequence of data/timing/silicon-<core>.toml runs under simcore (N-copies method,
see simcore.cycles.silicon) and must come out exactly as measured, except the misses
listed in KNOWN_MISSES with the value the model gives today: a change to any of them,
better or worse, fails here and has to be looked at (and the list and simcore/data/timing/README.md
updated).
"""

from __future__ import annotations

from functools import cache

import pytest
from cycles_support import HAVE_AS

from simcore.cycles.silicon import CORES, SuiteResult, load_suite, run_suite

#: Sequences the model does not get exactly: name -> modeled cycles per copy today.
KNOWN_MISSES: dict[str, dict[str, float]] = {
    # Unit-stride STRB measures 2.4 cycles per store; the model spaces byte stores 2
    # apart (4 in one bank) and has no notion of the store buffer filling up.
    "cortex-m7": {"strb_unit_stride": 2.0},
    # An instruction skipped by IT costs a slot only on the M33 (it executes as a
    # NOP); the static model charges it as executed (a flag-setting shifted-constant
    # ADD: 2), because which IT instructions are skipped is only known at run time.
    "cortex-m33": {"it_predicated_ne": 3.0},
}

pytestmark = pytest.mark.skipif(not HAVE_AS, reason="arm-none-eabi-as/ld not installed")


@cache
def _suite(core: str) -> SuiteResult:
    return run_suite(core)


def _cases() -> list[tuple[str, str]]:
    return [(core, s.name) for core in CORES for s in load_suite(core).sequences]


@pytest.mark.parametrize(("core", "name"), _cases(), ids=[f"{c}-{n}" for c, n in _cases()])
def test_sequence(core: str, name: str) -> None:
    """The sequence is exact, or modeled as recorded in KNOWN_MISSES."""
    result = next(r for r in _suite(core).results if r.name == name)
    expected = KNOWN_MISSES[core].get(name, result.measured)
    assert result.modeled == expected, (
        f"{core} {name}: measured {result.measured}, modeled {result.modeled}, expected {expected}"
    )


@pytest.mark.parametrize("core", CORES)
def test_suite_targets(core: str) -> None:
    """Issue 14's targets: at least 90% exact, mean absolute error at most 0.2 cycles."""
    suite = _suite(core)
    assert suite.exact_count >= 0.9 * len(suite.results), suite.summary()
    assert suite.mean_abs_error <= 0.2, suite.summary()
    assert set(KNOWN_MISSES[core]) <= {r.name for r in suite.results}


def test_quotes_and_sources_present() -> None:
    """Every sequence says which measured rule it stands for."""
    for core in CORES:
        suite = load_suite(core)
        assert "jnk0le" in suite.source
        names = [s.name for s in suite.sequences]
        assert len(names) == len(set(names)), f"duplicate sequence names in {core}"
        assert all(s.quote and s.measured > 0 for s in suite.sequences)
