"""The compiled methods of dataclasses, kept between command-line processes.

``@dataclass`` writes the source of each method it adds (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, ...) and compiles it with ``exec`` when the class is
created. Compiling is most of that cost: for the 70 dataclasses a ``simcore run``
creates it took about a quarter of a small warm run (40 ms of 170 ms, measured with
and without this module). :func:`install` gives the ``dataclasses`` module an
``exec`` that compiles each distinct source text once and keeps the code objects in
the simcore cache folder (:func:`simcore.cache.cache_dir`), in ``marshal`` format
(the format of ``.pyc`` files), for the next process.

Only the command line installs it (simcore.cli, before it imports anything that
defines a dataclass); importing simcore as a library changes nothing. The code run
is exactly what compiling the text gives: entries are looked up by the whole source
text, so another text (another class, another Python or simcore) compiles afresh.
The file is named after the interpreter's bytecode tag and magic number, so another
Python version never reads it. Like ``.pyc`` files, it holds code the process
runs: the cache folder must be writable only by its user (as ``~/.cache`` is).
A file that cannot be read or holds anything but text-to-code pairs is ignored and
replaced; ``SIMCORE_NO_CACHE=1`` turns it off with the rest of the cache.
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import marshal
import os
import sys
import types
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from typing import Any

#: Entries kept at most: past it, a save keeps only what its process used.
MAX_ENTRIES = 4000
_KIND = "codes"


class _CodeCache:
    """Source text -> code object, loaded from ``path`` and saved back when it grew."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.codes: dict[str, types.CodeType] = {}
        self.used: set[str] = set()
        self.added = 0
        try:
            loaded = marshal.loads(path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return
        if isinstance(loaded, dict) and all(
            type(k) is str and type(v) is types.CodeType for k, v in loaded.items()
        ):
            self.codes = loaded

    def exec(self, source: Any, globals: Any = None, locals: Any = None, /) -> None:
        """``exec(source, globals, locals)``, with a text source compiled once."""
        if type(source) is str:
            code = self.codes.get(source)
            if code is None:
                code = self.codes[source] = compile(source, "<string>", "exec")
                self.added += 1
            self.used.add(source)
            source = code
        builtins.exec(source, globals, locals)

    def save(self) -> None:
        """Write the entries (atomically) if this process compiled new ones."""
        if not self.added:
            return
        codes = self.codes
        if len(codes) > MAX_ENTRIES:
            codes = {k: v for k, v in codes.items() if k in self.used}
        import tempfile

        tmp: str | None = None
        try:
            # Only into a cache folder that still exists (a test may have removed its own).
            self.path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps(codes))
            os.replace(tmp, self.path)
            tmp = None
        except (OSError, ValueError):  # an unwritable folder only costs the compiling
            pass
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)


_installed: _CodeCache | None = None


def cache_file() -> Path | None:
    """Where this interpreter's entries live, or None when the cache is off."""
    from simcore.cache import cache_dir

    folder = cache_dir()
    if folder is None:
        return None
    return folder / _KIND / f"dataclasses-{sys.implementation.cache_tag}-{MAGIC_NUMBER.hex()}"


def install() -> None:
    """Give ``dataclasses`` the caching ``exec`` (once per process; saved at exit)."""
    global _installed
    if _installed is not None:
        return
    path = cache_file()
    if path is None:
        return
    _installed = _CodeCache(path)
    dataclasses.exec = _installed.exec  # type: ignore[attr-defined]  # shadows the builtin
    atexit.register(_installed.save)


def uninstall() -> None:
    """Give ``dataclasses`` the builtin ``exec`` back and save (for tests)."""
    global _installed
    if _installed is None:
        return
    atexit.unregister(_installed.save)
    _installed.save()
    vars(dataclasses).pop("exec", None)
    _installed = None
