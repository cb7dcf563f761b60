"""Memory per region and per owner, heap peak of granted _sbrk only, guard-skipping frames."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_support import needs_toolchain

from simcore import memory as mem
from simcore.boards import get_board
from simcore.elf import load_elf
from simcore.engine import run_firmware
from simcore.errors import StackOverflow
from simcore.report import render_html
from simcore.toolchain import build_elf

#: 96 KB of bss (and 4 KB of harness buffers) in the stm32h743's 128 KB DTCM, which
#: also holds the 16 KB heap, the 1 KB guard and the 8 KB stack: about 98% full, but
#: only 12% of the board's RAM.
FILL_DTCM = r"""
#include <stdint.h>
#include "simcore_abi.h"
SIMCORE_DEFINE_IO(256, 4, 16);
static volatile uint8_t big[96 * 1024];
int main(void)
{
    big[sizeof big - 1] = simcore_io.input[0];
    *(volatile uint32_t *)simcore_io.output = big[sizeof big - 1];
    return 0;
}
"""


def _build(tmp_path: Path, name: str, source: str, board: str) -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    return build_elf([src], get_board(board), tmp_path / f"{name}.elf", opt="-O1").elf


@needs_toolchain
def test_full_dtcm_shows_full(tmp_path: Path) -> None:
    elf = _build(tmp_path, "fill", FILL_DTCM, "stm32h743")
    result = run_firmware(elf, "stm32h743")
    assert result.exit_code == 0
    memory = result.memory
    regions = {r.name: r for r in memory.regions}
    dtcm = regions["dtcm"]
    assert dtcm.capacity_bytes == 128 * 1024
    assert 96.0 < dtcm.percent < 100.0
    assert dtcm.reserved_bytes >= (16 + 1 + 8) * 1024  # heap, guard, stack
    assert dtcm.harness_bytes == 256 * 16 + 4 * 16 + 32
    assert regions["axi_sram"].used_bytes == 0
    # The headline: static RAM against the region it lives in, not the board's 1 MB.
    assert memory.static_ram.region == "dtcm"
    assert memory.static_ram.capacity_bytes == 128 * 1024
    # The program's share (static data, heap, stack; not simcore's buffers) decides.
    assert memory.static_ram.percent == pytest.approx(dtcm.program_percent)
    assert 93.0 < dtcm.program_percent < dtcm.percent
    assert 96 * 1024 <= memory.static_ram.used_bytes < 96 * 1024 + 2048  # without harness
    assert memory.stack_peak.region == "dtcm"
    as_json = result.as_dict()["memory"]
    assert as_json["static_ram"]["region"] == "dtcm"
    assert as_json["static_ram"]["percent"] > 93
    assert as_json["harness_io"]["used_bytes"] == memory.harness_bytes
    assert {b["name"] for b in as_json["harness_io"]["buffers"]} == {
        "simcore_io",
        "simcore_input_buf",
        "simcore_output_buf",
    }
    # The report's static RAM bar is red and names the region.
    row = {
        "model": "fill", "format": "f32", "board": "stm32h743", "passed": True,
        "memory": as_json,
    }  # fmt: skip
    html = render_html([row])
    cells = [c.split("</td>")[0] for c in html.split('<td class="num mem"')[1:]]
    flash_cell, static_cell = cells
    assert "dtcm 9" in static_cell and "harness I/O buffers" in static_cell
    assert "% harness I/O)" in static_cell  # drawn apart, after the program's share
    assert 'fill="#e15759"' in static_cell  # red: the region is nearly full
    assert 'fill="#59a14f"' in flash_cell  # green: 2 MB of flash, barely used


@needs_toolchain
def test_model_firmware_harness_buffers_apart(tmp_path: Path) -> None:
    from simcore.firmware.build import build_model_firmware

    build = build_model_firmware("mnist_cnn", "f32", "rp2040", tmp_path)
    image = load_elf(build.elf)
    board = get_board("rp2040")
    harness = mem.harness_buffers(image, board)
    sizes = {b.name: b.size_bytes for b in harness}
    assert sizes["simcore_io"] == 32
    assert max(sizes.values()) >= 784 * 4 * 16  # the batch input buffer
    regions = {r.name: r for r in mem.region_usages(image, board, harness)}
    program = regions["sram"].program_bytes
    before = mem.static_ram_bytes(image, board)  # the old figure, harness included
    assert regions["sram"].harness_bytes == sum(sizes.values())
    assert program + regions["sram"].harness_bytes == before
    assert program < before / 4
    # The headline: the program's static RAM, and its share of the RP2040's SRAM
    # (with heap and stack reservations), not the 200 KB of batch buffers.
    report = mem.memory_report(image, board, mem.StackLayout(0, 0, None), b"", 0)
    assert report.static_ram.used_bytes == program
    assert report.static_ram.region == "sram"
    assert report.static_ram.percent < 25
    assert report.harness_bytes == regions["sram"].harness_bytes


SBRK = r"""
#include <stddef.h>
#include <stdint.h>
void *_sbrk(ptrdiff_t increment);
int main(void)
{
    if (_sbrk(4096) == (void *)-1) return 1;
    if (_sbrk(1 << 20) != (void *)-1) return 2;  /* more than the 16 KB heap: refused */
    if (_sbrk(-1024) == (void *)-1) return 3;
    if (_sbrk(8 << 20) != (void *)-1) return 4;
    return 0;
}
"""


@needs_toolchain
@pytest.mark.parametrize("board", ["rp2040", "stm32h743"])
def test_heap_peak_counts_granted_sbrk_only(tmp_path: Path, board: str) -> None:
    elf = _build(tmp_path, "sbrk", SBRK, board)
    result = run_firmware(elf, board)
    assert result.exit_code == 0
    heap = result.memory.heap_peak
    assert heap.used_bytes == 4096
    assert heap.capacity_bytes == 16 * 1024
    assert heap.percent == 25.0


BIG_FRAME = r"""
#include <stdint.h>
#include "simcore_abi.h"
SIMCORE_DEFINE_IO(4, 4, 1);
__attribute__((noinline)) static uint32_t big_frame(uint32_t x)
{
    volatile uint32_t frame[16 * 1024];  /* 64 KB on an 8 KB stack */
    frame[0] = x;
    return frame[0];
}
int main(void)
{
    *(uint32_t *)simcore_io.output = big_frame(*(uint32_t *)simcore_io.input);
    return 0;
}
"""


@needs_toolchain
@pytest.mark.parametrize("board", ["rp2040", "stm32h743"])
def test_frame_that_skips_the_guard_is_a_stack_overflow(tmp_path: Path, board: str) -> None:
    elf = _build(tmp_path, "bigframe", BIG_FRAME, board)
    with pytest.raises(StackOverflow) as info:
        run_firmware(elf, board, inputs=(7).to_bytes(4, "little"))
    msg = str(info.value)
    assert msg.startswith("stack overflow in big_frame: write to 0x"), msg
    assert "bytes below the stack" in msg and "bigframe.c:" in msg
    depth = int(msg.split("stack depth of ")[1].split(" bytes")[0].replace(",", ""))
    assert 64 * 1024 <= depth < 64 * 1024 + 256
