"""Cortex-M33 and Cortex-M7 (static dual-issue models fitted to silicon): the documented model.

Each case is a straight-line sequence at ``_start`` (the static scheduler starts with
every register ready there) whose cost is read from the prefix sums between ``_start``
and ``done``; the derivation from the table (data/timing/<core>.toml) is in ``why``.
A run under unicorn then checks that the C hook charges the same for a whole program.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cycles_support import Program, run


@dataclass(frozen=True)
class Case:
    core: str
    id: str
    body: str
    cycles: int
    why: str


CASES = [
    # --- Cortex-M33: its own model (16-bit pairs, two-stage results) ----------------
    Case(
        "cortex-m33",
        "independent_loads",
        "ldr r2, [r1]\nldr r3, [r1, #4]\nldr r4, [r1, #8]\n",
        3,
        "LDR issues in 1 and independent loads follow every cycle: 1 + 1 + 1 = 3",
    ),
    Case(
        "cortex-m33",
        "dependent_load",
        "ldr r2, [r1]\nldr r3, [r2]\n",
        3,
        "load-to-use latency 2: the second LDR issues at 2, ends at 3",
    ),
    Case(
        "cortex-m33",
        "store_after_load",
        "ldr r2, [r1]\nstr r3, [r1, #4]\nldr r4, [r1]\n",
        3,
        "LDR, STR, LDR 1 each (loads and stores never pair) = 3",
    ),
    Case(
        "cortex-m33",
        "sixteen_bit_nop_pair",
        "adds r0, r0, #1\nnop\nadds r1, r1, #1\nadds r2, r2, #1\n",
        3,
        "a 16-bit NOP pairs with the ADDS before it (1); two ADDS do not pair (1 + 1) = 3",
    ),
    Case(
        "cortex-m33",
        "shifted_operand_latency",
        "add.w r0, r1, r2, lsl #2\nadds r3, r0, #1\n",
        3,
        "an inline shifted operand's result needs 2 cycles: ADDS issues at 2, ends at 3",
    ),
    Case(
        "cortex-m33",
        "long_mac_accumulator",
        "smlal r0, r1, r2, r3\nsmlal r0, r1, r4, r5\nadds r6, r0, #1\n",
        4,
        "RdLo/RdHi are read as accumulators (not write-only as capstone says): the second "
        "SMLAL chains after 1; ADDS waits the 2-cycle result: 0, 1, issue 3, ends at 4",
    ),
    Case(
        "cortex-m33",
        "multiply_mac_dsp",
        "mul r0, r1, r2\nmla r0, r1, r2, r0\n"
        "smull r0, r3, r1, r2\nsmlad r0, r1, r2, r0\nqadd8 r0, r1, r2\n",
        5,
        "MUL, MLA (accumulates r0 after 1), SMULL, SMLAD (r0 from SMULL: acc after 1), "
        "QADD8 x 1 = 5",
    ),
    Case(
        "cortex-m33",
        "divide",
        "udiv r0, r1, r2\nsdiv r0, r1, r2\n",
        14,
        "SDIV/UDIV fixed at 7 (2-12 range midpoint, approximate): 2 x 7 = 14",
    ),
    Case(
        "cortex-m33",
        "fpu_result_used_next",
        "vadd.f32 s0, s1, s2\nvmul.f32 s3, s0, s1\n",
        3,
        "VADD result latency 2: VMUL issues at 2, ends at 3",
    ),
    Case(
        "cortex-m33",
        "fpu_independent",
        "vadd.f32 s0, s1, s2\nvmul.f32 s3, s4, s5\n",
        2,
        "VADD 1 + independent VMUL 1 = 2",
    ),
    Case(
        "cortex-m33",
        "fpu_mac_div_sqrt",
        "vfma.f32 s0, s1, s2\nvdiv.f32 s3, s4, s5\nvsqrt.f32 s6, s7\n",
        31,
        "VFMA 1, no FP instruction in the 2 cycles after it, VDIV 14 from 3, VSQRT 14 = 31",
    ),
    Case(
        "cortex-m33",
        "ldm_push",
        "push {r4, r5, r6, lr}\nldm r1, {r2, r3}\n",
        6,
        "PUSH 4 registers (N = 4) + LDM 2 registers (N = 2) = 6",
    ),
    # --- Cortex-M7: dual issue -------------------------------------------------------
    Case(
        "cortex-m7",
        "alu_pair",
        "adds r0, r0, #1\nadds r1, r1, #1\n",
        1,
        "two independent ALU ops issue together: 1",
    ),
    Case(
        "cortex-m7",
        "alu_dependent",
        "adds r0, r0, #1\nadds r1, r0, #1\n",
        2,
        "the younger reads the older's result: no pair, 1 + 1 = 2",
    ),
    Case(
        "cortex-m7",
        "one_shifter",
        "add r0, r0, r1, lsl #2\nadd r2, r2, r3, lsl #1\n",
        2,
        "two shifted-operand ops need the single shifter: 1 + 1 = 2",
    ),
    Case(
        "cortex-m7",
        "shift_with_plain",
        "add r0, r0, r1, lsl #2\nadds r2, r2, r3\n",
        1,
        "a shifted op pairs with a plain ALU op: 1",
    ),
    Case(
        "cortex-m7",
        "dsp_older_slot",
        "smlabb r0, r1, r2, r3\nadds r4, r4, #1\n",
        1,
        "DSP in the older slot pairs with an ALU op: 1",
    ),
    Case(
        "cortex-m7",
        "dsp_not_younger",
        "adds r4, r4, #1\nuxtb r0, r1\n",
        2,
        "bitfield/extend (DSP) cannot take the younger slot: 1 + 1 = 2",
    ),
    Case(
        "cortex-m7",
        "load_use",
        "ldrb r2, [r1]\nadds r3, r2, #1\n",
        3,
        "LDRB 1, its late-ALU consumer waits for byte load latency 2: issues at 2, ends at 3",
    ),
    Case(
        "cortex-m7",
        "load_alu_pair",
        "ldr r2, [r1]\nadds r3, r4, #1\n",
        1,
        "a load and an independent ALU op issue together: 1",
    ),
    Case(
        "cortex-m7",
        "ldrd_single_issue",
        "ldrd r2, r3, [r1]\nadds r4, r4, #1\n",
        2,
        "LDRD does not dual-issue: 1 + 1 = 2",
    ),
    Case(
        "cortex-m7",
        "mac_latency",
        "mul r0, r1, r2\nadds r3, r0, #1\n",
        3,
        "MUL latency 2: the consumer issues at cycle 2, ends at 3",
    ),
    Case("cortex-m7", "divide", "udiv r0, r1, r2\n", 7, "SDIV/UDIV 7, single issue (LLVM)"),
    Case(
        "cortex-m7",
        "fp32_latency",
        "vadd.f32 s0, s1, s2\nvmul.f32 s3, s0, s1\n",
        4,
        "FP single ALU latency 3: the consumer issues at cycle 3, ends at 4",
    ),
    Case(
        "cortex-m7",
        "fp64_latency",
        "vadd.f64 d0, d1, d2\nvmul.f64 d3, d0, d1\n",
        8,
        "VADD.F64 result latency 3: VMUL.F64 (5 cycles) starts at 3, ends at 8",
    ),
    Case(
        "cortex-m7",
        "fp_mac_latency",
        "vfma.f32 s0, s1, s2\nvadd.f32 s3, s0, s1\n",
        6,
        "VFMA result latency 5 to an FP operand: VADD starts at 5, ends at 6",
    ),
    Case(
        "cortex-m7",
        "fp64_mac_latency",
        "vfma.f64 d0, d1, d2\nvadd.f64 d3, d0, d1\n",
        7,
        "VFMA.F64 6 cycles (result at the end): VADD.F64 starts at 6, ends at 7",
    ),
    Case(
        "cortex-m7",
        "fp_div_sqrt",
        "vdiv.f32 s0, s1, s2\nvsqrt.f64 d2, d3\n",
        46,
        "VDIV.F32 16 + VSQRT.F64 30 (blocking) = 46",
    ),
    Case(
        "cortex-m7",
        "fpu_one_per_cycle",
        "vadd.f32 s0, s1, s2\nvadd.f32 s3, s4, s5\n",
        2,
        "one FPU pipe: two independent VADDs do not pair: 2",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.core}-{c.id}" for c in CASES])
def test_model_case(asm: Callable[..., Program], case: Case) -> None:
    """The static cost of ``case.body`` is ``case.cycles``, derived in ``case.why``."""
    prog = asm(case.core, case.body)
    r = prog.classify(case.core).ranges[0]
    cycles, _ = r.block_cost(prog.symbols["_start"], prog.symbols["done"])
    assert cycles == case.cycles, case.why


@pytest.mark.parametrize("core", ["cortex-m33", "cortex-m7"])
def test_run_matches_static_costs(asm: Callable[..., Program], core: str) -> None:
    """A loop under unicorn: the hook charges the prefix sums plus one refill per taken branch.

    Body: MOVS, MOVS, then 10 x (LDR, ADDS, SUBS, BNE) with 9 taken back edges; the
    expected value is computed from the classified costs, the refill from the table.
    """
    body = (
        "ldr r1, =0x20000000\nmovs r2, #10\nloop:\nldr r3, [r1]\nadds r0, r0, r3\n"
        "subs r2, r2, #1\nbne loop\n"
    )
    prog = asm(core, body)
    classification = prog.classify(core)
    r = classification.ranges[0]
    entry, _ = r.block_cost(prog.symbols["_start"], prog.symbols["loop"])
    loop, _ = r.block_cost(prog.symbols["loop"], prog.symbols["done"])
    expected = entry + 10 * loop + 9 * classification.table.refill_cycles
    result = run(prog, core)
    assert result.cycles == expected
    assert result.instructions == 2 + 10 * 4
