"""RP2350 coprocessors (simcore.coprocessors): firmware that uses them as pico-sdk does.

Each program enables its coprocessors in CPACR first (as pico-sdk's
runtime_init_per_core_enable_coprocessors does), then uses the GPIO coprocessor
(p0, gpio_coproc.h's instructions) or calls functions shaped like pico-sdk's DCP
functions (double_aeabi_dcp.S: PCMP APSR_nzcv; BMI; p4 transfers; BX LR), which
simcore recognises and computes on the host.
"""

from __future__ import annotations

import struct
from pathlib import Path

import capstone
import pytest
from sim_support import build_asm, needs_toolchain

from simcore import coprocessors as copro
from simcore.engine import run_firmware
from simcore.errors import BoardError, NotModeled, UsageFault
from simcore.registers import PeripheralBus, load_chip, parse_chip

pytestmark = needs_toolchain

ENABLE_CP0_CP4 = """
    ldr r2, =0xe000ed88      @ CPACR
    ldr r1, [r2]
    ldr r3, =0x303           @ CP0 and CP4: full access
    orrs r1, r3
    str r1, [r2]
    dsb
    isb
"""

#: A function shaped like pico-sdk's DCP functions (PCMP APSR_nzcv; BMI to the
#: state save; p4 transfers and operations; BX LR). Its body is a stand-in: simcore
#: recognises the shape and computes the operation on the host instead.
SDK_SHAPED = """
    .p2align 2
    .global {name}
    .type {name}, %function
    .thumb_func
{name}:
    mrc2 p4, #0, r15, c0, c0, #1
    bmi {name}_engaged
    mcrr p4, #1, r0, r1, c0
    mcrr p4, #1, r2, r3, c1
    cdp p4, #0, c0, c0, c1, #0
    cdp p4, #8, c0, c0, c0, #1
    mrrc p4, #1, r0, r1, c0
    bx lr
{name}_engaged:
    udf #1
"""


def _words(x: float) -> tuple[int, int]:
    lo, hi = struct.unpack("<II", struct.pack("<d", x))
    return lo, hi


def _build(tmp_path: Path, body: str, extra: str = "", tag: str = "fw") -> Path:
    return build_asm(tmp_path, "rp2350", body, extra=extra, tag=tag)


# -- decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hexcode",
    [
        "10ee3004",  # mrc p4, #0, r0, c0, c0, #1 (pico-sdk runtime init)
        "10fe30f4",  # mrc2 p4, #0, APSR_nzcv, c0, c0, #1 (PCMP)
        "41ec1004",  # mcrr p4, #1, r0, r1, c0
        "51ec1004",  # mrrc p4, #1, r0, r1, c0
        "00ee0104",  # cdp p4, #0, c0, c0, c1, #0
        "41fc0004",  # mcrr2 p4, #0, r0, r1, c0
        "40ee9110",  # mcr p0, #2, r1, c0, c1
        "10ee1800",  # mrc p0, #0, r0, c0, c8
    ],
)
def test_decode_agrees_with_capstone(hexcode: str) -> None:
    code = bytes.fromhex(hexcode)
    insn = copro.decode(code)
    assert insn is not None
    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    (ref,) = md.disasm(code, 0)
    assert insn.text().lower() == f"{ref.mnemonic} {ref.op_str}".lower()
    assert copro.decode(bytes.fromhex("00bf00bf")) is None  # two NOPs


# -- the SDK's runtime init ---------------------------------------------------------------


def test_sdk_init_rcmp_runs_and_is_reported(tmp_path: Path) -> None:
    elf = _build(tmp_path, ENABLE_CP0_CP4 + "movs r0, #7\nmrc p4, #0, r0, c0, c0, #1")
    result = run_firmware(elf, "rp2350")
    assert result.exit_code == 0
    assert any(
        "dcp (p4): 'mrc p4, #0, r0, c0, c0, #1'" in note and "read 0x0" in note
        for note in result.notes
    )


