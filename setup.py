"""Build the cycle model's C extension and ship the firmware tree and goldens in wheels.

Everything else is in pyproject.toml. A wheel carries copies of the
repository's ``firmware_builds/`` (C runtime, headers, linker scripts,
examples, GENERATED.md; never ``out/`` or ``baseline.json``) and ``golden/``
under ``simcore/_shipped/``, where :mod:`simcore.paths` looks for them when
simcore is installed. They are copied into the build tree only, never into
the source tree, and not for editable installs: a checkout keeps using the
repository's own trees. MANIFEST.in puts the same files into the sdist, so a
wheel built from the sdist ships them too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py
from setuptools.errors import FileError

HERE = Path(__file__).resolve().parent
#: What a wheel ships, relative to the repository root (keep MANIFEST.in in step).
SHIPPED = (
    "firmware_builds/include",
    "firmware_builds/runtime",
    "firmware_builds/ld",
    "firmware_builds/examples",
    "firmware_builds/GENERATED.md",
    "golden",
)
#: simcore.paths.SHIPPED_DIR, relative to the build tree.
SHIPPED_DIR = Path("simcore") / "_shipped"


class BuildPyShippingTrees(build_py):
    """build_py that also copies :data:`SHIPPED` into the package in the build tree."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the checkout's own trees are used in place
            return
        target = Path(self.build_lib) / SHIPPED_DIR
        shutil.rmtree(target, ignore_errors=True)  # nothing stale from an earlier build
        ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", ".*")
        for rel in SHIPPED:
            src, dst = HERE / rel, target / rel
            if src.is_dir():
                shutil.copytree(src, dst, ignore=ignore)
            elif src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            else:
                raise FileError(f"{rel} is missing from {HERE}; build from a checkout or an sdist")


setup(
    cmdclass={"build_py": BuildPyShippingTrees},
    ext_modules=[
        Extension(
            "simcore.cycles._native",
            sources=["simcore/cycles/_native.c"],
            extra_compile_args=["-O2", "-std=c11"],
        )
    ],
)
