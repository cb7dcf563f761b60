"""Issue 12, classes 4, 6 and 7: hostile firmware.

4. Sizes and pointers the firmware hands over are bounded by the board's memory
   map: a bad image is an ElfError (exit 2), a bad run-time request a one-line
   fault (exit 1); nothing allocates gigabytes.
6. A fault message names its real cause (UDF, INVSTATE, NULL call, WFI/WFE, code
   outside the ELF) at its place, and never borrows another file's source line.
7. What the real core does differently is never silently ignored: stores to flash,
   SVC, CCR.DIV_0_TRP, a reset vector without the Thumb bit, a reset request.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hostile import (
    FirmwareCorpus,
    cause_case,
    check_firmware,
    departure_case,
    sizes_case,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_support import AsmBuilder

from simcore.cli import main
from simcore.elf import load_elf
from simcore.engine import run_firmware
from simcore.errors import (
    BusFault,
    ElfError,
    EmulationError,
    MemoryFault,
    NotModeled,
    SleepForever,
    UnsupportedInstruction,
    UsageError,
    UsageFault,
)
from simcore.results import StopReason

_CORPUS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def corpus(tmp_path: Path, asm_elf: AsmBuilder) -> FirmwareCorpus:
    return FirmwareCorpus(tmp_path)


def _cli(elf: Path, board: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["run", str(elf), "-b", board, "-q", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("simcore: error: "), err
    return code, err[0]


# -- class 4: sizes from the firmware -----------------------------------------------------


def test_initial_sp_outside_ram_is_a_bad_elf(
    asm_elf: AsmBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SP 0xdead0000 used to paint a 3.2 GB stack; now the image is refused at once."""
    elf = _with_word(asm_elf("rp2040", "push {r0}\npop {r0}"), 0x20042000, 0xDEAD0000, tmp_path)
    started = time.perf_counter()
    code, err = _cli(elf, "rp2040", capsys)
    assert time.perf_counter() - started < 5
    assert code == 2
    assert "initial SP 0xdead0000 (vector table entry 0 at 0x10000000) is not in RAM" in err
    flash_sp = _with_word(elf, 0xDEAD0000, 0x10001000, tmp_path)
    with pytest.raises(ElfError, match="initial SP 0x10001000"):
        run_firmware(flash_sp, "rp2040")


def test_unaligned_initial_sp_is_masked_as_the_core_does(
    asm_elf: AsmBuilder, tmp_path: Path
) -> None:
    elf = _with_word(asm_elf("rp2350", "mov r0, sp"), 0x20082000, 0x20081003, tmp_path)
    assert run_firmware(elf, "rp2350").exit_code == 0x20081000


def _with_word(elf: Path, old: int, new: int, tmp_path: Path) -> Path:
    raw = elf.read_bytes()
    needle = old.to_bytes(4, "little")
    assert needle in raw
    out = tmp_path / f"patched-{new:08x}.elf"
    # The first occurrence is the vector table's (the symbol table comes later).
    out.write_bytes(raw.replace(needle, new.to_bytes(4, "little"), 1))
    return out


SYS_WRITE_HUGE = """
    movs r0, #5
    ldr r1, =block
    bkpt 0xab
"""


