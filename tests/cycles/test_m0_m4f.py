"""Cortex-M0 and Cortex-M4F: ISA checks and cycle figures from their TRMs.

Each case runs under unicorn with the accounting hooks (the CPU model each core's
board uses: CORTEX_M0, CORTEX_M4) and its count is derived in ``why`` from the TRM
table (data/timing/cortex-m0.toml: DDI0432C Table 3-1; cortex-m4f.toml: DDI0439B
Tables 3-1 and 7-1). ``done`` is never executed; a taken branch's refill is charged
when the next block starts, so every case ends with a NOP (counted in ``why``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cycles_support import Program, run
from unicorn import arm_const

from simcore.boards import get_board
from simcore.cycles.tables import Tag, load_table, table_for
from simcore.errors import CycleModelError


@dataclass(frozen=True)
class Case:
    core: str
    id: str
    body: str
    cycles: int
    instructions: int
    why: str


CASES = [
    Case(
        "cortex-m0",
        "branch",
        "b 1f\nnop\n1:\nnop\n",
        4,
        2,
        "B 3 (1 + 2 refill: the M0's 3-stage pipeline; M0+ 2) + NOP 1 = 4",
    ),
    Case(
        "cortex-m0",
        "branch_conditional",
        "movs r0, #0\ncmp r0, #0\nbeq 1f\nnop\n1:\nbne 2f\nnop\n2:\nnop\n",
        8,
        6,
        "MOVS 1 + CMP 1 + BEQ taken 3 (skips a NOP) + BNE not taken 1 + NOP 1 + NOP 1 = 8",
    ),
    Case(
        "cortex-m0",
        "bl_bx_pop_pc",
        "bl func\nbl func2\nb 1f\nfunc:\nbx lr\nfunc2:\npush {r4, r5, lr}\npop {r4, r5, pc}\n"
        "1:\nnop\n",
        25,
        7,
        "BL 4 + BX 3 + BL 4 + PUSH {r4,r5,lr} 1+3 + POP {r4,r5,pc} 4+N (N = 2 low "
        "registers) = 6 + B 3 + NOP 1 = 4 + 3 + 4 + 4 + 6 + 3 + 1 = 25",
    ),
    Case(
        "cortex-m0",
        "load_store_multiple",
        "ldr r1, =0x20000100\nstr r0, [r1]\nldr r2, [r1]\nstm r1!, {r2, r3}\n"
        "ldm r1!, {r2, r3}\nnop\n",
        13,
        6,
        "LDR literal 2 + STR 2 + LDR 2 + STM 1+2 + LDM 1+2 + NOP 1 = 13",
    ),
    Case(
        "cortex-m0",
        "system",
        "mrs r0, primask\nmsr primask, r0\ndsb\ndmb\nisb\nnop\n",
        21,
        6,
        "MRS 4 + MSR 4 + DSB 4 + DMB 4 + ISB 4 (M0+: 3 each) + NOP 1 = 21",
    ),
    Case(
        "cortex-m4f",
        "fp_load_move",
        "ldr r0, =0x20000100\nvldr s0, [r0]\nvldr d1, [r0, #8]\nvmov d2, r1, r2\n"
        "vmov r3, s0\nvstr s0, [r0]\nvstr d1, [r0, #8]\nnop\n",
        16,
        8,
        "LDR literal 2 + VLDR.32 2 + VLDR.64 3 + VMOV Dm,Rt,Rt2 2 + VMOV Rt,Sn 1 "
        "+ VSTR.32 2 + VSTR.64 3 + NOP 1 = 16",
    ),
    Case(
        "cortex-m4f",
        "fp_arith",
        "vadd.f32 s0, s1, s2\nvmul.f32 s3, s4, s5\nvmla.f32 s6, s7, s8\n"
        "vdiv.f32 s9, s10, s11\nvsqrt.f32 s12, s13\nnop\n",
        34,
        6,
        "VADD 1 + VMUL 1 + VMLA 3 + VDIV 14 + VSQRT 14 + NOP 1 = 34 (independent operands)",
    ),
    Case(
        "cortex-m4f",
        "integer",
        "movs r0, #7\nmovs r1, #3\nmul r2, r0, r1\nsmlal r3, r4, r0, r1\nsmlad r5, r0, r1, r2\n"
        "cbz r0, 1f\nnop\n1:\nnop\n",
        8,
        8,
        "MOVS 1 + MOVS 1 + MUL 1 + SMLAL 1 + SMLAD 1 + CBZ not taken 1 + NOP 1 + NOP 1 = 8",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.core}-{c.id}" for c in CASES])
def test_trm_case(asm: Callable[..., Program], case: Case) -> None:
    """The run under unicorn costs ``case.cycles``, derived from the TRM in ``case.why``."""
    prog = asm(case.core, case.body)
    result = run(prog, case.core)
    assert (result.cycles, result.instructions) == (case.cycles, case.instructions), case.why


def test_m0_costs_more_per_taken_branch_than_m0plus(asm: Callable[..., Program]) -> None:
    """The same loop: M0 and M0+ differ by exactly one refill cycle per taken branch."""
    body = "movs r2, #10\nloop:\nadds r0, r0, #1\nsubs r2, r2, #1\nbne loop\nnop\n"
    m0 = run(asm("cortex-m0", body), "cortex-m0")
    m0plus = run(asm("cortex-m0plus", body), "cortex-m0plus")
    assert m0.registers[0] == m0plus.registers[0] == 10
    assert m0.instructions == m0plus.instructions == 1 + 10 * 3 + 1
    # 1 + 10 x (1 + 1 + 1) + 9 taken x refill + NOP 1: refill 2 on the M0, 1 on the M0+
    assert (m0.cycles, m0plus.cycles) == (1 + 30 + 9 * 2 + 1, 1 + 30 + 9 * 1 + 1)


@pytest.mark.parametrize(
    "encoding,what",
    [
        (".inst.w 0xfb91f0f2", "sdiv"),  # SDIV r0, r1, r2: Armv7-M, a 32-bit encoding
        (".inst.w 0xea4f0101", "mov.w"),  # MOV.W r1, r1: a Thumb-2 wide data-processing op
        (".inst.n 0xb100", "cbz"),  # CBZ: a 16-bit Armv7-M instruction
    ],
)
def test_m0_rejects_what_armv6m_lacks(
    asm: Callable[..., Program], encoding: str, what: str
) -> None:
    prog = asm("cortex-m0", f"movs r0, #1\n{encoding}\nnop\nnop\n")
    with pytest.raises(CycleModelError, match=rf"0x1000000[0-9a-f]: '{what}.*cortex-m0") as info:
        run(prog, "cortex-m0")
    assert "\n" not in str(info.value)


def test_m4f_runs_a_single_precision_mac_loop(asm: Callable[..., Program]) -> None:
    """s0 = 1 + 4 x (2 x 0.5), s3 = 4 x 2: correct values and the TRM's cycles.

    Setup: 3 x VMOV immediate (1 each) + MOVS 1 = 4. Loop body: VMLA.F32 3 + VADD.F32 1
    (independent of the VMLA) + SUBS 1 + BNE 1 = 6, four times, and 3 taken back edges
    at P = 1. Then the NOP 1: 4 + 24 + 3 + 1 = 32.
    """
    body = (
        "vmov.f32 s0, #1.0\nvmov.f32 s1, #2.0\nvmov.f32 s2, #0.5\nmovs r2, #4\n"
        "loop:\nvmla.f32 s0, s1, s2\nvadd.f32 s3, s3, s1\nsubs r2, r2, #1\nbne loop\nnop\n"
    )
    result = run(asm("cortex-m4f", body), "cortex-m4f")
    s0, s3 = (
        struct.unpack("<f", struct.pack("<I", result.uc.reg_read(reg)))[0]
        for reg in (arm_const.UC_ARM_REG_S0, arm_const.UC_ARM_REG_S3)
    )
    assert (s0, s3) == (5.0, 8.0)
    assert result.instructions == 4 + 4 * 4 + 1
    assert result.cycles == 4 + 4 * 6 + 3 * 1 + 1


@pytest.mark.parametrize(
    "encoding,what",
    [
        (".inst.w 0xee310b02", "vadd.f64 d0, d1, d2' is a double-precision FPU instruction"),
        (".inst.w 0xfe800a81", "vmaxnm.f32"),  # FPv5 (Armv8-M), not FPv4-SP
    ],
)
def test_m4f_rejects_double_precision_and_fpv5(
    asm: Callable[..., Program], encoding: str, what: str
) -> None:
    prog = asm("cortex-m4f", f"movs r0, #1\n{encoding}\nnop\n")
    with pytest.raises(CycleModelError, match=what) as info:
        run(prog, "cortex-m4f")
    assert "cortex-m4f" in str(info.value) and "\n" not in str(info.value)


def test_tables_are_tagged() -> None:
    """Both cores are exact; only figures the TRMs leave open are approximate."""
    m0, m4f = load_table("cortex-m0"), load_table("cortex-m4f")
    assert m0.exactness is Tag.EXACT and m4f.exactness is Tag.EXACT
    assert {r.name for r in m0.rows if r.tag is not Tag.EXACT} == {
        "multiply",
        "pop_pc",
        "breakpoint",
        "exception_trap",
    }
    assert {r.name for r in m4f.rows if r.tag is not Tag.EXACT} == {
        "divide",
        "special_register",
        "barrier",
        "isb",
        "trap",
    }
    assert m0.refill_cycles == 2 and m4f.refill_cycles == 1


def test_board_sets_the_multiplier_option(asm: Callable[..., Program], tmp_path: Path) -> None:
    """The M0's MULS is 1 or 32 by the chip's choice: a board with the small multiplier
    (``[core_timing] multiply = 32``) pays 31 more per MULS; the core table is unchanged."""
    shipped = Path(__file__).resolve().parents[2] / "simcore" / "data" / "boards"
    text = (shipped / "bbc-microbit.toml").read_text()
    small = tmp_path / "small-mul.toml"
    small.write_text(
        text.replace('name = "bbc-microbit"', 'name = "small-mul"').replace(
            "multiply = 1", "multiply = 32"
        )
    )
    prog = asm("cortex-m0", "movs r0, #3\nmovs r1, #5\nmuls r0, r1\nnop\n")
    fast = prog.classify(table_for(get_board("bbc-microbit"))).ranges[0]
    slow = prog.classify(table_for(get_board(str(small)))).ranges[0]
    start, end = prog.symbols["_start"], prog.symbols["done"]
    assert fast.block_cost(start, end) == (1 + 1 + 1 + 1, 4)
    assert slow.block_cost(start, end) == (1 + 1 + 32 + 1, 4)
    assert next(r for r in load_table("cortex-m0").rows if r.name == "multiply").cycles == 1
