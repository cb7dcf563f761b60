"""Exceptions and time (simcore.exceptions): firmware written here does what the SDKs
do (a SysTick-driven delay like HAL_Delay, a TIMER alarm and WFE like pico-sdk's
sleep_ms, SVC, a pended PendSV), and the tests check the architectural state register
for register: the stacked frame seen by the handler and every register after the return.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_support import BOARD_NAMES, build_asm, needs_toolchain, ram_of
from unicorn import arm_const

from simcore.boards import get_board
from simcore.elf import load_elf
from simcore.engine import Machine, RunOptions, run_firmware
from simcore.errors import BudgetExhausted, MemoryFault
from simcore.exceptions import (
    CSR_CLKSOURCE,
    CSR_COUNTFLAG,
    CSR_ENABLE,
    CSR_TICKINT,
    SysTick,
    interrupt_spec,
)
from simcore.peripherals import MicrosecondTimer
from simcore.results import RunResult
from simcore.toolchain import build_elf

pytestmark = needs_toolchain

BOARDS = ["rp2040", "rp2350", "stm32h743"]
FPU_BOARDS = [b for b in BOARD_NAMES if get_board(b).core.fpu != "none"]


def _vectors(**handlers: str) -> str:
    """Vector table entries 2.. with the named exceptions' handlers, others ``bad``."""
    numbers = {"svc": 11, "pendsv": 14, "systick": 15, "irq0": 16}
    table = {numbers[name]: label for name, label in handlers.items()}
    last = max(table, default=15)
    return "\n".join(f"    .word {table.get(n, 'bad')} + 1" for n in range(2, last + 1))


_BAD = """
    .thumb_func
bad:
    bkpt #9
"""

SYSTICK_ON = """
    ldr r0, =0xE000E014
    ldr r1, ={reload}
    str r1, [r0]
    ldr r0, =0xE000E018
    movs r1, #0
    str r1, [r0]
    ldr r0, =0xE000E010
    movs r1, #7
    str r1, [r0]
"""


def _machine(directory: Path, board: str, body: str, extra: str, data: str, **vec: str) -> Machine:
    elf = build_asm(
        directory, board, body, extra=extra + _BAD + "\n.ltorg", data=data, vectors=_vectors(**vec)
    )
    return Machine(load_elf(elf), get_board(board))


def _run(m: Machine, budget: int = 5_000_000) -> RunResult:
    return m.run(RunOptions(max_instructions=budget))


def _words(m: Machine, symbol: str, count: int) -> list[int]:
    sym = m.image.symbol(symbol)
    assert sym is not None
    raw = bytes(m.uc.mem_read(sym.address, 4 * count))
    return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]


# -- SysTick: HAL_Delay's shape -----------------------------------------------------------

DELAY = (
    SYSTICK_ON.format(reload=999)
    + """
    ldr r2, =ticks
wait:
    ldr r1, [r2]
    cmp r1, #10
    blo wait
    movs r0, r1
"""
)
TICK = """
    .thumb_func
systick:
    ldr r0, =ticks
    ldr r1, [r0]
    adds r1, #1
    str r1, [r0]
    bx lr
"""


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_systick_delay_counts_ticks_like_hal_delay(tmp_path: Path, board: str) -> None:
    """uwTick in the SysTick handler, polled by the program: ten ticks of 1000 cycles."""
    runs = []
    for _ in range(2):
        m = _machine(tmp_path, board, DELAY, TICK, "ticks: .word 0", systick="systick")
        runs.append((_run(m), m))
    (result, m), (again, _) = runs
    assert result.exit_code == 10
    assert m.interrupts.taken == {15: 10}
    assert result.cycles is not None and 10_000 <= result.cycles < 11_000
    assert again.cycles == result.cycles and again.instructions == result.instructions
    assert any("exceptions taken: SysTick 10" in note for note in result.notes)


def test_systick_not_delivered_without_tickint(tmp_path: Path) -> None:
    """Enabled without TICKINT, SysTick only counts: the poll loop never ends."""
    body = DELAY.replace("movs r1, #7", "movs r1, #5")
    m = _machine(tmp_path, "rp2040", body, TICK, "ticks: .word 0", systick="systick")
    with pytest.raises(BudgetExhausted):
        _run(m, budget=200_000)
    assert not m.interrupts.taken


