"""Build tests/sdk_like's firmware: sdk_like_fw.c per chip, with a boot2 stage on the RP2040."""

from __future__ import annotations

import subprocess
from pathlib import Path

HERE = Path(__file__).parent

#: Per board: compiler flags, the chip macro, flash and RAM (origin, length), boot2 or not.
BOARDS = {
    "rp2040": (
        ["-mcpu=cortex-m0plus"],
        "CHIP_RP2040",
        (0x10000000, 0x200000),
        (0x20000000, 0x42000),
        True,
    ),
    "rp2350": (
        ["-mcpu=cortex-m33", "-mfloat-abi=soft"],
        "CHIP_RP2350",
        (0x10000000, 0x400000),
        (0x20000000, 0x82000),
        False,
    ),
    "stm32h743": (
        ["-mcpu=cortex-m7", "-mfloat-abi=soft"],
        "CHIP_STM32H743",
        (0x08000000, 0x200000),
        (0x20000000, 0x20000),
        False,
    ),
}


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 bit by bit (polynomial 0x04c11db7, MSB first, init 0xffffffff)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def build_boot2(out: Path, *, corrupt: bool = False) -> Path:
    """boot2_like.S as the 256 bytes the bootrom loads: code, padding, CRC word."""
    obj, raw = out / "boot2.o", out / "boot2.raw"
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            "-mcpu=cortex-m0plus",
            "-mthumb",
            "-c",
            str(HERE / "boot2_like.S"),
            "-o",
            str(obj),
        ],
        check=True,
    )
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(obj), str(raw)], check=True)
    code = raw.read_bytes().ljust(252, b"\0")
    assert len(code) == 252, "boot2 is larger than 252 bytes"
    crc = crc32_mpeg2(code) ^ (1 if corrupt else 0)
    binary = out / "boot2.bin"
    binary.write_bytes(code + crc.to_bytes(4, "little"))
    return binary


def build(board: str, out: Path, *, corrupt_boot2: bool = False) -> Path:
    """The ELF for ``board`` in ``out``."""
    flags, macro, (flash, flash_len), (ram, ram_len), boot2 = BOARDS[board]
    out.mkdir(parents=True, exist_ok=True)
    sources = [str(HERE / "sdk_like_fw.c")]
    boot2_section = ""
    if boot2:
        binary = build_boot2(out, corrupt=corrupt_boot2)
        stage = out / "boot2_section.S"
        stage.write_text(f'    .section .boot2, "ax"\n    .incbin "{binary}"\n')
        sources.append(str(stage))
        boot2_section = ".boot2 : { KEEP(*(.boot2)) } > FLASH\n"
    lds = out / "fw.ld"
    lds.write_text(
        f"""MEMORY {{
  FLASH (rx) : ORIGIN = {flash:#x}, LENGTH = {flash_len:#x}
  RAM (rwx) : ORIGIN = {ram:#x}, LENGTH = {ram_len:#x}
}}
SECTIONS {{
  {boot2_section}
  .vectors : ALIGN(256) {{ KEEP(*(.vectors)) }} > FLASH
  .text : {{ *(.text*) *(.rodata*) }} > FLASH
  .data : {{ __data_start = .; *(.data*) . = ALIGN(4); __data_end = .; }} > RAM AT > FLASH
  __data_load = LOADADDR(.data);
  .bss : {{ __bss_start = .; *(.bss*) *(COMMON) . = ALIGN(4); __bss_end = .; }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}}
"""
    )
    elf = out / f"sdk_like_{board}{'_badcrc' if corrupt_boot2 else ''}.elf"
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            *flags,
            "-mthumb",
            "-O2",
            "-g",
            f"-D{macro}",
            "-ffreestanding",
            "-nostdlib",
            "-nostartfiles",
            "-T",
            str(lds),
            *sources,
            "-lgcc",
            "-o",
            str(elf),
        ],
        check=True,
    )
    return elf
