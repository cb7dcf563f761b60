"""The engine on tiny hand-written Thumb snippets: per-core ISA, stops, semihosting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sim_support import BOARD_NAMES, AsmBuilder

from simcore.boards import get_board
from simcore.cli import main
from simcore.engine import run_firmware
from simcore.errors import UnsupportedInstruction
from simcore.example import checksum, example_inputs, host_reference
from simcore.results import StopReason

# The FPU is off at reset on real cores: enable CP10/CP11 in CPACR first.
ADD_DOUBLE = """
    ldr r1, =0xE000ED88
    ldr r0, =0x00F00000
    str r0, [r1]
    vmov.f64 d1, #1.5
    vadd.f64 d0, d1, d1
    vcvt.s32.f64 s0, d0
    vmov r0, s0
"""


def test_m0plus_rejects_udiv(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2040", "movs r0, #7\nmovs r1, #2\nudiv r0, r0, r1", as_cpu="cortex-m7")
    with pytest.raises(UnsupportedInstruction) as info:
        run_firmware(elf, "rp2040")
    msg = str(info.value)
    assert msg.startswith("udiv at 0x10000") and "_start+0x4" in msg
    assert "is not available on Cortex-M0+" in msg


def test_m0plus_rejects_vadd_f32(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2040", "vadd.f32 s0, s0, s1", as_cpu="cortex-m7")
    with pytest.raises(
        UnsupportedInstruction, match=r"^vadd.f32 at 0x1000000. in _start\+0x0 .* Cortex-M0\+"
    ):
        run_firmware(elf, "rp2040")


def test_m33_rejects_vadd_f64(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2350", ADD_DOUBLE, as_cpu="cortex-m7")
    with pytest.raises(UnsupportedInstruction, match="not available on Cortex-M33"):
        run_firmware(elf, "rp2350")


def test_m7_runs_vadd_f64(asm_elf: AsmBuilder) -> None:
    result = run_firmware(asm_elf("stm32h743", ADD_DOUBLE), "stm32h743")
    assert result.stop_reason is StopReason.DONE and result.exit_code == 3


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_m_profile_divide_and_dsp_per_core(asm_elf: AsmBuilder, board: str) -> None:
    """udiv runs where the core has it: a sanity check that the model is not always an M33."""
    body = "movs r0, #9\nmovs r1, #2\nudiv r0, r0, r1"
    if not get_board(board).core.divide:  # Armv6-M: rp2040, bbc-microbit
        with pytest.raises(UnsupportedInstruction):
            run_firmware(asm_elf(board, body, as_cpu="cortex-m7"), board)
    else:
        assert run_firmware(asm_elf(board, body), board).exit_code == 4


def test_semihosting_console_and_exit(asm_elf: AsmBuilder) -> None:
    body = """
    movs r0, #4          @ SYS_WRITE0
    ldr r1, =hello
    bkpt 0xab
    movs r0, #3          @ SYS_WRITEC
    ldr r1, =bang
    bkpt 0xab
    movs r0, #5          @ SYS_WRITE to stderr
    ldr r1, =write_block
    bkpt 0xab
    movs r0, #0x20       @ SYS_EXIT_EXTENDED, code 42
    ldr r1, =exit_block
    bkpt 0xab
    movs r0, #99         @ never reached
"""
    data = """
hello: .asciz "hello "
bang: .ascii "!"
err: .ascii "oops\\n"
    .align 2
write_block: .word 2, err, 5
exit_block: .word 0x20026, 42
"""
    result = run_firmware(asm_elf("rp2040", body, data=data), "rp2040")
    assert result.stdout == "hello !"
    assert result.stderr == "oops\n"
    assert result.stop_reason is StopReason.EXIT and result.exit_code == 42


def test_semihosting_string_at_top_of_ram(asm_elf: AsmBuilder) -> None:
    """A string ending in the last byte of RAM is read without touching unmapped memory."""
    body = """
    ldr r1, =0x20041ffd
    movs r2, #'o'
    strb r2, [r1]
    movs r2, #'k'
    strb r2, [r1, #1]
    movs r2, #0
    strb r2, [r1, #2]
    movs r0, #4
    bkpt 0xab
    movs r0, #0
"""
    assert run_firmware(asm_elf("rp2040", body), "rp2040").stdout == "ok"


def test_plain_bkpt_stops(asm_elf: AsmBuilder) -> None:
    result = run_firmware(asm_elf("rp2350", "movs r0, #1\nbkpt 0x05\nmovs r0, #2"), "rp2350")
    assert result.stop_reason is StopReason.BKPT and result.exit_code == 5
    assert result.stop_location.startswith("_start+0x2")
    assert not result.ok


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_example_equals_host_computation(board: str, example_elfs: dict[str, Path]) -> None:
    """The example's float32 outputs equal NumPy's bit for bit (no fused multiply-add)."""
    inputs = example_inputs(12)
    expected = host_reference(inputs)
    result = run_firmware(example_elfs[board], board, inputs=inputs.tobytes(), trace=True)
    got = np.frombuffer(result.outputs, dtype=np.float32).reshape(expected.shape)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))
    assert f"checksum {checksum(expected):08x}" in result.stdout
    assert result.n_samples == 12 and result.exit_code == 0
    assert [t.sample_index for t in result.traces] == list(range(12))
    assert np.array_equal(np.frombuffer(result.traces[5].data, dtype=np.float32), expected[5])


def test_example_runs_through_cli(
    example_elfs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = example_inputs(3)
    np.save(tmp_path / "in.npy", inputs)
    out = tmp_path / "out.bin"
    code = main(
        [
            "run",
            str(example_elfs["rp2040"]),
            "-b",
            "rp2040",
            "--input",
            str(tmp_path / "in.npy"),
            "--outputs",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "3 sample(s)" in text and "stack peak:" in text and "of 2,097,152" in text
    assert out.read_bytes() == host_reference(inputs).tobytes()


def test_too_many_samples_refused(example_elfs: dict[str, Path]) -> None:
    with pytest.raises(Exception, match="capacity of 16"):
        run_firmware(example_elfs["rp2040"], "rp2040", inputs=example_inputs(17).tobytes())
