"""CycleModel with the project's engine and ELF loader, on every board.

These tests use the engine's Machine (simcore.engine) the way the run path will:
classify the ELF's executable sections, install the C hooks on the machine's unicorn
engine, serve DWT->CYCCNT from the engine's PPB callback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from unicorn import UC_HOOK_BLOCK

from simcore.boards import get_board, load_boards
from simcore.cycles.model import CycleModel, MemoryModel, classify_image
from simcore.elf import load_elf
from simcore.engine import Machine, RunOptions

BOARDS = sorted(load_boards())
DWT_CYCCNT = 0xE0001004


def _plain_run(elf: Path, board_name: str) -> tuple[bytes, str, int | None, int]:
    """Run without the cycle model; count instructions with a Python block hook."""
    image, board = load_elf(elf), get_board(board_name)
    classification = classify_image(image, board.core.name)
    machine = Machine(image, board)
    total = [0]

    def on_block(_uc: object, address: int, size: int, _ud: object) -> None:
        r = classification.range_at(address)
        assert r is not None
        total[0] += r.block_cost(address, address + size)[1]

    machine.uc.hook_add(UC_HOOK_BLOCK, on_block)
    result = machine.run(RunOptions())
    return result.outputs, result.stdout, result.exit_code, total[0]


@pytest.mark.parametrize("board_name", BOARDS)
@pytest.mark.parametrize("memory_model", list(MemoryModel), ids=lambda m: m.value)
def test_example_firmware_runs_identically_with_the_model(
    example_elfs: dict[str, Path], board_name: str, memory_model: MemoryModel
) -> None:
    """Outputs, console, exit code and instruction count match a run without the model."""
    elf = example_elfs[board_name]
    outputs, stdout, exit_code, instructions = _plain_run(elf, board_name)
    image, board = load_elf(elf), get_board(board_name)
    machine = Machine(image, board)
    model = CycleModel(image, board, memory_model=memory_model)
    model.install(machine.uc)
    result = machine.run(RunOptions())
    model.check()
    assert (result.outputs, result.stdout, result.exit_code) == (outputs, stdout, exit_code)
    assert model.instructions == instructions
    report = json.loads(json.dumps(model.report(final_pc=result.stop_pc)))
    assert report["cycles"] > 0 and report["cycle_model"]["core"] == board.core.name
    assert report["profile"] and report["profile"][0]["cycles"] > 0
    if memory_model is MemoryModel.IDEAL and report["cache"] is not None:
        assert report["cache"]["miss_cycles"] == 0


def test_ideal_memory_model_is_cheaper_on_rp2040(example_elfs: dict[str, Path]) -> None:
    """Modeled minus ideal cycles is exactly the cache's miss cycles."""
    image, board = load_elf(example_elfs["rp2040"]), get_board("rp2040")
    totals = {}
    for mm in MemoryModel:
        machine = Machine(image, board)
        model = CycleModel(image, board, memory_model=mm)
        model.install(machine.uc)
        machine.run(RunOptions())
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
    the exit code is the static cost of those five instructions from the table, and
    the second read equals ``cycles_at`` of its instruction.
    """
    body = (
        "ldr r2, =0xE0001004\n"
        "first:\n ldr r3, [r2]\n movs r1, #1\n adds r1, r1, #1\n adds r1, r1, #1\n nop\n"
        "second:\n ldr r4, [r2]\n subs r0, r4, r3\n"
    )
    elf = asm_elf(board_name, body)
    image, board = load_elf(elf), get_board(board_name)
    machine = Machine(image, board)
    model = CycleModel(image, board)
    model.install(machine.uc)
    reads: list[int] = []

    def cycles_now() -> int:
        reads.append(model.cycles_at_access(machine.uc, DWT_CYCCNT))
        return reads[-1]

    machine.cycle_source = cycles_now
    result = machine.run(RunOptions())
    model.check()
    first = image.symbols["first"].address
    second = image.symbols["second"].address
    r = model.classification.range_at(first)
    assert r is not None
    region, _ = r.block_cost(first, second)
    assert result.exit_code == region
    assert len(reads) == 2 and reads[1] - reads[0] == region
