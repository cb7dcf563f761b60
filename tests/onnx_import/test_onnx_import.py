"""ONNX import: float and QDQ models into the IR, golden create with onnxruntime, validate.

The models are built in :mod:`onnx_models` with onnx.helper (seeded random
weights). The CNN's layout matters everywhere: three channels, a 7x5 input,
3x2 and 2x3 kernels, asymmetric padding and a Flatten of an NCHW tensor into
a Gemm, so a wrong NCHW -> NHWC handling changes its outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx_models as om
import pytest

from simcore import cli
from simcore.errors import FirmwareError
from simcore.golden.store import load_golden_dir

ort = pytest.importorskip("onnxruntime", reason="ONNX import needs the onnx extra")
pytest.importorskip("onnx", reason="ONNX import needs the onnx extra")

from simcore.boards import load_boards  # noqa: E402
from simcore.firmware import int8_eval, onnx_model  # noqa: E402
from simcore.firmware.reference import forward_float  # noqa: E402
from simcore.golden import store  # noqa: E402

BOARDS = tuple(sorted(load_boards()))  # every board, the micro:bit included (IRIS-sized)
SAMPLES = 24
#: (builder, ONNX input shape per sample)
MODELS = {
    "mlp": (om.mlp, (6,)),
    "cnn": (om.cnn, om.CNN_INPUT),
    "cnn_nhwc": (om.cnn_nhwc, (7, 5, 3)),
}


def _simcore(*argv: str | Path) -> int:
    return cli.main([str(a) for a in argv])


def _inputs(shape: tuple[int, ...], n: int = SAMPLES, seed: int = 5) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).normal(0, 1, (n, *shape)).astype(np.float32)


def _onnxruntime(path: Path, x: np.ndarray[Any, Any], **opts: Any) -> np.ndarray[Any, Any]:
    so = ort.SessionOptions()
    for k, v in opts.items():
        setattr(so, k, v)
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx_models")
    return {name: build(folder / f"{name}.onnx") for name, (build, _) in MODELS.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_float_import_matches_onnxruntime(models: dict[str, Path], name: str) -> None:
    chain = onnx_model.read_chain(models[name])
    x = _inputs(MODELS[name][1])
    ours = forward_float(onnx_model.float_model(chain), chain.to_firmware_layout(x))
    np.testing.assert_allclose(ours, _onnxruntime(models[name], x), atol=1e-5)


def test_cnn_layout_is_what_the_test_checks(models: dict[str, Path]) -> None:
    """The CNN's NCHW handling is what makes it match: the flatten order and input layout."""
    chain = onnx_model.read_chain(models["cnn"])
    fm = onnx_model.float_model(chain)
    assert [(la.kind, la.in_shape, la.out_shape) for la in fm.layers] == [
        ("conv2d", (7, 5, 3), (7, 5, 4)),
        ("maxpool", (7, 5, 4), (3, 2, 4)),
        ("conv2d", (3, 2, 4), (2, 1, 6)),
        ("flatten", (2, 1, 6), (12,)),
        ("dense", (12,), (5,)),
    ]
    x = _inputs(om.CNN_INPUT)
    want = _onnxruntime(models["cnn"], x)
    # Feeding the NCHW bytes as if they were NHWC gives other outputs ...
    wrong_input = forward_float(fm, x.reshape(len(x), 7, 5, 3))
    assert np.abs(wrong_input - want).max() > 1e-2
    # ... and so does the Gemm without its columns put in HWC order.
    dense = fm.layers[-1]
    assert dense.weights is not None
    unpermuted = dense.weights[:, np.argsort(onnx_model._chw_order(2, 1, 6))]
    bad = type(fm)(**{**fm.__dict__, "layers": (*fm.layers[:-1],
                      type(dense)(**{**dense.__dict__, "weights": unpermuted}))})  # fmt: skip
    assert np.abs(forward_float(bad, chain.to_firmware_layout(x)) - want).max() > 1e-2


