"""The cycle model as the engine runs it: unchanged execution, DWT, determinism, CLI JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sim_support import BOARD_NAMES, AsmBuilder

from simcore.cycles.model import classify_image
from simcore.elf import load_elf
from simcore.engine import run_firmware
from simcore.errors import BudgetExhausted
from simcore.example import example_inputs


@pytest.mark.parametrize("board", BOARD_NAMES)
@pytest.mark.parametrize("memory_model", ["modeled", "ideal"])
def test_accounting_does_not_change_execution(
    board: str, memory_model: str, example_elfs: dict[str, Path]
) -> None:
    inputs = example_inputs(6).tobytes()
    plain = run_firmware(example_elfs[board], board, inputs=inputs, cycles=False)
    counted = run_firmware(example_elfs[board], board, inputs=inputs, memory_model=memory_model)
    assert plain.cycles is None and counted.cycles is not None and counted.cycles > 0
    assert (counted.outputs, counted.stdout, counted.exit_code, counted.stop_pc) == (
        plain.outputs,
        plain.stdout,
        plain.exit_code,
        plain.stop_pc,
    )
    assert counted.memory == plain.memory
    assert len(counted.sample_cycles) == 6 and all(c > 0 for c in counted.sample_cycles)
    assert counted.instructions is not None
    assert sum(counted.sample_instructions) < counted.instructions


@pytest.mark.parametrize("board", ["rp2350", "stm32h743"])
def test_dwt_read_equals_reported_cycles(asm_elf: AsmBuilder, board: str) -> None:
    """Firmware reads DWT->CYCCNT, branches over a NOP and stops: read + remainder = total.

    The read returns the cycles before the reading LDR. After it the core runs
    the LDR and ``b skip`` (static table cost of [read, pad)), one taken-branch
    refill, then ``b done`` (static cost of [skip, done)); that branch lands on
    the next address, which the block hook cannot tell from a fall-through, so
    its refill is part of its static cost. Ideal memory keeps cache misses out.
    """
    body = "ldr r2, =0xE0001004\nread:\nldr r0, [r2]\nb skip\npad:\nnop\nskip:"
    elf = asm_elf(board, body)
    result = run_firmware(elf, board, memory_model="ideal")
    image = load_elf(elf)
    classification = classify_image(image, image_core(board))
    sym = {n: image.symbols[n].address for n in ("read", "pad", "skip", "done")}
    rng = classification.range_at(sym["read"])
    assert rng is not None
    after_read = (
        rng.block_cost(sym["read"], sym["pad"])[0]
        + classification.table.refill_cycles
        + rng.block_cost(sym["skip"], sym["done"])[0]
    )
    assert result.exit_code is not None and result.cycles is not None
    assert result.exit_code > 0
    assert result.cycles - result.exit_code == after_read


def image_core(board: str) -> str:
    from simcore.boards import get_board

    return get_board(board).core.name


def test_systick_counts_down_in_modeled_cycles(asm_elf: AsmBuilder) -> None:
    """SysTick enabled with reload 0xFFFFFF: two VAL reads differ by the cycles between them."""
    body = """
    ldr r2, =0xE000E010
    ldr r1, =0xFFFFFF
    str r1, [r2, #4]     @ RVR
    movs r1, #5          @ ENABLE | CLKSOURCE
    str r1, [r2]
first:
    ldr r3, [r2, #8]     @ VAL
    nop
    nop
second:
    ldr r4, [r2, #8]
    subs r0, r3, r4
"""
    elf = asm_elf("stm32h743", body)
    result = run_firmware(elf, "stm32h743")
    image = load_elf(elf)
    classification = classify_image(image, "cortex-m7")
    first, second = image.symbols["first"].address, image.symbols["second"].address
    rng = classification.range_at(first)
    assert rng is not None
    assert result.exit_code == rng.block_cost(first, second)[0]


def test_budget_via_cycle_hook(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("stm32h743", "spin:\nadds r0, #1\nb spin")
    with pytest.raises(BudgetExhausted, match="instruction budget of 5,000 exhausted"):
        run_firmware(elf, "stm32h743", max_instructions=5_000)


def _cli_json(elf: Path, board: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "simcore", "run", str(elf), "-b", board, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, object] = json.loads(out.stdout)
    return data


def test_cycles_identical_across_runs_and_processes(example_elfs: dict[str, Path]) -> None:
    first = _cli_json(example_elfs["rp2040"], "rp2040")
    second = _cli_json(example_elfs["rp2040"], "rp2040")
    in_process = run_firmware(example_elfs["rp2040"], "rp2040")
    assert first["cycles"] == second["cycles"] == in_process.cycles
    assert first["profile"] == second["profile"]
    assert first["cache"] == second["cache"]


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_run_json_reports_cycle_fields(board: str, example_elfs: dict[str, Path]) -> None:
    data = run_firmware(example_elfs[board], board).as_dict()
    assert isinstance(data["cycles"], int) and data["cycles"] > 0
    assert data["seconds_at_clock"] == pytest.approx(data["cycles"] / data["clock_hz"])
    model = data["cycle_model"]
    assert model["core"] == image_core(board)
    exact_tables = ("rp2040", "bbc-microbit", "nrf52840", "stm32f446")  # M0+, M0, M4F
    table = "exact" if board in exact_tables else "approximate"
    assert model["table_exactness"] == table
    # The run says "exact" only while its inexact share (misses, inexact rows) is small.
    inexact = sum(v for t, v in model["share_by_tag"].items() if t != "exact")
    assert model["inexact_share"] == pytest.approx(inexact, abs=1e-5)
    small = inexact < model["exact_share_threshold"]
    assert model["exactness"] == (table if table != "exact" or small else "approximate")
    assert data["profile"] and {"function", "cycles", "instructions"} <= set(data["profile"][0])
    cache = data["cache"]
    if board == "bbc-microbit":  # the nRF51 has no cache in front of flash
        assert cache is None
    else:
        assert cache is not None and cache["fetch_hits"] + cache["fetch_misses"] > 0


@pytest.mark.parametrize("board", ["rp2040", "rp2350"])
def test_timer_counts_microseconds_around_a_loop(asm_elf: AsmBuilder, board: str) -> None:
    """Firmware reads TIMELR, runs a 100,000-iteration loop, reads TIMELR again.

    The TIMER counts cycles * 1 MHz / clock: each read sees the cycles before its LDR,
    c1 = static cost of [_start, read1) and c2 = total - static cost of [read2, done)
    (ideal memory: no cache misses), so the exit code (t2 - t1) is
    c2 * 10**6 // clock_hz - c1 * 10**6 // clock_hz: a few milliseconds, and exactly that.
    """
    from simcore.boards import get_board

    spec = get_board(board)
    assert spec.timer is not None
    timer = next(r for r in spec.memory if r.name == spec.timer.region)
    timelr = timer.start + dict(spec.timer.registers)["timelr"]
    body = f"""
    ldr r2, ={timelr:#x}
    ldr r3, =100000
read1:
    ldr r0, [r2]
loop:
    subs r3, r3, #1
    bne loop
read2:
    ldr r1, [r2]
    subs r0, r1, r0
"""
    elf = asm_elf(board, body)
    result = run_firmware(elf, board, memory_model="ideal")
    image = load_elf(elf)
    classification = classify_image(image, image_core(board))
    sym = {n: image.symbols[n].address for n in ("_start", "read1", "read2", "done")}
    rng = classification.range_at(sym["read1"])
    assert rng is not None and result.cycles is not None
    c1 = rng.block_cost(sym["_start"], sym["read1"])[0]
    c2 = result.cycles - rng.block_cost(sym["read2"], sym["done"])[0]
    expected = c2 * 10**6 // spec.clock_hz - c1 * 10**6 // spec.clock_hz
    assert result.exit_code == expected
    assert 1000 < expected < 10_000  # 100,000 iterations of a few cycles: milliseconds


def test_m0plus_dwt_cyccnt_reads_zero_and_says_so(asm_elf: AsmBuilder) -> None:
    """The Cortex-M0+ has no cycle counter: CYCCNT reads 0, and the run notes it."""
    elf = asm_elf("rp2040", "ldr r2, =0xE0001004\nmovs r1, #7\nldr r0, [r2]\nadds r0, r0, r1\n")
    result = run_firmware(elf, "rp2040")
    assert result.exit_code == 7
    assert any("DWT->CYCCNT" in n and "Cortex-M0+" in n for n in result.notes)
