"""The one output writer: whole files or none, one-line errors, nothing left behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simcore.errors import OutputError
from simcore.outputs import check_writable, write_output


def test_writes_creating_folders_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "r.json"
    write_output(target, "one")
    assert target.read_text() == "one"
    target.chmod(0o640)
    write_output(target, b"two")
    assert target.read_bytes() == b"two" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "baseline.json"
    target.write_text("old, valid")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match="No space left on device") as info:
        write_output(target, "x" * 100_000, what="baseline")
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    assert target.read_text() == "old, valid"
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def test_directory_and_device_targets(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        write_output(tmp_path, "x")
    with pytest.raises(OutputError, match="is a directory"):
        check_writable(tmp_path)
    if Path("/dev/full").exists():
        with pytest.raises(OutputError, match="No space left on device"):
            write_output("/dev/full", "x" * 10_000)
        assert Path("/dev/full").is_char_device()  # written in place, never replaced
    check_writable(tmp_path / "new" / "deeper" / "r.json")  # folders are created later
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is not a directory"):
        check_writable(tmp_path / "file" / "r.json")


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=5000) | st.text(max_size=2000))
def test_whatever_is_written_reads_back(
    tmp_path_factory: pytest.TempPathFactory, data: str | bytes
) -> None:
    target = tmp_path_factory.mktemp("w") / "out.bin"
    write_output(target, data)
    assert target.read_bytes() == (data.encode() if isinstance(data, str) else data)


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 64 KB tmpfs (needs root and mount rights; skipped where the kernel refuses)."""
    import subprocess

    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root, or no mount rights)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_keeps_the_old_file_whole(small_disk: Path) -> None:
    target = small_disk / "results.json"
    write_output(target, "previous results\n")
    with pytest.raises(OutputError, match="No space left on device"):
        write_output(target, "x" * 200_000, what="results")
    assert target.read_text() == "previous results\n"
    assert [p.name for p in small_disk.iterdir()] == ["results.json"]


def test_validate_on_a_full_disk_prints_its_results_and_one_error(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from simcore.cli import main

    (small_disk / "filler").write_bytes(b"\0" * (60 * 1024))
    out = small_disk / "r.json"
    code = main(["validate", "-m", "iris3", "-f", "int8", "-b", "rp2040", "--limit", "4",
                 "--json", str(out), "-q"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1
    assert "cannot write results" in captured.err and "No space left" in captured.err
    assert "iris3/int8/rp2040  PASS" in captured.out  # the results still reach the log
    assert not out.exists() and sorted(p.name for p in small_disk.iterdir()) == ["filler"]
