"""``simcore compare`` (simcore.tradeoff): Pareto fronts, table, page, a real run on IRIS variants.

The real run compares the shipped iris3 with a variant made here: iris3's
weights magnitude-pruned to 75% zeros (no fine-tuning, so it loses accuracy),
its golden written by ``simcore golden create``. The pruned f32/q16 builds use
the sparse kernels, so compare also validates their dense builds and reports
what the sparse path saved.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_report import CHROMIUM, _check

from simcore import cli
from simcore.golden.store import load_golden
from simcore.tradeoff import mark_pareto, render_html, table

BOARDS = ("rp2040", "rp2350")


def _row(model: str, fmt: str, board: str, score: float, cycles: float, footprint: int) -> Any:
    return {
        "model": model, "format": fmt, "board": board, "key": f"{model}/{fmt}/{board}",
        "passed": True, "error": None, "score": score, "score_kind": "accuracy",
        "accuracy": score, "exactness": "bit-exact", "cycles": cycles, "latency_ms": cycles / 1e5,
        "flash_bytes": footprint - 100, "ram_bytes": 100, "footprint_bytes": footprint,
        "ram_regions": [{"name": "SRAM", "program_bytes": 60, "stack_peak_bytes": 40}],
        "sparse": None, "pareto": {"cycles": False, "footprint_bytes": False},
    }  # fmt: skip


def test_pareto_front_per_board() -> None:
    rows = [
        _row("big", "f32", "b1", 0.98, 9000, 9000),  # best accuracy: on both fronts
        _row("big", "int8", "b1", 0.97, 3000, 4000),  # fastest; small/int8 is as good, smaller
        _row("small", "int8", "b1", 0.97, 3500, 3000),  # slower than big/int8, smallest
        _row("small", "f32", "b1", 0.90, 8000, 8000),  # dominated on both axes
        _row("tie", "q16", "b1", 0.97, 3000, 4000),  # equal to big/int8: neither dominates
        _row("small", "f32", "b2", 0.50, 99999, 99999),  # alone on its board: on both
    ]
    failed = _row("broken", "f32", "b1", 1.0, 1, 1)
    failed["passed"] = False
    rows.append(failed)
    mark_pareto(rows)
    got = {(r["model"], r["format"], r["board"]): r["pareto"] for r in rows}
    assert got[("big", "f32", "b1")] == {"cycles": True, "footprint_bytes": True}
    assert got[("big", "int8", "b1")] == {"cycles": True, "footprint_bytes": False}
    assert got[("small", "int8", "b1")] == {"cycles": False, "footprint_bytes": True}
    assert got[("small", "f32", "b1")] == {"cycles": False, "footprint_bytes": False}
    assert got[("tie", "q16", "b1")] == {"cycles": True, "footprint_bytes": False}
    assert got[("small", "f32", "b2")] == {"cycles": True, "footprint_bytes": True}
    assert got[("broken", "f32", "b1")] == {"cycles": False, "footprint_bytes": False}

    text = table(rows)
    line = next(x for x in text.splitlines() if x.startswith("small ") and " int8 " in x)
    assert "97.00%" in line and "3,500" in line and " M " in line and "PASS" in line
    assert "FAIL" in next(x for x in text.splitlines() if x.startswith("broken"))

    page = render_html(rows, meta={"command": "simcore compare -m big -m small"})
    checker = _check(page)
    assert checker.tags["svg"] == 4  # two boards x (cycles, flash+RAM)
    assert checker.classes["front-point"] == 3 + 2 + 1 + 1  # b1: 3 fastest, 2 smallest; b2
    assert "b1: accuracy vs cycles per inference" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page


# -- a real run -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pruned_iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris3 with 75% of each kernel's smallest weights zeroed, and its golden."""
    pytest.importorskip("tensorflow", reason="golden create needs the golden extra")
    pytest.importorskip("tflite_micro", reason="golden create needs the golden extra")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from simcore.golden.create import create_golden

    root = tmp_path_factory.mktemp("pruned")
    shipped = load_golden("iris3")
    model = keras.saving.load_model(shipped.model_path("f32"))
    for layer in model.layers:
        if layer.get_weights():
            kernel, bias = layer.get_weights()
            cut = np.quantile(np.abs(kernel), 0.75)
            layer.set_weights([np.where(np.abs(kernel) > cut, kernel, 0.0), bias])
    path = root / "iris3_pruned.keras"
    model.save(path)
    rows = shipped.split("test")
    data = root / "test.npz"
    np.savez(data, inputs=shipped.inputs_float[rows], labels=shipped.labels[rows])
    return create_golden(path, data, out_dir=root / "iris3_pruned", name="iris3_pruned")


@pytest.fixture(scope="module")
def compare_run(
    pruned_iris: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, dict[str, Any], str, str]:
    out = tmp_path_factory.mktemp("compare")
    os.environ["SIMCORE_OUT_DIR"] = str(out / "fw")
    argv = ["compare", "-m", "iris3", "-m", str(pruned_iris), "--json", str(out / "c.json"),
            "--html", str(out / "c.html"), "-j", "2", "-q"]  # fmt: skip
    for board in BOARDS:
        argv += ["-b", board]
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            code = cli.main(argv)
    finally:
        del os.environ["SIMCORE_OUT_DIR"]
    doc = json.loads((out / "c.json").read_text())
    return code, doc, buf.getvalue(), (out / "c.html").read_text()


