"""Peripheral register windows as data (simcore.registers): schema, rules, aliases, locks.

No emulator: the windows and the bus are driven directly, with the register
facts of the chip files (RP2040/RP2350 datasheets, RM0433) as expectations.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from simcore.boards import get_board, parse_board
from simcore.errors import BoardError
from simcore.registers import (
    PeripheralBus,
    boot2_valid,
    chip_dir,
    load_chip,
    parse_chip,
)

CHIPS = ["rp2040", "rp2350", "stm32h743"]
SET, CLR, XOR = 0x2000, 0x3000, 0x1000


def bus(chip: str, console: list[int] | None = None) -> PeripheralBus:
    return PeripheralBus(load_chip(chip), {}, console.append if console is not None else None)


@pytest.mark.parametrize("chip", CHIPS)
def test_shipped_chips_load_and_boards_name_them(chip: str) -> None:
    spec = load_chip(chip)
    assert spec.name == chip and spec.windows and spec.spaces
    assert get_board(chip).peripherals == chip
    rules = sum(len(r.rules) for w in spec.windows for r in w.registers)
    assert rules >= 10


def test_rp2040_reset_done_follows_reset_through_the_aliases() -> None:
    b = bus("rp2040")
    resets = 0x4000C000
    assert b.read(resets + 0x8, 4) == 0  # everything held in reset
    b.write(resets + CLR, 4, (1 << 22) | (1 << 5))  # release uart0 and io_bank0
    assert b.read(resets, 4) == 0x01FFFFFF & ~((1 << 22) | (1 << 5))
    assert b.read(resets + 0x8, 4) == (1 << 22) | (1 << 5)
    b.write(resets + SET, 4, 1 << 22)
    assert b.read(resets + 0x8, 4) == 1 << 5
    b.write(resets + XOR, 4, 1 << 5)
    assert b.read(resets + 0x8, 4) == 0


def test_rp2040_xosc_pll_and_clock_selection() -> None:
    b = bus("rp2040")
    xosc, pll, clocks = 0x40024000, 0x40028000, 0x40008000
    assert b.read(xosc + 0x4, 4) >> 31 == 0
    b.write(xosc + SET, 4, 0xFAB << 12)
    assert b.read(xosc + 0x4, 4) & 0x80001000 == 0x80001000  # STABLE, ENABLED
    b.write(xosc, 4, 0xD1E << 12)  # DISABLE
    assert b.read(xosc + 0x4, 4) >> 31 == 0
    assert b.read(pll, 4) >> 31 == 0  # PWR.PD and VCOPD set at reset
    b.write(pll + 0x4 + CLR, 4, 0x1)
    assert b.read(pll, 4) >> 31 == 0  # the VCO is still powered down
    b.write(pll + 0x4 + CLR, 4, 0x20)
    assert b.read(pll, 4) >> 31 == 1
    assert b.read(clocks + 0x44, 4) == 1  # clk_sys from clk_ref at reset
    b.write(clocks + 0x3C + SET, 4, 1)
    assert b.read(clocks + 0x44, 4) == 2
    b.write(clocks + 0x30, 4, 2)
    assert b.read(clocks + 0x38, 4) == 4
    b.write(clocks + 0x38, 4, 0)  # read-only
    assert b.read(clocks + 0x38, 4) == 4


def test_uart_tx_is_console_output_and_status_never_blocks() -> None:
    out: list[int] = []
    b = bus("rp2040", out)
    uart0 = 0x40034000
    for byte in b"hi\n":
        assert not b.read(uart0 + 0x18, 4) & (1 << 5)  # TXFF clear
        b.write(uart0, 1, byte)
    assert bytes(out) == b"hi\n"
    assert b.read(uart0 + 0x18, 4) == 0x90  # TXFE | RXFE, not BUSY
    b.write(uart0 + 0x24, 4, 67)
    assert b.read(uart0 + 0x24, 4) == 67
    h7: list[int] = []
    h = bus("stm32h743", h7)
    usart3 = 0x40004800
    assert not h.read(usart3 + 0x1C, 4) & (1 << 21)  # TEACK follows CR1.TE
    h.write(usart3, 4, 0x9)
    isr = h.read(usart3 + 0x1C, 4)
    assert isr & (1 << 21) and isr & (1 << 7) and isr & (1 << 6)
    h.write(usart3 + 0x28, 4, ord("A"))
    assert h7 == [ord("A")]


def test_stm32h743_ready_bits_follow_their_enables() -> None:
    b = bus("stm32h743")
    rcc, pwr = 0x58024400, 0x58024800
    assert b.read(rcc, 4) & 0x25 == 0x25  # HSION, HSIRDY, HSIDIVF at reset
    b.write(rcc, 4, b.read(rcc, 4) | (1 << 16) | (1 << 24))
    cr = b.read(rcc, 4)
    assert cr & (1 << 17) and cr & (1 << 25)  # HSERDY, PLL1RDY
    b.write(rcc, 4, cr & ~(1 << 24))
    assert not b.read(rcc, 4) & (1 << 25)
    b.write(rcc + 0x10, 4, 3)  # SW = PLL1
    assert (b.read(rcc + 0x10, 4) >> 3) & 7 == 3  # SWS
    assert b.read(pwr + 0x4, 4) & (1 << 13)  # ACTVOSRDY
    b.write(pwr + 0x18, 4, 3 << 14)
    assert b.read(pwr + 0x18, 4) & (1 << 13)  # VOSRDY
    assert (b.read(pwr + 0x4, 4) >> 14) & 3 == 3  # ACTVOS follows VOS
    b.write(0x52002000, 4, 0x24)
    assert b.read(0x52002000, 4) == 0x24  # FLASH_ACR latency reads back


def test_write_ops_change_their_target_register() -> None:
    """SIO GPIO_OUT_SET/CLR/XOR act on GPIO_OUT (pico-sdk gpio_put); STM32 BSRR sets ODR
    bits with its low half and clears them with its high half (HAL_GPIO_WritePin)."""
    rp = bus("rp2040")
    sio = 0xD0000000
    rp.write(sio + 0x14, 4, (1 << 25) | 1)  # GPIO_OUT_SET
    rp.write(sio + 0x18, 4, 1)  # GPIO_OUT_CLR
    rp.write(sio + 0x1C, 4, 0x6)  # GPIO_OUT_XOR
    assert rp.read(sio + 0x10, 4) == (1 << 25) | 0x6
    assert rp.read(sio + 0x14, 4) == 0  # the SET register reads 0
    rp.write(sio + 0x24, 4, 1 << 25)  # GPIO_OE_SET
    assert rp.read(sio + 0x20, 4) == 1 << 25
    h7 = bus("stm32h743")
    gpiob = 0x58020400
    h7.write(gpiob + 0x18, 4, (1 << 0) | (1 << 14))
    h7.write(gpiob + 0x18, 4, 1 << (16 + 14))
    assert h7.read(gpiob + 0x14, 4) == 1  # ODR
    assert h7.read(gpiob + 0x18, 4) == 0  # BSRR reads 0


def test_spin_locks_and_boot_locks_claim_on_read_release_on_write() -> None:
    b = bus("rp2350")
    sio, bootram = 0xD0000000, 0x400E0000
    assert b.read(sio + 0x100 + 4 * 9, 4) == 1 << 9
    assert b.read(sio + 0x100 + 4 * 9, 4) == 0
    assert b.read(sio + 0x5C, 4) == 1 << 9
    b.write(sio + 0x100 + 4 * 9, 4, 0)
    assert b.read(sio + 0x5C, 4) == 0
    assert b.read(bootram + 0x80C, 4) == 1
    assert b.read(bootram + 0x808, 4) == 1
    b.write(bootram + 0x80C, 4, 1)
    assert b.read(bootram + 0x808, 4) == 0


def test_undeclared_registers_read_back_and_are_reported() -> None:
    b = bus("rp2040")
    b.write(0x40050000 + 0xC, 4, 5)  # PWM CH0_CC: not declared
    assert b.read(0x4005000C, 4) == 5
    b.write(0x4005000C + SET, 4, 0x10)
    assert b.read(0x4005000C, 2) == 0x15
    b.read(0x4000C008, 4)
    rows = {r["address"]: r for r in b.touched()}
    assert rows["0x4005000c"] == {
        "address": "0x4005000c",
        "peripheral": "(undeclared)",
        "register": "+0x00c",
        "reads": 2,
        "writes": 2,
        "modeled": False,
    }
    assert rows["0x4000c008"]["register"] == "RESET_DONE" and rows["0x4000c008"]["modeled"]
    note = b.note()
    assert note is not None and "1 peripheral register(s)" in note and "0x4005000c" in note


def test_models_in_a_space_get_the_atomic_aliases() -> None:
    class Model:
        def __init__(self) -> None:
            self.value = 0

        def read(self, offset: int, size: int) -> int:
            return self.value

        def write(self, offset: int, size: int, value: int) -> None:
            self.value = value

    b = bus("rp2040")
    model = Model()
    assert b.add_model(0x40054000, 0x1000, model)
    assert not b.add_model(0x30000000, 0x1000, Model())  # in no space
    b.write(0x40054000 + 0x38 + SET, 4, 0x5)
    b.write(0x40054000 + 0x38 + CLR, 4, 0x1)
    assert model.value == 0x4
    assert b.read(0x40054038, 4) == 0x4


def test_a_model_that_decodes_aliases_gets_the_alias_offset() -> None:
    class Decoding:
        decodes_aliases = True

        def __init__(self) -> None:
            self.writes: list[tuple[int, int]] = []

        def read(self, offset: int, size: int) -> int:
            return 0xFF

        def write(self, offset: int, size: int, value: int) -> None:
            self.writes.append((offset, value))

    b = bus("rp2040")
    model = Decoding()
    assert b.add_model(0x40054000, 0x1000, model)
    b.write(0x40054000 + 0x34 + SET, 4, 0x2)  # e.g. a write-1-to-clear INTR
    b.write(0x40054000 + 0x34, 4, 0x1)
    assert model.writes == [(0x2034, 0x2), (0x34, 0x1)]


def _crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def test_boot2_check_is_the_bootroms_crc() -> None:
    spec = load_chip("rp2040").boot2
    assert spec is not None
    body = bytes(range(252))
    good = body + _crc32_mpeg2(body).to_bytes(4, "little")
    assert boot2_valid(spec, good)
    assert not boot2_valid(spec, good[:-1] + bytes([good[-1] ^ 1]))
    assert not boot2_valid(spec, good[:200])
    assert _crc32_mpeg2(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value


def _chip(text: str) -> str:
    space = '[[space]]\nname = "apb"\nstart = 0x40000000\nsize = 0x10000\n'
    return f'name = "x"\ndescription = "d"\n{space}{text}'


def _window(name: str = "w", base: str = "0x40000000", size: str = "0x400", extra: str = "") -> str:
    return f'[[window]]\nname = "{name}"\nbase = {base}\nsize = {size}\n{extra}'


def _register(body: str) -> str:
    return _window(extra=f'[[window.register]]\nname = "A"\n{body}\n')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_window(extra="colour = 1\n"), "window[0]: unknown key 'colour'"),
        (_register('offset = 0\nread = { "3" = "B[0]" }'), "'B' is not a register of this window"),
        (_register('offset = 0\nread = { "3" = "open(A)" }'), "Call is not allowed"),
        (_register('offset = 0\nread = { "40" = "1" }'), "read.40: field '40'"),
        (_register('offset = 0\nread = { "3" = "A[" }'), "expression 'A['"),
        (_register("offset = 0x3fe"), "register[0].offset"),
        (_window(base="0x50000000"), "window w (0x50000000) is in no [[space]]"),
        (
            _window("a", size="0x800") + _window("b", base="0x40000400"),
            "windows a and b overlap",
        ),
        (
            _window(extra='[[window.register]]\nname = "ST"\noffset = 0\nclaim_status = "LOCK"\n'),
            "claim_status 'LOCK' names no array of kind claim",
        ),
        (
            _register('offset = 0\n[[window.register.write]]\ntarget = "B"\nop = "set"'),
            "'B' is not a register of this window",
        ),
        (
            _register('offset = 0\n[[window.register.write]]\ntarget = "A"\nop = "nand"'),
            "unknown write op 'nand'",
        ),
    ],
)
def test_schema_errors_are_one_line(text: str, expected: str) -> None:
    with pytest.raises(BoardError) as info:
        parse_chip(tomllib.loads(_chip(text)), "x.toml")
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("x.toml: ")


def test_a_board_naming_an_unknown_chip_or_overlapping_a_space_is_refused(tmp_path: Path) -> None:
    raw = tomllib.loads((chip_dir().parent / "boards" / "rp2040.toml").read_text())
    raw["name"] = "mine"
    with pytest.raises(BoardError, match="unknown peripherals 'nope'"):
        parse_board({**raw, "peripherals": "nope"}, "mine.toml")
    ram = {"name": "big", "kind": "ram", "start": 0x40000000, "size": 0x1000}
    with pytest.raises(BoardError, match="region big overlaps the peripheral space apb of rp2040"):
        parse_board({**raw, "memory": [*raw["memory"], ram]}, "mine.toml")
    assert (
        parse_board({k: v for k, v in raw.items() if k != "peripherals"}, "m").peripherals is None
    )
