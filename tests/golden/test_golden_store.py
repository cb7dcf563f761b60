"""Goldens load, are consistent, and are refused when any file was altered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from golden_support import GOLDEN_ROOT, MODELS, ONNX_MODELS, CopyGolden, flip_byte

from simcore.errors import GoldenError
from simcore.golden import Golden, list_models, load_golden
from simcore.golden.store import ARRAYS_FILE, HEADER_FILE, quantize

# Models, their task sizes and split sizes, as the generator promises.
EXPECTED = {
    "iris_anne8": {"n": 100, "test": 20, "classes": 2, "out": (1,)},
    "iris_anne6": {"n": 100, "test": 20, "classes": 2, "out": (1,)},
    "iris3": {"n": 150, "test": 30, "classes": 3, "out": (3,)},
    "mnist_cnn": {"n": 10000, "test": 10000, "classes": 10, "out": (10,)},
    "mnist_cnn_pruned50": {"n": 10000, "test": 10000, "classes": 10, "out": (10,)},
    "mnist_cnn_pruned80": {"n": 10000, "test": 10000, "classes": 10, "out": (10,)},
    "mnist_cnn_student": {"n": 10000, "test": 10000, "classes": 10, "out": (10,)},
}


def test_list_models_names_every_committed_golden() -> None:
    assert list_models() == sorted(MODELS + ONNX_MODELS)


@pytest.fixture(scope="module", params=MODELS)
def golden(request: pytest.FixtureRequest) -> Golden:
    return load_golden(request.param)


def test_golden_shapes_and_types(golden: Golden) -> None:
    exp = EXPECTED[golden.name]
    n = exp["n"]
    assert golden.num_samples == n
    assert golden.inputs_float.dtype == np.float32 and len(golden.inputs_float) == n
    assert (
        golden.inputs_int8.dtype == np.int8
        and golden.inputs_int8.shape == golden.inputs_float.shape
    )
    assert golden.outputs_float.shape == (n, *exp["out"])
    assert (
        golden.outputs_int8_raw.shape == (n, *exp["out"])
        and golden.outputs_int8_raw.dtype == np.int8
    )
    assert len(golden.split("test")) == exp["test"]
    assert np.array_equal(golden.split("all"), np.arange(n))
    assert set(np.unique(golden.labels)) == set(range(exp["classes"]))
    assert len(golden.label_names) == exp["classes"]
    for role in ("keras", "tflite_float", "tflite_int8"):
        assert len(golden.model_sha256[role]) == 64
    assert golden.tflite_int8_path.is_file() and golden.keras_path.is_file()


@pytest.mark.parametrize("name", ["iris3", "iris_anne6", "iris_anne8"])
def test_iris_test_split_is_disjoint_from_training(name: str) -> None:
    golden = load_golden(name)
    test, train = set(golden.split("test").tolist()), set(golden.split("train").tolist())
    assert not test & train and len(test | train) == golden.num_samples
    # stratified: equal numbers per class in the test split
    counts = np.bincount(golden.labels[golden.split("test")])
    assert len(set(counts.tolist())) == 1


def test_int8_inputs_are_quantized_with_the_models_input_params(golden: Golden) -> None:
    q = golden.input_quant
    back = q.scale * (golden.inputs_int8.astype(np.float32) - q.zero_point)
    assert np.max(np.abs(back - golden.inputs_float)) <= q.scale / 2 + 1e-6


def test_mnist_int8_input_is_pixel_minus_128() -> None:
    g = load_golden("mnist_cnn")
    assert g.input_quant.scale == 1 / 256 and g.input_quant.zero_point == -128
    pixels = np.rint(g.inputs_float * 256).astype(np.int32)
    assert np.array_equal(g.inputs_int8.astype(np.int32), pixels - 128)


def test_dequantized_outputs_follow_output_params(golden: Golden) -> None:
    q = golden.output_quant
    expected = q.scale * (golden.outputs_int8_raw.astype(np.float32) - q.zero_point)
    assert np.allclose(golden.outputs_int8_dequant, expected)
    # int8 and float references agree to within a few output steps on most samples
    err = np.abs(golden.outputs_int8_dequant - golden.outputs_float)
    assert np.median(err) < 4 * q.scale + 1e-3


def test_layer_outputs_cover_every_layer_and_op(golden: Golden) -> None:
    s = len(golden.layer_samples)
    assert 1 <= s <= 10
    assert golden.layer_outputs_float and golden.layer_outputs_int8
    for lo in golden.layer_outputs_float + golden.layer_outputs_int8:
        assert lo.values.shape == (s, *lo.shape)
    # the last float layer is the model output, the last int8 op the int8 output
    last_f = golden.layer_outputs_float[-1].values
    assert np.allclose(last_f, golden.outputs_float[golden.layer_samples], atol=1e-5)
    last_q = golden.layer_outputs_int8[-1].values.reshape(s, -1)
    assert np.array_equal(last_q, golden.outputs_int8_raw[golden.layer_samples].reshape(s, -1))
    # every op maps to a Keras layer, and each Keras layer has exactly one output op
    names = [lo.name for lo in golden.layer_outputs_float]
    outs = [lo.keras_layer for lo in golden.layer_outputs_int8 if lo.is_layer_output]
    assert all(lo.keras_layer in names for lo in golden.layer_outputs_int8)
    assert sorted(outs) == sorted(names)


def test_int8_layer_outputs_track_float_layers(golden: Golden) -> None:
    floats = {lo.name: lo for lo in golden.layer_outputs_float}
    for lo in golden.layer_outputs_int8:
        if not lo.is_layer_output or lo.keras_layer is None:
            continue
        ref = floats[lo.keras_layer].values.reshape(lo.values.shape)
        assert lo.quant is not None
        # quantization error grows through the net; 12 output steps is generous but finite
        assert np.max(np.abs(lo.dequantized() - ref)) <= 12 * lo.quant.scale + 0.02, lo.kind


def test_unknown_model_is_a_golden_error() -> None:
    with pytest.raises(GoldenError, match=r"no golden for model 'nope'.*known: iris3") as info:
        load_golden("nope")
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "victim, pattern",
    [
        (
            "model_int8.tflite",
            r"stale: model \(tflite_int8\) model_int8.tflite sha256 [0-9a-f]{64} != ",
        ),
        ("model_float.tflite", r"stale: model \(tflite_float\)"),
        ("model.keras", r"stale: model \(keras\)"),
        (ARRAYS_FILE, r"stale: golden arrays golden.npz sha256"),
        ("../data/iris.npz", r"stale: data set: data set file .*iris.npz was altered"),
    ],
)
def test_tampered_file_is_refused(golden_copy: CopyGolden, victim: str, pattern: str) -> None:
    root = golden_copy("iris_anne8")
    assert load_golden("iris_anne8", root=root).name == "iris_anne8"  # the copy is valid
    flip_byte(root / "iris_anne8" / victim)
    with pytest.raises(GoldenError, match=pattern) as info:
        load_golden("iris_anne8", root=root)
    assert "regenerate with `nox -s golden`" in str(info.value)


def test_edited_header_is_refused(golden_copy: CopyGolden) -> None:
    root = golden_copy("iris_anne6")
    path = root / "iris_anne6" / HEADER_FILE
    header = json.loads(path.read_text())
    header["output"]["zero_point"] += 1
    path.write_text(json.dumps(header))
    with pytest.raises(GoldenError, match=r"header .* was edited"):
        load_golden("iris_anne6", root=root)


def test_byte_flipped_header_is_refused(golden_copy: CopyGolden) -> None:
    root = golden_copy("iris3")
    flip_byte(root / "iris3" / HEADER_FILE)
    with pytest.raises(GoldenError, match="golden for iris3 is stale: header"):
        load_golden("iris3", root=root)


def test_newer_format_version_is_refused(golden_copy: CopyGolden) -> None:
    root = golden_copy("iris3")
    path = root / "iris3" / HEADER_FILE
    header = json.loads(path.read_text())
    header["version"] = 99
    path.write_text(json.dumps(header))
    with pytest.raises(GoldenError, match="version 99, this simcore reads"):
        load_golden("iris3", root=root)


def test_missing_model_file_is_refused(golden_copy: CopyGolden) -> None:
    root = golden_copy("iris3")
    (root / "iris3" / "model_int8.tflite").unlink()
    with pytest.raises(GoldenError, match=r"tflite_int8 file .* is missing"):
        load_golden("iris3", root=root)


def test_store_imports_neither_tensorflow_nor_sklearn_nor_tflm() -> None:
    code = (
        "import sys; import simcore.golden, simcore.golden.store, simcore.golden.report;"
        "simcore.golden.load_golden('iris3');"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'sklearn', 'tflite_micro')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_quantize_rounds_half_away_from_zero() -> None:
    x = np.array([0.5, 1.5, -0.5, -1.5, 2.49, 1000.0, -1000.0], dtype=np.float32)
    assert quantize(x, 1.0, 0).tolist() == [1, 2, -1, -2, 2, 127, -128]
    assert quantize(x, 1.0, -128).tolist()[0] == -127


def test_golden_root_is_the_repository_folder() -> None:
    assert (GOLDEN_ROOT / "README.md").is_file()
    assert Path(load_golden("iris3").directory) == GOLDEN_ROOT / "iris3"


def test_no_unused_or_unlisted_golden_files() -> None:
    """Every model folder belongs to a generator spec and holds only the files its header lists."""
    from simcore.golden import (
        generate,  # imports no TensorFlow until it trains
        onnx_export,  # imports no torch until it exports
    )

    assert list_models() == sorted([*generate.SPECS, onnx_export.NAME])
    used_data = set()
    for name in list_models():
        g = load_golden(name)
        listed = {entry["path"] for entry in g.header["files"].values()} | {HEADER_FILE}
        present = {p.name for p in (GOLDEN_ROOT / name).iterdir()}
        assert present == listed, f"{name}: unlisted files {sorted(present - listed)}"
        used_data.add(g.header["dataset"]["path"])
    data_files = {f"data/{p.name}" for p in (GOLDEN_ROOT / "data").glob("*.npz")}
    assert data_files == used_data
    folders = {p.name for p in GOLDEN_ROOT.iterdir() if p.is_dir()} - {"data"}
    assert folders == set(list_models())