@pytest.fixture(scope="module")
def goldens(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """golden create for the MLP and the CNN, through the command line, with labels."""
    folder = tmp_path_factory.mktemp("onnx_goldens")
    out = {}
    for name in ("mlp", "cnn"):
        x = _inputs(MODELS[name][1])
        labels = np.argmax(_onnxruntime(models[name], x), axis=1)
        labels[:3] = (labels[:3] + 1) % labels.max(initial=1)  # not all right: accuracy < 100%
        np.savez(folder / f"{name}_data.npz", inputs=x, labels=labels)
        code = _simcore(
            "golden", "create", models[name], "--data", folder / f"{name}_data.npz",
            "--out", folder / name, "-q",
        )  # fmt: skip
        assert code == 0
        out[name] = folder / name
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_golden_create_from_onnx(
    goldens: dict[str, Path], models: dict[str, Path], name: str
) -> None:
    golden = load_golden_dir(goldens[name])
    assert golden.formats == ("f32", "q16", "int8")
    assert golden.float_reference == "onnxruntime"
    assert golden.role("f32") == "onnx" and golden.role("int8") == "onnx_int8"
    assert golden.model_path("int8").name == "model_int8.onnx"
    x = _inputs(MODELS[name][1])
    chain = onnx_model.read_chain(models[name])
    # Inputs are stored in the firmware's layout (NHWC), outputs are onnxruntime's.
    np.testing.assert_array_equal(golden.inputs_float, chain.to_firmware_layout(x))
    np.testing.assert_allclose(golden.outputs_float, _onnxruntime(models[name], x), atol=1e-6)
    agreement = golden.header["int8_vs_onnxruntime"]
    assert agreement["max_abs_diff"] <= 4 and agreement["equal_fraction"] > 0.3
    int8_acc = np.mean(np.argmax(golden.outputs_int8_raw, axis=1) == golden.labels)
    float_acc = np.mean(np.argmax(golden.outputs_float, axis=1) == golden.labels)
    assert float_acc == 1 - 3 / SAMPLES and abs(int8_acc - float_acc) <= 0.2


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_validate_every_board_and_format(
    goldens: dict[str, Path], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMCORE_OUT_DIR", str(tmp_path / "out"))
    out = tmp_path / "results.json"
    assert _simcore("validate", "--model", goldens[name], "--json", out, "-q") == 0
    results = json.loads(out.read_text())["results"]
    assert sorted(r["key"] for r in results) == sorted(
        f"{name}/{f}/{b}" for f in ("f32", "int8", "q16") for b in BOARDS
    )
    for r in results:
        assert r["passed"], r["failures"]
        assert r["n_samples"] == SAMPLES
        assert r["accuracy"] == r["reference_accuracy"]
        assert r["exactness"] == ("within tolerance" if r["format"] == "f32" else "bit-exact")


def test_build_from_the_onnx_file_and_its_golden(
    goldens: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = goldens["cnn"] / "model.onnx"
    assert _simcore("build", "-m", model, "-f", "f32", "-b", "rp2350", "--out", tmp_path) == 0
    # int8 from the float .onnx: the golden next to it holds the QDQ model.
    assert _simcore("build", "-m", model, "-f", "int8", "-b", "rp2040", "--out", tmp_path) == 0
    manifest = json.loads((tmp_path / "cnn-int8.json").read_text())
    assert manifest["model"]["path"].endswith("model_int8.onnx")
    assert manifest["io"]["input_shape"] == [7, 5, 3]
    capsys.readouterr()
    assert _simcore("validate", "--firmware", tmp_path / "cnn-int8.elf", "-q") == 0
    assert "cnn/int8/rp2040  PASS" in capsys.readouterr().out


def _quantize(model: Path, out: Path, x: np.ndarray[Any, Any], per_channel: bool) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.rows = iter(x[i : i + 1] for i in range(len(x)))

        def get_next(self) -> dict[str, Any] | None:
            row = next(self.rows, None)
            return None if row is None else {"x": row}

    quantize_static(
        str(model), str(out), Reader(), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
    )  # fmt: skip
    return out


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
def test_qdq_int8_against_onnxruntime(tmp_path: Path, per_channel: bool) -> None:
    """A QDQ CNN (Conv, Relu, MaxPool, Flatten, Gemm) against onnxruntime's own int8 run.

    Not bit-exact: both compute the same integer dot products, but onnxruntime
    requantizes them with a float scale and rounds half to even, the firmware
    (TFLite's semantics) with a 31-bit fixed-point multiplier and two roundings.
    So a value that lands near a rounding boundary may differ by one step; this
    is the tolerance, and most values must agree exactly.
    """
    model = om.cnn(tmp_path / "cnn_logits.onnx", softmax=False, batchnorm=False)
    x = _inputs(om.CNN_INPUT, n=200, seed=11)
    qdq = _quantize(model, tmp_path / "cnn_qdq.onnx", x[:100], per_channel)
    chain = onnx_model.read_chain(qdq)
    im = onnx_model.int8_model(chain)
    assert [op.kind for op in im.ops] == [
        "conv2d", "maxpool", "conv2d", "reshape", "fully_connected"
    ]  # fmt: skip
    conv = im.ops[0]
    assert conv.multiplier is not None
    assert (len(set(conv.multiplier.tolist())) > 1) == per_channel
    x_q = store.quantize(chain.to_firmware_layout(x), im.input_scale, im.input_zero_point)
    ours = int8_eval.forward(im, x_q).reshape(len(x), -1)
    # onnxruntime gets exactly the int8 inputs the firmware gets.
    x_in = chain.to_onnx_layout(store.dequantize(x_q, im.input_scale, im.input_zero_point))
    theirs = _onnxruntime(qdq, x_in)
    theirs_q = np.round(theirs / np.float32(im.output_scale)) + im.output_zero_point
    diff = np.abs(theirs_q - ours)
    assert diff.max() <= 1
    assert np.mean(diff == 0) >= 0.9


def test_qdq_file_builds_and_runs_bit_exact_with_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A QDQ .onnx given to golden create: int8 only, validated bit-exact on a board."""
    model = om.cnn(tmp_path / "cnn_logits.onnx", softmax=False, batchnorm=False)
    x = _inputs(om.CNN_INPUT, n=16, seed=2)
    qdq = _quantize(model, tmp_path / "cnn_qdq.onnx", x, per_channel=True)
    np.save(tmp_path / "x.npy", x)
    assert _simcore("golden", "create", qdq, "--data", tmp_path / "x.npy",
                    "--out", tmp_path / "g", "-q") == 0  # fmt: skip
    golden = load_golden_dir(tmp_path / "g")
    assert golden.formats == ("int8",) and golden.float_reference == "onnxruntime (QDQ model)"
    monkeypatch.setenv("SIMCORE_OUT_DIR", str(tmp_path / "out"))
    assert _simcore("validate", "-m", tmp_path / "g", "-b", "rp2350", "-q") == 0
    capsys.readouterr()
    assert _simcore("validate", "-m", tmp_path / "g", "-f", "f32", "-b", "rp2350", "-q") == 2
    assert "has no onnx model, so it cannot validate f32" in capsys.readouterr().err


def test_unsupported_op_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = om.with_unsupported_op(tmp_path / "swish.onnx")
    np.save(tmp_path / "x.npy", _inputs((4,), n=4))
    for argv in (
        ("build", "-m", model, "-f", "f32", "-b", "rp2040", "--out", tmp_path),
        ("golden", "create", model, "--data", tmp_path / "x.npy", "--out", tmp_path / "g"),
    ):
        capsys.readouterr()
        assert _simcore(*argv) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1, err
        assert "node 'swish_1' (HardSwish) is not supported" in err


def test_int8_build_of_a_float_onnx_without_golden_says_what_to_do(
    models: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _simcore("build", "-m", models["mlp"], "-f", "int8", "-b", "rp2040",
                    "--out", tmp_path) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "simcore golden create" in err and len(err.splitlines()) == 1


def test_missing_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = om.mlp(tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(FirmwareError, match=r"pip install 'simcore\[onnx\]'"):
        onnx_model.read_chain(model)


def test_onnx_path_imports_no_tensorflow(models: dict[str, Path], tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", _inputs((6,), n=8))
    code = (
        "import sys\n"
        "from simcore import cli\n"
        f"rc = cli.main(['golden', 'create', {str(models['mlp'])!r}, '--data', "
        f"{str(tmp_path / 'x.npy')!r}, '--out', {str(tmp_path / 'g')!r}, '-q'])\n"
        f"rc = rc or cli.main(['build', '-m', {str(tmp_path / 'g')!r}, '-f', 'int8', "
        f"'-b', 'rp2040', '--out', {str(tmp_path / 'fw')!r}])\n"
        "print(rc, sorted(m for m in ('tensorflow', 'keras', 'tflite_micro') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr


# -- the shipped export of mnist_cnn -----------------------------------------------------------


def test_shipped_onnx_export_is_mnist_cnn() -> None:
    """mnist_cnn_onnx (PyTorch's export) computes what mnist_cnn (Keras) computes."""
    from simcore.firmware.build import load_model, resolve_model
    from simcore.golden.store import load_golden

    onnx_golden, keras_golden = load_golden("mnist_cnn_onnx"), load_golden("mnist_cnn")
    assert onnx_golden.formats == ("f32", "q16", "int8")
    np.testing.assert_array_equal(onnx_golden.labels, keras_golden.labels)
    np.testing.assert_allclose(onnx_golden.outputs_float, keras_golden.outputs_float, atol=1e-4)
    # The graph is PyTorch's NCHW one: Flatten of a (16, 5, 5) tensor into a Gemm.
    chain = onnx_model.read_chain(onnx_golden.model_path("f32"))
    assert chain.onnx_input_shape == (1, 28, 28) and chain.input_layout == "nchw"
    assert [s.op for s in chain.steps] == [
        "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm"
    ]  # fmt: skip
    x = onnx_golden.inputs_float[:50]
    ours = forward_float(load_model(*resolve_model("mnist_cnn_onnx", "f32"), "f32"), x)
    np.testing.assert_allclose(ours, onnx_golden.outputs_float[:50], atol=1e-4)
    im = load_model(*resolve_model("mnist_cnn_onnx", "int8"), "int8")
    got = int8_eval.forward(im, onnx_golden.inputs_int8[:50]).reshape(50, -1)
    np.testing.assert_array_equal(got, onnx_golden.outputs_int8_raw[:50])


@pytest.mark.slow
def test_shipped_onnx_export_validates_on_every_board(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMCORE_OUT_DIR", str(tmp_path / "out"))
    out = tmp_path / "r.json"
    args = ("validate", "-m", "mnist_cnn_onnx", "--limit", "500", "--json", out, "-q")
    assert _simcore(*args) == 0
    results = json.loads(out.read_text())["results"]
    assert len(results) == 9 and all(r["passed"] for r in results)
