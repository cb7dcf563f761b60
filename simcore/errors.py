"""The one exception hierarchy of simcore.

Every failure a user can cause or meet ends in a :class:`SimError` subclass.
The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``:
2 for usage and input errors (bad ELF, unknown board), 1 for a program that
ran and misbehaved (fault, budget exhausted, mismatch).
"""

from __future__ import annotations

from typing import Any


def _rebuild(cls: type[SimError], args: tuple[Any, ...], state: dict[str, Any]) -> SimError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class SimError(Exception):
    """Root of every error simcore raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}; {hint}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by attributes, so an error crosses a process boundary intact.

        Exception's own reduce calls ``cls(*args)``, which the subclasses'
        keyword-only arguments (address, access, pc...) refuse: a worker's
        fault would come back as a BrokenProcessPool instead of itself.
        """
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class UsageError(SimError):
    """A bad argument, an unknown name or a missing file."""

    exit_code = 2


class BoardError(UsageError):
    """A board file that is malformed, or a board name that does not exist."""


class OutputError(UsageError):
    """An output file that cannot be written (a folder, a full disk, no permission)."""


class ElfError(UsageError):
    """A file that is not an ELF this board can run."""


class ToolchainError(UsageError):
    """The ARM cross toolchain is missing or failed."""


class FirmwareError(UsageError):
    """A model the firmware generator cannot build: unsupported layer, corrupt file, too big."""


class DoesNotFit(FirmwareError, ToolchainError):
    """A firmware that needs more memory than the board has (RAM for the arena, flash).

    ``simcore validate`` lists such a combination as "does not fit" and skips it
    instead of failing it; building it alone is an error (exit 2).
    """


class GoldenError(UsageError):
    """A golden file, model or data set that is missing, stale or altered."""


class EmulationError(SimError):
    """The firmware ran and did something wrong: a fault, a hang, an exit."""

    def __init__(
        self,
        message: str,
        *,
        pc: int | None = None,
        location: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.pc = pc
        self.location = location
        super().__init__(message, hint=hint)


class MemoryFault(EmulationError):
    """An access to an address the board does not have."""

    def __init__(
        self,
        message: str,
        *,
        address: int,
        access: str,
        pc: int | None = None,
        location: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.address = address
        self.access = access
        super().__init__(message, pc=pc, location=location, hint=hint)


class StackOverflow(MemoryFault):
    """A write into the guard region below the stack."""


class UnsupportedInstruction(EmulationError):
    """An instruction that the board's core does not implement."""


class UsageFault(EmulationError):
    """A fault the core raises on executing an instruction (UDF, INVSTATE, DIVBYZERO, ...).

    ``kind`` is the fault status bit a real core would set (``UNDEFINSTR``,
    ``INVSTATE``, ``DIVBYZERO``, ``NOCP``, ``STKOF``, ``UNALIGNED``).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        pc: int | None = None,
        location: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.kind = kind
        super().__init__(message, pc=pc, location=location, hint=hint)


class BusFault(MemoryFault):
    """A store the bus refuses: a plain write to flash (XIP) does not change it."""


class SleepForever(EmulationError):
    """WFI or WFE with nothing armed that could wake the core (no SysTick, no timer alarm)."""


class NotModeled(EmulationError):
    """The firmware needs hardware behaviour simcore does not model (exception entry, reset)."""


class BudgetExhausted(EmulationError):
    """The instruction budget or the wall-clock timeout ran out."""


class CycleModelError(SimError):
    """An executed instruction has no entry in the core's timing table."""


class ComparisonError(SimError):
    """Firmware output does not match the golden reference."""
