"""Write output files whole or not at all.

Every file simcore writes for the user (results JSON, HTML reports, the
baseline, output buffers, diagnoses) goes through :func:`write_output`: the
data goes to a temporary file beside the target, is flushed to disk, and
replaces the target in one rename, so a reader never sees a truncated file
that looks valid, and a failure (a full disk, no permission, a folder in the
way) leaves the old file as it was and no temporary behind. Targets that are
not regular files (``/dev/stdout``, a FIFO, ``/dev/full``) are written in
place: renaming over them would replace the device node.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from simcore.errors import OutputError


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def write_output(path: Path | str, data: str | bytes, *, what: str = "output") -> None:
    """Write ``data`` to ``path`` atomically; OutputError (exit 2) on any failure."""
    target = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError(f"cannot write {what} {target}: {_reason(exc)}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(
            f"cannot write {what} {target}: it is a directory", hint="give a file name"
        )
    if mode is not None and not stat.S_ISREG(mode):
        _write_in_place(target, raw, what)
        return
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder of {what} {target}: {_reason(exc)}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {what} {target}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode))
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write {what} {target}: {_reason(exc)}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_writable(path: Path | str, *, what: str = "output") -> None:
    """Refuse, before any work is done, an output path that cannot be written."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(
            f"cannot write {what} {target}: it is a directory", hint="give a file name"
        )
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} {target}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK) and not (
        target.exists() and os.access(target, os.W_OK)
    ):
        raise OutputError(f"cannot write {what} {target}: {folder} is not writable")


def _write_in_place(target: Path, raw: bytes, what: str) -> None:
    try:
        with target.open("wb") as f:
            f.write(raw)
            f.flush()
    except OSError as exc:
        raise OutputError(f"cannot write {what} {target}: {_reason(exc)}") from None


def error_document(error: BaseException, **extra: object) -> dict[str, object]:
    """The JSON a command writes instead of its results when it failed before having any."""
    from simcore.errors import SimError

    code = error.exit_code if isinstance(error, SimError) else 1
    return {
        "error": {
            "kind": type(error).__name__,
            "message": " ".join(str(error).split()),
            "exit_code": code,
        },
        **extra,
    }