def test_compare_runs_every_variant_format_and_board(
    compare_run: tuple[int, dict[str, Any], str, str],
) -> None:
    code, doc, text, _ = compare_run
    rows = doc["rows"]
    assert code == 0, text
    assert [(r["model"], r["format"], r["board"]) for r in rows] == [
        (m, f, b) for m in ("iris3", "iris3_pruned") for f in ("f32", "int8", "q16") for b in BOARDS
    ]
    for r in rows:
        assert r["passed"] and r["error"] is None
        assert r["cycles"] > 0 and r["flash_bytes"] > 0 and r["ram_bytes"] > 0
        assert r["footprint_bytes"] == r["flash_bytes"] + r["ram_bytes"]
        assert r["latency_ms"] == pytest.approx(1000 * r["cycles"] / r["clock_hz"])
        assert r["ram_regions"] and r["score_kind"] == "accuracy"
        assert text.count(f"{r['model']} ") >= 1
    # Every board has a front on both axes, and a front point is never dominated.
    for board in BOARDS:
        on_board = [r for r in rows if r["board"] == board]
        for cost in ("cycles", "footprint_bytes"):
            front = [r for r in on_board if r["pareto"][cost]]
            assert front
            for f in front:
                assert not any(o["score"] >= f["score"] and o[cost] < f[cost] for o in on_board), (
                    f["key"],
                    cost,
                )
    # The results are validate's, the dense reference builds included (not gated).
    keys = [r["key"] for r in doc["results"]]
    assert "iris3_pruned/f32/rp2040/sparse-off" in keys
    dense = next(r for r in doc["results"] if r["key"] == "iris3_pruned/f32/rp2040/sparse-off")
    assert dense["passed"] and dense["variant"] == "sparse-off"


def test_compare_measures_what_the_sparse_path_saved(
    compare_run: tuple[int, dict[str, Any], str, str],
) -> None:
    _, doc, text, page = compare_run
    by_key = {r["key"]: r for r in doc["rows"]}
    for board in BOARDS:
        assert by_key[f"iris3/f32/{board}"]["sparse"] is None  # a trained net has no zeros
        for fmt in ("f32", "q16"):
            r = by_key[f"iris3_pruned/{fmt}/{board}"]
            s = r["sparse"]
            assert s is not None and s["layers"], r["key"]
            assert s["nonzeros"] < s["weights"]
            assert s["dense_flash_bytes"] - r["flash_bytes"] == s["flash_saved_bytes"] > 0
            assert s["dense_cycles"] - r["cycles"] == s["cycles_saved"]
            assert s["dense_passed"]
            line = next(x for x in text.splitlines() if x.startswith("iris3_pruned") and
                        f" {fmt} " in x and f" {board} " in x)  # fmt: skip
            assert "sparse:" in line and "vs dense" in line
    # Pruning without fine-tuning costs accuracy here: the page must show both variants.
    assert by_key["iris3_pruned/f32/rp2040"]["accuracy"] <= by_key["iris3/f32/rp2040"]["accuracy"]
    checker = _check(page)
    assert checker.tags["svg"] == 2 * len(BOARDS)
    assert checker.classes.get("front-point", 0) >= 2 * len(BOARDS)
    assert page.count("iris3_pruned") >= 6


@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing (nox -s tests installs it)")
def test_compare_page_renders_in_headless_chromium(
    tmp_path: Path, compare_run: tuple[int, dict[str, Any], str, str]
) -> None:
    page = tmp_path / "compare.html"
    page.write_text(compare_run[3])
    base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    assert rendered.count("<svg") == 2 * len(BOARDS)
    assert rendered.count('class="point front-point"') == compare_run[3].count(
        'class="point front-point"'
    )


def test_compare_refuses_an_unknown_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", "-m", "no_such_model", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no_such_model" in err


def test_rows_copy_is_not_mutated_by_render() -> None:
    rows = [_row("a", "f32", "b", 0.9, 10, 10)]
    before = copy.deepcopy(rows)
    render_html(rows)
    table(rows)
    assert rows == before


@pytest.mark.slow
def test_compare_mnist_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped mnist_cnn variants on every board: pruned80 saves flash and cycles sparse."""
    monkeypatch.setenv("SIMCORE_OUT_DIR", str(tmp_path / "fw"))
    out = tmp_path / "mnist.json"
    argv = ["compare", "--limit", "20", "-j", "2", "-q", "--json", str(out)]
    argv += ["-b", "rp2040", "-b", "rp2350", "-b", "stm32h743"]
    for variant in ("mnist_cnn", "mnist_cnn_pruned50", "mnist_cnn_pruned80", "mnist_cnn_student"):
        argv += ["-m", variant]
    assert cli.main(argv) == 0
    rows = {r["key"]: r for r in json.loads(out.read_text())["rows"]}
    assert len(rows) == 4 * 3 * 3
    for board in ("rp2040", "rp2350", "stm32h743"):
        for fmt in ("f32", "int8", "q16"):
            pruned = rows[f"mnist_cnn_pruned80/{fmt}/{board}"]
            # int8 layers carry the TFLite operator names of the quantized model.
            logits = "op5_fully_connected" if fmt == "int8" else "logits"
            assert pruned["sparse"] is not None and pruned["sparse"]["layers"] == [logits]
            assert pruned["sparse"]["flash_saved_bytes"] > 0
            assert pruned["sparse"]["cycles_saved"] > 0
            assert rows[f"mnist_cnn/{fmt}/{board}"]["sparse"] is None
            student, teacher = (
                rows[f"mnist_cnn_student/{fmt}/{board}"],
                rows[f"mnist_cnn/{fmt}/{board}"],
            )
            assert student["cycles"] < teacher["cycles"]
            assert student["flash_bytes"] < teacher["flash_bytes"]