# -- register for register -----------------------------------------------------------------

VALUES = [0x10101010 * (i + 1) & 0xFFFFFFFF for i in range(13)]
LR_BEFORE = 0x1E1E1E1F

FILL = "\n".join(
    [f"    ldr r0, ={VALUES[i]:#x}\n    mov r{i}, r0" for i in range(8, 13)]
    + [f"    ldr r{i}, ={VALUES[i]:#x}" for i in range(8)]
)

RECORD = """
    .thumb_func
systick:
    ldr r0, =hbuf
    mov r1, lr
    str r1, [r0, #0]
    mrs r1, ipsr
    str r1, [r0, #4]
    mov r1, sp
    str r1, [r0, #8]
    ldr r2, =0xE000E010
    movs r3, #0
    str r3, [r2]
    movs r3, #0
copy:
    ldr r2, [r1, r3]
    adds r3, #12
    str r2, [r0, r3]
    subs r3, #8
    cmp r3, #32
    blo copy
    ldr r2, =0xDEADBEEF
    mov r12, r2
    movs r0, #0
    movs r1, #1
    movs r2, #2
    movs r3, #3
{fp_clobber}
    bx lr
"""


def _registers_body(misalign: bool, fp: bool) -> str:
    lines = [SYSTICK_ON.format(reload=199)]
    if fp:
        lines.append("    ldr r0, =0xE000ED88\n    ldr r1, =0x00F00000\n    str r1, [r0]")
        lines += [f"    ldr r0, ={0x3F800000 + (i << 16):#x}\n    vmov s{i}, r0" for i in range(16)]
    if misalign:
        lines.append("    mov r0, sp\n    subs r0, #4\n    mov sp, r0")
    lines.append(f"    ldr r0, ={LR_BEFORE:#x}\n    mov lr, r0")
    lines.append(FILL)
    lines.append("    cmp r0, r1")  # N set, C clear: flags the frame must carry
    lines.append("    wfi\n    .global after\nafter:")
    return "\n".join(lines)


@pytest.mark.parametrize("misalign", [False, True], ids=["sp8", "sp4"])
@pytest.mark.parametrize("board", BOARD_NAMES)
def test_interrupt_entry_and_return_register_for_register(
    tmp_path: Path, board: str, misalign: bool
) -> None:
    m = _machine(
        tmp_path,
        board,
        _registers_body(misalign, fp=False),
        RECORD.format(fp_clobber=""),
        "hbuf: .space 44",
        systick="systick",
    )
    _run(m)
    _, ram_end = ram_of(m.board)
    sp_before = ram_end - (4 if misalign else 0)
    after = m.image.symbol("after")
    assert after is not None
    lr, ipsr, handler_sp, *frame = _words(m, "hbuf", 11)
    # In the handler: EXC_RETURN to Thread mode on the MSP, IPSR = 15, the 8-word frame
    # below the (8-byte aligned) stack with the registers of the interrupted code.
    assert (lr, ipsr) == (0xFFFFFFF9, 15)
    assert handler_sp == (sp_before - 32) & ~7
    assert frame[:6] == [*VALUES[:4], VALUES[12], LR_BEFORE]
    assert frame[6] == after.address
    xpsr = frame[7]
    assert xpsr & 0x1FF == 0 and xpsr & (1 << 24)  # Thread mode, Thumb
    assert bool(xpsr & (1 << 9)) == misalign  # the stack-alignment pad
    assert xpsr >> 28 == 0b1000  # N set by `cmp r0, r1`, Z, C, V clear
    # After the return every register is what it was before the interrupt.
    uc = m.uc
    regs = [int(uc.reg_read(getattr(arm_const, f"UC_ARM_REG_R{i}"))) for i in range(13)]
    assert regs == VALUES
    assert int(uc.reg_read(arm_const.UC_ARM_REG_SP)) == sp_before
    assert int(uc.reg_read(arm_const.UC_ARM_REG_LR)) == LR_BEFORE
    assert int(uc.reg_read(arm_const.UC_ARM_REG_XPSR)) == xpsr & ~(1 << 9)
    assert int(uc.reg_read(arm_const.UC_ARM_REG_IPSR)) == 0


