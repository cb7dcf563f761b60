"""What bounds a run: one definition of the limits, checked in one place.

A run is bounded by a wall-clock timeout and an instruction budget
(:class:`Limits`). Every way a limit enters simcore goes through the checks
here: the dataclass refuses a bad value when it is built (library callers),
and the argparse ``type=`` functions (:func:`seconds_arg`, :func:`count_arg`,
:func:`samples_arg`) refuse it while the command line is parsed, with the same
words. ``nan``, ``inf``, zero and negative numbers are refused rather than
passed on: unicorn reads a timeout of 0 as "no timeout", and ``int(inf)``
raises deep inside the engine.

Counts accept plain integers and exact scientific notation (``1e9``,
``2.5e3``); a count that is not a whole number (``1.5``) is refused.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from simcore.errors import UsageError

#: The wall-clock limit of ``simcore run`` when none is given.
DEFAULT_TIMEOUT_S = 300.0
#: The largest timeout accepted (about 31 years): unicorn takes microseconds in 64 bits.
MAX_TIMEOUT_S = 1e9
#: The largest instruction budget accepted: the accounting counts in 64 bits.
MAX_INSTRUCTIONS = 10**18


class LimitError(UsageError):
    """A timeout, instruction budget or sample count that cannot bound a run."""


_TIMEOUT_RULE = "a positive, finite number of seconds up to 1e9"
_COUNT_RULE = "a whole number from 1 to 10^18"


def _timeout_ok(seconds: float) -> bool:
    return math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S


def check_timeout(seconds: float) -> float:
    """Return ``seconds`` as a float if it is a usable timeout; raise LimitError otherwise."""
    number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if not number or not _timeout_ok(seconds):
        raise LimitError(f"timeout {seconds!r} is not {_TIMEOUT_RULE}", hint="give e.g. 60")
    return float(seconds)


def check_instructions(count: int) -> int:
    """Return ``count`` if it is a usable instruction budget; raise LimitError otherwise."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= MAX_INSTRUCTIONS:
        raise LimitError(
            f"instruction budget {count!r} is not {_COUNT_RULE}", hint="give e.g. 1000000"
        )
    return count


@dataclass(frozen=True)
class Limits:
    """The bounds of one run; ``None`` means unbounded. Checked when built."""

    timeout_s: float | None = DEFAULT_TIMEOUT_S
    max_instructions: int | None = None

    def __post_init__(self) -> None:
        if self.timeout_s is not None:
            object.__setattr__(self, "timeout_s", check_timeout(self.timeout_s))
        if self.max_instructions is not None:
            check_instructions(self.max_instructions)


# -- argparse ------------------------------------------------------------------


def seconds_arg(text: str) -> float:
    """argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not _timeout_ok(value):
        raise argparse.ArgumentTypeError(f"{text} is not {_TIMEOUT_RULE}, e.g. 60")
    return value


def _whole(text: str) -> int | None:
    """``text`` as an exact whole number (``12``, ``1e6``, ``1_000``), or None."""
    from decimal import Decimal, InvalidOperation  # here: only a count given costs its import

    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    # adjusted(): the decimal exponent, checked before int() builds a huge number
    if not value.is_finite() or value.adjusted() > 30 or value != value.to_integral_value():
        return None
    return int(value)


def count_arg(text: str) -> int:
    """argparse type: a positive whole number (an instruction budget, a sample limit)."""
    value = _whole(text)
    if value is None or not 0 < value <= MAX_INSTRUCTIONS:
        raise argparse.ArgumentTypeError(f"{text} is not {_COUNT_RULE}, e.g. 1000000")
    return value


def samples_arg(text: str) -> int:
    """argparse type: a number of samples, 0 or more (0 runs the firmware with no inference)."""
    value = _whole(text)
    if value is None or not 0 <= value <= MAX_INSTRUCTIONS:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of samples, 0 or more")
    return value


def add_limit_arguments(
    parser: argparse.ArgumentParser, *, timeout_s: float | None = DEFAULT_TIMEOUT_S
) -> None:
    """Add ``--timeout`` and ``--max-instructions`` to a subcommand's parser."""
    default = "none" if timeout_s is None else f"{timeout_s:g}"
    parser.add_argument(
        "--timeout",
        type=seconds_arg,
        default=timeout_s,
        metavar="SECONDS",
        help=f"wall-clock limit in seconds, finite and > 0 (default {default})",
    )
    parser.add_argument(
        "--max-instructions",
        type=count_arg,
        metavar="N",
        help="stop after this many instructions (default: no limit)",
    )


def limits_from_args(args: argparse.Namespace) -> Limits:
    """The Limits of a command line parsed with :func:`add_limit_arguments`."""
    return Limits(timeout_s=args.timeout, max_instructions=args.max_instructions)


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_INSTRUCTIONS",
    "MAX_TIMEOUT_S",
    "LimitError",
    "Limits",
    "add_limit_arguments",
    "check_instructions",
    "check_timeout",
    "count_arg",
    "limits_from_args",
    "samples_arg",
    "seconds_arg",
]
