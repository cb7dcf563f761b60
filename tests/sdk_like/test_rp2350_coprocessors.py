"""The RP2350's coprocessors unicorn lacks: the start-up read pico-sdk makes, and clear refusals.

pico-sdk's runtime_init_per_core_enable_coprocessors grants CP4 (the double-precision
coprocessor) in CPACR and reads `mrc p4, #0, r0, c0, c0, #1` once; unicorn's M33 takes
a NOCP UsageFault for any coprocessor but the FPU. The chip data (rp2350.toml
[[coprocessor]]) lists the reads simcore answers.
"""

from __future__ import annotations

import pytest
from sim_support import AsmBuilder

from simcore import coprocessors as copro
from simcore.engine import run_firmware
from simcore.errors import NotModeled, UsageFault
from simcore.registers import load_chip

GRANT_CP0_CP4 = """
    ldr r1, =0xe000ed88
    ldr r2, [r1]
    ldr r3, =0x303
    orrs r2, r3
    str r2, [r1]
"""


def test_decode_coprocessor_encodings() -> None:
    # mrc p4, #0, r0, c0, c0, #1 (pico-sdk runtime_init.c), as in its ELF: ee10 0430
    mrc = copro.decode(bytes.fromhex("10ee3004"))
    assert mrc is not None and (mrc.coproc, mrc.kind, mrc.rt, mrc.mrc_key) == (
        4,
        "mrc",
        0,
        (0, 0, 0, 1),
    )
    mcr = copro.decode(bytes.fromhex("00ee1000"))  # mcr p0, #0, r0, c0, c0, #0
    assert mcr is not None and (mcr.coproc, mcr.kind) == (0, "mcr")
    mcrr = copro.decode(bytes.fromhex("41ec1004"))  # mcrr p4, #1, r0, r1, c0
    assert mcrr is not None and (mcrr.coproc, mcrr.kind, mcrr.rt) == (4, "mcrr", 0)
    assert (mrc.text(), mcr.text(), mcrr.text()) == (
        "mrc p4, #0, r0, c0, c0, #1",
        "mcr p0, #0, r0, c0, c0, #0",
        "mcrr p4, #1, r0, r1, c0",
    )
    assert copro.decode(bytes.fromhex("00f000f8")) is None  # a BL
    assert [c.name for c in load_chip("rp2350").coprocessors] == ["dcp", "gpioc"]


def test_the_start_up_read_is_answered_with_cycles(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2350", GRANT_CP0_CP4 + "movs r0, #5\nmrc p4, #0, r0, c0, c0, #1\nadds r0, #7")
    result = run_firmware(elf, "rp2350")
    assert result.exit_code == 7  # the read gave 0, then execution went on after it
    assert result.cycles is not None and result.instructions is not None


def test_without_cpacr_access_it_is_a_nocp_fault(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2350", "mrc p4, #0, r0, c0, c0, #1")
    with pytest.raises(UsageFault, match="NOCP"):
        run_firmware(elf, "rp2350")


@pytest.mark.parametrize(
    ("insn", "expected"),
    [
        (
            "mcrr p4, #1, r0, r1, c0",
            r"'mcrr p4, #1, r0, r1, c0' .* dcp coprocessor \(p4\).*"
            r"pico_set_double_implementation",
        ),
        # gpio_coproc.h has no MCR with opc1 4 (the single-pin forms are 5-7)
        ("mcr p0, #4, r0, c0, c0, #0", r"gpioc coprocessor \(p0\).*PICO_USE_GPIO_COPROCESSOR=0"),
        ("mrc p4, #0, r0, c1, c0, #1", r"'mrc p4, #0, r0, c1, c0, #1' at 0x"),
    ],
)
def test_other_uses_are_not_modeled(asm_elf: AsmBuilder, insn: str, expected: str) -> None:
    elf = asm_elf("rp2350", GRANT_CP0_CP4 + insn)
    with pytest.raises(NotModeled, match=expected):
        run_firmware(elf, "rp2350")
