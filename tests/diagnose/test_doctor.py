"""simcore diagnose end to end: injected mistakes named, clean builds pass, noise unexplained."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_support import needs_toolchain

from simcore.boards import get_board
from simcore.cli import main
from simcore.diagnose.doctor import diagnose
from simcore.diagnose.findings import Diagnosis
from simcore.diagnose.mistakes import KINDS
from simcore.firmware.build import build_model_firmware, load_model, resolve_model
from simcore.firmware.ir import FloatModel, Int8Model
from simcore.toolchain import build_elf

pytestmark = needs_toolchain

#: Every kind on an IRIS and an MNIST model where the kind can occur, spread over the
#: three boards and the formats (conv-layout and flatten-nchw need a Conv2D/Flatten,
#: which only mnist_cnn has). (kind, model, format, board)
CASES = [
    ("transpose-dense", "iris3", "int8", "rp2040"),
    ("transpose-dense", "mnist_cnn", "f32", "rp2350"),
    ("conv-layout", "mnist_cnn", "q16", "rp2040"),
    ("conv-layout", "mnist_cnn", "int8", "stm32h743"),
    ("flatten-nchw", "mnist_cnn", "int8", "rp2350"),
    ("flatten-nchw", "mnist_cnn", "f32", "stm32h743"),
    ("scales-reversed", "iris3", "int8", "stm32h743"),
    ("scales-reversed", "mnist_cnn", "int8", "rp2040"),
    ("no-bias", "iris_anne8", "q16", "rp2350"),
    ("no-bias", "mnist_cnn", "int8", "stm32h743"),
    ("wrong-activation", "iris_anne6", "f32", "rp2040"),
    ("wrong-activation", "mnist_cnn", "int8", "rp2350"),
    ("input-scale", "iris3", "int8", "rp2350"),
    ("input-scale", "mnist_cnn", "q16", "stm32h743"),
    ("byte-order", "iris_anne8", "f32", "stm32h743"),
    ("byte-order", "mnist_cnn", "q16", "rp2040"),
    # Byte-swapped f32 weights overflow to inf and NaN mid-network: the recomputation
    # must follow the firmware's float32 arithmetic, not float64.
    ("byte-order:2", "mnist_cnn", "f32", "rp2350"),
    ("q-format", "iris3", "q16", "rp2040"),
    ("q-format", "mnist_cnn", "q16", "rp2350"),
]


def _injected(build: Any) -> str:
    (inj,) = build.manifest["variant"]["injected_mistakes"]
    return f"{inj['kind']}:{inj['layer']}:{inj['variant']}"


def _check_named(d: Diagnosis, label: str, *, or_stored: bool = False) -> None:
    """The diagnosis names ``label`` first; with ``or_stored``, a mistake that leaves every
    traced output within tolerance may instead be named by the static scan alone."""
    layer = int(label.split(":")[1])
    if or_stored and d.verdict == "stored":
        assert d.stored_problems[0].mistake is not None, d.render()
        assert d.stored_problems[0].mistake.label == label, d.render()
        assert d.exit_code == 1 and label in d.summary()
        return
    assert d.verdict == "explained", d.render()
    assert d.divergent is not None and d.divergent.index == layer, d.render()
    assert d.hypotheses[0].mistake is not None
    assert d.hypotheses[0].mistake.label == label, d.render()
    assert d.exit_code == 1


def test_cases_cover_every_kind_on_iris_and_mnist() -> None:
    for kind in KINDS:
        models = {m for k, m, _, _ in CASES if k.split(":")[0] == kind}
        boards = {b for k, _, _, b in CASES if k.split(":")[0] == kind}
        assert "mnist_cnn" in models and len(boards) > 1, kind
        if kind not in ("conv-layout", "flatten-nchw"):
            assert models & {"iris3", "iris_anne6", "iris_anne8"}, kind


@pytest.mark.parametrize(("kind", "model", "fmt", "board"), CASES, ids=lambda v: str(v))
def test_injected_mistake_is_named(
    kind: str, model: str, fmt: str, board: str, tmp_path: Path
) -> None:
    fw = build_model_firmware(model, fmt, board, tmp_path, trace=True, inject=kind)
    d = diagnose(fw.elf, model, fmt, board)
    _check_named(d, _injected(fw))
    report = d.render()
    assert "DIAGNOSIS" in report and d.hypotheses[0].mistake.describe() in report  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("model", "fmt", "board"),
    [
        ("iris3", "int8", "rp2040"),
        ("mnist_cnn", "f32", "stm32h743"),
        ("iris_anne8", "q16", "rp2350"),
    ],
)
def test_clean_build_has_no_divergence(
    model: str, fmt: str, board: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fw = build_model_firmware(model, fmt, board, tmp_path, trace=True)
    assert main(["diagnose", str(fw.elf)]) == 0  # model, format, board from the manifest
    out = capsys.readouterr().out
    assert "OK: no divergence" in out
    assert main(["diagnose", str(fw.elf), "--json", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "agrees" and data["divergent_layer"] is None
    assert all(c["mismatched"] == 0 for c in data["layers"])
    assert all(f["status"] == "match" for f in data["static_scan"])


def _with_noise(model: FloatModel | Int8Model, layer: int) -> FloatModel | Int8Model:
    """The model with one weight of ``layer`` changed by a random amount (not a layout mistake)."""
    rng = np.random.default_rng(7)
    if isinstance(model, Int8Model):
        op = model.ops[layer]
        assert op.weights is not None
        w = op.weights.copy()
        flat = w.reshape(-1)
        flat[int(rng.integers(flat.size))] += np.int8(37)
        ops = list(model.ops)
        ops[layer] = replace(op, weights=w)
        return replace(model, ops=tuple(ops))
    la = model.layers[layer]
    assert la.weights is not None
    w = la.weights.copy()
    w.reshape(-1)[int(rng.integers(w.size))] += np.float32(rng.normal(0, 0.5))
    layers = list(model.layers)
    layers[layer] = replace(la, weights=w)
    return replace(model, layers=tuple(layers))


@pytest.mark.parametrize(
    ("model", "fmt", "board", "layer"),
    [("iris3", "int8", "rp2350", 2), ("mnist_cnn", "f32", "rp2040", 2)],
)
def test_noise_in_one_weight_is_unexplained(
    model: str, fmt: str, board: str, layer: int, tmp_path: Path
) -> None:
    name, path = resolve_model(model, fmt)
    noisy = _with_noise(load_model(name, path, fmt), layer)
    fw = build_model_firmware(noisy, fmt, board, tmp_path, trace=True)
    d = diagnose(fw.elf, model, fmt, board)
    assert d.verdict == "unexplained", d.render()
    assert d.divergent is not None and d.divergent.index == layer
    assert d.hypotheses and not d.hypotheses[0].explains
    report = d.render()
    assert "no known mistake explains it" in report
    assert f"layer{layer}_weights" in report and "1 of" in report  # the static scan's pointer
    weights = [f for f in d.static if f.role == "weights" and f.layer == layer]
    assert weights[0].status == "differs" and weights[0].detail.startswith("1 of ")
    data = d.as_dict()
    assert data["verdict"] == "unexplained" and data["cause"] is None
    assert data["divergent_layer"] == layer


def test_json_carries_the_report_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fw = build_model_firmware(
        "mnist_cnn", "int8", "rp2350", tmp_path, trace=True, inject="conv-layout:2"
    )
    out_json = tmp_path / "d.json"
    assert main(["diagnose", str(fw.elf), "-q", "--json", str(out_json)]) == 1
    text = capsys.readouterr().out
    data = json.loads(out_json.read_text())
    assert data["divergent_layer"] == 2 and data["exit_code"] == 1
    assert data["cause"]["kind"] == "conv-layout" and data["cause"]["variant"] == "hwio"
    assert data["cause"]["description"] in text and data["summary"] in text
    (fault,) = data["faults"]
    assert fault["layer"] == 2 and fault["cause"] == data["cause"]
    assert fault["hypotheses"][0]["explains"] and not fault["hypotheses"][1]["explains"]
    assert fault["without_mistake"]["mismatched"] > 0
    static = {f["array"]: f for f in data["static_scan"] if f["layer"] == 2}
    assert static["weights"]["status"] == "mistake"
    assert static["weights"]["mistake"]["kind"] == "conv-layout"
    assert static["bias"]["status"] == "match"
    assert [c["index"] for c in data["layers"]] == list(range(6))
    assert data["layers"][1]["mismatched"] == 0 and data["layers"][2]["mismatched"] > 0


def test_static_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fw = build_model_firmware("mnist_cnn", "q16", "rp2040", tmp_path, inject="q-format:5")
    assert main(["diagnose", str(fw.elf), "--static", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "stored" and data["outputs"] is None
    assert "q-format:5:q8.8" in data["summary"] and "static scan only" in data["summary"]
    clean = build_model_firmware("mnist_cnn", "q16", "rp2040", tmp_path)
    bare = tmp_path / "copy.elf"
    bare.write_bytes(clean.elf.read_bytes())  # no manifest: no board needed with --static
    assert main(["diagnose", str(bare), "--static", "-m", "mnist_cnn", "-f", "q16"]) == 0
    assert "OK: every stored array holds what the model says" in capsys.readouterr().out


def test_release_build_is_checked_by_outputs_and_static_scan(tmp_path: Path) -> None:
    fw = build_model_firmware("iris3", "f32", "rp2040", tmp_path, inject="transpose-dense")
    d = diagnose(fw.elf, "iris3", "f32", "rp2040")
    assert d.verdict == "untraced-differs" and d.exit_code == 1
    assert "--trace" in d.summary()
    assert any(f.mistake and f.mistake.kind == "transpose-dense" for f in d.static)
    clean = build_model_firmware("iris3", "f32", "rp2040", tmp_path)
    assert diagnose(clean.elf, "iris3", "f32", "rp2040").verdict == "untraced-agrees"


def _user_firmware(
    tmp_path: Path, board: str, *, correct: bool, defines: tuple[str, ...] = ()
) -> Path:
    name, path = resolve_model("iris3", "f32")
    model = load_model(name, path, "f32")
    assert isinstance(model, FloatModel)
    lines = []
    for i, layer in enumerate(model.layers, start=1):
        assert layer.weights is not None and layer.bias is not None
        keras_kernel = layer.weights.T  # [in][out], as Keras stores it
        for cname, arr in ((f"kernel{i}", keras_kernel), (f"bias{i}", layer.bias)):
            # Six significant digits, as a hand-written exporter might print them: not
            # the model's float32 bits, so the static scan must match within rounding.
            vals = ", ".join(f"{float(v):.6g}f" for v in arr.reshape(-1))
            lines.append(f"static const float {cname}[{arr.size}] = {{{vals}}};")
    inc = tmp_path / "inc"
    inc.mkdir(exist_ok=True)
    (inc / "iris3_weights.h").write_text("\n".join(lines) + "\n")
    out = tmp_path / f"user-{'ok' if correct else 'bug'}.elf"
    build_elf(
        [Path(__file__).with_name("user_iris3.c")],
        get_board(board),
        out,
        include_dirs=(inc,),
        defines=(*defines, *(("READ_KERAS_ORDER",) if correct else ())),
        libs=("m",),
    )
    return out


@pytest.mark.parametrize("board", ["rp2350", "stm32h743"])
def test_hand_written_user_firmware(board: str, tmp_path: Path) -> None:
    ok = diagnose(_user_firmware(tmp_path, board, correct=True), "iris3", "f32", board)
    assert ok.verdict == "agrees", ok.render()
    # Its arrays have its own names: found by content, in Keras [in][out] order.
    found = [f for f in ok.static if f.role == "weights"]
    assert [f.symbol for f in found] == ["kernel1", "kernel2"]
    assert all(f.status == "layout" and f.mistake is not None for f in found)
    assert all("within rounding" in f.detail for f in found)
    bug = diagnose(_user_firmware(tmp_path, board, correct=False), "iris3", "f32", board)
    _check_named(bug, "transpose-dense:0:transposed")
    assert not bug.notes


def test_trace_ids_that_are_no_layer_are_noted(tmp_path: Path) -> None:
    elf = _user_firmware(tmp_path, "rp2350", correct=True, defines=("TRACE_INPUT",))
    d = diagnose(elf, "iris3", "f32", "rp2350")
    assert d.verdict == "agrees"
    assert d.notes and "traced ids 9" in d.notes[0] and "note: " in d.render()


def test_inputs_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fw = build_model_firmware("iris3", "int8", "rp2040", tmp_path, trace=True, inject="no-bias:0")
    x = np.random.default_rng(3).integers(-128, 128, size=(5, 4)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["diagnose", str(fw.elf), "--inputs", str(tmp_path / "x.npy"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["samples"] == 5 and data["inputs"] == "given inputs"
    assert data["cause"]["kind"] == "no-bias"
    np.save(tmp_path / "f.npy", x.astype(np.float32) / 7)
    assert main(["diagnose", str(fw.elf), "--inputs", str(tmp_path / "f.npy")]) == 2
    assert "int8 inputs" in capsys.readouterr().err


def test_cli_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagnose", str(tmp_path / "nope.elf"), "-m", "iris3"]) == 2
    fw = build_model_firmware("iris3", "int8", "rp2040", tmp_path, trace=True)
    bare = tmp_path / "bare.elf"
    bare.write_bytes(fw.elf.read_bytes())  # no manifest next to it
    assert main(["diagnose", str(bare)]) == 2
    assert "--model" in capsys.readouterr().err
    # A firmware of another model: its input size differs.
    assert main(["diagnose", str(bare), "-m", "mnist_cnn", "-f", "int8", "-b", "rp2040"]) == 2
    assert main(["build", "-m", "iris3", "-f", "f32", "-b", "rp2040", "--inject", "q-format"]) == 2
    assert "q-format needs the q16 format" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("board", ["rp2040", "rp2350", "stm32h743"])
@pytest.mark.parametrize("fmt", ["f32", "q16", "int8"])
@pytest.mark.parametrize("model", ["iris_anne8", "iris_anne6", "iris3", "mnist_cnn"])
def test_every_applicable_kind_everywhere(model: str, fmt: str, board: str, tmp_path: Path) -> None:
    from simcore.diagnose.mistakes import candidates, changes_layer
    from simcore.firmware.consts import encode

    name, path = resolve_model(model, fmt)
    ir = load_model(name, path, fmt)
    chain = list(ir.ops if isinstance(ir, Int8Model) else ir.layers)
    consts = encode(ir, fmt)
    for kind in KINDS:
        layers = sorted(
            {
                m.layer
                for i in range(len(chain))
                for m in candidates(fmt, chain, i)
                if m.kind == kind and changes_layer(m, fmt, chain, consts)
            }
        )
        for layer in layers:
            fw = build_model_firmware(
                model, fmt, board, tmp_path, trace=True, inject=f"{kind}:{layer}"
            )
            _check_named(diagnose(fw.elf, model, fmt, board), _injected(fw), or_stored=True)


def test_two_mistakes_are_both_named(tmp_path: Path) -> None:
    fw = build_model_firmware(
        "mnist_cnn",
        "int8",
        "stm32h743",
        tmp_path,
        trace=True,
        inject=["conv-layout:2", "transpose-dense"],
    )
    d = diagnose(fw.elf, "mnist_cnn", "int8", "stm32h743")
    assert d.verdict == "explained" and d.divergent is not None and d.divergent.index == 2
    labels = [f.cause.mistake.label for f in d.faults if f.cause and f.cause.mistake]
    assert labels == ["conv-layout:2:hwio", "transpose-dense:5:transposed"]
    # Layers 3 and 4 only pass the error on: not faults.
    assert [f.check.index for f in d.faults] == [2, 5]
    assert "2 layers compute wrongly" in d.summary()


def test_model_file_outside_golden(tmp_path: Path) -> None:
    """A model file simcore has no golden for: seeded random inputs, per-layer reference.

    Goldens are found by the model file's sha256, so the copy gets trailing
    bytes (the flatbuffer reader ignores them): the same model, no golden.
    """
    _, path = resolve_model("iris3", "int8")
    mine = tmp_path / "my_classifier.tflite"
    mine.write_bytes(path.read_bytes() + bytes(16))
    fw = build_model_firmware(mine, "int8", "rp2350", tmp_path, trace=True, inject="no-bias:2")
    d = diagnose(fw.elf, mine, "int8", "rp2350")
    assert "random inputs" in d.input_source and "model file" in d.reference
    _check_named(d, "no-bias:2:missing")
    clean = build_model_firmware(mine, "int8", "rp2350", tmp_path, trace=True)
    assert diagnose(clean.elf, mine, "int8", "rp2350").verdict == "agrees"


def test_model_file_copy_finds_its_golden_by_content(tmp_path: Path) -> None:
    """A renamed copy of a shipped model is diagnosed against that model's golden."""
    _, path = resolve_model("iris3", "int8")
    mine = tmp_path / "renamed.tflite"
    mine.write_bytes(path.read_bytes())
    fw = build_model_firmware(mine, "int8", "rp2350", tmp_path, trace=True, inject="no-bias:2")
    d = diagnose(fw.elf, mine, "int8", "rp2350")
    assert "golden per-layer samples" in d.input_source
    _check_named(d, "no-bias:2:missing")


