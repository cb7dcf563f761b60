"""On-disk cache of what simcore derives from an ELF: classified code, DWARF line rows.

Classifying a firmware's code with capstone and decoding its DWARF line programs
take longer than emulating a small program; both depend only on bytes simcore can
hash. Loading the ELF itself (pyelftools) and importing capstone for its ARM
constants cost a warm run more than the rest of its start-up, so the loaded ELF
(``elf``) and capstone's constants (``capstone``) are kept here too. An entry is
one ``.npz`` file of plain arrays (never pickles), named by the SHA-256 of
everything its content depends on (see :func:`digest`): the input bytes,
simcore's version, the source of the code that computes it, and (for
classification) the timing table and the installed capstone (a fingerprint of
its files, simcore.cycles.arm_ids). A changed input therefore finds no entry; it
never finds a stale one. The key is stored inside the entry as well and checked
on load.

Entries are written to a temporary file in the cache folder and renamed into
place, so concurrent processes (validation workers) see a whole entry or none.
An entry that cannot be read or does not have the expected arrays is ignored
(and rebuilt by the caller); a cache folder that cannot be written only costs
the time of recomputing.

Location: ``$SIMCORE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/simcore``, else
``~/.cache/simcore``. ``SIMCORE_NO_CACHE=1`` turns the cache off (nothing read or
written). Deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore import __version__

log = logging.getLogger(__name__)

#: Environment variable naming the cache folder.
CACHE_DIR_ENV = "SIMCORE_CACHE_DIR"
#: Environment variable that turns the cache off when set to a non-empty value other than 0.
NO_CACHE_ENV = "SIMCORE_NO_CACHE"
#: Bumped when the layout of an entry changes.
FORMAT = 1
_META = "__meta__"


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is turned off (evaluated on each call)."""
    if os.environ.get(NO_CACHE_ENV, "") not in ("", "0"):
        return None
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    try:
        base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    except RuntimeError:  # no home directory to be found: run without a cache
        return None
    return base / "simcore"


def source_digest(*files: Path) -> str:
    """SHA-256 of source files: part of a key, so editing the code that computes an
    entry invalidates it even while ``__version__`` stays the same."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def digest(kind: str, parts: Iterable[bytes | str]) -> str:
    """The key of an entry of ``kind`` computed from ``parts`` (with simcore's version)."""
    h = hashlib.sha256()
    for part in (f"simcore {__version__}", f"format {FORMAT}", kind, *parts):
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _path(kind: str, key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / kind / f"{key}.npz"


def load(kind: str, key: str) -> tuple[dict[str, npt.NDArray[Any]], Any] | None:
    """The arrays and JSON metadata stored under ``key``, or None (missing, off, unreadable)."""
    path = _path(kind, key)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(bytes(arrays.pop(_META)).decode())
        if not isinstance(meta, dict) or meta.get("key") != key:
            raise ValueError("entry holds another key")
        return arrays, meta.get("data")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        log.debug("ignoring unreadable cache entry %s: %s", path, exc)
        return None


def store(kind: str, key: str, arrays: dict[str, npt.NDArray[Any]], data: Any = None) -> None:
    """Store ``arrays`` and JSON-ready ``data`` under ``key`` atomically; failures are logged."""
    path = _path(kind, key)
    if path is None:
        return
    meta = np.frombuffer(json.dumps({"key": key, "data": data}).encode(), dtype=np.uint8)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **{**arrays, _META: meta})
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        log.debug("cannot write cache entry %s: %s", path, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


_TOML_KIND = "toml"


def parsed_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads(text)``, kept here as JSON once parsed (raises what tomllib raises).

    tomllib is pure Python: parsing a run's board, cores and timing-table files cost more
    than loading the result as JSON. Only a document that JSON holds exactly is kept (no
    dates or times; they are parsed each time).
    """
    import tomllib

    key = digest(_TOML_KIND, [text])
    try:
        found = load(_TOML_KIND, key)
    except RecursionError:  # nested too deeply for the JSON decoder: parse it instead
        found = None
    if found is not None and isinstance(found[1], dict):
        return found[1]
    parsed = tomllib.loads(text)
    try:
        json.dumps(parsed, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return parsed
    store(_TOML_KIND, key, {}, parsed)
    return parsed
