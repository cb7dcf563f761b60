"""The semihosting v2 feature file, host side only (no emulator)."""

from __future__ import annotations

import struct

from simcore.semihosting import (
    ADP_STOPPED_APPLICATION_EXIT,
    SYS_CLOSE,
    SYS_EXIT,
    SYS_EXIT_EXTENDED,
    SYS_FLEN,
    SYS_GET_CMDLINE,
    SYS_OPEN,
    SYS_READ,
    SYS_SEEK,
    Exit,
    Semihost,
)

NAME, BLOCK, BUF = 0x100, 0x200, 0x300


def host() -> tuple[Semihost, bytearray]:
    mem = bytearray(0x400)

    def read(address: int, n: int) -> bytes:
        return bytes(mem[address : address + n])

    def write(address: int, data: bytes) -> None:
        mem[address : address + len(data)] = data

    return Semihost(read, write, lambda: 0.0), mem


def call(sh: Semihost, mem: bytearray, op: int, *words: int) -> int | Exit:
    mem[BLOCK : BLOCK + 4 * len(words)] = struct.pack(f"<{len(words)}I", *words)
    return sh.handle(op, BLOCK)


def test_feature_file_reads_magic_and_both_features() -> None:
    sh, mem = host()
    name = b":semihosting-features"
    mem[NAME : NAME + len(name) + 1] = name + b"\0"
    handle = call(sh, mem, SYS_OPEN, NAME, 0, len(name))
    assert isinstance(handle, int) and handle != 0xFFFFFFFF
    assert call(sh, mem, SYS_FLEN, handle) == 5
    assert call(sh, mem, SYS_READ, handle, BUF, 4) == 0  # 0 bytes not read
    assert bytes(mem[BUF : BUF + 4]) == b"SHFB"
    assert call(sh, mem, SYS_SEEK, handle, 4) == 0
    assert call(sh, mem, SYS_READ, handle, BUF, 8) == 7  # one byte read, 7 not
    assert mem[BUF] == 0b11  # SH_EXT_EXIT_EXTENDED | SH_EXT_STDOUT_STDERR
    assert call(sh, mem, SYS_CLOSE, handle) == 0
    # Writing it is refused, as is any other host file.
    assert call(sh, mem, SYS_OPEN, NAME, 4, len(name)) == 0xFFFFFFFF
    mem[NAME : NAME + 9] = b"data.bin\0"
    assert call(sh, mem, SYS_OPEN, NAME, 0, 8) == 0xFFFFFFFF


def test_exit_status_only_through_exit_extended() -> None:
    sh, mem = host()
    assert sh.handle(SYS_EXIT, ADP_STOPPED_APPLICATION_EXIT) == Exit(0)
    assert sh.handle(SYS_EXIT, 0x20023) == Exit(1)  # ADP_Stopped_RunTimeErrorUnknown
    assert call(sh, mem, SYS_EXIT_EXTENDED, ADP_STOPPED_APPLICATION_EXIT, 1) == Exit(1)
    assert call(sh, mem, SYS_EXIT_EXTENDED, ADP_STOPPED_APPLICATION_EXIT, 0xFFFFFFFF) == Exit(-1)


def test_command_line_is_empty() -> None:
    sh, mem = host()
    mem[BUF] = 0x55
    assert call(sh, mem, SYS_GET_CMDLINE, BUF, 80) == 0
    assert mem[BUF] == 0 and struct.unpack_from("<I", mem, BLOCK + 4)[0] == 0
