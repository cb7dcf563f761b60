"""Shared fixtures: the ARM toolchain, tiny assembly firmware, the example builds."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from simcore.cache import CACHE_DIR_ENV

# Importing sim_support loads every board, and simcore reads board, core and timing-table
# files through its cache (parsed TOML, capstone's constants): point the cache at a folder
# of this session's first, so that collection never writes to the user's cache folder.
_COLLECTION_CACHE = tempfile.mkdtemp(prefix="simcore-collection-cache-")
_USER_CACHE = os.environ.get(CACHE_DIR_ENV)
os.environ[CACHE_DIR_ENV] = _COLLECTION_CACHE

from sim_support import BOARD_NAMES, HAVE_TOOLCHAIN, AsmBuilder, build_asm  # noqa: E402

from simcore.boards import get_board  # noqa: E402
from simcore.example import build_example  # noqa: E402


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the collection's cache folder and give the user's setting back."""
    shutil.rmtree(_COLLECTION_CACHE, ignore_errors=True)
    if _USER_CACHE is None:
        os.environ.pop(CACHE_DIR_ENV, None)
    else:
        os.environ[CACHE_DIR_ENV] = _USER_CACHE


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the session's classification/line cache out of the user's cache folder."""
    saved = os.environ.get(CACHE_DIR_ENV)
    os.environ[CACHE_DIR_ENV] = str(tmp_path_factory.mktemp("simcore-cache"))
    yield
    if saved is None:
        os.environ.pop(CACHE_DIR_ENV, None)
    else:
        os.environ[CACHE_DIR_ENV] = saved


@pytest.fixture
def asm_elf(tmp_path: Path) -> AsmBuilder:
    """Assemble and link a Thumb snippet into an ELF for a board.

    The snippet runs from the reset vector with SP at the top of the first RAM
    region at 0x20000000 or above; it ends by branching to ``done`` (the
    engine stops there and reports r0 as the exit code). ``as_cpu`` overrides
    the assembler's CPU so a test can place an instruction the board's core
    lacks; the ELF attributes are then stripped so the loader lets it run.
    """
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")

    def build(board_name: str, body: str, *, as_cpu: str | None = None, data: str = "") -> Path:
        return build_asm(tmp_path, board_name, body, as_cpu=as_cpu, data=data, tag=board_name)

    return build


@pytest.fixture(scope="session")
def example_elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example firmware built once per test session for every board."""
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    out = tmp_path_factory.mktemp("example")
    return {name: build_example(get_board(name), out / name).elf for name in BOARD_NAMES}
