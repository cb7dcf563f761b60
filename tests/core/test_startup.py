"""Start-up stays light: what a clean ``simcore run`` imports and reads."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typeguard import CollectionCheckStrategy, TypeCheckError, check_type

from simcore.api import _plain_classes
from simcore.cache import CACHE_DIR_ENV, NO_CACHE_ENV

_PROBE = """
import contextlib, io, sys
from simcore.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["run", "-q", "--board", "rp2040", sys.argv[1]])
heavy = sorted(m for m in ("typeguard", "tensorflow") if m in sys.modules)
print(code, heavy)
"""


def test_a_clean_run_imports_no_typeguard(example_elfs: dict[str, Path]) -> None:
    """The argument checks of the public API fall back to typeguard only for hard hints."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(example_elfs["rp2040"])],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    assert out.split("\n")[-2] == "0 []", out


def test_a_cache_hit_imports_no_capstone(example_elfs: dict[str, Path], tmp_path: Path) -> None:
    """A warm ``simcore run`` decodes nothing, so it must not pay for importing capstone
    (its ARM ids come from the cache) or pyelftools (the loaded ELF comes from the cache);
    the cold run that fills the cache decodes with capstone, and reads the ELF without
    pyelftools too (simcore.elfparse; a clean run shows no source line)."""
    probe = (
        "import sys; from simcore.cli import main; code = main(['run', '-q', '--board', "
        "'stm32h743', sys.argv[1]]); print(code, sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('capstone', 'elftools')))"
    )
    env = {**os.environ, CACHE_DIR_ENV: str(tmp_path / "cache")}
    env.pop(NO_CACHE_ENV, None)
    runs = [
        subprocess.run(
            [sys.executable, "-c", probe, str(example_elfs["stm32h743"])],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        .stdout.splitlines()[-1]
        .split(None, 1)  # after the run's own summary
        for _ in range(2)
    ]
    (cold_code, cold_modules), (warm_code, warm_modules) = runs
    assert cold_code == warm_code == "0"
    assert "'capstone'" in cold_modules and "'elftools'" not in cold_modules
    assert warm_modules.strip() == "[]"


@pytest.mark.parametrize(
    ("hint", "values"),
    [
        (str | Path, ["a", Path("b"), None, 3, b"x"]),
        (int | None, [0, True, None, 1.5, "1"]),
        (float, [1.0, 2, True, "1.0", None]),
        (bytes | None, [b"", bytearray(b"x"), None, "s"]),
        (Callable[[int, str], None] | None, [None, print, 3]),
        (list[int], [[1], [], ["a"], (1,)]),
        (Any, [object(), None]),
    ],
)
def test_the_isinstance_shortcut_accepts_only_what_typeguard_accepts(
    hint: Any, values: list[Any]
) -> None:
    classes = _plain_classes(hint)
    for value in values:
        if classes is None or not isinstance(value, classes):
            continue
        try:
            check_type(value, hint, collection_check_strategy=CollectionCheckStrategy.FIRST_ITEM)
        except TypeCheckError:  # pragma: no cover - the failure this test is for
            pytest.fail(f"{value!r} passes the shortcut for {hint} but not typeguard")


_WARM_PROBE = """
import contextlib, io, sys
from simcore.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["run", "-q", "--board", sys.argv[2], sys.argv[1]])
from simcore import codecache
watched = {"numpy", "capstone", "elftools", "logging"}
heavy = sorted({m.split(".")[0] for m in sys.modules} & watched)
heavy += sorted({"simcore.toolchain"} & set(sys.modules))  # gcc --version: cached (rom.py)
print(code, heavy, codecache._installed.added if codecache._installed else None)
"""


@pytest.mark.parametrize("board", ["rp2040", "stm32h743"])
def test_a_warm_run_imports_no_numpy(
    example_elfs: dict[str, Path], tmp_path: Path, board: str
) -> None:
    """The warm path reads its cache entries, classified code and counters without numpy
    (and without capstone or pyelftools); the cold run that fills the cache needs
    capstone only (the classifier's arrays are plain ones, the ELF's headers are read
    with struct). The second run compiles no dataclass method either (simcore.codecache), and
    on rp2040 asks the compiler nothing (the bootrom's cache key has its version)."""
    env = {**os.environ, CACHE_DIR_ENV: str(tmp_path / "cache")}
    env.pop(NO_CACHE_ENV, None)
    lines = [
        subprocess.run(
            [sys.executable, "-c", _WARM_PROBE, str(example_elfs[board]), board],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        ).stdout.splitlines()[-1]
        for _ in range(2)
    ]
    cold, warm = lines
    cold_modules, compiled = cold.rsplit(" ", 1)
    assert cold_modules.startswith("0 ["), lines
    assert "'capstone'" in cold_modules, lines
    assert "'elftools'" not in cold_modules and "'numpy'" not in cold_modules, lines
    assert int(compiled) > 0  # the cold run compiled dataclass methods
    assert warm == "0 [] 0", lines  # nor logging, which the cold run may use
