"""Error maps and the patterns they make obvious, on hand-written firmware with real mistakes.

tests/diagnose/user_mnist_conv.c ports mnist_cnn's first layer (int8 Conv2D 3x3,
8 channels) by hand; each build flag is one mistake a port makes (see the
source). The doctor must find layer 0, map its errors per channel and per
position, and name the pattern with its evidence.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


@pytest.mark.parametrize(
    ("fmt", "make", "kind"),
    [
        ("f32", lambda w: 2.0 * w, "tensor-scale"),
        ("int8", lambda w: w + 5, "offset"),
        ("f32", lambda w: np.swapaxes(w, 1, 2), "transposed"),
        ("f32", lambda w: np.roll(w, -1, axis=2), "shifted"),
        ("int8", lambda w: w + (w % 3 == 0), "rounding"),
    ],
    ids=["f32-scale", "int8-offset", "f32-transposed", "f32-shifted", "int8-rounding"],
)
def test_synthetic_errors_draw_their_pattern(fmt: str, make: Any, kind: str) -> None:
    rng = np.random.default_rng(7)
    if fmt == "int8":
        want = rng.integers(-100, 100, size=(3, 8, 8, 4))
    else:
        want = rng.normal(size=(3, 8, 8, 4)).astype(np.float32)
    got = make(want)
    patterns = error_map(fmt, 0, "x", got, want).patterns
    assert patterns and patterns[0].kind == kind, patterns


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
        ("PER_TENSOR", "per-tensor-scale", "channels 0, 4 are exact"),  # 4 shares 0's scale
        ("ROUND_ONCE", "rounding", "one step"),
        ("TRANSPOSED", "transposed", "at (w, h)"),
        ("SHIFTED", "shifted", "(h+1, w+0)"),
        ("DOUBLE_OFFSET", "offset", "slope 1.00"),
    ],
)
def test_each_mistake_draws_its_pattern(
    tmp_path: Path, flag: str, kind: str, evidence: str
) -> None:
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
def test_per_tensor_scale_map_shows_which_channels_are_right(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = _user_conv(tmp_path, "PER_TENSOR")
    out_json = tmp_path / "d.json"
    code = main(["diagnose", str(elf), "-m", "mnist_cnn", "-f", "int8", "-b", "rp2350",
                 "-n", "4", "-q", "--json", str(out_json)])  # fmt: skip
    assert code == 1
    text = capsys.readouterr().out
    rows = [line.split() for line in text.splitlines() if line.startswith("          ")]
    # Channel 0's scale was used for all: it is right, and so is channel 4, whose
    # scale is the same in this model; every other channel is wrong.
    exact = {r[0] for r in rows if len(r) > 1 and r[1] == "0/2704"}
    assert exact == {"0", "4"}, text
    doc = json.loads(out_json.read_text())
    channels = doc["error_map"]["channels"]
    assert [c["channel"] for c in channels if c["mismatched"] == 0] == [0, 4]


@needs_toolchain
def test_static_scan_never_says_ok_while_arrays_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The hand-written port holds only layer 0's arrays: the rest cannot be vouched for.
    elf = _user_conv(tmp_path)
    assert main(["diagnose", str(elf), "--static", "-m", "mnist_cnn", "-f", "int8"]) == 1
    text = capsys.readouterr().out
    assert "\nOK" not in text and "INCOMPLETE: 8 of 12 arrays of the model were not found" in text
    assert "simcore_trace(N, output, bytes)" in text  # a hint a hand-written port can follow


@needs_toolchain
def test_html_page_draws_the_error_map(tmp_path: Path) -> None:
    from html.parser import HTMLParser

    elf = _user_conv(tmp_path, "PER_TENSOR")
    page = tmp_path / "d.html"
    assert main(["diagnose", str(elf), "-m", "mnist_cnn", "-f", "int8", "-b", "rp2350",
                 "-n", "2", "-q", "--html", str(page)]) == 1  # fmt: skip
    text = page.read_text()

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []
            self.svgs = 0
            self.rects = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.svgs += tag == "svg"
            self.rects += tag == "rect"

    tags = Tags()
    tags.feed(text)
    assert tags.svgs == 2 and tags.rects == 8 + 26 * 26  # channel bars + position cells
    assert "per-tensor-scale" in text and "Error map of layer 0 (op0_conv_2d)" in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@needs_toolchain
@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing (nox -s tests installs it)")
def test_html_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    """Chromium loads the diagnosis page offline and keeps every SVG element of the map."""
    elf = _user_conv(tmp_path, "SHIFTED")
    page = tmp_path / "d.html"
    assert main(["diagnose", str(elf), "-m", "mnist_cnn", "-f", "int8", "-b", "rp2350",
                 "-n", "2", "-q", "--html", str(page)]) == 1  # fmt: skip
    source = page.read_text()
    dom = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    for tag in ("<svg", "<rect", "<table"):
        assert dom.stdout.count(tag) == source.count(tag) > 0, tag
    assert "shifted" in dom.stdout
