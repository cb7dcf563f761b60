"""Where simcore's files are: C runtime, shipped goldens, build outputs, baseline.

simcore runs from one of two layouts, told apart by :func:`is_checkout`:

* a **checkout** (a clone, an unpacked sdist, or an editable install made
  from one): the package sits next to the repository's ``firmware_builds/``
  and ``golden/``, which are used in place, so edits to the C runtime or a
  regenerated golden take effect at once. Builds go to
  ``firmware_builds/out/``; the baseline is the committed
  ``firmware_builds/baseline.json``.
* an **installed** package (a wheel): the build copied those trees into the
  package as ``simcore/_shipped/firmware_builds/`` (runtime, headers, linker
  scripts, examples; never ``out/``) and ``simcore/_shipped/golden/``.
  site-packages may be read-only and is shared, so builds go to
  ``./simcore-out/`` and the baseline is ``./simcore-baseline.json``, both
  in the working directory of the call.

``SIMCORE_OUT_DIR`` overrides the build folder in both layouts. What depends
on the working directory or the environment is a function evaluated on each
call, never a constant computed at import (a test or a library caller may
change directory after importing simcore).

``_shipped/`` never exists in the source tree: ``setup.py`` writes it into
the build tree only, and not for editable installs.
"""

from __future__ import annotations

import os
from pathlib import Path

from simcore.errors import UsageError

#: The ``simcore`` package directory.
PACKAGE_DIR = Path(__file__).resolve().parent
#: Where a wheel carries its copies of ``firmware_builds/`` and ``golden/``.
SHIPPED_DIR = PACKAGE_DIR / "_shipped"
#: Environment variable naming the folder built firmware goes to.
OUT_DIR_ENV = "SIMCORE_OUT_DIR"
#: Default build folder of an installed simcore, relative to the working directory.
INSTALLED_OUT_NAME = "simcore-out"
#: Default baseline file of an installed simcore (the pytest plugin's default name too).
INSTALLED_BASELINE_NAME = "simcore-baseline.json"

_REPO_DIR = PACKAGE_DIR.parent
# A checkout is recognised by the files only a source tree has next to the
# package; a wheel's site-packages has none of them.
_CHECKOUT = (
    (_REPO_DIR / "pyproject.toml").is_file()
    and (_REPO_DIR / "firmware_builds" / "include" / "simcore_abi.h").is_file()
    and (_REPO_DIR / "golden").is_dir()
)


def is_checkout() -> bool:
    """Whether simcore runs from a source tree (editable install included), not a wheel.

    Fixed for the life of the process: it depends on where the package is,
    not on the working directory.
    """
    return _CHECKOUT


#: The folder holding ``firmware_builds/`` and ``golden/``: the repository in
#: a checkout, :data:`SHIPPED_DIR` in an installed package. Manifests give
#: paths under it relative to it, so they read the same in both layouts.
ROOT_DIR = _REPO_DIR if _CHECKOUT else SHIPPED_DIR
#: The C runtime tree: ``include/``, ``runtime/``, ``ld/``, ``examples/``, ``GENERATED.md``.
FIRMWARE_DIR = ROOT_DIR / "firmware_builds"
#: The shipped models, data sets and golden predictions.
GOLDEN_DIR = ROOT_DIR / "golden"


def out_dir() -> Path:
    """Return the default folder for built firmware (absolute; boards get subfolders).

    ``$SIMCORE_OUT_DIR`` if set, else ``firmware_builds/out`` in a checkout,
    else ``simcore-out`` in the current working directory.
    """
    env = os.environ.get(OUT_DIR_ENV)
    if env:
        return Path(env).expanduser().absolute()
    if is_checkout():
        return FIRMWARE_DIR / "out"
    return Path.cwd() / INSTALLED_OUT_NAME


def baseline_path() -> Path:
    """Return the default baseline file of ``simcore validate`` (absolute).

    The committed ``firmware_builds/baseline.json`` in a checkout, else
    ``simcore-baseline.json`` in the current working directory.
    """
    if is_checkout():
        return FIRMWARE_DIR / "baseline.json"
    return Path.cwd() / INSTALLED_BASELINE_NAME


def require_checkout(task: str, *, hint: str) -> None:
    """Raise a UsageError unless simcore runs from a checkout.

    For developer tasks that write the repository's trees (regenerating the
    goldens): an installed package's copies are read-only data. ``task``
    names the task in the message, ``hint`` says where to run it instead.
    """
    if not is_checkout():
        raise UsageError(
            f"{task} needs a checkout of the simcore repository; this simcore is an "
            f"installed package ({PACKAGE_DIR})",
            hint=hint,
        )