def test_sys_write_length_beyond_memory_is_a_fault(
    asm_elf: AsmBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = asm_elf("rp2350", SYS_WRITE_HUGE, data="block: .word 1, 0x20000000, 0xffffff00")
    code, err = _cli(elf, "rp2350", capsys)
    assert code == 1
    assert "semihosting SYS_WRITE at 0x1000000c in _start+0x4 (rp2350.s:" in err
    assert "buffer 0x20000000+4,294,967,040 bytes runs past the end of sram" in err


def test_trace_size_beyond_memory_names_the_call(asm_elf: AsmBuilder) -> None:
    body = "ldr r0, =3\nldr r1, =0x20000000\nldr r2, =0x7fffffff\nbl simcore_trace"
    extra = "    .global simcore_trace\n    .thumb_func\n    .type simcore_trace, %function\n"
    elf = asm_elf("rp2040", body + "\nb done\n" + extra + "simcore_trace:\n    bx lr")
    with pytest.raises(MemoryFault) as info:
        run_firmware(elf, "rp2040", trace=True)
    msg = str(info.value)
    assert msg.startswith(
        "simcore_trace(3, 0x20000000, 2,147,483,647) called at 0x1000000e in _start+0x6"
    )
    assert "runs past the end of sram" in msg


IO = (
    "    .global simcore_io\n    .type simcore_io, %object\nsimcore_io:\n"
    "    .word 0x434D4953, 1, {in_b}, 4, {cap}, 0, 0x20000100, 0x20000200\n    .size simcore_io, 32"
)
MAIN = "bl main\nb done\n.global main\n.thumb_func\n.type main, %function\nmain:\n{main}\nbx lr"


def test_io_sizes_in_the_image_are_a_bad_elf(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2040", MAIN.format(main="nop"), data=IO.format(in_b="0x10000000", cap=16))
    with pytest.raises(
        ElfError, match=r"simcore_io at 0x2000.*input buffer 0x20000100 \+ 16 samples"
    ):
        run_firmware(elf, "rp2040")


def test_io_sizes_changed_at_run_time_are_a_fault(asm_elf: AsmBuilder) -> None:
    """The startup code writes a huge capacity into simcore_io before main."""
    body = "ldr r0, =simcore_io\nldr r1, =0x7fffffff\nstr r1, [r0, #16]\n" + MAIN.format(main="nop")
    elf = asm_elf("rp2350", body, data=IO.format(in_b=4, cap=16))
    with pytest.raises(EmulationError) as info:
        run_firmware(elf, "rp2350")
    assert not isinstance(info.value, ElfError)
    assert str(info.value).startswith("the program changed simcore_io at 0x2000")
    assert "(at 0x10000" in str(info.value) and "in main" in str(info.value)


def test_heapinfo_block_in_flash_is_a_fault(asm_elf: AsmBuilder) -> None:
    elf = asm_elf(
        "stm32h743", "movs r0, #0x16\nldr r1, =block\nbkpt 0xab", data="block: .word 0x08000100"
    )
    with pytest.raises(
        MemoryFault, match=r"SYS_HEAPINFO .* is in flash, which the core cannot write"
    ):
        run_firmware(elf, "stm32h743")


@_CORPUS
@given(rng=st.randoms(use_true_random=False))
def test_hostile_sizes(corpus: FirmwareCorpus, rng: random.Random) -> None:
    case = sizes_case(rng)
    assert check_firmware(case, corpus) is None, case.what


# -- class 6: the real cause ---------------------------------------------------------------


def test_wfi_without_budget_is_not_a_budget(asm_elf: AsmBuilder) -> None:
    with pytest.raises(SleepForever) as info:
        run_firmware(asm_elf("rp2040", "1: wfi\nb 1b"), "rp2040")
    msg = str(info.value)
    assert msg.startswith("WFI with no interrupt source at 0x10000008 in _start+0x0 (rp2040.s:")
    assert "sleep forever" in msg and "budget" not in msg


@pytest.mark.parametrize("cycles", [True, False], ids=["accounted", "raw"])
def test_wfe_sleeps_unless_an_event_is_pending(asm_elf: AsmBuilder, cycles: bool) -> None:
    with pytest.raises(SleepForever, match=r"^WFE with no event pending .* at 0x0800000a"):
        run_firmware(asm_elf("stm32h743", "nop\nwfe"), "stm32h743", cycles=cycles)
    result = run_firmware(asm_elf("stm32h743", "sev\nwfe\nmovs r0, #7"), "stm32h743", cycles=cycles)
    assert result.exit_code == 7


def test_yield_is_a_nop(asm_elf: AsmBuilder) -> None:
    assert run_firmware(asm_elf("rp2040", "yield\nmovs r0, #3"), "rp2040").exit_code == 3


@pytest.mark.parametrize("board", ["rp2040", "rp2350"])
def test_udf_is_named(asm_elf: AsmBuilder, board: str) -> None:
    with pytest.raises(UsageFault) as info:
        run_firmware(asm_elf(board, "movs r0, #1\nudf #42"), board)
    assert info.value.kind == "UNDEFINSTR"
    assert str(info.value).startswith("UDF #42 (permanently undefined) executed at 0x1000000a")
    assert "not available" not in str(info.value)


@pytest.mark.parametrize("board", ["rp2040", "stm32h743"])
def test_bx_to_even_address_is_invstate(asm_elf: AsmBuilder, board: str) -> None:
    body = "ldr r0, =plain\nbx r0\n.align 2\nplain: movs r0, #7"
    with pytest.raises(UsageFault) as info:
        run_firmware(asm_elf(board, body), board)
    assert info.value.kind == "INVSTATE"
    assert "INVSTATE: branch to 0x" in str(info.value) and "without the Thumb bit" in str(
        info.value
    )


@pytest.mark.parametrize("board", ["rp2040", "stm32h743"])  # 0x0 unmapped, and ITCM
def test_call_through_null(asm_elf: AsmBuilder, board: str) -> None:
    with pytest.raises(MemoryFault) as info:
        run_firmware(asm_elf(board, "movs r3, #0\nblx r3"), board)
    assert str(info.value).startswith("call through a NULL pointer at 0x")
    assert "_start+0x2 (" in str(info.value)


def test_code_in_ram_is_not_a_timing_table_gap(asm_elf: AsmBuilder) -> None:
    body = "ldr r1, =0x20000100\nldr r2, =0x47702005\nstr r2, [r1]\nadds r1, #1\nblx r1"
    elf = asm_elf("rp2350", body)
    with pytest.raises(EmulationError) as info:
        run_firmware(elf, "rp2350")
    msg = str(info.value)
    assert "execution reached 0x20000100 in sram, outside the ELF's executable sections" in msg
    assert "timing table" not in msg
    assert run_firmware(elf, "rp2350", cycles=False).exit_code == 5


def test_address_outside_any_function_has_no_source_line(example_elfs: dict[str, Path]) -> None:
    image = load_elf(example_elfs["rp2040"])
    assert image.describe(0x20000100) == "0x20000100"
    end = max(s.address + len(s.data) for s in image.code_sections)
    assert "(" not in image.describe(end + 0x100)
    main = image.symbol("main")
    assert main is not None and "dense_demo.c:" in image.describe(main.address)


def test_undefined_instruction_is_not_a_rebuild(asm_elf: AsmBuilder) -> None:
    elf = asm_elf("rp2350", ".inst.w 0xffffffff")
    with pytest.raises(UnsupportedInstruction, match=r"undefined instruction .* no Cortex-M core"):
        run_firmware(elf, "rp2350")


@_CORPUS
@given(rng=st.randoms(use_true_random=False))
def test_hostile_causes(corpus: FirmwareCorpus, rng: random.Random) -> None:
    case = cause_case(rng)
    assert check_firmware(case, corpus) is None, case.what


# -- class 7: departures from hardware --------------------------------------------------


@pytest.mark.parametrize("board", ["rp2040", "rp2350", "stm32h743"])
def test_store_to_flash_is_a_bus_fault(
    asm_elf: AsmBuilder, board: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flash = {"stm32h743": 0x08000000}.get(board, 0x10000000)
    elf = asm_elf(board, f"ldr r1, ={flash + 0x400:#x}\nmovs r0, #1\nstrh r0, [r1]")
    with pytest.raises(BusFault) as info:
        run_firmware(elf, board)
    assert info.value.address == flash + 0x400 and info.value.access == "write"
    code, err = _cli(elf, board, capsys)
    assert code == 1
    assert f"store of 2 byte(s) to 0x{flash + 0x400:08x} in flash by 'strh r0, [r1]'" in err
    assert "is read-only to the core" in err


def test_svc_is_not_ignored(asm_elf: AsmBuilder) -> None:
    """SVC is taken as an exception: without an SVCall handler in the vector table the
    run ends there (it used to end as not modeled)."""
    with pytest.raises(
        MemoryFault, match=r"^SVC #7 at 0x1000000a in _start\+0x2 .* SVCall: its vector"
    ):
        run_firmware(asm_elf("rp2040", "movs r0, #1\nsvc #7\nmovs r0, #2"), "rp2040")


DIVIDE = """
    ldr r3, =0xE000ED14
    ldr r2, [r3]
    movs r1, #{bit}
    orrs r2, r1
    str r2, [r3]
    movs r0, #9
    movs r1, #0
    udiv r0, r0, r1
"""


@pytest.mark.parametrize("board", ["rp2350", "stm32h743"])
@pytest.mark.parametrize("cycles", [True, False], ids=["accounted", "raw"])
def test_div_0_trp(asm_elf: AsmBuilder, board: str, cycles: bool) -> None:
    assert run_firmware(asm_elf(board, DIVIDE.format(bit=0)), board, cycles=cycles).exit_code == 0
    with pytest.raises(UsageFault) as info:
        run_firmware(asm_elf(board, DIVIDE.format(bit=16)), board, cycles=cycles)
    assert info.value.kind == "DIVBYZERO"
    assert "'udiv r0, r0, r1' at 0x" in str(info.value) and "CCR.DIV_0_TRP" in str(info.value)


def test_div_0_trp_set_in_one_function_traps_in_a_loop_elsewhere(asm_elf: AsmBuilder) -> None:
    """Divides translated before DIV_0_TRP was set trap too; non-zero divisors run on."""
    body = """
    movs r4, #3
loop:
    movs r0, #12
    mov r1, r4
    sdiv r0, r0, r1
    cmp r4, #2
    bne skip
    ldr r3, =0xE000ED14
    movs r2, #16
    str r2, [r3]
skip:
    subs r4, #1
    bpl loop
"""
    with pytest.raises(UsageFault, match="DIVBYZERO"):
        run_firmware(asm_elf("rp2350", body), "rp2350")


def test_reset_vector_without_thumb_bit_is_a_bad_image(
    asm_elf: AsmBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = asm_elf("rp2040", "movs r0, #0")
    image = load_elf(elf)
    start = image.symbol("_start")
    assert start is not None
    even = _with_word(elf, start.address | 1, start.address, tmp_path)
    code, err = _cli(even, "rp2040", capsys)
    assert code == 2 and "reset vector 0x10000008 (vector table entry 1" in err
    assert "Thumb bit clear" in err and "INVSTATE" in err


def test_reset_request_stops_the_run(asm_elf: AsmBuilder) -> None:
    body = "ldr r1, =0xE000ED0C\nldr r0, =0x05FA0004\nstr r0, [r1]\nmovs r0, #0"
    with pytest.raises(NotModeled) as info:
        run_firmware(asm_elf("stm32h743", body), "stm32h743")
    msg = str(info.value)
    assert "reset (AIRCR = 0x05fa0004)" in msg and "(at 0x0800000c in _start+0x4" in msg


def test_stack_limit_fault_does_not_hang(asm_elf: AsmBuilder) -> None:
    """MSPLIM on the M33: the UsageFault used to repeat forever inside unicorn."""
    body = "ldr r0, =0x20001000\nmsr msplim, r0\nldr r0, =0x20000800\nmov sp, r0\npush {r0}"
    started = time.perf_counter()
    with pytest.raises(UsageFault, match=r"^STKOF: the stack pointer went below its limit"):
        run_firmware(asm_elf("rp2350", body), "rp2350", timeout_s=30)
    assert time.perf_counter() - started < 10


def test_unmodeled_peripheral_reads_back(asm_elf: AsmBuilder, tmp_path: Path) -> None:
    """An io region of a user's board is a register file, as the README says."""
    board = tmp_path / "mine.toml"
    board.write_text(
        'name = "mine"\ndescription = "d"\ncore = "cortex-m0plus"\nclock_hz = 1000000\n'
        "vector_table = 0x10000000\n"
        '[[memory]]\nname = "flash"\nkind = "flash"\nstart = 0x10000000\nsize = 0x200000\n'
        '[[memory]]\nname = "sram"\nkind = "ram"\nstart = 0x20000000\nsize = 0x42000\n'
        '[[memory]]\nname = "uart"\nkind = "io"\nstart = 0x40034000\nsize = 0x1000\n'
    )
    body = "ldr r1, =0x40034010\nmovs r0, #0x5a\nstr r0, [r1]\nmovs r0, #0\nldrb r0, [r1]"
    result = run_firmware(asm_elf("rp2040", body), str(board))
    assert result.stop_reason is StopReason.DONE and result.exit_code == 0x5A


@_CORPUS
@given(rng=st.randoms(use_true_random=False))
def test_hostile_departures(corpus: FirmwareCorpus, rng: random.Random) -> None:
    case = departure_case(rng)
    assert check_firmware(case, corpus) is None, case.what


@pytest.mark.parametrize("board", ["rp2350", "stm32h743"])
def test_fpu_used_without_enabling_it_is_nocp(asm_elf: AsmBuilder, board: str) -> None:
    """Unicorn's FPU is always on; a real M33/M7 takes a NOCP UsageFault."""
    body = "vmov.f32 s0, #2.0\nvcvt.s32.f32 s0, s0\nvmov r0, s0"
    with pytest.raises(UsageFault) as info:
        run_firmware(asm_elf(board, body), board)
    assert info.value.kind == "NOCP"
    assert "'vmov.f32 s0, #2" in str(info.value) and "never enabled CP10/CP11" in str(info.value)
    enable = "ldr r1, =0xE000ED88\nldr r0, =0x00F00000\nstr r0, [r1]\n"
    assert run_firmware(asm_elf(board, enable + body), board).exit_code == 2


@pytest.mark.parametrize("board", ["rp2040", "stm32h743"])
def test_jump_into_peripherals_is_execute_never(asm_elf: AsmBuilder, board: str) -> None:
    with pytest.raises(MemoryFault, match=r"^jump to 0xe000e000 in the Private Peripheral Bus"):
        run_firmware(asm_elf(board, "ldr r0, =0xe000e001\nbx r0"), board)


@pytest.mark.parametrize(
    "options",
    [
        {"timeout_s": float("inf")},
        {"timeout_s": float("nan")},
        {"timeout_s": -1.0},
        {"max_instructions": -5},
        {"n_samples": -1},
    ],
    ids=["inf-timeout", "nan-timeout", "negative-timeout", "negative-budget", "negative-samples"],
)
def test_impossible_limits_are_usage_errors(asm_elf: AsmBuilder, options: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        run_firmware(asm_elf("rp2040", "movs r0, #0"), "rp2040", **options)  # type: ignore[arg-type]
