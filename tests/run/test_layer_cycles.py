"""Cycles per layer: spans between layer marks add up to each inference, and a mark is cheap.

Generated release builds call ``simcore_layer(N)`` after layer N, trace builds
``simcore_trace(N, ...)``; simcore records the cycle and instruction counts at
each mark's entry. Layer N's span runs from the previous mark (or
``simcore_sample_begin``) to its own, the 'rest' span from the last mark to
``simcore_sample_end``, so the spans of a sample sum to its cycles exactly. The
marks' own cost is inside those spans: measured here against a build without
marks (``-DSIMCORE_NO_MARKS``) and bounded by :data:`MARK_CYCLES_MAX`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from sim_support import needs_toolchain

from simcore.cli import main
from simcore.cycles.layers import layer_table, macs, per_layer
from simcore.engine import run_firmware
from simcore.firmware.build import build_model_firmware
from simcore.golden.store import load_golden
from simcore.report import render_html, run_as_result
from simcore.results import AFTER_LAST_LAYER, LayerSpan

#: The most one mark may cost, in cycles, with the memory model's wait states off: a
#: register move, a call and an empty function's return. Measured (iris3, mnist_cnn):
#: 6 on the M0+, 5 on the M33 and M7, always 3 instructions. On the XIP-flash boards
#: the first sample of a run also pays the marks' cold cache lines once (140-300 cycles).
MARK_CYCLES_MAX = 8
MARK_INSTRUCTIONS = 3


def _by_sample(spans: list[LayerSpan]) -> dict[int, dict[int, int]]:
    out: dict[int, dict[int, int]] = defaultdict(dict)
    for s in spans:
        out[s.sample_index][s.layer_id] = s.cycles
    return out


# -- without the emulator ----------------------------------------------------------


def test_spans_add_up_to_the_sample_and_start_at_the_previous_mark() -> None:
    marks = [
        ("layer", 9, 5, 5),  # before any sample: ignored
        ("begin", 0, 100, 50),
        ("layer", 0, 130, 60),
        ("layer", 1, 190, 90),
        ("end", 0, 200, 95),
        ("begin", 1, 300, 100),
        ("layer", 0, 320, 110),
        ("layer", 0, 340, 120),  # marked twice: the spans add
        ("end", 1, 345, 121),
    ]
    spans = per_layer(marks)
    assert _by_sample(spans) == {0: {0: 30, 1: 60, AFTER_LAST_LAYER: 10}, 1: {0: 40, -1: 5}}
    assert {(s.sample_index, s.layer_id): s.instructions for s in spans}[(0, 1)] == 30


def test_an_end_without_its_begin_drops_the_sample() -> None:
    assert per_layer([("begin", 0, 0, 0), ("layer", 0, 5, 1), ("end", 7, 9, 2)]) == []


def test_table_means_per_inference_shares_and_cycles_per_mac() -> None:
    spans = [LayerSpan(0, 0, 300, 100), LayerSpan(0, -1, 100, 10),
             LayerSpan(1, 0, 500, 120), LayerSpan(1, -1, 100, 10)]  # fmt: skip
    info = {0: {"name": "fc", "kind": "dense", "macs": 200}}
    rows = layer_table(spans, info)
    assert [r["layer"] for r in rows] == [0, AFTER_LAST_LAYER]
    assert rows[0]["cycles_per_inference"] == 400 and rows[0]["cycles_per_mac"] == 2.0
    assert rows[0]["share"] == 0.8 and rows[1]["share"] == 0.2
    assert rows[1]["name"] == "after last layer" and rows[1]["macs"] is None


def test_macs_from_manifest_entries() -> None:
    conv = {"kind": "conv2d", "out_shape": [26, 26, 8], "symbols": {"layer0_weights": 288}}
    assert macs(conv, "f32") == 26 * 26 * 8 * 9  # 3x3x1 per output
    assert macs(conv | {"symbols": {"layer0_weights": 72}}, "int8") == 26 * 26 * 8 * 9
    fc = {"kind": "fully_connected", "out_shape": [10], "symbols": {"layer5_weights": 4000}}
    assert macs(fc, "int8") == 4000
    assert macs({"kind": "maxpool", "out_shape": [13, 13, 8], "symbols": {}}, "int8") is None


# -- generated firmware ------------------------------------------------------------


@needs_toolchain
@pytest.mark.parametrize("board", ["rp2040", "rp2350", "stm32h743"])
def test_layers_of_a_release_build_sum_to_each_inference(tmp_path: Path, board: str) -> None:
    golden = load_golden("iris3")
    fw = build_model_firmware("iris3", "int8", board, tmp_path / "marks")
    bare = build_model_firmware(
        "iris3", "int8", board, tmp_path / "bare", cflags=["-DSIMCORE_NO_MARKS"]
    )
    inputs = golden.inputs_int8[:4].tobytes()
    run = run_firmware(fw.elf, board, inputs=inputs, n_samples=4)
    per_sample = _by_sample(run.layer_spans)
    layer_ids = [entry["id"] for entry in json.loads(fw.elf.with_suffix(".json").read_text())
                 ["layers"]]  # fmt: skip
    assert sorted(per_sample) == [0, 1, 2, 3]
    for sample, cycles in enumerate(run.sample_cycles):
        assert sorted(k for k in per_sample[sample] if k >= 0) == layer_ids
        assert sum(per_sample[sample].values()) == cycles  # exact: spans tile the sample
    # The marks' own cost: the same firmware without them runs each sample in fewer
    # cycles, by at most MARK_CYCLES_MAX per mark (and the outputs are the same).
    ideal = run_firmware(fw.elf, board, inputs=inputs, n_samples=4, memory_model="ideal")
    plain = run_firmware(bare.elf, board, inputs=inputs, n_samples=4, memory_model="ideal")
    assert plain.layer_spans == [] and plain.outputs == run.outputs == ideal.outputs
    for marked, unmarked in zip(ideal.sample_cycles, plain.sample_cycles, strict=True):
        assert 0 < marked - unmarked <= MARK_CYCLES_MAX * len(layer_ids)
    for marked, unmarked in zip(ideal.sample_instructions, plain.sample_instructions, strict=True):
        assert marked - unmarked == MARK_INSTRUCTIONS * len(layer_ids)
    rows = run.layers()
    assert rows[0]["name"] == "op0_fully_connected" and rows[0]["macs"] == 4 * 8
    assert abs(sum(r["share"] for r in rows) - 1) < 1e-5


@needs_toolchain
def test_trace_calls_are_marks_with_or_without_copying(tmp_path: Path) -> None:
    golden = load_golden("iris3")
    fw = build_model_firmware("iris3", "f32", "rp2350", tmp_path, trace=True)
    inputs = np.asarray(golden.inputs_float[:3], dtype="<f4").tobytes()
    traced = run_firmware(fw.elf, "rp2350", inputs=inputs, n_samples=3, trace=True)
    plain = run_firmware(fw.elf, "rp2350", inputs=inputs, n_samples=3)
    assert traced.traces and not plain.traces
    assert traced.layer_spans == plain.layer_spans != []
    for sample, cycles in enumerate(plain.sample_cycles):
        assert sum(_by_sample(plain.layer_spans)[sample].values()) == cycles


@needs_toolchain
def test_run_shows_layers_in_text_json_and_the_html_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fw = build_model_firmware("iris3", "int8", "rp2040", tmp_path)
    assert main(["run", str(fw.elf), "-b", "rp2040", "--samples", "2", "-q"]) == 0
    out = capsys.readouterr().out
    assert "per layer (per inference, 2 sample(s); marks included):" in out
    assert "op0_fully_connected" in out and "rest  after last layer" in out
    assert main(["run", str(fw.elf), "-b", "rp2040", "--samples", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    per_inference = sum(doc["sample_cycles"]) / 2
    assert sum(r["cycles_per_inference"] for r in doc["layers"]) == pytest.approx(per_inference)
    html = render_html([run_as_result(doc)])
    assert '<table class="layers">' in html and "op0_fully_connected" in html


@needs_toolchain
def test_validate_reports_layers_per_inference(tmp_path: Path) -> None:
    from simcore.validate import combinations_for, validate

    fw = build_model_firmware("iris3", "int8", "rp2350", tmp_path)
    (combo,) = combinations_for("iris3", ["int8"], ["rp2350"])
    result = validate(combo, firmware=fw.elf, limit=4)
    assert result.passed, result.failures
    layers = result.as_dict()["layers"]
    assert [r["layer"] for r in layers] == [0, 1, 2, 3, AFTER_LAST_LAYER]
    assert all(r["samples"] == 4 for r in layers)
    total = sum(r["cycles_per_inference"] for r in layers)
    assert total == pytest.approx(result.cycles_mean, abs=0.5)