def test_stored_arrays_break_ties_and_equal_hypotheses_are_tested_once(tmp_path: Path) -> None:
    # A missing bias before a ReLU: a byte-swapped bias gives the same outputs here,
    # but the ELF's bias array is all zeros, which only the missing bias predicts.
    fw = build_model_firmware(
        "iris_anne8", "f32", "rp2350", tmp_path, trace=True, inject="no-bias:2"
    )
    d = diagnose(fw.elf, "iris_anne8", "f32", "rp2350")
    explaining = [h for h in d.hypotheses if h.explains]
    assert [h.mistake.label for h in explaining if h.mistake] == [
        "no-bias:2:missing",
        "byte-order:2:bias",
    ]
    assert [h.stored_agrees for h in explaining] == [True, False]
    assert "(but the ELF's arrays are not)" in d.render()
    # Two output channels: reversing them is rotating them, tested once.
    fw = build_model_firmware(
        "iris_anne8", "int8", "rp2040", tmp_path, trace=True, inject="scales-reversed:0"
    )
    d = diagnose(fw.elf, "iris_anne8", "int8", "rp2040")
    scales = [h for h in d.hypotheses if h.mistake and h.mistake.kind == "scales-reversed"]
    assert [h.mistake.variant for h in scales if h.mistake] == ["reversed"]
    _check_named(d, "scales-reversed:0:reversed")
