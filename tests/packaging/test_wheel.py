"""A normal install works: a wheel, installed into a fresh venv, runs outside any checkout.

The wheel is built the way a release is: an sdist from a copy of this
checkout (so MANIFEST.in is exercised, and the build writes nothing into the
checkout), then a wheel from the unpacked sdist, both through setuptools'
PEP 517 hooks without build isolation. It is installed with its dependencies
(the versions this test environment runs, from the package index or pip's
cache) into a fresh venv, and the CLI runs there from an empty working
directory. About 20 s on a 2-core machine, most of it creating the venv and
installing numpy, unicorn and the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from sim_support import needs_toolchain

from simcore.boards import get_board
from simcore.example import build_example
from simcore.firmware.build import build_model_firmware
from simcore.golden.store import list_models

pytestmark = needs_toolchain

REPO = Path(__file__).resolve().parents[2]
#: Never copied into the build's source tree: VCS, caches, virtual envs, build outputs.
_NOT_SOURCE = {
    ".git",
    ".nox",
    ".venv",
    ".hypothesis",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "__pycache__",
    "build",
    "dist",
    "reports",
}
#: Left out of the checkout snapshot: caches that running the suite itself writes.
_SNAPSHOT_SKIP = {".git", ".nox", ".hypothesis", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
#: Environment variables that would make a subprocess see this checkout or this venv.
_LEAKY_ENV = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "SIMCORE_OUT_DIR"}


@dataclass(frozen=True)
class Install:
    """A simcore wheel installed into a fresh venv."""

    wheel: Path
    venv: Path
    env: dict[str, str]
    checkout_before: dict[str, tuple[int, int]]
    timings: dict[str, float]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def simcore(self) -> Path:
        return self.venv / "bin" / "simcore"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file under ``root``, caches left out."""
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SNAPSHOT_SKIP and d != "__pycache__"]
        for name in names:
            st = (Path(folder) / name).stat()
            files[str((Path(folder) / name).relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return files


def _not_source(folder: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in _NOT_SOURCE or n.endswith((".egg-info", ".so"))}
    if Path(folder) == REPO / "firmware_builds":
        skip.add("out")
    return skip


def _run(
    cmd: list[str | Path], cwd: Path, env: dict[str, str], *, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` without a terminal; fail the test with its output if it exits otherwise."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != expect:
        pytest.fail(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}, expected {expect}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def _pep517(python: Path | str, hook: str, source: Path, dist: Path, env: dict[str, str]) -> Path:
    """Call setuptools' ``build_sdist`` or ``build_wheel`` hook in ``source``; return the file."""
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(dist)!r}))"
    out = _run([python, "-c", code], source, env).stdout
    return dist / out.strip().splitlines()[-1]


def _setuptools_ok() -> bool:
    """Whether this environment's setuptools can build simcore (77 or later: pyproject.toml)."""
    try:
        version = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        return False
    major, minor = (int(p) for p in [*version.split("."), "0"][:2])
    return (major, minor) >= (77, 0)


def _constraints(path: Path) -> Path:
    """Pin every package of this environment, so the venv gets the versions the suite ran."""
    pins = sorted(
        f"{d.metadata['Name']}=={d.version}"
        for d in metadata.distributions()
        if d.metadata["Name"] and d.metadata["Name"].lower() not in ("simcore", "pip")
    )
    path.write_text("\n".join(pins) + "\n")
    return path


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    before = _snapshot(REPO)
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env.update(CI="true", PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    timings: dict[str, float] = {}

    start = time.monotonic()
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp, env)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--progress-bar", "off"]
    builder: Path | str = sys.executable
    if not _setuptools_ok():  # build with the fresh venv's own, recent setuptools
        _run([*pip, "setuptools>=77"], tmp, env)
        builder = venv / "bin" / "python"
    timings["venv"] = time.monotonic() - start

    start = time.monotonic()
    source, dist = tmp / "source", tmp / "dist"
    shutil.copytree(REPO, source, ignore=_not_source)
    sdist = _pep517(builder, "build_sdist", source, dist, env)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    unpacked = tmp / "unpacked" / sdist.name.removesuffix(".tar.gz")
    wheel = _pep517(builder, "build_wheel", unpacked, dist, env)
    timings["sdist + wheel"] = time.monotonic() - start

    start = time.monotonic()
    _run([*pip, "-c", _constraints(tmp / "constraints.txt"), wheel], tmp, env)
    timings["pip install"] = time.monotonic() - start
    yield Install(wheel, venv, env, before, timings)
    print("wheel test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_the_wheel_ships_the_firmware_tree_and_the_goldens(install: Install) -> None:
    names = set(zipfile.ZipFile(install.wheel).namelist())
    want = [
        REPO / "firmware_builds" / "GENERATED.md",
        *(
            p
            for sub in ("include", "runtime", "ld", "examples")
            for p in (REPO / "firmware_builds" / sub).rglob("*")
        ),
        *(REPO / "golden").rglob("*"),
    ]
    missing = [
        str(p.relative_to(REPO))
        for p in want
        if p.is_file()
        and "__pycache__" not in p.parts
        and f"simcore/_shipped/{p.relative_to(REPO).as_posix()}" not in names
    ]
    assert not missing
    shipped = {n for n in names if n.startswith("simcore/_shipped/")}
    assert not {n for n in shipped if "/out/" in n or n.endswith("baseline.json")}
    assert len(shipped) == len([p for p in want if p.is_file()])


def test_the_installed_cli_works_outside_a_checkout(install: Install, tmp_path: Path) -> None:
    work = tmp_path / "project"
    work.mkdir()
    env = install.env
    started = time.monotonic()
    combo = ["--model", "iris3", "--format", "int8", "--board", "rp2040"]

    built = _run([install.simcore, "build", *combo], work, env)
    out = work / "simcore-out" / "rp2040"
    elf = out / "iris3-int8.elf"
    assert built.stdout.startswith(f"built {elf} ")
    mtime = elf.stat().st_mtime_ns

    checked = _run([install.simcore, "validate", *combo], work, env)
    assert "1 passed, 0 failed, 0 regressed" in checked.stdout
    assert f"iris3/int8/rp2040: no baseline in {work / 'simcore-baseline.json'}" in (checked.stdout)
    assert elf.stat().st_mtime_ns == mtime  # the build was current: not rebuilt

    example = _run([install.simcore, "example", "--board", "rp2040"], work, env)
    assert "equal to host (bitwise)" in example.stdout
    assert (out / "example.elf").is_file()

    goldens = _run([install.simcore, "golden"], work, env)
    assert goldens.stdout.count(" ok ") == len(list_models())  # the shipped ones, all checked
    refused = _run([install.simcore, "golden", "--update"], work, env, expect=2)
    assert "needs a checkout of the simcore repository" in refused.stderr

    custom = tmp_path / "custom-out"
    _run(
        [install.simcore, "example", "--board", "rp2040", "--build-only"],
        work,
        {**env, "SIMCORE_OUT_DIR": str(custom)},
    )
    assert (custom / "rp2040" / "example.elf").is_file()

    where = _run(
        [
            install.python,
            "-I",
            "-c",
            "import json, simcore.paths as p; print(json.dumps({'checkout': p.is_checkout(), "
            "'firmware': str(p.FIRMWARE_DIR), 'golden': str(p.GOLDEN_DIR), "
            "'out': str(p.out_dir()), 'baseline': str(p.baseline_path())}))",
        ],
        work,
        env,
    )
    paths = json.loads(where.stdout)
    assert paths["checkout"] is False
    firmware, golden = Path(paths["firmware"]), Path(paths["golden"])
    assert firmware.is_relative_to(install.venv) and golden.is_relative_to(install.venv)
    assert (firmware / "ld" / "sections.ld").is_file() and (firmware / "ld" / "common.ld").is_file()
    assert (golden / "iris3" / "golden.json").is_file()
    assert Path(paths["out"]) == work / "simcore-out"
    assert Path(paths["baseline"]) == work / "simcore-baseline.json"
    assert sorted(p.name for p in work.iterdir()) == ["simcore-out"]
    print(f"installed CLI runs: {time.monotonic() - started:.1f} s")

    # The installed package builds exactly what the checkout builds, with no
    # path of the venv or of the working directory in the ELF or the manifest.
    ref = tmp_path / "checkout-build"
    build_model_firmware("iris3", "int8", "rp2040", ref)
    build_example(get_board("rp2040"), ref)
    for name in ("iris3-int8.elf", "iris3-int8.json", "iris3-int8.c", "example.elf"):
        data = (out / name).read_bytes()
        assert data == (ref / name).read_bytes(), name
        assert str(install.venv).encode() not in data, name
        assert str(work).encode() not in data, name


def test_nothing_was_written_into_the_checkout(install: Install) -> None:
    """Runs last in this module: the builds and the installed CLI left the checkout alone."""
    before, after = install.checkout_before, _snapshot(REPO)
    assert sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)) == []
    assert not (REPO / "simcore" / "_shipped").exists()
