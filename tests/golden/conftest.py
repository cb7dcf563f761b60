"""Fixtures for the golden tests: a writable copy of golden/ for tampering."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from golden_support import GOLDEN_ROOT, CopyGolden


@pytest.fixture
def golden_copy(tmp_path: Path) -> CopyGolden:
    """Return a function copying one model's folder and golden/data into tmp_path."""

    def copy(name: str) -> Path:
        root = tmp_path / "golden"
        shutil.copytree(GOLDEN_ROOT / name, root / name)
        if not (root / "data").exists():
            shutil.copytree(GOLDEN_ROOT / "data", root / "data")
        return root

    return copy
