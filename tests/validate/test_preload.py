"""The modules validation's planning threads import lazily are imported up front.

Two threads compiling modules at once can fail in CPython 3.11 ("AST constructor
recursion depth mismatch"): seen under pytest, which recompiles simcore's modules
to rewrite their asserts. The list must name real modules, and cover the lazy
imports of the firmware build the threads run.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

from simcore import validate
from simcore.firmware import build


def test_every_listed_module_imports() -> None:
    validate.preload_planning_modules()
    assert all(name in sys.modules for name in validate._PLANNING_MODULES)


def test_the_builds_lazy_imports_are_listed() -> None:
    """Every `from simcore.x import y` inside a function of firmware/build.py."""
    tree = ast.parse(Path(build.__file__).read_text())
    lazy = {
        node.module
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef)
        for node in ast.walk(fn)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("simcore")
    }
    assert lazy, "build.py has no lazy imports any more: update this test"
    listed = validate._PLANNING_MODULES
    # `from simcore.diagnose import mistakes` names a package; its module is listed.
    missing = sorted(m for m in lazy if not any(x == m or x.startswith(m + ".") for x in listed))
    assert not missing, f"add to validate._PLANNING_MODULES: {missing}"
    for name in lazy:
        importlib.import_module(name)
