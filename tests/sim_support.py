"""Helpers shared by the test folders (imported by name; conftest.py holds the fixtures)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from simcore.boards import load_boards

BOARD_NAMES = sorted(load_boards())
HAVE_TOOLCHAIN = shutil.which("arm-none-eabi-gcc") is not None
needs_toolchain = pytest.mark.skipif(not HAVE_TOOLCHAIN, reason="arm-none-eabi-gcc missing")

AsmBuilder = Callable[..., Path]