FP_CLOBBER = "\n".join(f"    vmov s{i}, r3" for i in range(16)) + "\n    vadd.f32 s0, s1, s2"


@pytest.mark.parametrize("board", FPU_BOARDS)
def test_fp_registers_live_across_an_interrupt(tmp_path: Path, board: str) -> None:
    """FP context active (CONTROL.FPCA): the extended frame, EXC_RETURN 0xFFFFFFE9, and
    S0-S15 restored after a handler that overwrote them."""
    m = _machine(
        tmp_path,
        board,
        _registers_body(misalign=False, fp=True),
        RECORD.format(fp_clobber=FP_CLOBBER),
        "hbuf: .space 44",
        systick="systick",
    )
    _run(m)
    _, ram_end = ram_of(m.board)
    lr, _, handler_sp, *_ = _words(m, "hbuf", 11)
    assert lr == 0xFFFFFFE9
    assert handler_sp == ram_end - 0x68
    uc = m.uc
    fp = [int(uc.reg_read(getattr(arm_const, f"UC_ARM_REG_S{i}"))) for i in range(16)]
    assert fp == [0x3F800000 + (i << 16) for i in range(16)]
    assert int(uc.reg_read(arm_const.UC_ARM_REG_CONTROL)) & 4  # FPCA back on
    assert int(uc.reg_read(arm_const.UC_ARM_REG_SP)) == ram_end


# -- SVC, PendSV, priorities, tail-chaining -----------------------------------------------

SVC_HANDLER = """
    .thumb_func
svc:
    ldr r1, [sp, #24]
    subs r1, #2
    ldrb r1, [r1]
    lsls r1, #3
    ldr r2, [sp]
    adds r2, r2, r1
    str r2, [sp]
    bx lr
"""


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_svc_handler_reads_its_number_and_returns_a_value(tmp_path: Path, board: str) -> None:
    m = _machine(tmp_path, board, "movs r0, #2\n    svc #5", SVC_HANDLER, "", svc="svc")
    result = _run(m)
    assert result.exit_code == 42 and m.interrupts.taken == {11: 1}


def test_svc_is_taken_without_cycle_accounting(tmp_path: Path) -> None:
    """SVC needs no time: taken with --no-cycles too (timed interrupts are not)."""
    m = _machine(tmp_path, "rp2040", "movs r0, #2\n    svc #5", SVC_HANDLER, "", svc="svc")
    assert m.run(RunOptions(cycles=False)).exit_code == 42


PRIORITIES = (
    """
    ldr r0, =0xE000ED20
    ldr r1, ={shpr3:#x}
    str r1, [r0]
"""
    + SYSTICK_ON.format(reload=999)
    + """
    ldr r0, =0xE000ED04
    ldr r1, =0x10000000
    str r1, [r0]
    dsb
    isb
    ldr r0, =ticks
    ldr r0, [r0]
"""
)
NESTED = """
    .thumb_func
pendsv:
    ldr r0, =ticks
1:
    ldr r1, [r0]
    cmp r1, #3
    blo 1b
    ldr r2, =0xE000E010
    movs r3, #0
    str r3, [r2]
    bx lr
    .thumb_func
systick:
    ldr r0, =ticks
    ldr r1, [r0]
    adds r1, #1
    str r1, [r0]
    ldr r0, =seen
    mov r1, lr
    str r1, [r0]
    mrs r1, ipsr
    str r1, [r0, #4]
    bx lr
"""


@pytest.mark.parametrize("board", BOARDS)
def test_systick_preempts_a_lower_priority_pendsv(tmp_path: Path, board: str) -> None:
    """PendSV (pended through ICSR) at the lowest priority waits in its handler for
    three SysTicks, which preempt it: nested EXC_RETURN 0xFFFFFFF1."""
    m = _machine(
        tmp_path,
        board,
        PRIORITIES.format(shpr3=0x00FF0000),
        NESTED,
        "ticks: .word 0\nseen: .word 0, 0",
        pendsv="pendsv",
        systick="systick",
    )
    result = _run(m)
    assert result.exit_code == 3
    assert _words(m, "seen", 2) == [0xFFFFFFF1, 15]
    assert m.interrupts.taken == {14: 1, 15: 3}


