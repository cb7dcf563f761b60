"""ELF loading: good files load with symbols and lines; hostile files end in ElfError (exit 2)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simcore.boards import get_board
from simcore.cli import main
from simcore.elf import check_fits, load_elf
from simcore.errors import ElfError, SimError


def test_example_loads_with_symbols_and_lines(example_elfs: dict[str, Path]) -> None:
    image = load_elf(example_elfs["rp2350"])
    main_sym = image.symbol("main")
    assert main_sym is not None and main_sym.kind == "func" and main_sym.address % 2 == 0
    assert image.symbol("simcore_io") is not None
    where = image.describe(main_sym.address + 4)
    assert where.startswith("main+0x4 (dense_demo.c:")
    assert image.attributes.cpu_arch == 17  # Armv8-M Mainline
    assert any(s.name == ".text" and s.mapping for s in image.code_sections)
    check_fits(image, get_board("rp2350"))


def test_stm32_image_loads_text_at_flash_runs_in_itcm(example_elfs: dict[str, Path]) -> None:
    image = load_elf(example_elfs["stm32h743"])
    text = [s for s in image.segments if s.executable and s.virtual_address == 0]
    assert text and 0x08000000 <= text[0].load_address < 0x08200000


def test_armv7em_refused_on_m0plus(example_elfs: dict[str, Path]) -> None:
    with pytest.raises(ElfError) as info:
        check_fits(load_elf(example_elfs["stm32h743"]), get_board("rp2040"))
    msg = str(info.value)
    assert "Armv7E-M" in msg and "Cortex-M0+" in msg and "rp2040" in msg


def test_double_precision_refused_on_m33_single_fpu(example_elfs: dict[str, Path]) -> None:
    # The M7 build (fpv5-d16) may use doubles: an M33 with a single-precision FPU cannot.
    with pytest.raises(ElfError, match=r"Armv7E-M|double-precision"):
        check_fits(load_elf(example_elfs["stm32h743"]), get_board("rp2350"))


def test_m4f_refuses_double_precision_and_armv8m_and_m0_refuses_armv7m(
    example_elfs: dict[str, Path],
) -> None:
    """The M7 build (fpv5-d16, may use doubles) and the M33 build (Armv8-M) on the
    nRF52840's Cortex-M4F (FPv4-SP), and the M4F build (Armv7E-M) on the micro:bit's M0."""
    with pytest.raises(ElfError) as info:
        check_fits(load_elf(example_elfs["stm32h743"]), get_board("nrf52840"))
    msg = str(info.value)
    assert "double-precision" in msg and "Cortex-M4F" in msg and "-mfpu=fpv4-sp-d16" in msg
    with pytest.raises(ElfError, match=r"Armv8-M Mainline code.*Cortex-M4F runs Armv7E-M"):
        check_fits(load_elf(example_elfs["rp2350"]), get_board("stm32f446"))
    with pytest.raises(ElfError, match=r"Armv7E-M code.*bbc-microbit's Cortex-M0 runs Armv6-M"):
        check_fits(load_elf(example_elfs["nrf52840"]), get_board("bbc-microbit"))
    check_fits(load_elf(example_elfs["nrf52840"]), get_board("nrf52840"))


def test_segment_outside_board_named(example_elfs: dict[str, Path]) -> None:
    # Armv6-M code runs on an M7, but the RP2040 link puts flash at 0x10000000.
    with pytest.raises(ElfError) as info:
        check_fits(load_elf(example_elfs["rp2040"]), get_board("stm32h743"))
    msg = str(info.value)
    assert "0x10000000" in msg and "stm32h743" in msg and "itcm 0x00000000" in msg


def _cli_error(path: Path, board: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["run", str(path), "--board", board])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("simcore: error: "), err
    return lines[0]


def test_hostile_files(
    tmp_path: Path, example_elfs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    good = example_elfs["rp2040"].read_bytes()
    empty = tmp_path / "empty.elf"
    empty.write_bytes(b"")
    assert "empty file" in _cli_error(empty, "rp2040", capsys)

    truncated = tmp_path / "truncated.elf"
    truncated.write_bytes(good[:300])
    assert "truncated" in _cli_error(truncated, "rp2040", capsys)

    x86 = Path(shutil.which("true") or "/bin/true")
    assert "64-bit" in _cli_error(x86, "rp2040", capsys)

    big = tmp_path / "big.elf"
    big.write_bytes(good[:5] + b"\x02" + good[6:])
    assert "big-endian" in _cli_error(big, "rp2040", capsys)

    x86_32 = tmp_path / "i386.elf"
    x86_32.write_bytes(good[:18] + struct.pack("<H", 3) + good[20:])  # e_machine = EM_386
    assert "not ARM" in _cli_error(x86_32, "rp2040", capsys)

    text = tmp_path / "firmware.bin"
    text.write_bytes(b"\x00\x20\x04\x20" * 8)
    assert "not an ELF" in _cli_error(text, "rp2040", capsys)

    assert "no such file" in _cli_error(tmp_path / "missing.elf", "rp2040", capsys)
    assert "does not fit" in _cli_error(example_elfs["rp2040"], "stm32h743", capsys)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=512), st.integers(min_value=0, max_value=4096))
def test_random_bytes_never_crash(tmp_path: Path, blob: bytes, cut: int) -> None:
    """Random bytes, alone or behind a valid ELF header, end in a SimError with exit code 2."""
    path = tmp_path / "random.elf"
    header = b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack("<HH", 2, 40)
    for data in (blob, (header + blob)[: max(cut, 20)]):
        path.write_bytes(data)
        with pytest.raises(SimError) as info:
            check_fits(load_elf(path), get_board("rp2040"))
        assert info.value.exit_code == 2
        assert "\n" not in str(info.value)