def test_coprocessor_not_enabled_in_cpacr_is_nocp(tmp_path: Path) -> None:
    elf = _build(tmp_path, "mrc p4, #0, r0, c0, c0, #1")
    with pytest.raises(UsageFault) as info:
        run_firmware(elf, "rp2350")
    assert info.value.kind == "NOCP"
    assert "dcp coprocessor (p4) is not enabled in CPACR (0x00000000)" in info.value.message
    assert "mrc p4, #0, r0, c0, c0, #1" in info.value.message


def test_only_the_gpio_coprocessor_enabled_still_faults_the_dcp(tmp_path: Path) -> None:
    body = "ldr r2, =0xe000ed88\nmovs r1, #3\nstr r1, [r2]\nmrc p0, #0, r0, c0, c0\n"
    elf = _build(tmp_path, body + "mrc p4, #0, r0, c0, c0, #1")
    with pytest.raises(UsageFault, match=r"\(p4\) is not enabled in CPACR \(0x00000003\)"):
        run_firmware(elf, "rp2350")


def test_undeclared_coprocessor_is_nocp_naming_it(tmp_path: Path) -> None:
    body = "ldr r2, =0xe000ed88\nldr r1, =0xffff\nstr r1, [r2]\nmrc p5, #0, r0, c0, c0, #0"
    elf = _build(tmp_path, body)
    with pytest.raises(UsageFault) as info:
        run_firmware(elf, "rp2350")
    assert info.value.kind == "NOCP"
    assert "'mrc p5, #0, r0, c0, c0, #0'" in info.value.message
    assert "coprocessor p5 is not there" in info.value.message
    assert "the rp2350 chip has p0 (gpioc), p4 (dcp)" in info.value.message


# -- the GPIO coprocessor ----------------------------------------------------------------


def test_gpio_coprocessor_and_sio_agree(tmp_path: Path) -> None:
    """gpio_put through the coprocessor reads back through the SIO and the other way."""
    body = (
        ENABLE_CP0_CP4
        + """
    ldr r4, =0xd0000000      @ SIO
    ldr r1, =0xff
    mcr p0, #0, r1, c0, c4   @ gpioc_lo_oe_put(0xff)
    ldr r1, =0x0f
    mcr p0, #2, r1, c0, c0   @ gpioc_lo_out_set(0x0f)
    movs r1, #2
    mcr p0, #7, r1, c0, c0   @ gpioc_bit_out_clr(2)
    movs r1, #0x30
    str r1, [r4, #0x28]      @ SIO GPIO_OUT_XOR = 0x30
    movs r1, #33
    movs r2, #1
    mcrr p0, #4, r1, r2, c0  @ gpioc_bit_out_put(33, 1)
    mcrr p0, #6, r1, r2, c4  @ gpioc_bit_oe_set2(33, 1)
    ldr r5, [r4, #0x04]      @ SIO GPIO_IN: OUT & OE
    mrc p0, #0, r6, c0, c0   @ gpioc_lo_out_get
    mrrc p0, #0, r7, r8, c8  @ gpioc_hilo_in_get
    ldr r9, [r4, #0x14]      @ SIO GPIO_HI_OUT
    ldr r0, =0x3b            @ expected low word: 0x0f & ~4 ^ 0x30
    subs r0, r5
    cmp r6, #0x3b
    it ne
    addne r0, #0x100
    cmp r7, #0x3b
    it ne
    addne r0, #0x200
    cmp r8, #2
    it ne
    addne r0, #0x400
    cmp r9, #2
    it ne
    addne r0, #0x800
"""
    )
    result = run_firmware(_build(tmp_path, body), "rp2350")
    assert result.exit_code == 0


def test_gpio_coprocessor_index_out_of_range_is_an_error(tmp_path: Path) -> None:
    body = ENABLE_CP0_CP4 + "movs r1, #1\nmovs r2, #2\nmcrr p0, #8, r1, r2, c0"
    with pytest.raises(NotModeled, match="register index 2"):
        run_firmware(_build(tmp_path, body), "rp2350")


# -- the DCP at function level -------------------------------------------------------------


