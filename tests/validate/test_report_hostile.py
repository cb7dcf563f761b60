"""simcore report on results files of the wrong shape: one-line refusals, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simcore.errors import UsageError
from simcore.report import load_reports, render_html, summary_table

SAMPLE = Path(__file__).with_name("sample_results.json")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["model", "format", "board", "passed", "key", "failures", "regressions", "n_samples",
          "accuracy", "reference_accuracy", "exactness", "cycles", "clock_hz", "cycle_model",
          "profile", "memory", "mismatches", "classes", "baseline_notes",
          "seconds_per_inference"]  # fmt: skip


def _renders_or_is_refused(factory: pytest.TempPathFactory, doc: object) -> None:
    """Write ``doc`` as a results file: it loads and renders, or is refused in one line."""
    path = factory.mktemp("r") / "r.json"
    path.write_text(json.dumps(doc))
    try:
        loaded, meta = load_reports([path])
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    summary_table(loaded)
    summary_table(loaded, markdown=True)
    render_html(loaded, meta=meta)


@st.composite
def hostile_result(draw: st.DrawFn) -> dict[str, Any]:
    """A real result with some fields replaced by arbitrary JSON."""
    base: dict[str, Any] = json.loads(SAMPLE.read_text())["results"][0]
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        base[name] = draw(json_values)
    return base


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results=st.lists(hostile_result(), min_size=1, max_size=3))
def test_reports_of_any_shape_render_or_refuse(
    tmp_path_factory: pytest.TempPathFactory, results: list[dict[str, Any]]
) -> None:
    _renders_or_is_refused(tmp_path_factory, {"version": 1, "results": results})


@settings(max_examples=100, deadline=None)
@given(doc=json_values)
def test_any_json_document_renders_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, doc: object
) -> None:
    _renders_or_is_refused(tmp_path_factory, doc)


@pytest.mark.parametrize("raw", [b"\xff\xfe{\x00}\x00", b"\x00\x01\x02", b""])
def test_binary_files_refused(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(raw)
    with pytest.raises(UsageError):
        load_reports([path])


def _paths(obj: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            out += _paths(v, (*prefix, i))
    return out


SAMPLE_RESULTS: list[dict[str, Any]] = json.loads(SAMPLE.read_text())["results"]
NESTED = sorted({p for r in SAMPLE_RESULTS for p in _paths(r) if len(p) > 1}, key=str)


@settings(max_examples=200, deadline=None)
@given(
    which=st.integers(0, len(SAMPLE_RESULTS) - 1),
    edits=st.lists(st.tuples(st.sampled_from(NESTED), json_values), min_size=1, max_size=5),
)
def test_nested_values_of_any_type_render_or_refuse(
    tmp_path_factory: pytest.TempPathFactory,
    which: int,
    edits: list[tuple[tuple[Any, ...], object]],
) -> None:
    result = json.loads(json.dumps(SAMPLE_RESULTS[which]))
    for path, value in edits:
        node = result
        for step in path[:-1]:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                break
        else:
            last = path[-1]
            if isinstance(node, dict) or (
                isinstance(node, list) and isinstance(last, int) and last < len(node)
            ):
                node[last] = value
    _renders_or_is_refused(tmp_path_factory, {"version": 1, "results": [result]})


@settings(max_examples=150, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(["elf", "board", "exit_code", "stop_reason", "stop_location", "cycles",
                         "sample_cycles", "profile", "memory", "cycle_model", "notes", "error",
                         "n_samples", "clock_hz"]),
        json_values,
    )
)  # fmt: skip
def test_run_documents_of_any_shape_render_or_refuse(
    tmp_path_factory: pytest.TempPathFactory, fields: dict[str, object]
) -> None:
    _renders_or_is_refused(tmp_path_factory, {"elf": "app.elf", "stop_reason": "done", **fields})
