"""Firmware that brings each chip up as its vendor SDK does runs to its UART output.

tests/sdk_like/sdk_like_fw.c does, register for register, what pico-sdk's
runtime_init and stdio_uart (RP2040, RP2350) and STM32CubeH7's SystemInit,
HAL_PWREx/HAL_RCC and HAL_UART (STM32H743) do: reset release polled through
RESET_DONE, XOSC STABLE, clk_ref/clk_sys SELECTED, PLL LOCK through the atomic
SET/CLR aliases; PWR ACTVOSRDY/VOSRDY, RCC HSERDY/PLL1RDY/SWS, USART TEACK/TXE/TC.
It claims spin locks (and the RP2350's boot locks), prints over the UART and
returns 40 + the number of failed checks through exit() -> _exit's `bkpt` loop.
On the RP2040 it starts with a boot2-like stage (tests/sdk_like/boot2_like.S)
whose CRC the bootrom would check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sdk_like_build import build, crc32_mpeg2
from sim_support import HAVE_TOOLCHAIN

from simcore.boards import get_board
from simcore.cli import main
from simcore.elf import load_elf
from simcore.engine import Machine, run_firmware
from simcore.errors import ElfError
from simcore.registers import boot2_valid, load_chip
from simcore.results import RunResult, StopReason

BOARDS = ["rp2040", "rp2350", "stm32h743"]
#: A register each program touches that its chip file does not declare (PWM, TIM2).
UNDECLARED = {"rp2040": "0x4005000c", "rp2350": "0x400a800c", "stm32h743": "0x4000002c"}
#: Registers the bring-up polls, with rules in the chip files.
POLLED = {
    "rp2040": {"RESET_DONE", "STATUS", "CLK_REF_SELECTED", "CLK_SYS_SELECTED", "CS", "UARTFR"},
    "rp2350": {"RESET_DONE", "STATUS", "CLK_REF_SELECTED", "CLK_SYS_SELECTED", "CS", "UARTFR"},
    "stm32h743": {"CSR1", "D3CR", "CR", "CFGR", "ISR"},
}


@pytest.fixture(scope="module")
def elves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    out = tmp_path_factory.mktemp("sdk_like")
    return {board: build(board, out / board) for board in BOARDS}


@pytest.fixture(scope="module")
def results(elves: dict[str, Path]) -> dict[str, RunResult]:
    return {
        board: run_firmware(elf, board, max_instructions=200_000) for board, elf in elves.items()
    }


@pytest.mark.parametrize("board", BOARDS)
def test_uart_output_and_exit_code(board: str, results: dict[str, RunResult]) -> None:
    result = results[board]
    assert result.stdout == (f"hello from {board} over the UART\nspin locks ok\nchecks failed: 0\n")
    assert result.stop_reason is StopReason.EXIT and result.exit_code == 40
    assert result.stop_location.startswith("_exit")
    assert any("called exit()" in note for note in result.notes)


@pytest.mark.parametrize("board", BOARDS)
def test_touched_registers_are_reported(board: str, results: dict[str, RunResult]) -> None:
    rows = results[board].peripheral_registers
    by_address = {row["address"]: row for row in rows}
    row = by_address[UNDECLARED[board]]
    assert not row["modeled"] and row["reads"] >= 1 and row["writes"] >= 1
    polled = {row["register"] for row in rows if row["modeled"] and row["reads"]}
    assert POLLED[board] <= polled
    unmodeled = [row for row in rows if not row["modeled"]]
    assert len(unmodeled) == 1  # everything else the bring-up touches is declared
    note = next(n for n in results[board].notes if "does not model" in n)
    assert UNDECLARED[board] in note and "1 peripheral register(s)" in note


@pytest.mark.parametrize("board", BOARDS)
def test_cycles_are_deterministic(
    board: str, elves: dict[str, Path], results: dict[str, RunResult]
) -> None:
    again = run_firmware(elves[board], board, max_instructions=200_000)
    assert again.cycles == results[board].cycles and again.cycles is not None
    assert again.instructions == results[board].instructions
    assert again.peripheral_registers == results[board].peripheral_registers


def test_rp2040_runs_boot2_first(elves: dict[str, Path], results: dict[str, RunResult]) -> None:
    """boot2 is entered as the bootrom enters it; its SSI polls are answered; then the
    vector table at 0x10000100 gives SP and the reset handler."""
    image = load_elf(elves["rp2040"])
    first = bytes(image.initial_bytes(0x10000000, 256) or b"")
    assert int.from_bytes(first[252:], "little") == crc32_mpeg2(first[:252])
    assert boot2_valid(load_chip("rp2040").boot2, first)  # type: ignore[arg-type]
    machine = Machine(image, get_board("rp2040"))
    assert machine.boot2 and machine.vector_table == 0x10000100
    assert machine.entry == (0x10000001, 0x20042000, 0)
    assert machine.initial_sp == 0x20042000  # from 0x10000100, not from boot2's code
    result = results["rp2040"]
    assert any("boot2 ran from 0x10000000" in note for note in result.notes)
    ssi = {
        row["register"]: row
        for row in result.peripheral_registers
        if row["peripheral"] == "xip_ssi"
    }
    assert ssi["SR"]["reads"] >= 1 and ssi["DR0"]["reads"] == 2
    assert result.memory.stack_peak.used_bytes < 1024
    profile = result.cycle_report.get("profile") or []
    assert any("boot2" in str(row) for row in profile)


def test_rp2040_bad_boot2_crc_is_refused(tmp_path: Path) -> None:
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    elf = build("rp2040", tmp_path, corrupt_boot2=True)
    with pytest.raises(
        ElfError, match=r"nor does it start with a boot2 the rp2040 bootrom accepts"
    ):
        run_firmware(elf, "rp2040")


def test_cli_prints_uart_and_json_lists_registers(
    elves: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(elves["stm32h743"]), "-b", "stm32h743", "--json"]) == 1  # exit 40
    data = json.loads(capsys.readouterr().out)
    assert data["stdout"].startswith("hello from stm32h743 over the UART\n")
    assert data["exit_code"] == 40
    rcc = [r for r in data["peripheral_registers"] if r["peripheral"] == "rcc"]
    assert {"CR", "CFGR"} <= {r["register"] for r in rcc}