def _dcp_program(tmp_path: Path, name: str, x: float, y: float, check: str) -> Path:
    xl, xh = _words(x)
    yl, yh = _words(y)
    body = (
        ENABLE_CP0_CP4
        + f"""
    ldr r0, ={xl:#x}
    ldr r1, ={xh:#x}
    ldr r2, ={yl:#x}
    ldr r3, ={yh:#x}
    bl {name}
{check}
"""
    )
    return _build(tmp_path, body, SDK_SHAPED.format(name=name), tag=name)


def _check_double(value: float) -> str:
    lo, hi = _words(value)
    return f"""
    ldr r2, ={lo:#x}
    ldr r3, ={hi:#x}
    eors r0, r2
    eors r1, r3
    orrs r0, r1              @ 0 when both words match
"""


@pytest.mark.parametrize(
    ("name", "x", "y", "expected"),
    [
        ("__wrap___aeabi_dadd", 0.1, 0.2, 0.1 + 0.2),
        ("__wrap___aeabi_dsub", 1e16, 1.0, 1e16 - 1.0),
        ("__wrap___aeabi_dmul", 1.1, 3.3, 1.1 * 3.3),
        ("__wrap___aeabi_ddiv", 1.0, 3.0, 1.0 / 3.0),
        ("__wrap___aeabi_ddiv", -1.0, 0.0, float("-inf")),
    ],
)
def test_dcp_arithmetic_is_ieee_double(
    tmp_path: Path, name: str, x: float, y: float, expected: float
) -> None:
    result = run_firmware(_dcp_program(tmp_path, name, x, y, _check_double(expected)), "rp2350")
    assert result.exit_code == 0
    assert any(f"{name} x1" in note for note in result.notes)


@pytest.mark.parametrize(
    ("name", "x", "y", "expected"),
    [
        ("__wrap___aeabi_dcmplt", 1.0, 2.0, 1),
        ("__wrap___aeabi_dcmplt", 2.0, 1.0, 0),
        ("__wrap___aeabi_dcmpgt", 2.0, 1.0, 1),
        ("__wrap___aeabi_dcmpge", 1.0, 1.0, 1),
        ("__wrap___aeabi_dcmpun", float("nan"), 1.0, 1),
        ("__wrap___aeabi_d2iz", -3.7, 0.0, -3),
        ("__wrap___aeabi_d2uiz", 1e10, 0.0, 0xFFFFFFFF),
    ],
)
def test_dcp_compare_and_convert(
    tmp_path: Path, name: str, x: float, y: float, expected: int
) -> None:
    result = run_firmware(_dcp_program(tmp_path, name, x, y, ""), "rp2350")
    assert result.exit_code == (expected if expected < 1 << 31 else expected - (1 << 32))


def test_dcp_flag_compare_sets_flags_as_cmp(tmp_path: Path) -> None:
    check = "ite lo\nmovlo r0, #1\nmovhs r0, #2"
    result = run_firmware(
        _dcp_program(tmp_path, "__wrap___aeabi_cdcmple", 1.0, 2.0, check), "rp2350"
    )
    assert result.exit_code == 1


def test_dcp_function_cycles_are_deterministic_and_charged(tmp_path: Path) -> None:
    elf = _dcp_program(tmp_path, "__wrap___aeabi_dmul", 1.5, 2.0, _check_double(3.0))
    first, second = run_firmware(elf, "rp2350"), run_firmware(elf, "rp2350")
    assert first.exit_code == 0
    assert first.cycles == second.cycles
    assert first.cycles is not None


def test_dcp_instruction_outside_a_recognised_function_is_an_error(tmp_path: Path) -> None:
    elf = _build(tmp_path, ENABLE_CP0_CP4 + "mcrr p4, #1, r0, r1, c0")
    with pytest.raises(NotModeled) as info:
        run_firmware(elf, "rp2350")
    assert "'mcrr p4, #1, r0, r1, c0'" in info.value.message
    assert "outside any recognised function" in info.value.message


