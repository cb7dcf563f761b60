"""Operand facts the schedulers rely on: operand2 classes and register roles.

These read capstone's decoding of small hand-assembled sequences; the expected
classes follow jnk0le's operand2 names (doc/cortex_m7.md) and the Thumb-2
modified-immediate encoding (Arm v7-M ARM A5.3.2).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cycles_support import Program

from simcore.cycles.classify import (
    ACCUMULATOR_OPERANDS,
    _make_insn,
    disassembler,
    operand2_class,
)
from simcore.cycles.tables import load_table

OPERAND2 = [
    ("add.w r0, r1, #1", "simple"),
    ("addw r0, r1, #0xff9", "simple"),
    ("movw r0, #0x1234", "simple"),
    ("eor.w r6, r7, #0x1b1b1b1b", "pattern"),
    ("eor.w r0, r1, #0x00ab00ab", "pattern"),
    ("eor.w r0, r1, #0x1fc0", "shifted_const"),
    ("movs.w r9, #1000", "shifted_const"),
    ("add.w r3, r4, r5, ror #24", "shifted_reg"),
    ("lsr.w r2, r3, #12", "simple"),
    ("ror.w r2, r3, r4", "plain"),
    ("adds r0, #1", "simple"),
]


def _decode(prog: Program) -> list:
    r = prog.ranges[0]
    start = prog.symbols["_start"] - r.start
    end = prog.symbols["done"] - r.start
    return list(disassembler().disasm(r.data[start:end], prog.symbols["_start"]))


@pytest.mark.parametrize(("text", "expected"), OPERAND2, ids=[t for t, _ in OPERAND2])
def test_operand2_class(asm: Callable[..., Program], text: str, expected: str) -> None:
    (insn,) = _decode(asm("cortex-m7", text + "\n"))
    assert operand2_class(insn) == expected


def _roles(asm: Callable[..., Program], core: str, text: str) -> dict[str, set[str]]:
    table = load_table(core)
    (insn,) = _decode(asm(core, text + "\n"))
    row = next(r for r in table.rows_for(insn.id))
    x = _make_insn(insn, row, 0)
    return {role: set(keys) for role, keys in x.reads}


def test_long_mac_reads_its_accumulators(asm: Callable[..., Program]) -> None:
    """capstone lists RdLo/RdHi of SMLAL as written only; our table makes them read."""
    roles = _roles(asm, "cortex-m7", "smlal r0, r1, r2, r3")
    assert roles["acc"] == {"r0", "r1"}
    assert roles["mul"] == {"r2", "r3"}


def test_roles_of_a_shifted_operand_and_a_store(asm: Callable[..., Program]) -> None:
    assert _roles(asm, "cortex-m7", "add.w r0, r1, r2, lsl #2") == {
        "early": {"r2"},
        "normal": {"r1"},
    }
    assert _roles(asm, "cortex-m7", "str.w r3, [r12, #4]") == {
        "address": {"r12"},
        "store": {"r3"},
    }


def test_uxtab_reads_the_register_capstone_omits(asm: Callable[..., Program]) -> None:
    """capstone's regs_access misses UXTAB's Rm; it is read (early on the M7)."""
    assert _roles(asm, "cortex-m7", "uxtab r0, r1, r2") == {"acc": {"r1"}, "early": {"r2"}}


def test_flags_are_a_dependency(asm: Callable[..., Program]) -> None:
    """ADCS reads the flags like a register (so ADCS; ADCS does not pair on the M7)."""
    assert _roles(asm, "cortex-m7", "adcs.w r0, r0, r1")["normal"] == {"r0", "r1", "flags"}


def test_accumulator_table_covers_every_long_mac() -> None:
    from capstone import arm_const

    for name in ("SMLAL", "UMLAL", "UMAAL", "SMLALD", "SMLALBB", "SMLSLD"):
        assert ACCUMULATOR_OPERANDS[getattr(arm_const, f"ARM_INS_{name}")] == (0, 1)