@pytest.mark.parametrize("board", ["rp2040", "stm32h743"])
def test_lower_priority_systick_cannot_preempt(tmp_path: Path, board: str) -> None:
    """The same program with SysTick below PendSV: the PendSV handler waits for ever."""
    m = _machine(
        tmp_path,
        board,
        PRIORITIES.format(shpr3=0xC0000000),
        NESTED,
        "ticks: .word 0\nseen: .word 0, 0",
        pendsv="pendsv",
        systick="systick",
    )
    with pytest.raises(BudgetExhausted):
        _run(m, budget=300_000)
    assert m.interrupts.active == [14] and 15 in m.interrupts.pending


TAIL = (
    SYSTICK_ON.format(reload=499)
    + """
    ldr r2, =flag
wait:
    ldr r1, [r2]
    cmp r1, #0
    beq wait
    movs r0, r1
"""
)
TAIL_HANDLERS = """
    .thumb_func
systick:
    ldr r2, =0xE000E010
    movs r3, #0
    str r3, [r2]
    ldr r0, =0xE000ED04
    ldr r1, =0x10000000
    str r1, [r0]
    nop
    nop
    bx lr
    .thumb_func
pendsv:
    ldr r0, =flag
    movs r1, #7
    str r1, [r0]
    bx lr
"""


@pytest.mark.parametrize("board", BOARDS)
def test_pendsv_pended_in_a_handler_is_tail_chained(tmp_path: Path, board: str) -> None:
    m = _machine(
        tmp_path, board, TAIL, TAIL_HANDLERS, "flag: .word 0", pendsv="pendsv", systick="systick"
    )
    result = _run(m)
    assert result.exit_code == 7
    assert m.interrupts.taken == {14: 1, 15: 1} and m.interrupts.tail_chains == 1


def test_missing_handler_is_reported(tmp_path: Path) -> None:
    m = _machine(tmp_path, "stm32h743", SYSTICK_ON.format(reload=99) + "1: b 1b", "", "", svc="bad")
    with pytest.raises(MemoryFault, match=r"SysTick: its vector .* is 0x"):
        _run(m)


# -- TIMER alarm and WFE: pico-sdk's sleep_ms ---------------------------------------------

TIMERS = {"rp2040": (0x40054000, 0x34, 0x38), "rp2350": (0x400B0000, 0x3C, 0x40)}

SLEEP = """
    ldr r4, ={base:#x}
    ldr r5, [r4, #0x28]
    ldr r0, =1000
    adds r0, r5, r0
    movs r1, #1
    str r1, [r4, #{inte:#x}]
    ldr r2, =0xE000E100
    str r1, [r2]
    str r0, [r4, #0x10]
wait:
    ldr r2, =fired
    ldr r3, [r2]
    cmp r3, #0
    bne woke
    wfe
    b wait
woke:
    ldr r0, [r4, #0x28]
    subs r0, r0, r5
"""
ALARM_IRQ = """
    .thumb_func
alarm:
    ldr r0, ={base:#x}
    movs r1, #1
    str r1, [r0, #{intr:#x}]
    ldr r0, =fired
    str r1, [r0]
    bx lr
"""


@pytest.mark.parametrize("board", ["rp2040", "rp2350"])
def test_timer_alarm_wakes_wfe_like_sleep_ms(tmp_path: Path, board: str) -> None:
    base, intr, inte = TIMERS[board]
    results = []
    for _ in range(2):
        m = _machine(
            tmp_path,
            board,
            SLEEP.format(base=base, inte=inte),
            ALARM_IRQ.format(base=base, intr=intr),
            "fired: .word 0",
            irq0="alarm",
        )
        results.append(_run(m))
        assert m.interrupts.taken == {16: 1}
    result, again = results
    assert result.exit_code is not None and 1000 <= result.exit_code <= 1001
    clock = get_board(board).clock_hz
    assert result.cycles is not None and result.cycles >= 1000 * clock // 1_000_000
    # The sleep is charged as cycles, not instructions: the program ran few.
    assert result.instructions is not None and result.instructions < 100
    assert (again.cycles, again.instructions) == (result.cycles, result.instructions)