def test_a_function_with_the_name_but_not_the_shape_is_not_taken(tmp_path: Path) -> None:
    """Named like the SDK's dadd, but without PCMP first: its DCP code is not skipped."""
    own = SDK_SHAPED.replace("mrc2 p4, #0, r15, c0, c0, #1\n    bmi {name}_engaged\n", "")
    body = ENABLE_CP0_CP4 + "bl __wrap___aeabi_dadd"
    elf = _build(tmp_path, body, own.format(name="__wrap___aeabi_dadd"))
    with pytest.raises(NotModeled, match="outside any recognised function") as info:
        run_firmware(elf, "rp2350")
    assert "__wrap___aeabi_dadd" in (info.value.location or "")


# -- board data ---------------------------------------------------------------------------


def test_rp2350_chip_data_names_its_coprocessor_models() -> None:
    specs = {c.number: c for c in load_chip("rp2350").coprocessors}
    assert (specs[0].model, specs[4].model) == ("rp2350-gpioc", "rp2350-dcp")
    assert dict(specs[4].reads) == {(0, 0, 0, 1): 0}
    assert load_chip("rp2040").coprocessors == ()


def test_an_unknown_coprocessor_model_is_a_chip_error() -> None:
    import tomllib

    text = (
        'name = "x"\ndescription = "d"\n[[coprocessor]]\nnumber = 4\nname = "dcp"\n'
        'model = "no-such-model"\n'
    )
    with pytest.raises(BoardError, match="unknown coprocessor model 'no-such-model'"):
        parse_chip(tomllib.loads(text), "x.toml")


def test_a_board_without_coprocessors_faults_nocp(tmp_path: Path) -> None:
    """On the STM32H7 (no coprocessor on p0-p7) the fault, not the cycle model, reports it."""
    body = "ldr r2, =0xe000ed88\nldr r1, =0xffff\nstr r1, [r2]\nmcr p0, #0, r1, c0, c0, #0"
    elf = build_asm(tmp_path, "stm32h743", body, tag="h7")
    with pytest.raises(UsageFault) as info:
        run_firmware(elf, "stm32h743")
    assert info.value.kind == "NOCP"
    assert "the stm32h743 chip has no coprocessor on p0-p7" in info.value.message


# -- the SIO GPIO registers the GPIO coprocessor shares (chip data, write ops) ---------------


def test_sio_gpio_set_clr_xor_act_on_gpio_out_and_oe() -> None:
    b = PeripheralBus(load_chip("rp2350"), {}, None)
    sio = 0xD0000000
    b.write(sio + 0x18, 4, 0xF0)  # GPIO_OUT_SET
    b.write(sio + 0x20, 4, 0x30)  # GPIO_OUT_CLR
    b.write(sio + 0x28, 4, 0x01)  # GPIO_OUT_XOR
    assert b.read(sio + 0x10, 4) == 0xC1
    b.write(sio + 0x38, 4, 0x81)  # GPIO_OE_SET
    assert b.read(sio + 0x04, 4) == 0x81  # GPIO_IN: OUT & OE
    b.write(sio + 0x1C, 4, 0x4)  # GPIO_HI_OUT_SET
    assert b.read(sio + 0x14, 4) == 0x4
    assert b.read(sio + 0x08, 4) == 0  # GPIO_HI_OE is 0


def test_a_coprocessor_instruction_costs_one_cycle_and_is_counted_once(tmp_path: Path) -> None:
    """The NOCP ends unicorn's block there: the code after it is not charged twice."""
    pad = "adds r3, #1\n" * 6
    runs = []
    for tag, middle in (("cp", "mcr p0, #2, r1, c0, c0"), ("alu", "orr.w r9, r9, r1")):
        elf = build_asm(tmp_path, "rp2350", ENABLE_CP0_CP4 + pad + middle + "\n" + pad, tag=tag)
        runs.append(run_firmware(elf, "rp2350"))
    assert runs[0].cycles == runs[1].cycles
    assert runs[0].cycle_report["instructions"] == runs[1].cycle_report["instructions"]


