"""Error maps and the patterns they make obvious, on hand-written firmware with real mistakes.

tests/diagnose/user_mnist_conv.c ports mnist_cnn's first layer (int8 Conv2D 3x3,
8 channels) by hand; each build flag is one mistake a port makes (see the
source). The doctor must find layer 0, map its errors per channel and per
position, and name the pattern with its evidence.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sim_support import needs_toolchain

from simcore.boards import get_board
from simcore.cli import main
from simcore.diagnose.doctor import diagnose
from simcore.diagnose.maps import error_map
from simcore.firmware.build import load_model, resolve_model
from simcore.firmware.consts import encode
from simcore.toolchain import build_elf

HERE = Path(__file__).resolve().parent


def _user_conv(tmp_path: Path, *defines: str, board: str = "rp2350") -> Path:
    name, path = resolve_model("mnist_cnn", "int8")
    ir = load_model(name, path, "int8")
    arrays = encode(ir, "int8")[0].arrays()
    op = ir.ops[0]

    def c_list(a: np.ndarray) -> str:
        return ", ".join(str(int(v)) for v in a.reshape(-1))

    header = "\n".join(
        [
            f"#define INPUT_OFFSET {op.params['input_offset']}",
            f"#define OUTPUT_OFFSET {op.params['output_offset']}",
            f"static const int8_t weights[8][3][3] = {{{c_list(arrays['weights'])}}};",
            f"static const int32_t bias[8] = {{{c_list(arrays['bias'])}}};",
            f"static const int32_t multiplier[8] = {{{c_list(arrays['multiplier'])}}};",
            f"static const int32_t shift[8] = {{{c_list(arrays['shift'])}}};",
        ]
    )
    inc = tmp_path / "inc"
    inc.mkdir(exist_ok=True)
    (inc / "mnist_conv_weights.h").write_text(header + "\n")
    out = tmp_path / f"user-conv-{'-'.join(defines) or 'ok'}.elf"
    build_elf([HERE / "user_mnist_conv.c"], get_board(board), out, include_dirs=(inc,),
              defines=defines)  # fmt: skip
    return out


def _kinds(d: object) -> list[str]:
    emap = getattr(d, "error_map", None)
    return [p.kind for p in emap.patterns] if emap is not None else []


# -- without the emulator -----------------------------------------------------------


def test_map_counts_per_channel_and_position() -> None:
    want = np.zeros((2, 4, 4, 3), dtype=np.int64) + np.arange(3)
    want = want + np.arange(16).reshape(1, 4, 4, 1)
    got = want.copy()
    got[:, 1, 2, 1] += 5
    emap = error_map("int8", 0, "conv", got, want, " LSB")
    assert [c.mismatched for c in emap.channels] == [0, 2, 0]
    assert emap.channels[1].max_abs_error == 5
    assert emap.spatial is not None and emap.spatial[1, 2] == pytest.approx(1 / 3)
    assert emap.spatial.sum() == pytest.approx(1 / 3)
    text = "\n".join(emap.render())
    assert "error map of layer 0 (conv)" in text and "2/32" in text
    doc = json.loads(json.dumps(emap.as_dict()))
    assert doc["spatial_mismatch_share"][1][2] == pytest.approx(0.3333, abs=1e-4)
    assert emap.svg().count("<svg") == 2


def test_a_random_error_has_no_pattern() -> None:
    rng = np.random.default_rng(1)
    want = rng.integers(-100, 100, size=(4, 6, 6, 4))
    got = want + rng.integers(-9, 10, size=want.shape) * (rng.random(want.shape) < 0.3)
    assert error_map("int8", 0, "x", got, want).patterns == []


# -- hand-written firmware ---------------------------------------------------------


@needs_toolchain
def test_the_correct_port_agrees_on_layer_0(tmp_path: Path) -> None:
    d = diagnose(_user_conv(tmp_path), "mnist_cnn", "int8", "rp2350", samples=4)
    assert d.layers[0].traced and not d.layers[0].diverges, d.render()
    assert d.error_map is None  # no diverging layer: nothing to map


@needs_toolchain
@pytest.mark.parametrize(
    ("flag", "kind", "evidence"),
    [
        ("PER_TENSOR", "per-tensor-scale", "channels 0 are exact"),
        ("ROUND_ONCE", "rounding", "one step"),
        ("TRANSPOSED", "transposed", "at (w, h)"),
        ("SHIFTED", "shifted", "(h+1, w+0)"),
        ("DOUBLE_OFFSET", "offset", "slope 1.00"),
    ],
)
def test_each_mistake_draws_its_pattern(tmp_path: Path, flag: str, kind: str, evidence: str) -> None:
    d = diagnose(_user_conv(tmp_path, flag), "mnist_cnn", "int8", "rp2350", samples=4)
    assert d.divergent is not None and d.divergent.index == 0, d.render()
    assert d.error_map is not None
    kinds = _kinds(d)
    assert kinds and kinds[0] == kind, d.render()
    text = d.render()
    assert "patterns in the error (evidence, not certainty):" in text
    assert evidence in text
    doc = d.as_dict()["error_map"]
    assert doc["patterns"][0]["kind"] == kind and len(doc["channels"]) == 8
    # "closest hypotheses" lists only hypotheses that fit better than no change.
    fault = d.faults[0]
    base = fault.baseline.agreement
    for h in d.as_dict()["faults"][0]["hypotheses"]:
        assert (h["mismatched"], h["max_abs_error"]) < (base.mismatched, base.max_abs_error)


@needs_toolchain
def test_per_tensor_scale_map_shows_channel_0_right(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = _user_conv(tmp_path, "PER_TENSOR")
    out_json = tmp_path / "d.json"
    code = main(["diagnose", str(elf), "-m", "mnist_cnn", "-f", "int8", "-b", "rp2350",
                 "-n", "4", "-q", "--json", str(out_json)])  # fmt: skip
    assert code == 1
    text = capsys.readouterr().out
    rows = [line.split() for line in text.splitlines() if line.startswith("          ")]
    assert rows and rows[0][:2] == ["0", "0/2704"], text
    assert all(r[1] != "0/2704" for r in rows[1:8]), text
    doc = json.loads(out_json.read_text())
    assert doc["error_map"]["channels"][0]["mismatched"] == 0
