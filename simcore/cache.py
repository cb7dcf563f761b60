"""On-disk cache of what simcore derives from an ELF: classified code, DWARF line rows.

Classifying a firmware's code with capstone and decoding its DWARF line programs
take longer than emulating a small program; both depend only on bytes simcore can
hash. Loading the ELF itself and importing capstone for its ARM constants cost a
warm run more than the rest of its start-up, so the loaded ELF (``elf``) and
capstone's constants (``capstone``) are kept here too, and the analysis of each
instruction encoding classified so far (``encodings``, simcore.cycles.classify).
An entry is
one ``.bin`` file of plain arrays and JSON (never pickles; see :func:`store` for
the layout, read without numpy: importing it would cost a small warm run a fifth of
its time), named by a BLAKE2b digest (32 bytes) of
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

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from simcore import __version__

try:
    # CPython's own BLAKE2 module, which hashlib re-exports: importing hashlib also
    # loads OpenSSL's libcrypto, about 4% of a small warm `simcore run` (random does
    # the same with _sha512). Builds without it get hashlib's.
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover (CPython built without its BLAKE2)
    from hashlib import blake2b as _blake2b

#: Environment variable naming the cache folder.
CACHE_DIR_ENV = "SIMCORE_CACHE_DIR"
#: Environment variable that turns the cache off when set to a non-empty value other than 0.
NO_CACHE_ENV = "SIMCORE_NO_CACHE"
#: Bumped when the layout of an entry changes (2: the ``.bin`` layout of :func:`store`;
#: 1 was a numpy ``.npz``, never read again: other key, other suffix).
FORMAT = 2
#: The first bytes of an entry.
MAGIC = b"SIMCORE\x00CACHE\x002\x00\x00\x00"
#: Element formats an array may have (struct codes; native byte order, little-endian hosts).
_FORMATS = frozenset("bBhHiIlLqQ")


def _debug(message: str, *args: object) -> None:
    """Log at debug level; the logging package is imported only when debug output is on."""
    import sys

    if "logging" in sys.modules:
        import logging

        logging.getLogger(__name__).debug(message, *args)


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


class Hasher(Protocol):
    """What the cache's keys need of a hash object."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def hasher() -> Hasher:
    """A new hash object for the cache's keys: BLAKE2b with a 32-byte digest (64 hex
    digits)."""
    h: Hasher = _blake2b(digest_size=32)
    return h


def source_digest(*files: Path) -> str:
    """The digest of source files: part of a key, so editing the code that computes an
    entry invalidates it even while ``__version__`` stays the same."""
    h = hasher()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def digest(kind: str, parts: Iterable[bytes | str]) -> str:
    """The key of an entry of ``kind`` computed from ``parts`` (with simcore's version)."""
    h = hasher()
    for part in (f"simcore {__version__}", f"format {FORMAT}", kind, *parts):
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _path(kind: str, key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / kind / f"{key}.bin"


def load(kind: str, key: str) -> tuple[dict[str, memoryview], Any] | None:
    """The arrays and JSON metadata stored under ``key``, or None (missing, off, unreadable).

    Each array comes back as a read-only memoryview with the format and shape it was
    stored with (``numpy.asarray`` makes an array of it without copying).
    """
    path = _path(kind, key)
    if path is None:
        return None
    try:
        raw = path.read_bytes()
        return _decode(raw, key)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as exc:
        _debug("ignoring unreadable cache entry %s: %s", path, exc)
        return None


def _decode(raw: bytes, key: str) -> tuple[dict[str, memoryview], Any]:
    """The arrays and data of an entry's bytes; ValueError (or a lookup error) if malformed."""
    if raw[: len(MAGIC)] != MAGIC:
        raise ValueError("not a simcore cache entry")
    at = len(MAGIC) + 8
    size = int.from_bytes(raw[len(MAGIC) : at], "little")
    meta = json.loads(raw[at : at + size].decode())
    if not isinstance(meta, dict) or meta.get("key") != key:
        raise ValueError("entry holds another key")
    body = memoryview(raw)[at + size :]
    arrays: dict[str, memoryview] = {}
    for name, fmt, shape, offset, nbytes in meta["arrays"]:
        if fmt not in _FORMATS or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"array {name!r}: bad format or shape")
        if offset < 0 or nbytes < 0 or offset + nbytes > len(body):
            raise ValueError(f"array {name!r} runs past the end of the entry")
        view = body[offset : offset + nbytes].cast(fmt)
        count = 1
        for n in shape:
            count *= n
        if count != len(view):
            raise ValueError(f"array {name!r}: {len(view)} items, shape {shape}")
        if len(shape) != 1:
            if count == 0:  # a memoryview cannot have a zero in a multi-dimensional shape
                raise ValueError(f"array {name!r}: empty with shape {shape}")
            view = view.cast("B").cast(fmt, shape)
        arrays[str(name)] = view
    return arrays, meta.get("data")


def store(kind: str, key: str, arrays: dict[str, Any], data: Any = None) -> None:
    """Store ``arrays`` (anything with the buffer protocol: numpy arrays, memoryviews,
    ``array.array``, bytes) and JSON-ready ``data`` under ``key`` atomically; failures are
    logged. A multi-dimensional array must not be empty (see :func:`load`).

    Layout: :data:`MAGIC`, the length of a JSON header (8 bytes, little-endian), the
    header ``{"key", "data", "arrays": [[name, format, shape, offset, nbytes], ...]}``
    and the arrays' bytes in C order, each at an offset (from the end of the header)
    that is a multiple of 8.
    """
    path = _path(kind, key)
    if path is None:
        return
    index: list[list[Any]] = []
    chunks: list[bytes] = []
    offset = 0
    for name, array in arrays.items():
        view = memoryview(array)
        fmt = view.format.lstrip("@=<")
        if fmt in ("l", "L") and view.itemsize == 8:  # numpy's int64 and uint64
            fmt = {"l": "q", "L": "Q"}[fmt]
        if fmt not in _FORMATS or (view.ndim != 1 and view.nbytes == 0):
            raise ValueError(f"cannot store array {name!r} of format {view.format!r}")
        chunk = view.tobytes()
        index.append([name, fmt, list(view.shape or ()), offset, len(chunk)])
        pad = -len(chunk) % 8
        chunks.append(chunk + bytes(pad))
        offset += len(chunk) + pad
    header = json.dumps({"key": key, "data": data, "arrays": index}).encode()
    header += b" " * (-(len(MAGIC) + 8 + len(header)) % 8)
    import tempfile  # here: a warm run writes nothing

    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + len(header).to_bytes(8, "little") + header)
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        _debug("cannot write cache entry %s: %s", path, exc)
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
    key = digest(_TOML_KIND, [text])
    try:
        found = load(_TOML_KIND, key)
    except RecursionError:  # nested too deeply for the JSON decoder: parse it instead
        found = None
    if found is not None and isinstance(found[1], dict):
        return found[1]
    import tomllib  # here: a warm run parses no TOML

    parsed = tomllib.loads(text)
    try:
        json.dumps(parsed, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return parsed
    store(_TOML_KIND, key, {}, parsed)
    return parsed
