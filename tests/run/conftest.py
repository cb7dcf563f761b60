"""Fixtures of the `simcore run` tests: a tiny batch firmware and shipped-model builds."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sim_support import HAVE_TOOLCHAIN

from simcore.boards import get_board
from simcore.firmware.build import build_model_firmware
from simcore.toolchain import build_elf

HERE = Path(__file__).resolve().parent
Denial = contextlib.AbstractContextManager[None]


@pytest.fixture(scope="session")
def batch_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/run/batch_fw.c for the rp2040: int32 in, 2*x out, capacity 4 (see the source)."""
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    out = tmp_path_factory.mktemp("batch_fw") / "batch.elf"
    return build_elf([HERE / "batch_fw.c"], get_board("rp2040"), out).elf


@pytest.fixture(scope="session")
def model_elf(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Shipped models built for the rp2040 with their manifests, by ``model-format``."""
    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    out = tmp_path_factory.mktemp("models")
    combos = [("iris3", "f32"), ("iris3", "q16"), ("iris3", "int8"), ("mnist_cnn", "int8")]
    return {f"{m}-{f}": build_model_firmware(m, f, "rp2040", out).elf for m, f in combos}


@pytest.fixture
def unreadable(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Path], contextlib.AbstractContextManager[None]]:
    """``with unreadable(path):`` the file cannot be read (chmod 000; as root, whose reads
    go through chmod, ``Path.read_bytes`` of it fails as a denied read would)."""

    @contextlib.contextmanager
    def deny(path: Path) -> Iterator[None]:
        path.chmod(0)
        if os.geteuid() == 0:
            real = Path.read_bytes

            def denied(self: Path) -> bytes:
                if self == path:
                    raise PermissionError(13, "Permission denied", str(self))
                return real(self)

            monkeypatch.setattr(Path, "read_bytes", denied)
        try:
            yield
        finally:
            path.chmod(0o644)

    return deny
