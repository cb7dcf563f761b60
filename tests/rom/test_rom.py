"""simcore's own bootrom: firmware that looks functions up as pico-sdk does, on rp2040 and rp2350.

The firmware (rom_fw.c) reads the 16-bit pointers at the fixed addresses, calls the
lookup function, calls what it finds and writes the results to its output buffer;
these tests compare them with Python's IEEE arithmetic (struct packs to single and
double precision, rounding to nearest even, as the ROM's functions must).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from sim_support import needs_toolchain

from simcore import rom
from simcore.boards import get_board, parse_board
from simcore.engine import run_firmware
from simcore.errors import BoardError, MemoryFault, NotModeled, ToolchainError
from simcore.results import RunResult
from simcore.toolchain import INCLUDE_DIR, build_elf

HERE = Path(__file__).parent
N_OUT = 128

pytestmark = needs_toolchain

#: Builds rom_fw.c for a board, with one of its endings (0: all checks, then return).
Builder = Callable[..., Path]


def _f32(x: float) -> int:
    return int.from_bytes(struct.pack("<f", x), "little")


def _f(x: float) -> float:
    """``x`` rounded to single precision."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _u64(n: int) -> tuple[int, int]:
    """The two words of a 64-bit integer (two's complement), low first."""
    n &= (1 << 64) - 1
    return n & 0xFFFFFFFF, n >> 32


def _d(x: float) -> tuple[int, int]:
    bits = int.from_bytes(struct.pack("<d", x), "little")
    return bits & 0xFFFFFFFF, bits >> 32


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    out = tmp_path_factory.mktemp("rom")
    built: dict[tuple[str, int], Path] = {}

    def _build(board: str, case: int = 0) -> Path:
        if (board, case) not in built:
            elf = out / f"rom-{board}-{case}.elf"
            defines = (board.upper(), f"CASE={case}")
            built[board, case] = build_elf(
                [HERE / "rom_fw.c"],
                get_board(board),
                elf,
                include_dirs=(INCLUDE_DIR,),
                defines=defines,
                opt="-Os",
            ).elf
        return built[board, case]

    return _build


def _run(elf: Path, board: str) -> tuple[RunResult, list[int]]:
    result = run_firmware(elf, board, inputs=b"\0" * 4)
    assert result.exit_code == 0
    words = list(struct.unpack(f"<{N_OUT}I", result.outputs))
    return result, words[: words[-1]]


