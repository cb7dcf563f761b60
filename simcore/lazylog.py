"""Loggers that import :mod:`logging` when first used, for the modules a run imports.

Importing ``logging`` (with traceback, threading, string, ...) cost a small warm
``simcore run`` about 8 ms of its 115, and such a run logs nothing. A module writes
``from simcore import lazylog as logging`` and keeps ``log = logging.getLogger(__name__)``
and ``log.debug(...)``: the real logger is fetched on the first call.

The command line's :func:`basicConfig` is applied at once with ``--debug`` or if
``logging`` is already imported, else just before the first of these loggers is used;
a library that imports ``logging`` itself and logs a warning before that prints it
with logging's default handler (the bare message on stderr) instead of the command
line's format.
"""

from __future__ import annotations

import sys
from typing import Any

DEBUG = 10
WARNING = 30

_pending: dict[str, Any] | None = None


def basicConfig(*, now: bool = False, **kwargs: Any) -> None:
    """``logging.basicConfig(**kwargs)``: at once if logging is loaded or ``now`` (which
    imports it), else when a logger of this module is first used."""
    global _pending
    if now:
        import logging  # noqa: F401 (loaded: configured below)
    if "logging" in sys.modules:
        _pending = None
        sys.modules["logging"].basicConfig(**kwargs)
    else:
        _pending = kwargs


def _logging() -> Any:
    global _pending
    import logging

    if _pending is not None:
        kwargs, _pending = _pending, None
        logging.basicConfig(**kwargs)
    return logging


class _Logger:
    """Stands for ``logging.getLogger(name)`` until an attribute is asked for."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(_logging().getLogger(self.name), attribute)


def getLogger(name: str) -> Any:
    """A stand-in for ``logging.getLogger(name)`` (see the module docstring)."""
    return _Logger(name)