def test_timer_alarm_registers_and_atomic_aliases() -> None:
    """INTE set through the +0x2000 alias (pico-sdk's hw_set_bits), INTR cleared by
    writing 1, ALARM arming and firing at the count's low word, as board data says."""
    board = get_board("rp2040")
    spec = interrupt_spec(board)
    assert spec.alarms is not None
    a = spec.alarms
    now = [0]
    timer = MicrosecondTimer(
        base=0x40054000,
        offsets={},
        tick_hz=1_000_000,
        clock_hz=board.clock_hz,
        cycles=lambda _address, _write: now[0],
        notes=set(),
        alarms=a,
    )
    timer.write(0x2000 + a.inte, 4, 0b0100)
    timer.write(0x2000 + a.inte, 4, 0b0001)
    assert timer.read(a.inte, 4) == 0b0101
    timer.write(0x3000 + a.inte, 4, 0b0100)
    assert timer.read(a.inte, 4) == 0b0001
    timer.write(a.alarm0, 4, 10)  # fires at 10 us = 1250 cycles at 125 MHz
    assert timer.read(a.armed, 4) == 1 and timer.next_event(0) == 1250
    now[0] = 1249
    assert timer.read(a.ints, 4) == 0
    now[0] = 1250
    assert timer.read(a.armed, 4) == 0 and timer.read(a.ints, 4) == 1
    assert timer.lines() == {16}  # TIMER_IRQ_0 = NVIC line 0 = exception 16
    timer.write(a.intr, 4, 1)
    assert timer.read(a.intr, 4) == 0 and timer.lines() == set()


# -- stacks and masks ----------------------------------------------------------------------

PSP_BODY = """
    ldr r0, =0x400
    mov r1, sp
    subs r1, r1, r0
    msr psp, r1
    movs r0, #2
    msr control, r0
    isb
    ldr r4, =0x44444444
    movs r0, #2
    svc #5
"""
PSP_SVC = """
    .thumb_func
svc:
    ldr r0, =hbuf
    mov r1, lr
    str r1, [r0, #0]
    mov r1, sp
    str r1, [r0, #4]
    mrs r1, psp
    str r1, [r0, #8]
    mrs r2, control
    str r2, [r0, #12]
    ldr r2, [r1]
    adds r2, #40
    str r2, [r1]
    bx lr
"""


@pytest.mark.parametrize("board", BOARDS)
def test_thread_mode_on_the_psp(tmp_path: Path, board: str) -> None:
    """An RTOS thread on the PSP: the frame goes to the PSP, the handler runs on the MSP
    with EXC_RETURN 0xFFFFFFFD, and the return puts Thread mode back on the PSP."""
    m = _machine(tmp_path, board, PSP_BODY, PSP_SVC, "hbuf: .space 16", svc="svc")
    result = _run(m)
    _, ram_end = ram_of(m.board)
    psp = ram_end - 0x400
    lr, msp, handler_psp, control = _words(m, "hbuf", 4)
    assert (lr, msp, handler_psp, control & 2) == (0xFFFFFFFD, ram_end, psp - 32, 0)
    assert result.exit_code == 42
    uc = m.uc
    assert int(uc.reg_read(arm_const.UC_ARM_REG_CONTROL)) & 2
    assert int(uc.reg_read(arm_const.UC_ARM_REG_SP)) == psp
    assert int(uc.reg_read(arm_const.UC_ARM_REG_MSP)) == ram_end
    assert int(uc.reg_read(arm_const.UC_ARM_REG_R4)) == 0x44444444


MASKED = (
    "{mask}\n"
    + SYSTICK_ON.format(reload=1999)
    + """
    ldr r4, =1000
1:
    subs r4, #1
    bne 1b
    ldr r2, =ticks
    ldr r5, [r2]
    {unmask}
    isb
    ldr r6, [r2]
    lsls r0, r5, #4
    adds r0, r0, r6
"""
)