def test_rp2040_lookups_and_results(build: Builder) -> None:
    result, w = _run(build("rp2040"), "rp2040")
    a, b = _f(1.1), _f(3.3)
    x, y = 1.1, 3.3
    expected = [
        0x03_01_75_4D,  # 'M', 'u', 1, version 3
        bin(0xF0F01234).count("1"),
        int(f"{0x12345678:032b}"[::-1], 2),
        11,  # clz(1 << 20)
        32,  # clz(0)
        7,  # ctz(0x80)
        1,  # memset returns its pointer
        0x00A5A500,  # buf[0], buf[1], buf[7], buf[8] after memset(buf + 1, 0xa5, 7)
        0x3C3C3C3C,
        0x3C3C3C3C,
        0,  # memset4 of 8 bytes leaves words[2]
        ord("s") | ord("i") << 8 | ord("e") << 16,  # buf[3], buf[4], buf[9], buf[10]
        0xDEADBEEF,
        3,  # ROM version, as __aeabi_float_init reads it
        32,  # the float table's size in words, at table - 2
        _f32(a + b),
        _f32(a - b),
        _f32(a * b),
        _f32(a / b),
        _f32(math.sqrt(2.0)),
        (-3) & 0xFFFFFFFF,  # float2int(-2.5) rounds towards minus infinity
        _f32(-0.75),  # fix2float(-3, 2)
    ]
    assert w[: len(expected)] == expected
    sin_bits, cos_bits, exp_bits = w[len(expected) : len(expected) + 3]
    sin_a, cos_a, exp_a = (
        struct.unpack("<f", v.to_bytes(4, "little"))[0] for v in (sin_bits, cos_bits, exp_bits)
    )
    assert sin_a == pytest.approx(math.sin(a), rel=2e-7)
    assert cos_a == pytest.approx(math.cos(a), rel=2e-7)
    assert exp_a == pytest.approx(math.exp(a), rel=2e-7)
    rest = w[len(expected) + 3 :]
    assert rest[:12] == [
        *_d(x + y),
        *_d(x * y),
        *_d(x / y),
        *_d(math.sqrt(2.0)),
        (-8) & 0xFFFFFFFF,  # double2int64(-7.25) = -8, low word
        0xFFFFFFFF,  # and high word
        _f32(x),  # double2float(1.1)
        0,  # 'XY' is not in the ROM: NULL
    ]
    conversions = rest[12:]
    assert conversions[:41] == [
        28,  # float2fix(1.75, 4)
        (-3) & 0xFFFFFFFF,  # float2fix(-1.3, 1) = floor(-2.6)
        0,  # float2ufix(-1.0, 3)
        3,  # float2uint(3.99)
        0xFFFFFFFF,  # float2uint(5e9) saturates
        0x7FFFFFFF,  # float2int(3e9) saturates
        _f32(16777216.0),  # int2float(16777217) rounds to even
        _f32(4294967296.0),  # uint2float(0xffffffff)
        _f32(1.5),  # ufix2float(3, 1)
        _f32(2.0**40),  # int642float(2**40 + 1)
        _f32(-1.25),  # fix642float(-5, 2)
        *_u64(-1),  # float2int64(-0.5) rounds down
        *_u64(3 << 39),  # float2fix64(1.5, 40)
        *_u64(int(_f(1e19))),  # float2uint64(1e19f)
        *_d(_f(0.1)),  # float2double(0.1f)
        (-1) & 0xFFFFFFFF,  # fcmp(1.5, 1.75)
        0x80000000,  # double2int(-1e10) saturates
        3,  # double2fix(0.75, 2)
        0,  # double2uint(-1.0)
        5,  # double2ufix(2.5, 1)
        *_d(-7.0),  # int2double
        *_d(0.625),  # fix2double(5, 3)
        *_d(1.0),  # fix642double(2**60, 60)
        *_d(2.0**64),  # uint642double(2**64 - 1)
        *_u64(-5),  # double2fix64(-2.5, 1)
        *_u64(10**19),  # double2uint64(1e19)
        1,  # dcmp(2.5, 0.75)
        # fcmp_flags / dcmp_flags: NZCV in bits 3-0, bit 4 = r0-r3 kept
        0x10 | 0b1000,  # 1 < 2: C clear
        0x10 | 0b0110,  # 2 == 2: Z and C set
        0x10 | 0b0010,  # 2 > 1: C set
        0x10 | 0b1000,  # 1.0 < 2.0 (double)
    ]
    sin_lo, sin_hi, cos_lo, cos_hi = conversions[41:45]
    sin_half = struct.unpack("<d", struct.pack("<II", sin_lo, sin_hi))[0]
    cos_half = struct.unpack("<d", struct.pack("<II", cos_lo, cos_hi))[0]
    assert sin_half == pytest.approx(math.sin(0.5), rel=1e-15)
    assert cos_half == pytest.approx(math.cos(0.5), rel=1e-15)
    assert len(conversions) == 45
    assert any("'XY' (0x5958)" in note for note in result.notes)


def test_rp2350_lookups(build: Builder) -> None:
    result, w = _run(build("rp2350"), "rp2350")
    assert w == [
        0x02_02_75_4D,  # 'M', 'u', 2, version 2
        1,  # bootrom_state_reset found and called
        5,  # get_sys_info(BOOT_RANDOM) wrote 5 words
        0x10,  # the flags answered
        0x53494D43,  # the first word of simcore's fixed boot random
        (-13) & 0xFFFFFFFF,  # BOOTROM_ERROR_BUFFER_TOO_SMALL
        0x53494D43,  # 'GR' data
        0,  # 'GR' is data, not a function
        0,  # no Non-secure variants
    ]
    assert any("'SR' (0x5253)" in note for note in result.notes)


@pytest.mark.parametrize("board", ["rp2040", "rp2350"])
def test_rom_cycles_are_counted_tagged_and_deterministic(build: Builder, board: str) -> None:
    elf = build(board)
    first, _ = _run(elf, board)
    second, _ = _run(elf, board)
    assert first.cycles == second.cycles
    assert first.instructions == second.instructions
    rom_report = first.cycle_report["rom"]
    assert rom_report["tag"] == "approximate"
    assert 0 < rom_report["cycles"] < (first.cycles or 0)
    assert first.cycle_report["cycle_model"]["share_by_tag"].get("approximate", 0) > 0
    names = [entry["function"] for entry in first.cycle_report["profile"]]
    assert any(name.startswith("rom:") for name in names)
    assert any("bootrom" in note and "approximate" in note for note in first.notes)


