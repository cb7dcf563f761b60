"""Arm semihosting for Cortex-M firmware (``bkpt 0xab``, operation in r0, argument in r1).

Implemented: the console (SYS_WRITEC, SYS_WRITE0, SYS_WRITE to stdout/stderr,
``:tt`` opens as newlib's rdimon does), SYS_READ (always end of file),
SYS_ISTTY, SYS_SEEK, SYS_FLEN, SYS_CLOCK, SYS_TIME, SYS_ERRNO, SYS_HEAPINFO
(zeros: the firmware's own linker symbols decide), SYS_EXIT and
SYS_EXIT_EXTENDED. Files on the host are deliberately not reachable: a
regression run must not depend on or change the machine it runs on.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from simcore.errors import EmulationError

SYS_OPEN = 0x01
SYS_CLOSE = 0x02
SYS_WRITEC = 0x03
SYS_WRITE0 = 0x04
SYS_WRITE = 0x05
SYS_READ = 0x06
SYS_ISTTY = 0x09
SYS_SEEK = 0x0A
SYS_FLEN = 0x0C
SYS_CLOCK = 0x10
SYS_TIME = 0x11
SYS_ERRNO = 0x13
SYS_HEAPINFO = 0x16
SYS_EXIT = 0x18
SYS_EXIT_EXTENDED = 0x20

ADP_STOPPED_APPLICATION_EXIT = 0x20026

_NAMES = {v: k for k, v in globals().items() if k.startswith("SYS_") and isinstance(v, int)}

#: Reads ``n`` bytes at an address; raises EmulationError when unmapped.
ReadMem = Callable[[int, int], bytes]
WriteMem = Callable[[int, bytes], None]

_STRING_CHUNK = 64
_MAX_STRING = 1 << 20
#: Console output kept per run: more is a firmware printing in a loop, not a result.
MAX_CONSOLE_BYTES = 64 << 20


def operation_name(op: int) -> str:
    """``SYS_WRITE`` for 0x05, and so on (for messages)."""
    return _NAMES.get(op, f"operation 0x{op:02x}")


@dataclass
class Exit:
    """The firmware asked to stop; ``code`` is its exit status."""

    code: int


@dataclass
class Semihost:
    """The host side of semihosting: collects console output, answers requests."""

    read_mem: ReadMem
    write_mem: WriteMem
    seconds: Callable[[], float]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    echo: Callable[[int, str], None] | None = None
    _handles: dict[int, int] = field(default_factory=dict)  # handle -> console fd
    _console_bytes: int = 0

    def _word(self, address: int) -> int:
        return int(struct.unpack("<I", self.read_mem(address, 4))[0])

    def _words(self, address: int, n: int) -> tuple[int, ...]:
        return struct.unpack(f"<{n}I", self.read_mem(address, 4 * n))

    def _string(self, address: int) -> bytes:
        """Read a NUL-terminated string without reading past mapped memory."""
        out = bytearray()
        while len(out) < _MAX_STRING:
            # Read one byte at a time near a possible end of memory, in chunks otherwise.
            try:
                chunk = self.read_mem(address + len(out), _STRING_CHUNK)
            except EmulationError:
                chunk = self.read_mem(address + len(out), 1)
            end = chunk.find(b"\0")
            if end >= 0:
                out += chunk[:end]
                return bytes(out)
            out += chunk
        raise EmulationError(f"semihosting string at 0x{address:08x} has no terminating NUL")

    def _emit(self, fd: int, data: bytes) -> None:
        self._console_bytes += len(data)
        if self._console_bytes > MAX_CONSOLE_BYTES:
            raise EmulationError(
                f"console output passed {MAX_CONSOLE_BYTES >> 20} MB",
                hint="the firmware is probably printing in a loop; print less",
            )
        text = data.decode("utf-8", errors="replace")
        (self.stderr if fd == 2 else self.stdout).append(text)
        if self.echo is not None:
            self.echo(fd, text)

    def handle(self, op: int, arg: int) -> int | Exit:
        """Serve one request; return the value for r0, or Exit."""
        if op == SYS_WRITEC:
            self._emit(1, self.read_mem(arg, 1))
            return 0
        if op == SYS_WRITE0:
            self._emit(1, self._string(arg))
            return 0
        if op == SYS_WRITE:
            handle, buf, length = self._words(arg, 3)
            fd = self._handles.get(handle, handle)
            if fd not in (1, 2):
                return length  # nothing written
            self._emit(fd, self.read_mem(buf, length) if length else b"")
            return 0
        if op == SYS_OPEN:
            name_ptr, mode, _length = self._words(arg, 3)
            if self._string(name_ptr) != b":tt":
                return 0xFFFFFFFF
            # rdimon opens ":tt" with mode 0 (read) as stdin, 4 (write) as stdout,
            # 8 (append) as stderr.
            handle = len(self._handles) + 3
            self._handles[handle] = 2 if mode >= 8 else 1 if mode >= 4 else 0
            return handle
        if op == SYS_CLOSE:
            return 0
        if op == SYS_READ:
            _handle, _buf, length = self._words(arg, 3)
            return length  # nothing read: end of file
        if op == SYS_ISTTY:
            return 1
        if op in (SYS_SEEK, SYS_FLEN):
            return 0
        if op == SYS_CLOCK:
            return int(self.seconds() * 100) & 0xFFFFFFFF
        if op == SYS_TIME:
            return 0
        if op == SYS_ERRNO:
            return 0
        if op == SYS_HEAPINFO:
            block = self._word(arg)
            self.write_mem(block, bytes(16))
            return 0
        if op == SYS_EXIT:
            # 32-bit callers pass the reason itself in r1, not a pointer.
            return Exit(0 if arg == ADP_STOPPED_APPLICATION_EXIT else 1)
        if op == SYS_EXIT_EXTENDED:
            reason, subcode = self._words(arg, 2)
            code = subcode if reason == ADP_STOPPED_APPLICATION_EXIT else 1
            return Exit(code - (1 << 32) if code & 0x80000000 else code)
        raise EmulationError(
            f"semihosting {operation_name(op)} is not supported",
            hint="simcore serves console output, exit and clock requests only",
        )
