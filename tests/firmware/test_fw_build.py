"""Builds: the .keras reader, manifests, reproducibility, and every bad-input case."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from fw_support import small_keras, write_keras

from simcore.cli import main
from simcore.elf import load_elf
from simcore.engine import run_firmware
from simcore.errors import BoardError, SimError
from simcore.firmware import FirmwareError, build_model_firmware
from simcore.firmware.codec import decode_outputs, encode_inputs
from simcore.firmware.ir import FloatModel, Geometry, Layer
from simcore.firmware.keras_model import read_keras, snake_case
from simcore.firmware.reference import forward_float

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


@pytest.fixture
def keras_file(tmp_path: Path) -> Path:
    return small_keras(tmp_path / "tiny.keras")


def test_snake_case_matches_keras_weight_groups() -> None:
    assert snake_case("Dense") == "dense"
    assert snake_case("Conv2D") == "conv2d"
    assert snake_case("MaxPooling2D") == "max_pooling2d"
    assert snake_case("InputLayer") == "input_layer"


def test_keras_reader_transposes_dense_kernels(keras_file: Path) -> None:
    model = read_keras(keras_file)
    assert [layer.kind for layer in model.layers] == ["dense", "dense"]
    assert model.layers[0].weights is not None and model.layers[0].weights.shape == (8, 4)
    assert model.input_shape == (4,) and model.output_shape == (3,)


def test_sequential_keras_model_runs_like_its_reference(keras_file: Path, tmp_path: Path) -> None:
    model = read_keras(keras_file)
    x = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    build = build_model_firmware(keras_file, "f32", "rp2040", tmp_path)
    result = run_firmware(build.elf, "rp2040", inputs=encode_inputs("f32", x), n_samples=4)
    out = decode_outputs("f32", result.outputs, build.output_shape)
    np.testing.assert_allclose(out, forward_float(model, x), atol=1e-6)


@pytest.mark.parametrize("fmt", ["f32", "q16"])
def test_rebuild_is_byte_identical(keras_file: Path, tmp_path: Path, fmt: str) -> None:
    a = build_model_firmware(keras_file, fmt, "rp2350", tmp_path / "a")
    a_bytes = a.elf.read_bytes()
    again = build_model_firmware(keras_file, fmt, "rp2350", tmp_path / "a")
    b = build_model_firmware(keras_file, fmt, "rp2350", tmp_path / "elsewhere" / "b")
    assert again.elf.read_bytes() == a_bytes
    assert b.elf.read_bytes() == a_bytes
    assert b.source.read_text() == a.source.read_text()
    assert b.manifest_path.read_text() == a.manifest_path.read_text()


def test_int8_rebuild_is_byte_identical(tmp_path: Path) -> None:
    tflite = GOLDEN / "iris_anne8" / "model_int8.tflite"
    if not tflite.exists():
        pytest.skip("golden iris_anne8 not generated")
    a = build_model_firmware(tflite, "int8", "stm32h743", tmp_path / "a")
    b = build_model_firmware(tflite, "int8", "stm32h743", tmp_path / "b")
    assert a.elf.read_bytes() == b.elf.read_bytes()


def test_manifest_states_what_was_built(keras_file: Path, tmp_path: Path) -> None:
    build = build_model_firmware(keras_file, "f32", "stm32h743", tmp_path)
    m = json.loads(build.manifest_path.read_text())
    assert m == build.manifest
    assert m["model"]["sha256"] == hashlib.sha256(keras_file.read_bytes()).hexdigest()
    assert (m["format"], m["board"], m["core"]) == ("f32", "stm32h743", "cortex-m7")
    assert m["compiler"]["version"].startswith("arm-none-eabi-gcc")
    assert "-ffp-contract=off" in m["compiler"]["flags"]
    assert "-mfpu=fpv5-d16" in m["compiler"]["flags"]
    assert m["tolerance"]["abs"] > 0
    assert m["files"]["elf_sha256"] == hashlib.sha256(build.elf.read_bytes()).hexdigest()
    sizes = m["sizes"]
    assert sizes["weights_bytes"] == (4 * 8 + 8 + 8 * 3 + 3) * 4
    assert 0 < sizes["arena_bytes"] <= sizes["static_ram_bytes"]
    image = load_elf(build.elf)
    for layer in m["layers"]:
        for symbol, size in layer["symbols"].items():
            sym = image.symbol(symbol)
            assert sym is not None and sym.size_bytes == size, symbol
    assert image.symbol("nn_arena").size_bytes == sizes["arena_bytes"]  # type: ignore[union-attr]
    assert build.map_file.exists() and build.source.exists()


def test_trace_and_portable_variants_get_their_own_files(tmp_path: Path) -> None:
    tflite = GOLDEN / "iris_anne8" / "model_int8.tflite"
    if not tflite.exists():
        pytest.skip("golden iris_anne8 not generated")
    a = build_model_firmware(tflite, "int8", "rp2350", tmp_path, trace=True, portable=True)
    assert a.elf.name == "iris_anne8-int8-trace-portable.elf"
    assert load_elf(a.elf).symbol("simcore_trace") is not None


# -- bad input: one-line errors with exit code 2 ------------------------------------------


def _one_line(exc: SimError) -> str:
    text = str(exc)
    assert "\n" not in text and exc.exit_code == 2
    return text


def test_unsupported_layer_is_named(tmp_path: Path) -> None:
    path = small_keras(
        tmp_path / "bn.keras",
        extra=[{"class_name": "BatchNormalization", "config": {"name": "bn1"}}],
    )
    with pytest.raises(FirmwareError) as info:
        build_model_firmware(path, "f32", "rp2040", tmp_path)
    text = _one_line(info.value)
    assert "'bn1' (BatchNormalization)" in text and "supported layers: " in text
    assert "Conv2D" in text


def test_unsupported_activation_is_named(tmp_path: Path) -> None:
    path = small_keras(tmp_path / "selu.keras", activation="selu")
    with pytest.raises(FirmwareError) as info:
        build_model_firmware(path, "q16", "rp2040", tmp_path)
    text = _one_line(info.value)
    assert "'hidden' (Dense)" in text and "'selu'" in text and "leaky_relu" in text


def test_unsupported_option_is_named(tmp_path: Path) -> None:
    conv = {
        "class_name": "Conv2D",
        "config": {
            "name": "c",
            "filters": 2,
            "kernel_size": [3, 3],
            "dilation_rate": [2, 2],
            "activation": "relu",
        },
    }
    path = write_keras(
        tmp_path / "dil.keras", [conv], {"conv2d": [np.zeros((3, 3, 1, 2)), np.zeros(2)]}, (8, 8, 1)
    )
    with pytest.raises(FirmwareError) as info:
        build_model_firmware(path, "f32", "rp2040", tmp_path)
    assert "'c' (Conv2D)" in _one_line(info.value) and "dilation_rate" in str(info.value)


def test_unsupported_tflite_operator_is_named() -> None:
    from simcore.firmware.tflite_int8 import convert
    from simcore.golden.tflite_model import read_tflite

    tflite = GOLDEN / "iris_anne8" / "model_int8.tflite"
    if not tflite.exists():
        pytest.skip("golden iris_anne8 not generated")
    model = read_tflite(tflite)
    ops = list(model.operators)
    ops[1] = dataclasses.replace(ops[1], opcode="HARD_SWISH")
    with pytest.raises(FirmwareError) as info:
        convert(dataclasses.replace(model, operators=tuple(ops)), "x", str(tflite))
    text = _one_line(info.value)
    assert "operator 1 (HARD_SWISH)" in text and "FULLY_CONNECTED" in text


@pytest.mark.parametrize(
    "args,error,words",
    [
        (("tiny", "f32", "no_such_board"), BoardError, "unknown board 'no_such_board'"),
        (("tiny", "f16", "rp2040"), FirmwareError, "unknown format 'f16'"),
        (("no_such_model", "f32", "rp2040"), FirmwareError, "unknown model 'no_such_model'"),
        (("missing.keras", "f32", "rp2040"), FirmwareError, "does not exist"),
        (("tiny.keras", "int8", "rp2040"), FirmwareError, "builds from a .tflite file"),
    ],
    ids=["unknown-board", "unknown-format", "unknown-model", "missing-file", "wrong-file-type"],
)
def test_bad_arguments(
    keras_file: Path, tmp_path: Path, args: tuple[str, str, str], error: type[SimError], words: str
) -> None:
    model, fmt, board = args
    target: str | Path = model
    if model.endswith(".keras"):
        target = keras_file.parent / model
    elif model == "tiny":
        target = keras_file
    with pytest.raises(error) as info:
        build_model_firmware(target, fmt, board, tmp_path)
    assert words in _one_line(info.value)


@pytest.mark.parametrize("suffix,fmt", [(".keras", "f32"), (".tflite", "int8")])
def test_corrupt_model_file(tmp_path: Path, suffix: str, fmt: str) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"PK\x03\x04 this is not a model" * 10)
    with pytest.raises(FirmwareError) as info:
        build_model_firmware(path, fmt, "rp2040", tmp_path)
    assert "broken" in _one_line(info.value)


def test_arena_that_does_not_fit_the_board(tmp_path: Path) -> None:
    conv = Layer(
        "big",
        "conv2d",
        (96, 96, 3),
        (96, 96, 32),
        "relu",
        0.0,
        np.zeros((32, 3, 3, 3), np.float32),
        np.zeros(32, np.float32),
        Geometry(3, 3, 1, 1, 1, 1),
    )
    model = FloatModel("big", "0" * 64, "test", (96, 96, 3), (conv,))
    with pytest.raises(FirmwareError) as info:
        build_model_firmware(model, "f32", "stm32h743", tmp_path)
    text = _one_line(info.value)
    assert "activation arena" in text and "stm32h743" in text


def test_cli_build_and_errors(
    keras_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def build(board: str) -> int:
        model = ["--model", str(keras_file), "--format", "q16"]
        return main(["build", *model, "--board", board, "--out", str(tmp_path)])

    assert build("rp2040") == 0
    assert (tmp_path / "tiny-q16.elf").exists() and (tmp_path / "tiny-q16.json").exists()
    assert "built" in capsys.readouterr().out
    assert build("nope") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown board 'nope'" in err


def test_weights_that_do_not_fit_the_code_region(tmp_path: Path) -> None:
    dense = Layer(
        "huge",
        "dense",
        (400,),
        (64,),
        "relu",
        0.0,
        np.ones((64, 400), np.float32),  # not zeros: those build sparse (and fit)
        np.zeros(64, np.float32),
    )
    model = FloatModel("huge", "0" * 64, "test", (400,), (dense,))
    with pytest.raises(FirmwareError) as info:
        build_model_firmware(model, "f32", "stm32h743", tmp_path)  # 64 KB ITCM holds .rodata
    assert "code region" in _one_line(info.value)


def test_cli_build_all_for_one_board_and_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from simcore.firmware import shipped_models

    models = shipped_models()
    if not models:
        pytest.skip("no shipped models")
    argv = ["build", "--all", "--format", "int8", "--board", "rp2040", "--out", str(tmp_path)]
    assert main(argv) == 0
    for name in models:
        assert (tmp_path / "rp2040" / f"{name}-int8.elf").exists()
    assert f"{len(models)} built, 0 failed" in capsys.readouterr().out


def test_cli_build_all_skips_models_that_do_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the micro:bit's 16 KB, mnist_cnn (and its variants) are skipped, the rest built."""
    from simcore.firmware import shipped_models

    if "mnist_cnn" not in shipped_models():
        pytest.skip("no shipped mnist_cnn")
    argv = ["build", "--all", "--format", "q16", "--board", "bbc-microbit", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped mnist_cnn q16 bbc-microbit: model mnist_cnn (q16) does not fit" in out
    n = len(shipped_models())
    mnist = [m for m in shipped_models() if m.startswith("mnist_cnn")]  # and its variants
    assert f"{n - len(mnist)} built, 0 failed, {len(mnist)} skipped (do not fit the board)" in out
    for name in mnist:
        assert f"skipped {name} q16 bbc-microbit: model {name} (q16) does not fit" in out
    assert not (tmp_path / "bbc-microbit" / "mnist_cnn-q16.elf").exists()
