"""simcore.paths: the checkout layout, folders that follow the working directory, and builds
that do not depend on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_support import needs_toolchain

from simcore import paths, toolchain
from simcore.boards import get_board
from simcore.cli import main
from simcore.errors import UsageError
from simcore.example import build_example
from simcore.firmware import build
from simcore.golden import datasets, generate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Pretend simcore is an installed package, run from an empty working directory."""
    monkeypatch.setattr(paths, "is_checkout", lambda: False)
    monkeypatch.delenv(paths.OUT_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_checkout_uses_its_own_trees() -> None:
    assert paths.is_checkout()
    assert paths.ROOT_DIR == REPO
    assert paths.FIRMWARE_DIR == REPO / "firmware_builds"
    assert paths.GOLDEN_DIR == REPO / "golden"
    # The names other modules export are the same folders.
    assert toolchain.FIRMWARE_DIR == paths.FIRMWARE_DIR
    assert toolchain.LD_DIR == paths.FIRMWARE_DIR / "ld"
    assert datasets.GOLDEN_DIR == build.golden_dir() == paths.GOLDEN_DIR
    assert datasets.DATA_DIR == paths.GOLDEN_DIR / "data"
    assert build.REPO_DIR == REPO
    # Only a wheel's build tree has the shipped copies.
    assert not paths.SHIPPED_DIR.exists()


def test_checkout_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(paths.OUT_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.out_dir() == REPO / "firmware_builds" / "out"
    assert paths.baseline_path() == REPO / "firmware_builds" / "baseline.json"


def test_installed_defaults_follow_the_working_directory(
    installed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert paths.out_dir() == installed / "simcore-out"
    assert paths.baseline_path() == installed / "simcore-baseline.json"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert paths.out_dir() == elsewhere / "simcore-out"
    old_name = toolchain.OUT_DIR  # still importable, computed on access
    assert old_name == elsewhere / "simcore-out"


@pytest.mark.parametrize("layout", ["checkout", "installed"])
def test_out_dir_variable_wins(
    layout: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(paths, "is_checkout", lambda: layout == "checkout")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(paths.OUT_DIR_ENV, "builds")
    assert paths.out_dir() == tmp_path / "builds"
    monkeypatch.setenv(paths.OUT_DIR_ENV, str(tmp_path / "abs"))
    assert paths.out_dir() == tmp_path / "abs"


def test_regenerating_goldens_needs_a_checkout(
    installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match="needs a checkout of the simcore repository"):
        generate.main(["--readme-only"])
    assert main(["golden", "--update"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nox -s golden" in err
    assert not any(installed.iterdir())


@needs_toolchain
def test_builds_do_not_depend_on_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The debug info's compilation directory is the output folder, mapped to ``out``."""
    board = get_board("rp2040")
    elves = []
    for cwd in ("a", "b/c"):
        (tmp_path / cwd).mkdir(parents=True)
        monkeypatch.chdir(tmp_path / cwd)
        elves.append(build_example(board, Path("rel-out")).elf)
    assert elves[0] == tmp_path / "a" / "rel-out" / "example.elf"
    data = [e.read_bytes() for e in elves]
    assert data[0] == data[1]
    assert str(tmp_path).encode() not in data[0]
    assert str(REPO).encode() not in data[0]
