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
    the next address, which the block method cannot tell from a fall-through,
    so it adds no refill. Ideal memory keeps cache misses out of the sum.
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
    assert model["exactness"] == ("exact" if board == "rp2040" else "approximate")
    assert data["profile"] and {"function", "cycles", "instructions"} <= set(data["profile"][0])
    cache = data["cache"]
    assert cache is not None and cache["fetch_hits"] + cache["fetch_misses"] > 0
