"""Arm semihosting for Cortex-M firmware (``bkpt 0xab``, operation in r0, argument in r1).

Implemented: the console (SYS_WRITEC, SYS_WRITE0, SYS_WRITE to stdout/stderr,
``:tt`` opens as newlib's rdimon does), SYS_READ (end of file on the
console), SYS_ISTTY, SYS_SEEK, SYS_FLEN, SYS_CLOCK, SYS_TIME, SYS_ERRNO,
SYS_GET_CMDLINE (empty), SYS_HEAPINFO (zeros: the firmware's own linker
symbols decide), SYS_EXIT and SYS_EXIT_EXTENDED, and the semihosting v2
feature file ``:semihosting-features``. Files on the host are deliberately not
reachable: a regression run must not depend on or change the machine it runs on.

Exit status: on AArch32, SYS_EXIT takes the stop reason itself in r1 and no
status, so ADP_Stopped_ApplicationExit is exit code 0 and any other reason 1
(as QEMU does); only SYS_EXIT_EXTENDED carries a status. newlib's rdimon
(``--specs=rdimon.specs``) uses SYS_EXIT_EXTENDED for ``exit(n)`` only when the
feature file says SH_EXT_EXIT_EXTENDED, so simcore serves it: without it,
``exit(1)`` arrived as a plain SYS_EXIT and a failing test passed.
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
SYS_GET_CMDLINE = 0x15
SYS_HEAPINFO = 0x16
SYS_EXIT = 0x18
SYS_EXIT_EXTENDED = 0x20

ADP_STOPPED_APPLICATION_EXIT = 0x20026

#: The semihosting v2 feature file: magic "SHFB", then feature byte 0 with
#: bit 0 SH_EXT_EXIT_EXTENDED and bit 1 SH_EXT_STDOUT_STDERR (``:tt`` opened
#: for append is stderr, as simcore serves it).
FEATURES_FILE = b":semihosting-features"
SH_EXT_EXIT_EXTENDED = 1 << 0
SH_EXT_STDOUT_STDERR = 1 << 1
FEATURES = b"SHFB" + bytes([SH_EXT_EXIT_EXTENDED | SH_EXT_STDOUT_STDERR])

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
    _features: dict[int, int] = field(default_factory=dict)  # handle -> read position
    _next_handle: int = 3
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

    def console(self, fd: int, data: bytes) -> None:
        """Output that reached the console another way (a UART), counted with the rest."""
        self._emit(fd, data)

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

    def _new_handle(self) -> int:
        handle = self._next_handle
        self._next_handle += 1
        return handle

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
            if handle in self._features:
                return length  # read-only
            fd = self._handles.get(handle, handle)
            if fd not in (1, 2):
                return length  # nothing written
            self._emit(fd, self.read_mem(buf, length) if length else b"")
            return 0
        if op == SYS_OPEN:
            name_ptr, mode, _length = self._words(arg, 3)
            name = self._string(name_ptr)
            if name == FEATURES_FILE and mode in (0, 1):  # "r" or "rb" only
                handle = self._new_handle()
                self._features[handle] = 0
                return handle
            if name != b":tt":
                return 0xFFFFFFFF
            # rdimon opens ":tt" with mode 0 (read) as stdin, 4 (write) as stdout,
            # 8 (append) as stderr.
            handle = self._new_handle()
            self._handles[handle] = 2 if mode >= 8 else 1 if mode >= 4 else 0
            return handle
        if op == SYS_CLOSE:
            handle = self._word(arg)
            self._features.pop(handle, None)
            self._handles.pop(handle, None)
            return 0
        if op == SYS_READ:
            handle, buf, length = self._words(arg, 3)
            if handle not in self._features:
                return length  # nothing read: end of file
            pos = self._features[handle]
            data = FEATURES[pos : pos + length]
            if data:
                self.write_mem(buf, data)
            self._features[handle] = pos + len(data)
            return length - len(data)  # the number of bytes NOT read
        if op == SYS_ISTTY:
            return 0 if self._word(arg) in self._features else 1
        if op == SYS_SEEK:
            handle, pos = self._words(arg, 2)
            if handle in self._features:
                self._features[handle] = min(pos, len(FEATURES))
            return 0
        if op == SYS_FLEN:
            return len(FEATURES) if self._word(arg) in self._features else 0
        if op == SYS_GET_CMDLINE:
            # An empty command line: newlib's crt0 then calls main with argc 0.
            buf, size = self._words(arg, 2)
            if size < 1:
                return 0xFFFFFFFF
            self.write_mem(buf, b"\0")
            self.write_mem(arg + 4, struct.pack("<I", 0))
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
            # 32-bit callers pass the reason itself in r1, not a pointer, and no
            # status: a status reaches simcore only through SYS_EXIT_EXTENDED.
            return Exit(0 if arg == ADP_STOPPED_APPLICATION_EXIT else 1)
        if op == SYS_EXIT_EXTENDED:
            reason, subcode = self._words(arg, 2)
            code = subcode if reason == ADP_STOPPED_APPLICATION_EXIT else 1
            return Exit(code - (1 << 32) if code & 0x80000000 else code)
        raise EmulationError(
            f"semihosting {operation_name(op)} is not supported",
            hint="simcore serves console output, exit and clock requests only; "
            "host files are not reachable",
        )
