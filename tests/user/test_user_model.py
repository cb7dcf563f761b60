"""A model simcore does not ship, from golden create to validate, gate and diagnosis.

The model is trained here, seeded, on scikit-learn's bundled digits (8x8
images, no download): a 64-32-16-10 MLP, as a user would bring. Everything
after training goes through the command line a user types.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simcore import cli
from simcore.boards import load_boards
from simcore.golden.store import load_golden_dir

pytest.importorskip("tensorflow", reason="golden create needs the golden extra")
pytest.importorskip("tflite_micro", reason="golden create needs the golden extra")

BOARDS = tuple(sorted(load_boards()))
TEST_SAMPLES = 60


def _train(folder: Path) -> None:
    """Train and save digits_mlp.keras and its test split (inputs in [0, 1], labels)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="digits_mlp",
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:1500], y[:1500], epochs=8, batch_size=32, verbose=0)
    model.save(folder / "digits_mlp.keras")
    np.save(folder / "x_test.npy", x[1500 : 1500 + TEST_SAMPLES])
    np.save(folder / "y_test.npy", y[1500 : 1500 + TEST_SAMPLES])


def _simcore(*argv: str | Path) -> int:
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's project folder: their model and data, and the golden made from them."""
    folder = tmp_path_factory.mktemp("user_project")
    _train(folder)
    code = _simcore(
        "golden", "create", folder / "digits_mlp.keras", "--data", folder / "x_test.npy",
        "--labels", folder / "y_test.npy", "--out", folder / "golden" / "digits_mlp", "-q",
    )  # fmt: skip
    assert code == 0
    return folder


