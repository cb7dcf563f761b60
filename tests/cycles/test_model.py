"""CycleModel on real ELFs of every board: the project's example firmware and ABI snippets.

The firmware is loaded with simcore.elf and run on a bare unicorn engine
(cycles_support.run_image), so these tests pin the cycle model alone; the engine's
own integration tests cover simcore.engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cycles_support import run_image

from simcore.boards import get_board, load_boards
from simcore.cycles.model import CycleModel, MemoryModel, classify_image
from simcore.elf import load_elf

BOARDS = sorted(load_boards())


@pytest.mark.parametrize("board_name", BOARDS)
@pytest.mark.parametrize("memory_model", list(MemoryModel), ids=lambda m: m.value)
def test_example_firmware_runs_identically_with_the_model(
    example_elfs: dict[str, Path], board_name: str, memory_model: MemoryModel
) -> None:
    """Console output, exit code, stop point and instruction count match a run without
    the model (counted there by a Python block hook)."""
    image, board = load_elf(example_elfs[board_name]), get_board(board_name)
    plain = run_image(image, board, count_with=classify_image(image, board.core.name))
    model = CycleModel(image, board, memory_model=memory_model)
    accounted = run_image(image, board, model)
    assert model.instructions == plain.counted_instructions
    assert (accounted.stdout, accounted.exit_code, accounted.pc) == (
        plain.stdout,
        plain.exit_code,
        plain.pc,
    )
    assert "checksum" in plain.stdout
    report = json.loads(json.dumps(model.report(final_pc=accounted.pc)))
    assert report["cycles"] > 0 and report["instructions"] > 0
    assert report["cycle_model"]["core"] == board.core.name
    assert report["profile"] and report["profile"][0]["cycles"] > 0
    if memory_model is MemoryModel.IDEAL and report["cache"] is not None:
        assert report["cache"]["miss_cycles"] == 0


def test_ideal_memory_model_is_cheaper_on_rp2040(example_elfs: dict[str, Path]) -> None:
    """Modeled minus ideal cycles is exactly the cache's miss cycles."""
    image, board = load_elf(example_elfs["rp2040"]), get_board("rp2040")
    totals = {}
    for mm in MemoryModel:
        model = CycleModel(image, board, memory_model=mm)
        run_image(image, board, model)
        totals[mm] = (model.cycles, model.report()["cache"]["miss_cycles"])
    modeled, ideal = totals[MemoryModel.MODELED], totals[MemoryModel.IDEAL]
    assert ideal[1] == 0
    assert modeled[0] - ideal[0] == modeled[1] > 0


@pytest.mark.parametrize("board_name", BOARDS)
def test_dwt_read_by_firmware_equals_model_cycles(
    asm_elf: Callable[..., Path], board_name: str
) -> None:
    """Firmware times a region with DWT->CYCCNT and exits with the difference.

    Region (from the first CYCCNT read to the second): the first read itself, MOVS,
    ADDS, ADDS, NOP. Each read returns the cycles before the reading instruction, so
    the exit code is the static cost of those five instructions from the table.
    """
    body = (
        "ldr r2, =0xE0001004\n"
        "first:\n ldr r3, [r2]\n movs r1, #1\n adds r1, r1, #1\n adds r1, r1, #1\n nop\n"
        "second:\n ldr r4, [r2]\n subs r0, r4, r3\n"
    )
    image, board = load_elf(asm_elf(board_name, body)), get_board(board_name)
    model = CycleModel(image, board)
    result = run_image(image, board, model)
    first, second = image.symbols["first"].address, image.symbols["second"].address
    r = model.classification.range_at(first)
    assert r is not None
    region, _ = r.block_cost(first, second)
    assert result.exit_code == region
    assert len(result.cyccnt_reads) == 2
    assert result.cyccnt_reads[1] - result.cyccnt_reads[0] == region


@pytest.mark.parametrize("board_name", ["nrf52840", "stm32f446"])
def test_flash_cache_of_the_m4f_boards_charges_misses(
    example_elfs: dict[str, Path], board_name: str
) -> None:
    """Code runs from flash through the board's cache: modeled minus ideal cycles is
    exactly the fetch misses times the board file's miss penalty (no data reads)."""
    image, board = load_elf(example_elfs[board_name]), get_board(board_name)
    assert board.cache is not None and not board.cache.data_reads
    totals = {}
    for mm in MemoryModel:
        model = CycleModel(image, board, memory_model=mm)
        run_image(image, board, model)
        totals[mm] = (model.cycles, model.report()["cache"])
    (modeled, cache), (ideal, _) = totals[MemoryModel.MODELED], totals[MemoryModel.IDEAL]
    assert cache["fetch_misses"] > 0
    assert (
        modeled - ideal == cache["miss_cycles"] == cache["fetch_misses"] * board.cache.miss_cycles
    )