@pytest.mark.parametrize(
    ("board", "mask", "unmask"),
    [
        ("rp2040", "cpsid i", "cpsie i"),
        ("stm32h743", "cpsid i", "cpsie i"),
        ("rp2350", "movs r0, #1\n    msr primask, r0", "movs r0, #0\n    msr primask, r0"),
        (
            "stm32h743",
            "ldr r0, =0xE000ED20\n    ldr r1, =0x80000000\n    str r1, [r0]\n"
            "    movs r0, #0x40\n    msr basepri, r0",
            "movs r0, #0\n    msr basepri, r0",
        ),
    ],
    ids=["m0plus-cpsid", "m7-cpsid", "m33-primask", "m7-basepri"],
)
def test_masked_interrupt_waits_for_the_unmask(
    tmp_path: Path, board: str, mask: str, unmask: str
) -> None:
    """SysTick pends while masked (PRIMASK, or BASEPRI above its priority), is taken
    once, right after the unmask: the handler had not run before it, and had after."""
    m = _machine(
        tmp_path,
        board,
        MASKED.format(mask=mask, unmask=unmask),
        TICK,
        "ticks: .word 0",
        systick="systick",
    )
    result = _run(m)
    assert result.exit_code == 0 * 16 + 1
    assert m.interrupts.taken == {15: 1}


FORCED = """
    ldr r4, ={base:#x}
    movs r1, #2
    str r1, [r4, #{inte:#x}]
    str r1, [r4, #{intf:#x}]
    ldr r2, =0xE000E100
    isb
    ldr r3, =fired
    ldr r5, [r3]
    str r1, [r2]
    isb
    ldr r6, [r3]
    lsls r0, r5, #4
    adds r0, r0, r6
"""
FORCED_IRQ = """
    .thumb_func
alarm1:
    ldr r0, ={base:#x}
    movs r1, #0
    str r1, [r0, #{intf:#x}]
    ldr r0, =fired
    ldr r1, [r0]
    adds r1, #1
    str r1, [r0]
    bx lr
"""


@pytest.mark.parametrize("board", ["rp2040", "rp2350"])
def test_forced_alarm_interrupt_taken_when_the_nvic_enables_it(tmp_path: Path, board: str) -> None:
    """INTF forces alarm 1's line (pico-sdk's hardware_alarm_force_irq): nothing happens
    until the NVIC enables IRQ 1, then the handler runs once (it clears INTF)."""
    base, _, inte = TIMERS[board]
    intf = inte + 4
    m = _machine(
        tmp_path,
        board,
        FORCED.format(base=base, inte=inte, intf=intf),
        FORCED_IRQ.format(base=base, intf=intf),
        "fired: .word 0",
        irq0="bad",
    )
    # IRQ 1 is vector entry 17: one more word after irq0.
    elf_vectors = _vectors(irq0="bad") + "\n    .word alarm1 + 1"
    m = Machine(
        load_elf(
            build_asm(
                tmp_path,
                board,
                FORCED.format(base=base, inte=inte, intf=intf),
                extra=FORCED_IRQ.format(base=base, intf=intf) + _BAD + "\n.ltorg",
                data="fired: .word 0",
                vectors=elf_vectors,
            )
        ),
        get_board(board),
    )
    result = _run(m)
    assert result.exit_code == 0 * 16 + 1
    assert m.interrupts.taken == {17: 1}


# -- the same in C, on the project's runtime ------------------------------------------------

_TIMER_DEFINES = {
    "rp2040": ("TIMER_BASE=0x40054000u", "TIMER_INTR=0x34u", "TIMER_INTE=0x38u", "TIMER_IRQ=0"),
    "rp2350": ("TIMER_BASE=0x400b0000u", "TIMER_INTR=0x3cu", "TIMER_INTE=0x40u", "TIMER_IRQ=0"),
}


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_c_firmware_with_a_ram_vector_table(tmp_path: Path, board: str) -> None:
    """VTOR moved to a RAM table, a HAL_Delay-style wait on SysTick ticks, SVC, and on
    the RP2040/RP2350 a sleep on a TIMER alarm with WFE, printed over semihosting."""
    spec = get_board(board)
    elf = build_elf(
        [Path(__file__).with_name("exceptions_fw.c")],
        spec,
        tmp_path / "exc.elf",
        defines=_TIMER_DEFINES.get(board, ()),
    ).elf
    results = [run_firmware(elf, board, max_instructions=5_000_000) for _ in range(2)]
    result = results[0]
    # HAL_Delay(5) waits 6 whole ticks: it returns within the 7th.
    assert result.exit_code in (6, 7)
    expected = f"delay: {result.exit_code} ticks, svc 23"
    if board in _TIMER_DEFINES:
        expected += ", slept 200"
    assert result.stdout.startswith(expected), result.stdout
    assert (results[1].cycles, results[1].stdout) == (result.cycles, result.stdout)


