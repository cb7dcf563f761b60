"""Cortex-M0+ microbenchmarks: every row of TRM Table 3.1, exact.

Each case lists the instructions it runs and derives the expected count from the
table (data/timing/cortex-m0plus.toml): ``cycles`` per row, plus the refill cycle (1)
for every taken branch. Setup instructions are part of the sum. ``done`` is never
executed (the run stops when the PC reaches it).

The refill of a taken branch is charged when the next block starts, so a branch that
lands directly on ``done`` would not pay it: every TRM case therefore ends with a
closing NOP, which the test adds (+1 cycle, +1 instruction) to the derivation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cycles_support import Program, run

from simcore.cycles.native import StopReason
from simcore.errors import CycleModelError

CORE = "cortex-m0plus"


@dataclass(frozen=True)
class Case:
    id: str
    body: str
    cycles: int
    why: str
    instructions: int | None = None


CASES = [
    Case(
        "data_processing",
        """
        movs r0, #1
        movs r1, #3
        adds r0, r0, #2
        subs r2, r0, #1
        ands r0, r1
        eors r0, r1
        orrs r0, r1
        bics r0, r2
        mvns r2, r0
        cmp r0, r1
        cmn r0, r1
        tst r0, r1
        lsls r0, r0, #1
        lsrs r0, r0, #1
        asrs r0, r0, #1
        rors r0, r1
        adcs r0, r1
        sbcs r0, r1
        rsbs r0, r1, #0
        sxtb r0, r1
        sxth r0, r1
        uxtb r0, r1
        uxth r0, r1
        rev r0, r1
        rev16 r0, r1
        revsh r0, r1
        add r0, sp, #4
        sub sp, #8
        add sp, #8
        mov r8, r0
        add r0, r8
        adr r0, lit
        """,
        32,
        "32 data-processing instructions (ALU, shifts, extend, reverse, ADD/SUB SP, "
        "high-register MOV/ADD, ADR) x 1",
    ),
    Case(
        "mov_pc",
        """
        ldr r1, =target
        mov pc, r1
        nop
    target:
        """,
        4,
        "LDR literal 2 + MOV PC,Rm (1 + refill 1) = 4; the nop is skipped",
        instructions=2,
    ),
    Case(
        "add_pc",
        """
        movs r1, #0
        add pc, r1
        nop
        nop
        """,
        4,
        "MOVS 1 + ADD PC,Rm (1 + refill 1) jumps to its address + 4, skipping one nop; "
        "last nop 1 = 4",
        instructions=3,
    ),
    Case(
        "muls",
        """
        movs r0, #3
        movs r1, #5
        muls r0, r1, r0
        muls r0, r1, r0
        """,
        4,
        "2 MOVS + 2 MULS x 1 (fast multiplier) = 4",
    ),
    Case(
        "load_forms",
        """
        ldr r1, =0x20000000
        movs r2, #4
        ldr r0, [r1]
        ldr r0, [r1, #4]
        ldr r0, [r1, r2]
        ldrh r0, [r1, #2]
        ldrh r0, [r1, r2]
        ldrb r0, [r1, #1]
        ldrb r0, [r1, r2]
        ldrsh r0, [r1, r2]
        ldrsb r0, [r1, r2]
        ldr r0, [sp, #0]
        ldr r0, lit
        """,
        25,
        "LDR literal 2 + MOVS 1 + 11 loads (imm, reg, SP, literal; word/half/byte/signed) x 2 = 25",
    ),
    Case(
        "store_forms",
        """
        ldr r1, =0x20000000
        movs r2, #4
        str r0, [r1]
        str r0, [r1, #8]
        str r0, [r1, r2]
        strh r0, [r1, #2]
        strh r0, [r1, r2]
        strb r0, [r1, #1]
        strb r0, [r1, r2]
        str r0, [sp, #0]
        """,
        19,
        "LDR literal 2 + MOVS 1 + 8 stores x 2 = 19",
    ),
    Case(
        "ldm_stm",
        """
        ldr r1, =0x20000000
        stm r1!, {r2, r3, r4}
        ldr r1, =0x20000000
        ldm r1!, {r2, r3}
        ldm r1, {r1}
        """,
        13,
        "2 LDR literal x 2 + STM 3 regs (1+3) + LDM 2 regs (1+2) + LDM 1 reg (1+1) = 13",
    ),
    Case(
        "push_pop_without_pc",
        """
        push {r4, r5, lr}
        push {r0}
        pop {r0}
        pop {r1, r2, r3}
        """,
        12,
        "PUSH {r4,r5,lr} (1+3, LR counts) + PUSH {r0} (1+1) + POP {r0} (1+1) "
        "+ POP {r1-r3} (1+3) = 12",
    ),
    Case(
        "pop_with_pc",
        """
        bl func
        b 1f
    func:
        push {r4, r5, lr}
        pop {r4, r5, pc}
    1:
        """,
        14,
        "BL (2 + refill 1) + PUSH {r4,r5,lr} (1+3) + POP {r4,r5,pc} (2 + N=2 low regs "
        "+ refill 1 = 3+N) + B (1 + refill 1) = 3 + 4 + 5 + 2 = 14",
    ),
    Case(
        "branch",
        """
        b 1f
        nop
    1:
        """,
        2,
        "B (1 + refill 1) = 2",
        instructions=1,
    ),
    Case(
        "branch_conditional_taken",
        """
        movs r0, #0
        cmp r0, #0
        beq 1f
        nop
    1:
        """,
        4,
        "MOVS 1 + CMP 1 + BEQ taken (1 + refill 1) = 4",
        instructions=3,
    ),
    Case(
        "branch_conditional_not_taken",
        """
        movs r0, #1
        cmp r0, #0
        beq 1f
        nop
    1:
        """,
        4,
        "MOVS 1 + CMP 1 + BEQ not taken 1 + NOP 1 = 4",
        instructions=4,
    ),
    Case(
        "bl_bx",
        """
        bl func
        b 1f
    func:
        bx lr
    1:
        """,
        7,
        "BL (2 + refill 1) + BX (1 + refill 1) + B (1 + refill 1) = 7",
    ),
    Case(
        "blx",
        """
        ldr r1, =func
        blx r1
        b 1f
    .thumb_func
    func:
        bx lr
    1:
        """,
        8,
        "LDR literal 2 + BLX (1 + refill 1) + BX (1 + refill 1) + B (1 + refill 1) = 8",
    ),
    Case(
        "mrs_msr",
        """
        mrs r0, primask
        msr primask, r0
        """,
        6,
        "MRS 3 + MSR 3 = 6",
    ),
    Case(
        "barriers",
        """
        isb
        dmb
        dsb
        """,
        9,
        "ISB 3 + DMB 3 + DSB 3 = 9",
    ),
    Case(
        "hints_cps",
        """
        nop
        sev
        cpsid i
        cpsie i
        """,
        4,
        "NOP, SEV, CPSID, CPSIE x 1 = 4 (YIELD: see test_yield_wfe_wfi_static)",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_trm_row(asm: Callable[..., Program], case: Case) -> None:
    """The run costs exactly ``case.cycles``, derived in ``case.why`` from the table."""
    prog = asm(CORE, case.body + "\n    nop\n", "\n.align 2\nlit:\n.word 0x12345678\n")
    result = run(prog, CORE)
    assert result.pc == prog.symbols["done"]
    assert result.cycles == case.cycles + 1, case.why + " (+1 closing NOP)"
    if case.instructions is not None:
        assert result.instructions == case.instructions + 1


def test_yield_wfe_wfi_static(asm: Callable[..., Program]) -> None:
    """YIELD 1, WFE 2, WFI 2 (TRM; the wait is not modeled): classified, not run.

    unicorn 2.1.4 stops with an error on YIELD/WFE/WFI, so these rows are checked on
    the prefix sums: 1 + 2 + 2 = 5 cycles, 3 instructions.
    """
    prog = asm(CORE, "yield\nwfe\nwfi\n")
    r = prog.classify(CORE).ranges[0]
    assert r.block_cost(prog.symbols["_start"], prog.symbols["done"]) == (5, 3)


def test_loop_prefix_sums_exact_however_blocks_split(asm: Callable[..., Program]) -> None:
    """A 10-iteration loop: unicorn merges the first iteration into the entry block.

    2 MOVS + 10 x (ADDS 1 + SUBS 1 + BNE 1) + 9 taken BNE refills = 2 + 30 + 9 = 41.
    """
    prog = asm(CORE, "movs r0, #0\nmovs r1, #10\nloop:\nadds r0, #1\nsubs r1, #1\nbne loop\n")
    result = run(prog, CORE)
    assert result.cycles == 41
    assert result.instructions == 32
    assert result.registers[0] == 10
    assert result.accounting is not None
    counts = result.accounting.block_counts()
    assert counts[prog.symbols["loop"]] == 9  # the first iteration ran in the entry block


@pytest.mark.parametrize(
    "body",
    ["udiv r0, r1, r2", "cbz r0, 1f\nnop\n1:", "add.w r0, r1, r2"],
    ids=["udiv", "cbz", "add_w"],
)
def test_instruction_not_in_armv6m_is_an_error(asm: Callable[..., Program], body: str) -> None:
    """Thumb-2 instructions have no M0+ row: the run stops with an error naming them."""
    prog = asm("cortex-m33", "movs r1, #1\nmovs r2, #1\n" + body + "\n")
    with pytest.raises(CycleModelError, match=r"0x1000000[0-9a-f]: '(udiv|cbz|add\.w)"):
        run(prog, CORE)


def test_unknown_instruction_stops_before_counting(asm: Callable[..., Program]) -> None:
    """The hook flags the block holding an unknown instruction and stops the emulator."""
    prog = asm("cortex-m33", "movs r0, #1\nb 1f\n1:\nsdiv r0, r0, r0\nnop\n")
    classification = prog.classify(CORE)
    from simcore.cycles.native import BlockAccounting

    acc = BlockAccounting(classification)
    from cycles_support import FLASH, new_engine

    uc = new_engine(CORE)
    uc.mem_map(FLASH, 0x10000)
    for addr, data in prog.image:
        uc.mem_write(addr, data)
    acc.install(uc)
    uc.emu_start(prog.symbols["_start"] | 1, prog.symbols["done"], timeout=5_000_000)
    assert acc.stop_reason is StopReason.UNKNOWN_INSTRUCTION
    assert acc.fault_address == prog.symbols["_start"] + 4
    # MOVS 1 + B 1 + its refill 1: a branch to the next instruction is taken, and the
    # hook cannot see that, so the refill is in its static cost.
    assert acc.cycles == 3
    with pytest.raises(CycleModelError, match="sdiv"):
        acc.check()


def test_budget_stops_the_run(asm: Callable[..., Program]) -> None:
    """An endless loop stops once the instruction budget is reached (at a block end)."""
    prog = asm(CORE, "1:\nadds r0, #1\nb 1b\n")
    result_budget = 1000
    from cycles_support import FLASH, new_engine

    from simcore.cycles.native import BlockAccounting

    uc = new_engine(CORE)
    uc.mem_map(FLASH, 0x10000)
    for addr, data in prog.image:
        uc.mem_write(addr, data)
    acc = BlockAccounting(prog.classify(CORE), budget=result_budget)
    acc.install(uc)
    uc.emu_start(prog.symbols["_start"] | 1, prog.symbols["done"], timeout=5_000_000)
    assert acc.stop_reason is StopReason.BUDGET
    assert result_budget <= acc.instructions <= result_budget + 2
