"""capstone's ARM constants and identity, without importing capstone when the cache has them.

Importing capstone loads its shared library and the bindings of all its
architectures: about a tenth of a warm ``simcore run``'s start-up, for a run that
decodes nothing (its classified code comes from the on-disk cache). The timing
tables and the classifier still need capstone's ARM ids (``ARM_INS_*``,
``ARM_REG_*``, ...) and the cache keys need to know which capstone computed an entry.
So:

- :func:`capstone_fingerprint` identifies the installed capstone from its files,
  found with ``importlib.util.find_spec`` (which does not import the package): a
  digest (:func:`simcore.cache.hasher`) of its Python sources that define the ARM
  constants and the binding, and the names, sizes and modification times of its
  shared libraries. Any reinstall (a new version, a rebuild) changes it, where
  ``capstone.__version__`` (the C library's API version) stays the same across
  some releases of the package.
- :func:`arm_constants` is ``capstone.arm_const``'s integer constants, read from
  the disk cache (simcore.cache) under that fingerprint, or from capstone itself
  (then stored) when the cache has no entry or is off.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import SimpleNamespace

from simcore import cache as disk_cache

_CACHE_KIND = "capstone"
#: The package files whose content decides the ARM ids and how instructions decode.
_SOURCES = ("__init__.py", "arm.py", "arm_const.py")


def fingerprint_of(package: Path) -> str:
    """The fingerprint of a capstone package folder (see the module docstring)."""
    h = disk_cache.hasher()
    for name in _SOURCES:
        data = (package / name).read_bytes()
        h.update(f"{name} {len(data)}\n".encode())
        h.update(data)
    for lib in sorted((package / "lib").glob("*")):
        st = lib.stat()
        h.update(f"lib {lib.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()


@cache
def capstone_fingerprint() -> str:
    """The installed capstone's fingerprint; its version if its files cannot be read."""
    spec = importlib.util.find_spec("capstone")
    if spec is not None and spec.origin is not None:
        try:
            return fingerprint_of(Path(spec.origin).parent)
        except OSError:
            pass
    import capstone  # not a plain folder (a zip, a frozen build): ask the package

    return f"version {capstone.__version__}"


def _from_capstone() -> dict[str, int]:
    from capstone import arm_const

    return {
        k: v
        for k, v in vars(arm_const).items()
        if k.startswith("ARM_") and isinstance(v, int) and not isinstance(v, bool)
    }


@cache
def arm_constants() -> SimpleNamespace:
    """``capstone.arm_const``'s integer constants (``ARM_INS_B``, ``ARM_REG_CPSR``, ...)."""
    key = disk_cache.digest(
        _CACHE_KIND, [capstone_fingerprint(), disk_cache.source_digest(Path(__file__))]
    )
    found = disk_cache.load(_CACHE_KIND, key)
    values = found[1] if found is not None else None
    if not (
        isinstance(values, dict)
        and values
        and all(isinstance(v, int) and not isinstance(v, bool) for v in values.values())
    ):
        values = _from_capstone()
        disk_cache.store(_CACHE_KIND, key, {}, values)
    return SimpleNamespace(**values)
