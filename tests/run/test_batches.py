"""Batched runs: one emulator start per batch of the firmware's capacity, results merged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simcore.batches import BatchRunner, merge_notes
from simcore.boards import get_board
from simcore.elf import load_elf
from simcore.engine import run_firmware
from simcore.errors import BudgetExhausted, MemoryFault
from simcore.example import example_inputs, host_reference
from simcore.inputs import FirmwareIO, Inputs, check_array, require_io
from simcore.limits import Limits

RP2040 = get_board("rp2040")


def _inputs(values: list[int]) -> Inputs:
    x = np.array(values, dtype=np.int32)
    return Inputs(x.tobytes(), len(values), 4, "x.npy", f"{len(values)} x 4", "raw")


def _runner(elf: Path, limits: Limits | None = None) -> tuple[BatchRunner, FirmwareIO]:
    image = load_elf(elf)
    return BatchRunner(image, RP2040, limits=limits), require_io(image, "--input")


def test_ten_samples_in_three_batches(batch_elf: Path) -> None:
    runner, fw = _runner(batch_elf)
    values = list(range(10, 20))
    run = runner.run(fw, _inputs(values))
    r = run.result
    assert [b.samples for b in run.batches] == [4, 4, 2] and run.planned == 3
    assert np.frombuffer(r.outputs, np.int32).tolist() == [2 * v for v in values]
    assert r.stdout == "".join(f"x{v}\n" for v in values) == runner.stdout
    assert r.n_samples == 10 and len(r.sample_cycles) == 10 and r.exit_code == 0
    # Totals are the batches' sums; each batch equals a run of its own.
    assert r.cycles == sum(b.cycles or 0 for b in run.batches)
    assert r.instructions == sum(b.instructions or 0 for b in run.batches)
    alone = run_firmware(batch_elf, RP2040, inputs=np.array(values[4:8], np.int32).tobytes())
    assert run.batches[1].cycles == alone.cycles
    assert r.sample_cycles[4:8] == alone.sample_cycles
    assert r.memory.stack_peak.used_bytes == alone.memory.stack_peak.used_bytes
    assert r.cycle_report["cycles"] == r.cycles
    assert sum(e["cycles"] for e in r.cycle_report["profile"]) > 0
    refills = [n for n in r.notes if "taken-branch refills" in n]
    assert len(refills) == 1  # one note for the run, with the summed count


def test_traces_and_outputs_across_batches(example_elfs: dict[str, Path]) -> None:
    """The example holds 16 samples: 20 run as 16 + 4, outputs bit-exact, traces renumbered."""
    image = load_elf(example_elfs["rp2040"])
    fw = require_io(image, "--input")
    x = example_inputs(20)
    run = BatchRunner(image, RP2040, trace=True).run(fw, check_array(x, fw, "x.npy"))
    got = np.frombuffer(run.result.outputs, np.float32).reshape(20, 3)
    assert np.array_equal(got.view(np.uint32), host_reference(x).view(np.uint32))
    assert [t.sample_index for t in run.result.traces] == list(range(20))
    assert run.result.stdout.count("checksum") == 2


def test_samples_without_inputs_are_batched(batch_elf: Path) -> None:
    runner, fw = _runner(batch_elf)
    run = runner.run(fw, None, 9)
    assert [b.samples for b in run.batches] == [4, 4, 1]
    assert run.result.n_samples == 9
    zero = BatchRunner(load_elf(batch_elf), RP2040).run(fw, None, 0)
    assert zero.result.n_samples == 0 and zero.result.stdout == "" and len(zero.batches) == 1


def test_fault_in_second_batch_keeps_what_came_before(batch_elf: Path) -> None:
    runner, fw = _runner(batch_elf)
    with pytest.raises(MemoryFault) as info:
        runner.run(fw, _inputs([1, 2, 3, 4, 5, -1, 7]))
    msg = str(info.value)
    assert msg.startswith("batch 2 of 2 (samples 4..6): unmapped read of 4 byte(s) at 0xf0000000")
    assert info.value.exit_code == 1 and info.value.pc is not None
    assert runner.stdout == "x1\nx2\nx3\nx4\nx5\nx-1\n"  # the faulting batch's output too
    assert [b.samples for b in runner.finished] == [4]
    assert runner.progress()["planned"] == 2


def test_bad_exit_stops_the_remaining_batches(batch_elf: Path) -> None:
    runner, fw = _runner(batch_elf)
    run = runner.run(fw, _inputs([1, 2, 3, 4, 5, -2, 7, 8, 9]))
    assert run.result.exit_code == 3 and not run.result.ok
    assert len(run.batches) == 2 and run.planned == 3
    assert "the run stopped in batch 2 of 3: samples 8 and later were not run" in run.result.notes
    assert run.result.stdout.endswith("x5\nx-2\n")


def test_instruction_budget_is_for_the_whole_run(batch_elf: Path) -> None:
    runner, fw = _runner(batch_elf, limits=Limits(max_instructions=20_000))
    with pytest.raises(BudgetExhausted) as info:
        runner.run(fw, _inputs([1, 2, 3, 4, 5, -3]))
    # The engine got what batch 1 left; the message names the run's own budget.
    assert str(info.value).startswith(
        "batch 2 of 2 (samples 4..5): instruction budget of 20,000 exhausted at 0x"
    )
    first = runner.finished[0].instructions
    assert first is not None and 0 < first < 20_000


def test_budget_spent_before_a_batch(batch_elf: Path) -> None:
    image = load_elf(batch_elf)
    fw = require_io(image, "--input")
    one = BatchRunner(image, RP2040).run(fw, _inputs([1, 2, 3, 4]))
    used = one.result.instructions
    assert used is not None
    runner = BatchRunner(image, RP2040, limits=Limits(max_instructions=used))
    try:
        runner.run(fw, _inputs([1, 2, 3, 4, 5]))
    except BudgetExhausted as exc:
        assert "instruction budget of" in str(exc) and "batch" in str(exc)
    else:
        pytest.fail("a budget of exactly one batch's instructions cannot run two batches")


def test_merge_notes() -> None:
    runs = [
        ["profile: refills (12 cycles) at 0x100", "same note"],
        ["profile: refills (30 cycles) at 0x100", "same note", "stack 200 bytes"],
        ["stack 300 bytes"],
    ]
    assert merge_notes(runs) == [
        "profile: refills (42 cycles) at 0x100",
        "same note",
        "stack 200 bytes",
        "stack 300 bytes",
    ]
