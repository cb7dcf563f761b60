"""Fixtures of the cycle-model tests (helpers live in cycles_support.py)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from pathlib import Path

import pytest
from cycles_support import HAVE_AS, Program, build


@pytest.fixture
def asm(tmp_path: Path) -> Callable[..., Program]:
    """``asm(core, body, tail="")`` -> Program, built in tmp_path (skips without toolchain)."""
    if not HAVE_AS:
        pytest.skip("arm-none-eabi-as/ld not installed")
    numbers = count()

    def _build(core: str, body: str, tail: str = "") -> Program:
        return build(tmp_path, core, body, name=f"p{next(numbers)}", tail=tail)

    return _build