@pytest.mark.parametrize(
    ("board", "what"), [("rp2040", "reset_usb_boot ('UB'"), ("rp2350", "reboot ('RB'")]
)
def test_a_reboot_through_the_rom_ends_the_run(build: Builder, board: str, what: str) -> None:
    with pytest.raises(NotModeled, match=re.escape(f"ROM's {what}")) as info:
        run_firmware(build(board, 1), board, inputs=b"\0" * 4)
    # Named at the firmware's call, not inside the ROM.
    assert re.search(r"\) from 0x1000[0-9a-f]{4} in (main|ending)\+", str(info.value))


@pytest.mark.parametrize("cycles", [True, False], ids=["cycles", "no-cycles"])
@pytest.mark.parametrize("board", ["rp2040", "rp2350"])
def test_calling_a_code_the_rom_lacks_names_it(build: Builder, board: str, cycles: bool) -> None:
    """The NULL the lookup returns is called: a NULL call (address 0 is the ROM's header)."""
    with pytest.raises(MemoryFault) as info:
        run_firmware(build(board, 2), board, inputs=b"\0" * 4, cycles=cycles)
    assert "NULL pointer" in str(info.value)
    assert "'QQ' (0x5151)" in str(info.value)


def test_without_the_toolchain_only_a_program_using_the_rom_fails(
    build: Builder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sim_support import build_asm

    plain = build_asm(tmp_path, "rp2040", "    movs r0, #0")
    reads_rom = build_asm(tmp_path, "rp2040", "    movs r1, #0x10\n    ldr r0, [r1]", tag="reads")
    elf = build("rp2040")

    def no_gcc(name: str) -> Path:
        raise ToolchainError("arm-none-eabi-gcc not found on PATH", hint="install it")

    monkeypatch.setattr(rom, "build", no_gcc)
    assert run_firmware(plain, "rp2040").exit_code is not None
    with pytest.raises(ToolchainError, match=r"reads or runs rp2040's bootrom .* not found"):
        run_firmware(reads_rom, "rp2040")
    with pytest.raises(ToolchainError, match="bootrom"):
        run_firmware(elf, "rp2040", inputs=b"\0" * 4)
    null_call = build_asm(tmp_path, "rp2040", "    movs r0, #0\n    blx r0", tag="null")
    with pytest.raises(MemoryFault, match="NULL pointer"):
        run_firmware(null_call, "rp2040")


def test_code_names() -> None:
    assert rom.code_name(0x5958) == "'XY' (0x5958)"
    assert rom.code_name(0x0001) == "0x00000001"


def test_every_rom_image_a_board_can_name_has_a_recipe() -> None:
    from simcore.boards import ROM_IMAGES

    assert set(ROM_IMAGES) == set(rom.RECIPES)


@pytest.mark.parametrize(
    ("region", "message"),
    [
        ({"kind": "rom", "start": 0, "size": 0x4000}, "missing key 'image'"),
        ({"kind": "rom", "start": 0, "size": 0x4000, "image": "nope"}, "unknown ROM image"),
        (
            {"kind": "ram", "start": 0, "size": 0x4000, "image": "rp2040"},
            "image only on a region of kind rom",
        ),
    ],
)
def test_rom_regions_are_checked(region: dict[str, object], message: str) -> None:
    board = {
        "name": "x",
        "description": "x",
        "core": "cortex-m0plus",
        "clock_hz": 1,
        "vector_table": 0x10000000,
        "memory": [
            {"name": "rom", **region},
            {"name": "flash", "kind": "flash", "start": 0x10000000, "size": 0x10000},
            {"name": "ram", "kind": "ram", "start": 0x20000000, "size": 0x10000},
        ],
    }
    with pytest.raises(BoardError, match=message):
        parse_board(board, "x.toml")


def test_a_rom_region_loads_no_firmware_and_maps_read_execute() -> None:
    board = get_board("rp2040")
    region = board.region_at(0)
    assert region is not None and region.image == "rp2040"


def test_an_edited_rom_source_builds_a_new_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image is named by the hash of its sources: an edit never finds a stale image."""
    import shutil

    sources = tmp_path / "rom"
    shutil.copytree(rom.source_dir(), sources)
    monkeypatch.setattr(rom, "source_dir", lambda: sources)
    monkeypatch.setenv("SIMCORE_CACHE_DIR", str(tmp_path / "cache"))
    before = rom.build("rp2350")
    assert rom.build("rp2350") == before  # found in the cache
    copyright_ = b"simcore RP2350 ROM (written for simcore; no vendor code)"
    text = (sources / "rp2350_rom.S").read_bytes()
    (sources / "rp2350_rom.S").write_bytes(text.replace(copyright_, b"edited ROM"))
    after = rom.build("rp2350")
    assert after != before and before.is_file()
    assert b"edited ROM" in after.read_bytes() and b"edited ROM" not in before.read_bytes()