def _dcp_raw(tmp_path: Path, name: str, regs: tuple[int, int, int, int], after: str = "") -> Path:
    """Call ``name`` with r0-r3 = ``regs``; ``after`` runs before ``done`` (r0: exit code)."""
    body = ENABLE_CP0_CP4 + "".join(f"ldr r{i}, ={v:#x}\n" for i, v in enumerate(regs))
    return _build(tmp_path, body + f"bl {name}\n{after}", SDK_SHAPED.format(name=name))


@pytest.mark.parametrize(
    ("name", "regs", "expected"),
    [
        # r0 in, r0 (float) or r0:r1 (double) out
        ("__wrap___aeabi_i2d", (0xFFFFFFFB, 0, 0, 0), _words(-5.0)[1]),  # high word
        ("__wrap___aeabi_ui2d", (0xFFFFFFFB, 0, 0, 0), _words(4294967291.0)[1]),
        (
            "__wrap___aeabi_d2f",
            (*_words(0.1), 0, 0),
            struct.unpack("<I", struct.pack("<f", 0.1))[0],
        ),
        ("__wrap_sqrt", (*_words(2.0), 0, 0), _words(2.0**0.5)[1]),
        ("__wrap___aeabi_drsub", (*_words(1.0), *_words(3.0)), _words(2.0)[1]),
        ("__wrap___aeabi_dcmpeq", (*_words(0.0), *_words(-0.0)), 1),
        ("__wrap___aeabi_dcmple", (*_words(2.0), *_words(2.0)), 1),
    ],
)
def test_dcp_conversions_sqrt_and_reverse_ops(
    tmp_path: Path, name: str, regs: tuple[int, int, int, int], expected: int
) -> None:
    # a double result: its high word decides these cases; move it to r0, the exit code
    double = name in ("__wrap___aeabi_i2d", "__wrap___aeabi_ui2d", "__wrap_sqrt")
    double = double or name == "__wrap___aeabi_drsub"
    elf = _dcp_raw(tmp_path, name, regs, "mov r0, r1\n" if double else "")
    result = run_firmware(elf, "rp2350")
    assert (result.exit_code or 0) & 0xFFFFFFFF == expected


def test_sqrt_both_words_are_correctly_rounded(tmp_path: Path) -> None:
    elf = _dcp_raw(tmp_path, "__wrap_sqrt", (*_words(2.0), 0, 0), _check_double(2.0**0.5))
    assert run_firmware(elf, "rp2350").exit_code == 0


@pytest.mark.parametrize(
    ("insn", "expected"),
    [
        ("movs r1, #64\nmcr p0, #6, r1, c0, c0", "pin 64"),
        ("movs r1, #1\nmcr p0, #0, r1, c0, c8", "GPIO_IN is read-only"),
        ("cdp p0, #0, c0, c0, c0, #0", "no GPIO coprocessor operation"),
    ],
)
def test_gpio_coprocessor_refuses_what_gpio_coproc_h_does_not_define(
    tmp_path: Path, insn: str, expected: str
) -> None:
    with pytest.raises(NotModeled, match=expected):
        run_firmware(_build(tmp_path, ENABLE_CP0_CP4 + insn), "rp2350")


@pytest.mark.parametrize(
    "block",
    [
        # the coprocessor instruction first in the block: the NE slot after it is skipped
        "cmp r0, r0\nite eq\nmcreq p0, #2, r1, c0, c0\nmovne r0, #9",
        # in the middle of a block of three
        "cmp r0, r0\nitte eq\nmoveq r4, #0\nmcreq p0, #2, r1, c0, c0\nmovne r0, #9",
        # skipped by its condition (the core never raises NOCP): OUT stays 0, then set
        "cmp r0, r1\nite eq\nmcreq p0, #3, r1, c0, c0\nmcrne p0, #2, r1, c0, c0",
    ],
)
def test_a_coprocessor_instruction_in_an_it_block_uses_its_slot(tmp_path: Path, block: str) -> None:
    body = ENABLE_CP0_CP4 + "movs r0, #0\nmovs r1, #1\n" + block + "\n"
    body += "mrc p0, #0, r3, c0, c0\nadds r0, r3\n"  # r0 + GPIO_OUT: 1 when right
    assert run_firmware(_build(tmp_path, body), "rp2350").exit_code == 1
