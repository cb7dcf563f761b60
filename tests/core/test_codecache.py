"""simcore.codecache: dataclass methods compiled once, kept between processes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simcore import codecache
from simcore.cache import CACHE_DIR_ENV, NO_CACHE_ENV


@pytest.fixture
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache folder; the hook removed again after the test (and before it, in case
    the test process imported simcore.cli)."""
    codecache.uninstall()
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv(CACHE_DIR_ENV, str(folder))
    monkeypatch.delenv(NO_CACHE_ENV, raising=False)
    yield folder
    codecache.uninstall()


def _make() -> tuple[type, type]:
    @dataclasses.dataclass(frozen=True)
    class Point:
        x: int
        y: int = 2
        tags: tuple[str, ...] = ()

    @dataclasses.dataclass(order=True)
    class Box:
        lo: int
        hi: int = dataclasses.field(default=0, compare=False)
        items: list[int] = dataclasses.field(default_factory=list)

    return Point, Box


def _behaviour(point: type, box: type) -> list[Any]:
    p, q = point(1), point(1, 3, ("a",))
    b = box(5, 9)
    b.items.append(1)
    try:
        p.x = 4  # type: ignore[misc]
        frozen = False
    except dataclasses.FrozenInstanceError:
        frozen = True
    return [
        repr(p), repr(q), p == point(1), p == q, hash(p) == hash(point(1)), frozen,
        repr(b), b == box(5, 0), box(1) < box(2), box(3).items,
    ]  # fmt: skip


def test_cached_methods_behave_as_compiled_ones(cache_folder: Path) -> None:
    plain = _behaviour(*_make())
    codecache.install()
    first = _behaviour(*_make())  # compiled, then saved
    codecache.uninstall()
    (entry,) = (cache_folder / "codes").iterdir()
    codecache.install()
    assert codecache._installed is not None and codecache._installed.codes  # loaded
    second = _behaviour(*_make())
    assert codecache._installed.added == 0  # every method came from the file
    assert plain == first == second
    assert entry.stat().st_mode & 0o077 == 0  # code the process runs: the user's only


def test_a_damaged_file_is_ignored_and_replaced(cache_folder: Path) -> None:
    codecache.install()
    _make()
    codecache.uninstall()
    (entry,) = (cache_folder / "codes").iterdir()
    for damage in (b"", b"\x00garbage", entry.read_bytes()[:100]):
        entry.write_bytes(damage)
        codecache.install()
        assert codecache._installed is not None and not codecache._installed.codes
        assert _behaviour(*_make()) == _behaviour(*_make())
        codecache.uninstall()
        assert entry.stat().st_size > 1000  # written again whole
    import marshal

    entry.write_bytes(marshal.dumps({"def f(): pass": "not code"}))
    codecache.install()
    assert codecache._installed is not None and not codecache._installed.codes


def test_off_with_the_cache(cache_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NO_CACHE_ENV, "1")
    codecache.install()
    assert codecache._installed is None and "exec" not in vars(dataclasses)
    _make()
    assert not (cache_folder / "codes").exists()


def test_only_the_command_line_installs_it(tmp_path: Path) -> None:
    probe = (
        "import dataclasses, simcore.engine, simcore.api; a = 'exec' in vars(dataclasses); "
        "import simcore.cli; print(a, 'exec' in vars(dataclasses))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={CACHE_DIR_ENV: str(tmp_path)},
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    assert out.split() == ["False", "True"]


def test_simcore_run_saves_it_and_its_output_on_its_way_out(
    example_elfs: dict[str, Path], tmp_path: Path
) -> None:
    """``simcore run`` ends its process without the interpreter's teardown: the exit
    handlers still run (this file is saved by one), the report reaches a file whole,
    and the exit code is the run's."""
    env = {CACHE_DIR_ENV: str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        proc = subprocess.run(
            [sys.executable, "-m", "simcore", "run", "--board", "rp2040", example_elfs["rp2040"]],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("simcore example") and "cycles:" in text
    assert text.rstrip().splitlines()[-1].startswith("note: profile:"), text
    assert list((tmp_path / "cache" / "codes").glob("dataclasses-*"))
