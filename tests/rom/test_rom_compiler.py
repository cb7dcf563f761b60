"""The ROM cache key's compiler version, kept in the disk cache (simcore.rom._compiler)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from simcore import cache, rom
from simcore.errors import ToolchainError


def _fake_gcc(folder: Path, version: str) -> Path:
    script = folder / "arm-none-eabi-gcc"
    calls = folder / "calls"
    script.write_text(f"#!/bin/sh\necho x >> {calls}\necho '{version}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_version_is_asked_once_per_compiler_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    gcc = _fake_gcc(bin_dir, "arm-none-eabi-gcc (fake) 1.0")
    calls = bin_dir / "calls"
    assert rom._compiler() == (str(gcc), "arm-none-eabi-gcc (fake) 1.0")
    assert rom._compiler() == (str(gcc), "arm-none-eabi-gcc (fake) 1.0")
    assert calls.read_text().count("x") == 1  # the second answer came from the cache
    # Another compiler in its place (other size and time): asked again.
    _fake_gcc(bin_dir, "arm-none-eabi-gcc (fake) 2.0.1")
    os.utime(gcc, ns=(1, 1))
    assert rom._compiler() == (str(gcc), "arm-none-eabi-gcc (fake) 2.0.1")
    assert calls.read_text().count("x") == 2
    # No compiler on PATH: the toolchain's own error, cached version or not.
    gcc.unlink()
    with pytest.raises(ToolchainError, match="not found on PATH"):
        rom._compiler()