IT_BODY = (
    SYSTICK_ON.format(reload=199)
    + """
    movs r1, #0
    cmp r0, r0
    ite eq
    wfieq
    movne r1, #1
    ldr r2, =mark
    ldr r2, [r2]
    lsls r0, r2, #4
    adds r0, r0, r1
"""
)
IT_HANDLER = """
    .thumb_func
systick:
    movs r3, #5
    ldr r2, =mark
    str r3, [r2]
    ldr r2, =0xE000E010
    movs r3, #0
    str r3, [r2]
    bx lr
"""


@pytest.mark.parametrize("board", ["rp2350", "stm32h743"])
def test_interrupt_inside_an_it_block(tmp_path: Path, board: str) -> None:
    """Woken inside an IT block: the handler runs outside it (its first instruction is
    not made conditional), and the return restores it (the `movne` stays skipped)."""
    m = _machine(tmp_path, board, IT_BODY, IT_HANDLER, "mark: .word 0", systick="systick")
    frame_xpsr: list[int] = []
    enter = m.interrupts.enter

    def spy(uc: object, number: int, return_address: int) -> int:
        frame_xpsr.append(int(m.uc.reg_read(arm_const.UC_ARM_REG_XPSR)))
        return enter(uc, number, return_address)

    m.interrupts.enter = spy  # type: ignore[method-assign]
    assert _run(m).exit_code == 5 * 16 + 0
    assert frame_xpsr and frame_xpsr[0] & 0x0600FC00  # the IT state was live


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_interrupt_data_of_every_board(board: str) -> None:
    """data/interrupts.toml: every shipped board has an NVIC and exception timing; the
    RP2040/RP2350 timer alarms lie in the timer's region, clear of its counter registers."""
    spec = get_board(board)
    data = interrupt_spec(spec)
    assert 2 <= data.priority_bits <= 8 and data.irqs >= 32
    assert 0 < data.timing.tail_chain <= data.timing.entry
    if board in ("rp2040", "rp2350"):
        assert data.alarms is not None and spec.timer is not None
        a = data.alarms
        region = next(r for r in spec.memory if r.name == spec.timer.region)
        alarm_words = {a.alarm0 + 4 * i for i in range(a.count)}
        others = {a.armed, a.intr, a.inte, a.intf, a.ints}
        counter = {offset for _, offset in spec.timer.registers}
        assert len(alarm_words | others) == a.count + 5
        assert not (alarm_words | others) & counter
        assert max(alarm_words | others) < region.size_bytes
    else:
        assert data.alarms is None


def test_systick_counter_countflag_and_events() -> None:
    """The counter reaches 0 `reload` cycles after enabling, then every reload + 1;
    COUNTFLAG reads 1 once per zero since the last CSR read; events follow the zeros."""
    tick = SysTick(notes=set())
    tick.rvr = 99
    tick.write_csr(1000, CSR_ENABLE | CSR_TICKINT | CSR_CLKSOURCE)
    assert tick.value(1000) == 99 and tick.value(1099) == 0 and tick.value(1100) == 99
    assert tick.next_event(1000) == 1099 and tick.next_event(1099) == 1199
    assert not tick.read_csr(1098) & CSR_COUNTFLAG
    assert tick.read_csr(1099) & CSR_COUNTFLAG
    assert not tick.read_csr(1150) & CSR_COUNTFLAG
    tick.poll(1300)
    assert tick.take_pend() and not tick.take_pend()
    tick.write_cvr(1305)  # clears the counter: the next zero is a full period later
    assert tick.next_event(1305) == 1404
    tick.write_csr(1310, CSR_ENABLE | CSR_CLKSOURCE)  # TICKINT off: no events
    assert tick.next_event(1310) is None
