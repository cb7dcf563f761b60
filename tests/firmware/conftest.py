"""Fixtures of the firmware generator tests: a per-session build cache and the host kernels."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import threading
from typing import Any

import pytest
from fw_support import Builder

from simcore.errors import DoesNotFit
from simcore.firmware import FirmwareBuild, build_model_firmware
from simcore.firmware.codegen import q16_tables_source
from simcore.toolchain import INCLUDE_DIR, RUNTIME_DIR

HAVE_ARM_GCC = shutil.which("arm-none-eabi-gcc") is not None
HAVE_HOST_GCC = shutil.which("gcc") is not None or shutil.which("cc") is not None


@pytest.fixture(scope="session")
def fw_build(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    """Build (once per session) a model firmware into a temporary folder."""
    if not HAVE_ARM_GCC:
        pytest.skip("arm-none-eabi-gcc missing")
    root = tmp_path_factory.mktemp("fw")
    cache: dict[tuple[Any, ...], FirmwareBuild | DoesNotFit] = {}
    lock = threading.Lock()

    def build(model: Any, fmt: str, board: str, **kw: Any) -> FirmwareBuild:
        """The firmware; a model too big for the board skips the test (as validate skips it)."""
        key = (str(model), fmt, board, tuple(sorted(kw.items())))
        with lock:
            hit = cache.get(key)
        if hit is None:
            try:
                hit = build_model_firmware(model, fmt, board, root / board, **kw)
            except DoesNotFit as exc:
                hit = exc
            with lock:
                cache[key] = hit
        if isinstance(hit, DoesNotFit):
            pytest.skip(f"does not fit: {hit}")
        return hit

    return build


@pytest.fixture(scope="session", params=["patch", "direct"])
def host_nn(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ctypes.CDLL:
    """The runtime's kernels compiled for the host (same C, no DSP path) as a shared library.

    ``patch``: with the int16 input-patch buffer generated builds use
    (``NN_INT8_SCRATCH``); ``direct``: without it, the fallback for layers
    whose patch would exceed the buffer limit.
    """
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler")
    d = tmp_path_factory.mktemp(f"host_nn_{request.param}")
    tables = d / "tables.c"
    tables.write_text('#include "nn_q16.h"\n' + q16_tables_source())
    lib = d / "libnn.so"
    defines = ["-DNN_INT8_SCRATCH=512"] if request.param == "patch" else []
    subprocess.run(
        [
            cc,
            "-std=c11",
            "-O2",
            "-shared",
            "-fPIC",
            "-ffp-contract=off",
            *defines,
            f"-I{INCLUDE_DIR}",
            *(str(RUNTIME_DIR / f"nn_{f}.c") for f in ("f32", "q16", "int8")),
            str(tables),
            "-lm",
            "-o",
            str(lib),
        ],
        check=True,
    )
    return ctypes.CDLL(str(lib))