@pytest.fixture
def in_project(work: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(work)
    monkeypatch.setenv("SIMCORE_OUT_DIR", str(work / "out"))
    return work


def test_golden_create_writes_a_checked_golden(work: Path) -> None:
    golden = load_golden_dir(work / "golden" / "digits_mlp")
    assert golden.name == "digits_mlp"
    assert golden.formats == ("f32", "q16", "int8")
    assert golden.has_labels and golden.num_samples == TEST_SAMPLES
    np.testing.assert_array_equal(golden.inputs_float, np.load(work / "x_test.npy"))
    # Keras is the float reference and the int8 model keeps most of its accuracy.
    keras_acc = np.mean(np.argmax(golden.outputs_float, axis=1) == golden.labels)
    int8_acc = np.mean(np.argmax(golden.outputs_int8_raw, axis=1) == golden.labels)
    assert keras_acc > 0.8 and abs(keras_acc - int8_acc) < 0.1
    # Per-layer intermediates of the first samples, Keras and TFLite.
    assert [lo.shape for lo in golden.layer_outputs_float] == [(32,), (16,), (10,)]
    assert golden.layer_outputs_int8 and golden.layer_outputs_int8[-1].shape == (10,)


def test_golden_is_refused_once_altered(work: Path, tmp_path: Path) -> None:
    copy = tmp_path / "g"
    shutil.copytree(work / "golden" / "digits_mlp", copy)
    data = dict(np.load(copy / "data.npz"))
    data["inputs"] = data["inputs"] + np.float32(0.5)
    np.savez_compressed(copy / "data.npz", **data)
    with pytest.raises(Exception, match="stale"):
        load_golden_dir(copy)


def test_validate_every_board_and_format(
    in_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = in_project / "results.json"
    code = _simcore("validate", "--model", "golden/digits_mlp", "--json", out, "-q")
    assert code == 0, capsys.readouterr().out
    results = json.loads(out.read_text())["results"]
    assert sorted(r["key"] for r in results) == sorted(
        f"digits_mlp/{f}/{b}" for f in ("f32", "int8", "q16") for b in BOARDS
    )
    for r in results:
        assert r["passed"], r["failures"]
        assert r["n_samples"] == TEST_SAMPLES
        assert r["accuracy"] == r["reference_accuracy"] > 0.8
        assert r["exactness"] == ("within tolerance" if r["format"] == "f32" else "bit-exact")


def test_validate_model_file_finds_its_golden(
    in_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _simcore("validate", "-m", "digits_mlp.keras", "-f", "q16", "-b", "rp2350", "-q")
    assert code == 0
    assert "digits_mlp/q16/rp2350  PASS" in capsys.readouterr().out


def test_firmware_alone_validates_and_a_mistake_fails(
    in_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A build from the user's .keras file (int8 comes from the golden next to it).
    assert (
        _simcore("build", "-m", "digits_mlp.keras", "-f", "int8", "-b", "rp2040", "--out", "fw")
        == 0
    )
    capsys.readouterr()
    assert _simcore("validate", "--firmware", "fw/digits_mlp-int8.elf", "-q") == 0
    assert "digits_mlp/int8/rp2040  PASS" in capsys.readouterr().out
    assert _simcore(
        "build", "-m", "golden/digits_mlp", "-f", "int8", "-b", "rp2040", "--out", "bad",
        "--trace", "--inject", "transpose-dense:1",
    ) == 0  # fmt: skip
    elf = next((in_project / "bad").glob("*.elf"))
    capsys.readouterr()
    assert _simcore("validate", "--firmware", elf, "-q") == 1
    out = capsys.readouterr().out
    assert "digits_mlp/int8/rp2040  FAIL" in out and "samples differ" in out
    # diagnose with only the ELF: the manifest leads to the model and its golden.
    assert _simcore("diagnose", elf, "-q") == 1
    report = capsys.readouterr().out
    assert "golden TFLite int8 per-layer outputs" in report
    assert "DIAGNOSIS: layer 1" in report and "transpose-dense:1:transposed" in report


def test_int8_tflite_without_labels(
    in_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "digits_int8.tflite"
    shutil.copyfile(in_project / "golden" / "digits_mlp" / "model_int8.tflite", model)
    folder = tmp_path / "g8"
    code = _simcore("golden", "create", model, "--data", "x_test.npy", "--out", folder, "-q")
    assert code == 0
    golden = load_golden_dir(folder)
    assert golden.formats == ("int8",) and not golden.has_labels
    assert golden.float_reference == "tflite_int8 dequantized"
    out = tmp_path / "r.json"
    assert _simcore("validate", "-m", folder, "-b", "rp2350", "--json", out, "-q") == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["passed"] and result["accuracy"] is None and result["argmax_agreement"] == 1.0
    capsys.readouterr()
    assert _simcore("validate", "-m", folder, "-f", "f32", "-b", "rp2350", "-q") == 2
    assert "has no keras model, so it cannot validate f32" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (
            np.zeros((5, 8, 8), np.float32),
            "has shape (5, 8, 8), but digits_int8.tflite takes inputs (N, 64)",
        ),
        (
            np.zeros((5, 64), np.int32),
            "has dtype int32, but digits_int8.tflite takes float or int8",
        ),
        (np.full((5, 64), np.nan, np.float32), "NaN or infinite"),
        (np.zeros((0, 64), np.float32), "holds no samples"),
    ],
    ids=["shape", "dtype", "nan", "empty"],
)
def test_golden_create_refuses_data_that_does_not_fit(
    in_project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    array: np.ndarray[Any, Any],
    message: str,
) -> None:
    model = tmp_path / "digits_int8.tflite"
    shutil.copyfile(in_project / "golden" / "digits_mlp" / "model_int8.tflite", model)
    np.save(tmp_path / "bad.npy", array)
    code = _simcore(
        "golden", "create", model, "--data", tmp_path / "bad.npy", "--out", tmp_path / "g"
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "g").exists()


def test_golden_create_refuses_labels_that_do_not_fit(
    in_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "y.npy", np.zeros(7, np.int64))
    code = _simcore(
        "golden", "create", "digits_mlp.keras", "--data", "x_test.npy", "--labels",
        tmp_path / "y.npy", "--out", tmp_path / "g", "-q",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and f"has shape (7,), but the data has {TEST_SAMPLES} samples" in err
    assert err.count("\n") == 1


def test_golden_create_without_tensorflow_says_what_to_install(
    in_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "tensorflow" else real(n, *a)
    )
    code = _simcore("golden", "create", "digits_mlp.keras", "--data", "x_test.npy")
    err = capsys.readouterr().err
    assert code == 2 and "needs TensorFlow" in err and "pip install 'simcore[golden]'" in err


def test_pytest_gate_for_the_user_model(in_project: Path) -> None:
    """The plugin's simcore_validate fixture: a baseline recorded, then gated."""
    tests = in_project / "gate"
    tests.mkdir(exist_ok=True)
    (tests / "test_gate.py").write_text(
        textwrap.dedent(
            f"""
            def test_digits(simcore_validate, simcore_board):
                result = simcore_validate({str(in_project / "golden" / "digits_mlp")!r},
                                          "int8", simcore_board)
                assert result.accuracy > 0.8
            """
        )
    )
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests),
            "--simcore-board", "rp2040",
            "--simcore-baseline", str(tests / "base.json")]  # fmt: skip
    env = {**os.environ, "SIMCORE_OUT_DIR": str(in_project / "out")}
    first = subprocess.run(base, capture_output=True, text=True, cwd=tests, env=env)
    assert first.returncode == 1 and "no baseline for digits_mlp/int8/rp2040" in first.stdout
    update = subprocess.run(
        [*base, "--simcore-update-baseline"], capture_output=True, text=True, cwd=tests, env=env
    )
    assert update.returncode == 0, update.stdout
    entry = json.loads((tests / "base.json").read_text())["entries"]["digits_mlp/int8/rp2040"]
    assert entry["samples"] == f"test {TEST_SAMPLES}" and entry["figures"]["cycles"]["value"] > 0
    gated = subprocess.run(base, capture_output=True, text=True, cwd=tests, env=env)
    assert gated.returncode == 0, gated.stdout
