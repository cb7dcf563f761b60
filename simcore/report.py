"""Summaries and an HTML report of ``simcore validate`` and ``simcore run`` results.

Reads what ``simcore validate --json`` writes (``{"version": 1, "results": [...]}``,
one ``Validation.as_dict()`` per model/format/board combination) and what
``simcore run --json`` prints for one firmware run (a user's own program, not
a model: it becomes one row named after the ELF, judged by its exit code),
several files at once, and renders either a summary table (terminal or
Markdown) or one self-contained HTML page.

The page's charts are inline SVG drawn here: no plotting library, no
JavaScript, no fonts or styles fetched from the network, so the file can be
attached to a CI run and opened anywhere, offline. Hover tooltips use SVG
``<title>`` elements, which browsers show without scripts.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from simcore.errors import UsageError

RESULTS_VERSION = 1
DEFAULT_TITLE = "simcore validation report"

Result = dict[str, Any]

#: Display names of the cores the cycle models cover.
_CORE_NAMES = {
    "cortex-m0": "Cortex-M0",
    "cortex-m0plus": "Cortex-M0+",
    "cortex-m4f": "Cortex-M4F",
    "cortex-m33": "Cortex-M33",
    "cortex-m7": "Cortex-M7",
}

#: What each core's cycle figures are worth (the timing tables' ``exactness``).
_CORE_NOTES = {
    "cortex-m0": (
        "exact: every instruction's cycles come from the Cortex-M0 Technical Reference "
        "Manual (zero wait states)"
    ),
    "cortex-m4f": (
        "exact: the Cortex-M4 Technical Reference Manual's integer and FPU tables "
        "(zero wait states; divide charged at a fixed midpoint)"
    ),
    "cortex-m0plus": (
        "exact: every instruction's cycles come from the Cortex-M0+ Technical Reference "
        "Manual (zero wait states)"
    ),
    "cortex-m33": (
        "approximate: the M33's own static model fitted to silicon measurements on an "
        "RP2350 (simcore/data/timing/README.md); M4 figures where the M33 has none; an estimate, "
        "not cycle-exact on whole programs"
    ),
    "cortex-m7": (
        "approximate: a static dual-issue model of the M7 pipeline fitted to silicon "
        "measurements on an STM32H743 (simcore/data/timing/README.md; TCM at zero wait states, "
        "branches predicted); an estimate"
    ),
}
_TAG_NOTES = {
    "exact": "exact: per-instruction timings from the core's Technical Reference Manual",
    "proxy": "proxy: another core's published timings stand in for this one",
    "measured": "measured: third-party measurements on silicon (DWT cycle counts)",
    "approximate": "approximate: a model of the pipeline; treat as an estimate",
}

#: Tableau 10: distinguishable, and readable when printed in grey.
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
_OTHER_COLOUR = "#d9d9d9"


# -- loading ------------------------------------------------------------------


def load_results(path: Path) -> list[Result]:
    """Read a ``simcore validate --json`` file and return its results."""
    return _load(path)[0]


def _load(path: Path) -> tuple[list[Result], dict[str, Any]]:
    """Read a results file: its results and its ``meta`` dict (empty when absent)."""
    hint = "write one with 'simcore validate --all --json FILE'"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no results file {path}", hint=hint) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read results file {path}: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"results file {path} is not JSON (line {error.lineno}: {error.msg})", hint=hint
        ) from None
    if _is_run(data):
        assert isinstance(data, dict)
        row = run_as_result(data)
        _check_shape(row, f"run result {path}")
        return [row], {}
    if not isinstance(data, dict) or "version" not in data:
        raise UsageError(
            f"{path} is neither simcore validate results nor a simcore run --json result",
            hint=hint,
        )
    if data["version"] != RESULTS_VERSION:
        raise UsageError(
            f"results file {path} has version {data['version']!r}; "
            f"this simcore reads version {RESULTS_VERSION}",
            hint="re-run simcore validate with this simcore",
        )
    results = data.get("results")
    if not isinstance(results, list):
        raise UsageError(f"results file {path} has no 'results' list", hint=hint)
    for i, result in enumerate(results):
        missing = [k for k in ("model", "format", "board", "passed") if not _has(result, k)]
        if missing:
            raise UsageError(f"result {i} in {path} lacks {', '.join(missing)}", hint=hint)
        _check_shape(result, f"result {i} in {path}")
    meta = data.get("meta")
    return results, meta if isinstance(meta, dict) else {}


_NUMBER = (int, float)
_USAGE = {
    "used_bytes": _NUMBER,
    "capacity_bytes": _NUMBER,
    "percent": _NUMBER,
    "region": (str,),
    "region_used_bytes": _NUMBER,
}
_REGION = {
    "name": (str,),
    "kind": (str,),
    "start": (str,),
    "capacity_bytes": _NUMBER,
    "used_bytes": _NUMBER,
    "percent": _NUMBER,
    "program_percent": _NUMBER,
    "program_bytes": _NUMBER,
    "harness_bytes": _NUMBER,
    "reserved_bytes": _NUMBER,
    "stack_peak_bytes": _NUMBER,
    "heap_peak_bytes": _NUMBER,
}
_HARNESS = {
    "used_bytes": _NUMBER,
    "buffers": [{"name": (str,), "address": (str,), "size_bytes": _NUMBER, "region": (str,)}],
}
#: The JSON shape of what a report reads: a tuple of types, ``[item]`` for a list of
#: items, a dict for an object's known fields. None is allowed everywhere; unknown
#: fields are ignored. Checked once at load, so the renderers can trust the shapes.
_SCHEMA: dict[str, Any] = {
    "model": (str,), "format": (str,), "board": (str,), "key": (str,), "elf": (str,),
    "exactness": (str,), "passed": (bool,), "variant": (str,), "error": (str,),
    "n_samples": _NUMBER, "accuracy": _NUMBER, "reference_accuracy": _NUMBER,
    "clock_hz": _NUMBER, "seconds_per_inference": _NUMBER, "argmax_agreement": _NUMBER,
    "failures": [(str,)], "regressions": [(str,)], "baseline_notes": [(str,)],
    "mismatches": [{"sample": _NUMBER, "got": [_NUMBER], "want": [_NUMBER]}],
    "profile": [{"function": (str,), "cycles_per_inference": _NUMBER, "share": _NUMBER}],
    "layers": [{"layer": _NUMBER, "name": (str,), "kind": (str,), "macs": _NUMBER,
                "cycles_per_inference": _NUMBER, "instructions_per_inference": _NUMBER,
                "share": _NUMBER, "cycles_per_mac": _NUMBER}],
    "cycles": {"mean": _NUMBER, "median": _NUMBER, "min": _NUMBER, "max": _NUMBER},
    "cycle_model": {"core": (str,), "exactness": (str,)},
    "memory": {"flash": _USAGE, "static_ram": _USAGE, "stack_peak": _USAGE,
               "heap_peak": _USAGE, "harness_io": _HARNESS, "regions": [_REGION]},
    "classes": {"labels": [(str, int)], "confusion": [[_NUMBER]], "precision": [_NUMBER],
                "recall": [_NUMBER], "f1": [_NUMBER], "accuracy": _NUMBER},
}  # fmt: skip


def _kind(spec: Any) -> str:
    if isinstance(spec, list):
        return "a list"
    if isinstance(spec, dict):
        return "an object"
    return "a string" if str in spec else "true or false" if bool in spec else "a number"


def _check_value(value: object, spec: Any, where: str) -> None:
    if value is None:
        return
    if isinstance(spec, list):
        ok = isinstance(value, list)
    elif isinstance(spec, dict):
        ok = isinstance(value, dict)
    else:
        ok = isinstance(value, spec) and (bool in spec or not isinstance(value, bool))
        ok = ok and not (isinstance(value, float) and not math.isfinite(value))
    if not ok:
        raise UsageError(
            f"{where} is {json.dumps(value)[:40]}, expected {_kind(spec)}",
            hint="the file is not what simcore validate --json or run --json writes",
        )
    if isinstance(spec, list) and isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, spec[0], f"{where}[{i}]")
    elif isinstance(spec, dict) and isinstance(value, dict):
        for name, sub in spec.items():
            _check_value(value.get(name), sub, f"{where}.{name}")


def _check_shape(result: dict[str, Any], where: str) -> None:
    """Refuse a result whose fields have the wrong JSON shape (one line, naming the field)."""
    _check_value(result, _SCHEMA, where)


def _is_run(data: object) -> bool:
    return isinstance(data, dict) and "elf" in data and ("stop_reason" in data or "error" in data)


def run_as_result(run: dict[str, Any]) -> Result:
    """One ``simcore run --json`` document as a report row (the ELF stands for the model).

    Cycles per inference come from the ``simcore_sample_begin/end`` marks when
    the firmware has them, else the whole run counts as one.
    """
    from statistics import median

    elf = Path(str(run.get("elf", "firmware")))
    manifest: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        manifest = json.loads(elf.with_suffix(".json").read_text())

    def listed(name: str) -> list[Any]:
        value = run.get(name)
        return value if isinstance(value, list) else []

    samples = [c for c in listed("sample_cycles") if _num(c) is not None]
    total = _num(run.get("cycles"))
    per = samples or ([total] if total is not None else [])
    cycles = (
        {"mean": sum(per) / len(per), "median": median(per), "min": min(per), "max": max(per)}
        if per
        else None
    )
    total_cycles = sum(
        _num(e.get("cycles")) or 0.0 for e in listed("profile") if isinstance(e, dict)
    )
    n = max(len(samples), 1)
    profile = [
        {
            "function": e.get("function"),
            "cycles_per_inference": (_num(e.get("cycles")) or 0.0) / n,
            "share": e.get("share", (_num(e.get("cycles")) or 0.0) / (total_cycles or 1.0)),
        }
        for e in listed("profile")
        if isinstance(e, dict)
    ]
    model = run.get("cycle_model") if isinstance(run.get("cycle_model"), dict) else {}
    error = run.get("error") if isinstance(run.get("error"), dict) else None
    ok = error is None and run.get("exit_code") in (0, None) and run.get("stop_reason") != "bkpt"
    if error is not None:
        failures = [f"{error.get('kind', 'error')}: {error.get('message', '')}"]
    elif not ok:
        failures = [
            f"exit code {run.get('exit_code')} ({run.get('stop_reason')} at "
            f"{run.get('stop_location')})"
        ]
    else:
        failures = []
    return {
        "model": elf.stem,
        "format": str(manifest.get("format", "run")) if isinstance(manifest, dict) else "run",
        "board": str(run.get("board", "?")),
        "key": f"{elf.name}/{run.get('board', '?')}",
        "elf": str(elf),
        "passed": ok,
        "failures": failures,
        "n_samples": len(samples) or run.get("n_samples") or None,
        "exactness": "error" if error is not None else f"exit {run.get('exit_code')}",
        "cycles": cycles,
        "clock_hz": run.get("clock_hz"),
        "cycle_model": model,
        "profile": profile,
        "layers": listed("layers"),
        "memory": run.get("memory"),
        "baseline_notes": [str(n) for n in listed("notes")],
    }


def load_reports(paths: Sequence[Path]) -> tuple[list[Result], dict[str, Any]]:
    """Results from several files (validate results or run documents), in order.

    The ``meta`` of the first validate file is kept; when files disagree on a
    combination, each row stays (they are listed, not merged).
    """
    results: list[Result] = []
    meta: dict[str, Any] = {}
    for path in paths:
        rows, file_meta = _load(path)
        results += rows
        meta = meta or file_meta
    return results, meta


def _has(result: object, key: str) -> bool:
    return isinstance(result, dict) and key in result


# -- figures ------------------------------------------------------------------


def status(result: Result) -> str:
    """PASS, FAIL (output or accuracy wrong) or REGRESSED (only cost gates failed)."""
    if result.get("failures"):
        return "FAIL"
    if result.get("regressions"):
        return "REGRESSED"
    return "PASS" if result.get("passed") else "FAIL"


def _key(result: Result) -> str:
    return str(result.get("key") or f"{result['model']}/{result['format']}/{result['board']}")


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _cycles_mean(result: Result) -> float | None:
    cycles = result.get("cycles")
    return _num(cycles.get("mean")) if isinstance(cycles, dict) else None


def _seconds(result: Result) -> float | None:
    seconds = _num(result.get("seconds_per_inference"))
    if seconds is None:
        mean, clock = _cycles_mean(result), _num(result.get("clock_hz"))
        if mean is not None and clock:
            seconds = mean / clock
    return seconds


def _timing_tag(result: Result) -> str:
    model = result.get("cycle_model")
    return str(model.get("exactness", "?")) if isinstance(model, dict) else "?"


def _core(result: Result) -> str:
    model = result.get("cycle_model")
    return str(model.get("core", "")) if isinstance(model, dict) else ""


def _memory(result: Result, kind: str) -> tuple[float | None, float | None]:
    """Used and capacity bytes of one memory kind (flash, static_ram, stack_peak)."""
    memory = result.get("memory")
    entry = memory.get(kind) if isinstance(memory, dict) else None
    if not isinstance(entry, dict):
        return None, None
    return _num(entry.get("used_bytes")), _num(entry.get("capacity_bytes"))


def _memory_percent(result: Result, kind: str) -> float | None:
    """How full the memory of one kind is: its region's fullness when the result names it.

    Results with a ``region`` carry the percent of that region (everything linked
    into it over its capacity); older results only used over capacity.
    """
    memory = result.get("memory")
    entry = memory.get(kind) if isinstance(memory, dict) else None
    if isinstance(entry, dict) and entry.get("region") is not None:
        percent = _num(entry.get("percent"))
        if percent is not None:
            return percent
    used, capacity = _memory(result, kind)
    return 100 * used / capacity if used is not None and capacity else None


def _memory_tip(result: Result, kind: str) -> str:
    used, capacity = _memory(result, kind)
    percent = _memory_percent(result, kind)
    memory = result.get("memory")
    entry = memory.get(kind) if isinstance(memory, dict) else None
    if not isinstance(entry, dict) or used is None or percent is None:
        return ""
    region_used = _num(entry.get("region_used_bytes"))
    if entry.get("region") is not None and region_used is not None and capacity:
        tip = (
            f"{used:,.0f} bytes; with heap and stack the program takes {region_used:,.0f} "
            f"of {entry['region']}'s {capacity:,.0f} bytes ({percent:.2f}%)"
        )
    else:
        tip = f"{used:,.0f} of {capacity or 0:,.0f} bytes ({percent:.2f}%)"
    harness = memory.get("harness_io") if isinstance(memory, dict) else None
    harness_bytes = _num(harness.get("used_bytes")) if isinstance(harness, dict) else None
    if kind == "static_ram" and harness_bytes:
        tip += f"; simcore's harness I/O buffers ({harness_bytes:,.0f} bytes) not counted"
    return tip


def _fmt_count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _fmt_percent(value: object) -> str:
    number = _num(value)
    return "-" if number is None else f"{100 * number:.2f}%"


def _fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.3g}"


def _fmt_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1024:
        return f"{value:.0f} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KB"
    return f"{value / (1024 * 1024):.2f} MB"


def _fmt_memory(result: Result, kind: str, *, percent: bool = True) -> str:
    """Bytes used, then how full their region is: ``152 B (sram 9.5%)``.

    The percent is the region's fill (all the program linked there: data, heap and
    stack reservations), which is what runs out; the bytes are this figure alone.
    """
    used, _capacity = _memory(result, kind)
    text = _fmt_bytes(used)
    share = _memory_percent(result, kind)
    if percent and used is not None and share is not None:
        memory = result.get("memory")
        entry = memory.get(kind) if isinstance(memory, dict) else None
        region = entry.get("region") if isinstance(entry, dict) else None
        text += f" ({region} {share:.1f}%)" if isinstance(region, str) else f" ({share:.1f}%)"
    return text


def _fmt_values(values: object, limit: int = 10) -> str:
    if not isinstance(values, list):
        return str(values)
    shown = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in values[:limit]]
    more = ", ..." if len(values) > limit else ""
    return "[" + ", ".join(shown) + more + "]"


def _si(value: float) -> str:
    """A round axis value as 1, 10, 100, 1k, 10k, ..., 1M, 1G."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


# -- summary table ------------------------------------------------------------

_COLUMNS = (
    # header, right-aligned
    ("combination", False),
    ("status", False),
    ("samples", True),
    ("accuracy", True),
    ("reference", True),
    ("exactness", False),
    ("cycles/inf", True),
    ("timing", False),
    ("ms/inf", True),
    ("flash", True),
    ("static RAM", True),
    ("stack peak", True),
)


def _row(result: Result) -> list[str]:
    return [
        _key(result),
        status(result),
        _fmt_count(_num(result.get("n_samples"))),
        _fmt_percent(result.get("accuracy")),
        _fmt_percent(result.get("reference_accuracy")),
        str(result.get("exactness", "-")),
        _fmt_count(_cycles_mean(result)),
        _timing_tag(result),
        _fmt_ms(_seconds(result)),
        _fmt_memory(result, "flash"),
        _fmt_memory(result, "static_ram"),
        _fmt_memory(result, "stack_peak", percent=False),
    ]


def _issues(result: Result) -> list[tuple[str, str]]:
    """Every failure, regression and baseline note of a result, each with its label."""
    out = [("FAIL", str(line)) for line in result.get("failures") or []]
    out += [("REGRESSED", str(line)) for line in result.get("regressions") or []]
    mismatches = [m for m in result.get("mismatches") or [] if isinstance(m, dict)]
    if mismatches:
        samples = ", ".join(str(m.get("sample")) for m in mismatches)
        first = mismatches[0]
        out.append(
            (
                "",
                f"first mismatching samples: {samples}; sample {first.get('sample')} got "
                f"{_fmt_values(first.get('got'))}, want {_fmt_values(first.get('want'))}",
            )
        )
    out += [("note", str(line)) for line in result.get("baseline_notes") or []]
    return out


def _totals(results: Sequence[Result]) -> str:
    counts = {s: sum(status(r) == s for r in results) for s in ("PASS", "FAIL", "REGRESSED")}
    return (
        f"{len(results)} combinations: {counts['PASS']} passed, {counts['FAIL']} failed, "
        f"{counts['REGRESSED']} regressed"
    )


def summary_table(results: Sequence[Result], markdown: bool = False) -> str:
    """One row per combination, then every failure, regression and note below it."""
    if not results:
        return "no results"
    headers = [name for name, _ in _COLUMNS]
    rows = [_row(r) for r in results]
    lines: list[str] = []
    if markdown:
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---:" if right else "---" for _, right in _COLUMNS) + "|")
        for row in rows:
            lines.append("| " + " | ".join(_md(cell) for cell in row) + " |")
        lines.append("")
        lines.append(_totals(results))
        issues = [(label, _key(r), text) for r in results for label, text in _issues(r)]
        if issues:
            lines.append("")
            for label, key, text in issues:
                prefix = f"**{label}** " if label else ""
                lines.append(f"- {prefix}`{key}`: {_md(text)}")
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if right else cell.ljust(w)
            for cell, w, (_, right) in zip(cells, widths, _COLUMNS, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines.append(line(headers))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(line(row) for row in rows)
    lines.append("")
    lines.append(_totals(results))
    # A note shared by several combinations (no baseline yet) is printed once.
    notes: dict[str, list[str]] = {}
    for result in results:
        for label, text in _issues(result):
            if label == "note":
                notes.setdefault(text, []).append(_key(result))
            else:
                lines.append(f"{label:<9} {_key(result)}: {text}")
    for text, keys in notes.items():
        who = keys[0] if len(keys) == 1 else f"{keys[0]} and {len(keys) - 1} more"
        lines.append(f"{'note':<9} {who}: {text}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


# -- HTML helpers -------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _ordered(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _groups(results: Sequence[Result]) -> dict[tuple[str, str], list[Result]]:
    """Results by (model, format), in the order they first appear."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        groups.setdefault((str(result["model"]), str(result["format"])), []).append(result)
    return groups


def _text_colour(fill: str) -> str:
    """Black or white, whichever reads better on ``fill`` (#rrggbb)."""
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#fff"


def _svg_open(width: int, height: int, cls: str, label: str) -> str:
    return (
        f'<svg class="chart {cls}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(label)}"><title>{_e(label)}</title>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}>{_e(text)}</text>'


# -- chart 1: cycles across boards ---------------------------------------------


def _cycles_chart(results: Sequence[Result], board_colours: dict[str, str]) -> str:
    """Grouped horizontal bars of cycles per inference, one group per model/format, log x."""
    groups = _groups(results)
    values = [v for r in results if (v := _cycles_mean(r)) is not None and v > 0]
    if not values:
        return '<p class="empty">No cycle counts in these results.</p>'
    lo_exp = math.floor(math.log10(min(values)))
    if math.log10(min(values)) - lo_exp < 0.1:  # keep the shortest bar visible
        lo_exp -= 1
    hi_exp = max(math.ceil(math.log10(max(values))), lo_exp + 1)
    width, x0, x1 = 1000, 150, 720
    row_h, bar_h, head_h = 20, 14, 22

    def x(value: float) -> float:
        return x0 + (math.log10(value) - lo_exp) / (hi_exp - lo_exp) * (x1 - x0)

    body: list[str] = []
    y = 40
    for (model, fmt), rows in groups.items():
        body.append(_text(8, y + 14, f"{model} · {fmt}", cls="group"))
        y += head_h
        for r in rows:
            board = str(r["board"])
            body.append(_text(x0 - 8, y + bar_h - 3, board, anchor="end"))
            mean = _cycles_mean(r)
            if mean is None or mean <= 0:
                body.append(_text(x0 + 4, y + bar_h - 3, "no cycle count", cls="muted"))
                y += row_h
                continue
            end = max(x(mean), x0 + 2)
            tag = _timing_tag(r)
            tip = (
                f"{_key(r)}: {mean:,.0f} cycles per inference "
                f"({_fmt_ms(_seconds(r))} ms at {_num(r.get('clock_hz')) or 0:,.0f} Hz); "
                f"cycle model {tag}"
            )
            body.append(
                f'<rect x="{x0}" y="{y}" width="{end - x0:.1f}" height="{bar_h}" '
                f'fill="{board_colours[board]}"><title>{_e(tip)}</title></rect>'
            )
            label = f"{mean:,.0f} cycles · {_fmt_ms(_seconds(r))} ms · {tag}"
            body.append(_text(end + 6, y + bar_h - 3, label, cls=f"value tag-{tag}"))
            y += row_h
        y += 8
    height = y + 4
    axis = [f'<line x1="{x0}" y1="30" x2="{x0}" y2="{height - 8}" class="axis"/>']
    for exp in range(lo_exp, hi_exp + 1):
        gx = x(10.0**exp)
        axis.append(f'<line x1="{gx:.1f}" y1="30" x2="{gx:.1f}" y2="{height - 8}" class="grid"/>')
        axis.append(_text(gx, 22, _si(10.0**exp), anchor="middle", cls="tick"))
    axis.append(_text(x0 - 8, 22, "cycles (log)", anchor="end", cls="tick"))
    title = "Cycles per inference across boards (log scale)"
    return _svg_open(width, height, "chart-cycles", title) + "".join(axis + body) + "</svg>"


# -- chart 2: per-function cycles ----------------------------------------------


def _profile(result: Result) -> list[tuple[str, float, float]]:
    """(function, cycles per inference, share) rows of a result, largest share first."""
    rows = []
    for entry in result.get("profile") or []:
        if not isinstance(entry, dict):
            continue
        share = _num(entry.get("share"))
        if share is None or share <= 0:
            continue
        rows.append(
            (str(entry.get("function")), _num(entry.get("cycles_per_inference")) or 0.0, share)
        )
    return sorted(rows, key=lambda row: -row[2])


def _top_functions(rows: Sequence[Result], per_result: int = 5, limit: int = 9) -> list[str]:
    """The functions worth a colour: each board's top few, ranked by their summed share."""
    score: dict[str, float] = {}
    for result in rows:
        for name, _, share in _profile(result)[:per_result]:
            score[name] = score.get(name, 0.0) + share
    return sorted(score, key=lambda name: -score[name])[:limit]


def _profile_chart(model: str, fmt: str, rows: Sequence[Result]) -> str:
    """One 100%-stacked horizontal bar per board: where the cycles of one inference go."""
    functions = _top_functions(rows)
    colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(functions)}
    width, x0, x1 = 1000, 110, 800
    row_h, bar_h = 26, 18
    body: list[str] = []
    y = 30
    for result in rows:
        board = str(result["board"])
        body.append(_text(x0 - 8, y + bar_h - 5, board, anchor="end"))
        profile = _profile(result)
        if not profile:
            body.append(_text(x0 + 4, y + bar_h - 5, "no profile", cls="muted"))
            y += row_h
            continue
        segments = [(n, c, s) for n, c, s in profile if n in colours]
        other = max(0.0, 1.0 - sum(s for _, _, s in segments))
        other_cycles = sum(c for n, c, _ in profile if n not in colours)
        segments.sort(key=lambda seg: functions.index(seg[0]))
        if other > 0.0005:
            segments.append(("other", other_cycles, other))
        left = float(x0)
        for name, cycles, share in segments:
            w = share * (x1 - x0)
            fill = colours.get(name, _OTHER_COLOUR)
            tip = f"{board}: {name}: {cycles:,.0f} cycles per inference ({share:.1%})"
            body.append(
                f'<rect x="{left:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{fill}" '
                f'class="segment"><title>{_e(tip)}</title></rect>'
            )
            if w >= 36:
                body.append(
                    f'<text x="{left + w / 2:.1f}" y="{y + bar_h - 5}" text-anchor="middle" '
                    f'class="inbar" fill="{_text_colour(fill)}">{share:.0%}</text>'
                )
            left += w
        total = _cycles_mean(result)
        body.append(_text(x1 + 8, y + bar_h - 5, f"{_fmt_count(total)} cycles", cls="value"))
        y += row_h
    axis = []
    for pct in (0, 25, 50, 75, 100):
        gx = x0 + pct / 100 * (x1 - x0)
        axis.append(f'<line x1="{gx:.1f}" y1="24" x2="{gx:.1f}" y2="{y}" class="grid"/>')
        axis.append(_text(gx, 18, f"{pct}%", anchor="middle", cls="tick"))
    legend: list[str] = []
    names = [*functions, "other"]
    col_w, per_row = 240, (width - 20) // 240
    y += 10
    for i, name in enumerate(names):
        lx = 20 + (i % per_row) * col_w
        ly = y + (i // per_row) * 18
        fill = colours.get(name, _OTHER_COLOUR)
        shown = name if len(name) <= 34 else name[:33] + "…"
        legend.append(
            f'<rect x="{lx}" y="{ly}" width="11" height="11" fill="{fill}"/>'
            + _text(lx + 16, ly + 10, shown, cls="legend")
        )
    height = y + math.ceil(len(names) / per_row) * 18 + 6
    title = f"Cycles per function, {model} {fmt}: share of one inference on each board"
    return (
        _svg_open(width, height, "chart-profile", title) + "".join(axis + body + legend) + "</svg>"
    )


# -- table: cycles per layer -----------------------------------------------------


def _layer_rows(result: Result) -> dict[int, dict[str, Any]]:
    return {
        int(e["layer"]): e
        for e in result.get("layers") or []
        if isinstance(e, dict) and _num(e.get("layer")) is not None
    }


def _layers_table(rows: Sequence[Result]) -> str:
    """Layers down, boards across: cycles per inference, share (as a bar) and cycles/MAC."""
    per_board = [(str(r["board"]), _layer_rows(r)) for r in rows]
    per_board = [(b, layers) for b, layers in per_board if layers]
    if not per_board:
        return (
            '<p class="empty">No layer marks in these results (the firmware calls neither '
            "simcore_layer nor simcore_trace).</p>"
        )
    ids = sorted({i for _, layers in per_board for i in layers}, key=lambda i: (i < 0, i))
    head = "".join(f'<th colspan="2">{_e(b)}</th>' for b, _ in per_board)
    sub = "".join("<th>cycles · share</th><th>cycles/MAC</th>" for _ in per_board)
    body = []
    for lid in ids:
        first = next(layers[lid] for _, layers in per_board if lid in layers)
        name = "after last layer" if lid < 0 else str(first.get("name") or "")
        macs = _num(first.get("macs"))
        cells = [
            f"<td>{'rest' if lid < 0 else lid}</td><td>{_e(name)}</td>"
            f"<td>{_e(first.get('kind') or '')}</td>"
            f'<td class="num">{_fmt_count(macs) if macs else "-"}</td>'
        ]
        for board, layers in per_board:
            entry = layers.get(lid)
            if entry is None:
                cells.append('<td class="muted" colspan="2">-</td>')
                continue
            cycles = _num(entry.get("cycles_per_inference")) or 0.0
            share = _num(entry.get("share")) or 0.0
            cpm = _num(entry.get("cycles_per_mac"))
            tip = f"{board}: layer {lid} {name}: {cycles:,.0f} cycles per inference ({share:.1%})"
            bar = (
                f'<svg class="membar" xmlns="http://www.w3.org/2000/svg" width="100" height="7" '
                f'viewBox="0 0 100 7"><title>{_e(tip)}</title>'
                f'<rect x="0" y="0" width="100" height="7" fill="#eee"/>'
                f'<rect x="0" y="0" width="{max(share * 100, 0.5):.1f}" height="7" '
                f'fill="#4e79a7"/></svg>'
            )
            cells.append(
                f'<td class="num" title="{_e(tip)}">{cycles:,.0f} <span class="pct">'
                f"{share:.1%}</span><br/>{bar}</td>"
                f'<td class="num">{f"{cpm:.2f}" if cpm else "-"}</td>'
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<table class="layers"><thead><tr><th rowspan="2">layer</th><th rowspan="2">name</th>'
        f'<th rowspan="2">kind</th><th rowspan="2">MACs</th>{head}</tr><tr>{sub}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


# -- chart 3: confusion matrices -------------------------------------------------


def _confusion(result: Result) -> list[list[int]] | None:
    classes = result.get("classes")
    matrix = classes.get("confusion") if isinstance(classes, dict) else None
    if not isinstance(matrix, list) or not matrix:
        return None
    n = len(matrix)
    square = all(isinstance(row, list) and len(row) == n for row in matrix)
    if not square or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for row in matrix for v in row
    ):
        return None  # not a confusion matrix: shown as absent, not guessed at
    return [[int(v) for v in row] for row in matrix]


def _confusion_table(result: Result, matrix: list[list[int]]) -> str:
    classes = result.get("classes") or {}
    n = len(matrix)
    labels = [str(x) for x in classes.get("labels") or []]
    if len(labels) != n:
        labels = [str(i) for i in range(n)]

    support = [sum(row) for row in matrix]
    predicted = [sum(row[j] for row in matrix) for j in range(n)]

    def metric(name: str, i: int, defined: bool) -> str:
        # A class without test samples has no recall, one never predicted no precision:
        # "0%" would read as a failure.
        values = classes.get(name)
        if not defined or not isinstance(values, list) or i >= len(values):
            return "-"
        value = _num(values[i])
        return "-" if value is None else f"{100 * value:.1f}%"

    head = "".join(f'<th scope="col">{_e(label)}</th>' for label in labels)
    parts = [
        '<table class="confusion"><thead>',
        f'<tr><th class="corner">true ↓ / predicted →</th>{head}'
        '<th class="metric">recall</th><th class="metric">F1</th></tr></thead><tbody>',
    ]
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        cells = []
        for j, count in enumerate(row):
            share = count / total
            if count == 0:
                style = ' class="zero"'
            else:
                alpha = 0.15 + 0.85 * share
                rgb = "89,161,79" if i == j else "225,87,89"
                ink = "#fff" if alpha > 0.6 else "#111"
                style = f' style="background: rgba({rgb},{alpha:.2f}); color: {ink}"'
            tip = f"true {labels[i]}, predicted {labels[j]}: {count} of {sum(row)}"
            cells.append(f'<td{style} title="{_e(tip)}">{count}</td>')
        parts.append(
            f'<tr><th scope="row">{_e(labels[i])}</th>{"".join(cells)}'
            f'<td class="metric">{metric("recall", i, support[i] > 0)}</td>'
            f'<td class="metric">{metric("f1", i, support[i] + predicted[i] > 0)}</td></tr>'
        )
    precision = "".join(
        f'<td class="metric">{metric("precision", j, predicted[j] > 0)}</td>' for j in range(n)
    )
    parts.append(
        f'<tr><th scope="row" class="metric">precision</th>{precision}<td></td><td></td></tr>'
    )
    parts.append("</tbody></table>")
    return "".join(parts)


def _confusion_section(model: str, fmt: str, rows: Sequence[Result]) -> str:
    matrices = [(r, m) for r in rows if (m := _confusion(r)) is not None]
    if not matrices:
        return ""
    boards = [str(r["board"]) for r, _ in matrices]
    identical = all(m == matrices[0][1] for _, m in matrices)
    out = [f"<h3>{_e(model)} · {_e(fmt)}</h3>"]
    first = matrices[0][0]
    accuracy = _fmt_percent(first.get("accuracy"))
    samples = _fmt_count(_num(first.get("n_samples")))
    if identical:
        on = ", ".join(boards)
        note = (
            f"Identical on {on}, so shown once." if len(boards) > 1 else f"Measured on {on} only."
        )
        out.append(
            f'<p class="caption">Accuracy {accuracy} on {samples} test samples. {_e(note)}</p>'
        )
        out.append(f'<div class="matrices"><figure>{_confusion_table(first, matrices[0][1])}')
        out.append("</figure></div>")
    else:
        out.append(
            '<p class="caption">The boards disagree: one matrix per board. Firmware that '
            "computes the same model should predict the same classes everywhere.</p>"
        )
        out.append('<div class="matrices">')
        for result, matrix in matrices:
            out.append(
                f"<figure><figcaption>{_e(result['board'])}: accuracy "
                f"{_fmt_percent(result.get('accuracy'))}</figcaption>"
                f"{_confusion_table(result, matrix)}</figure>"
            )
        out.append("</div>")
    return "".join(out)


# -- summary table (HTML) ---------------------------------------------------------


def _memory_cell(result: Result, kind: str) -> str:
    used, _capacity = _memory(result, kind)
    text = _e(_fmt_bytes(used))
    percent = _memory_percent(result, kind)
    if used is None or percent is None:
        return f'<td class="num">{text}</td>'
    # The bar shows how full the region holding it is: a full DTCM is red even
    # when the board has megabytes of other RAM. Its colour counts everything in
    # the region; simcore's harness buffers are drawn apart, after the program's share.
    fraction = max(0.0, min(percent / 100, 1.0))  # a hostile negative capacity
    tip = _memory_tip(result, kind)
    memory = result.get("memory")
    entry = memory.get(kind) if isinstance(memory, dict) else None
    region = entry.get("region") if isinstance(entry, dict) else None
    total = _region_percent(result, region)
    harness = max(0.0, min((total or 0.0) / 100, 1.0) - fraction)
    fullest = fraction + harness
    fill = "#59a14f" if fullest < 0.5 else "#edc948" if fullest < 0.85 else "#e15759"
    label = f"{region} {percent:.1f}%" if region is not None else f"{percent:.1f}%"
    if harness > 0.0005 and total is not None:
        label += f" (+{100 * harness:.1f}% harness I/O)"
        tip += f"; {region} is {total:.2f}% full with them"
    bar_w = 100
    filled = max(fraction * bar_w, 1.0)
    harness_bar = (
        f'<rect x="{filled:.1f}" y="0" width="{harness * bar_w:.1f}" height="7" '
        f'fill="{fill}" fill-opacity="0.35"/>'
        if harness > 0.0005
        else ""
    )
    return (
        f'<td class="num mem" title="{_e(tip)}">{text} <span class="pct">'
        f"{_e(label)}</span><br/>"
        f'<svg class="membar" xmlns="http://www.w3.org/2000/svg" width="{bar_w}" height="7" '
        f'viewBox="0 0 {bar_w} 7"><title>{_e(tip)}</title>'
        f'<rect x="0" y="0" width="{bar_w}" height="7" fill="#eee"/>'
        f'<rect x="0" y="0" width="{filled:.1f}" height="7" fill="{fill}"/>{harness_bar}</svg></td>'
    )


def _region_percent(result: Result, region: object) -> float | None:
    """How full a named region is with everything in it (harness buffers too)."""
    memory = result.get("memory")
    regions = memory.get("regions") if isinstance(memory, dict) else None
    if region is None or not isinstance(regions, list):
        return None
    for entry in regions:
        if isinstance(entry, dict) and entry.get("name") == region:
            return _num(entry.get("percent"))
    return None


def _summary_html(results: Sequence[Result]) -> str:
    head = (
        "<tr><th>combination</th><th>status</th><th>samples</th><th>accuracy</th>"
        "<th>reference</th><th>exactness</th><th>cycles / inference</th><th>timing</th>"
        "<th>ms / inference</th><th>flash</th><th>static RAM</th><th>stack peak</th></tr>"
    )
    rows = []
    for r in results:
        s = status(r)
        clock = _num(r.get("clock_hz"))
        clock_text = f" at {clock / 1e6:g} MHz" if clock else ""
        rows.append(
            f'<tr class="{s.lower()}"><td class="key">{_e(_key(r))}</td>'
            f'<td class="status">{s}</td>'
            f'<td class="num">{_e(_fmt_count(_num(r.get("n_samples"))))}</td>'
            f'<td class="num">{_e(_fmt_percent(r.get("accuracy")))}</td>'
            f'<td class="num">{_e(_fmt_percent(r.get("reference_accuracy")))}</td>'
            f"<td>{_e(r.get('exactness', '-'))}</td>"
            f'<td class="num">{_e(_fmt_count(_cycles_mean(r)))}</td>'
            f'<td class="tag-{_e(_timing_tag(r))}">{_e(_timing_tag(r))}</td>'
            f'<td class="num">{_e(_fmt_ms(_seconds(r)))}'
            f'<span class="pct">{_e(clock_text)}</span></td>'
            f"{_memory_cell(r, 'flash')}{_memory_cell(r, 'static_ram')}"
            f'<td class="num">{_e(_fmt_memory(r, "stack_peak", percent=False))}</td></tr>'
        )
    return f'<table class="summary"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _issues_html(results: Sequence[Result]) -> str:
    items = []
    for r in results:
        for label, text in _issues(r):
            if not label:  # the mismatching samples get their own table below
                continue
            cls = label.lower()
            tag = f'<span class="label">{_e(label)}</span> '
            items.append(f'<li class="{cls}">{tag}<code>{_e(_key(r))}</code>: {_e(text)}</li>')
    if not items:
        return '<p class="ok">No failures, regressions or baseline notes.</p>'
    return f'<ul class="issues">{"".join(items)}</ul>'


def _mismatch_html(results: Sequence[Result]) -> str:
    parts = []
    for r in results:
        mismatches = [m for m in r.get("mismatches") or [] if isinstance(m, dict)]
        if not mismatches:
            continue
        rows = "".join(
            f'<tr><td class="num">{_e(m.get("sample"))}</td>'
            f"<td><code>{_e(_fmt_values(m.get('got'), 12))}</code></td>"
            f"<td><code>{_e(_fmt_values(m.get('want'), 12))}</code></td></tr>"
            for m in mismatches
        )
        parts.append(
            f"<h3>First mismatching samples: {_e(_key(r))}</h3>"
            '<table class="mismatch"><thead><tr><th>sample</th><th>firmware output</th>'
            f"<th>reference</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return "".join(parts)


def _cycle_model_notes(results: Sequence[Result]) -> str:
    items = []
    seen: set[str] = set()
    for r in results:
        board = str(r["board"])
        if board in seen:
            continue
        seen.add(board)
        core = _core(r)
        clock = _num(r.get("clock_hz"))
        name = _CORE_NAMES.get(core, core or "unknown core")
        at = f" at {clock / 1e6:g} MHz" if clock else ""
        note = _CORE_NOTES.get(core) or _TAG_NOTES.get(_timing_tag(r), _timing_tag(r))
        items.append(f"<li><b>{_e(board)}</b> ({_e(name)}{_e(at)}): {_e(note)}.</li>")
    return f'<ul class="models">{"".join(items)}</ul>'


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
  margin: 24px auto; max-width: 1320px; padding: 0 16px; line-height: 1.4; }
h1 { margin-bottom: 4px; }
h2 { margin-top: 36px; border-bottom: 2px solid #ddd; padding-bottom: 4px; }
h3 { margin: 20px 0 4px; }
.meta { color: #555; margin: 0; font-size: 14px; }
.verdict { display: inline-block; padding: 6px 12px; border-radius: 4px; font-weight: 600;
  margin: 12px 0; }
.verdict.pass { background: #e3f1df; color: #225c1a; }
.verdict.fail { background: #fbe1e1; color: #8a1c1c; }
.caption, figcaption { color: #444; font-size: 14px; max-width: 980px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 8px; border: 1px solid #ddd; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.key { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: nowrap; }
tr.pass td.status { background: #59a14f; color: #fff; font-weight: 600; }
tr.fail td.status { background: #e15759; color: #fff; font-weight: 600; }
tr.regressed td.status { background: #f28e2b; color: #fff; font-weight: 600; }
tr.fail td, tr.regressed td { border-color: #e8b4b4; }
.pct { color: #777; font-size: 11px; margin-left: 4px; }
svg.membar { margin-top: 2px; }
.issues li { margin: 2px 0; }
.issues .label { font-weight: 600; padding: 0 4px; border-radius: 3px; color: #fff; }
.issues .fail .label { background: #e15759; }
.issues .regressed .label { background: #f28e2b; }
.issues .note .label { background: #888; }
.ok { color: #225c1a; }
svg.chart { display: block; margin: 8px 0; max-width: 100%; height: auto; }
svg.chart text { font-size: 12px; fill: #222; }
svg.chart text.group { font-weight: 600; font-size: 13px; }
svg.chart text.tick, svg.chart text.legend { font-size: 11px; fill: #555; }
svg.chart text.value { font-size: 11px; }
svg.chart text.inbar { font-size: 11px; }
svg.chart text.muted { fill: #999; font-style: italic; }
svg.chart line.grid { stroke: #e4e4e4; }
svg.chart line.axis { stroke: #888; }
svg.chart .segment { stroke: #fff; stroke-width: 0.5; }
.matrices { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 8px 0; }
table.confusion td { text-align: center; min-width: 30px; font-variant-numeric: tabular-nums; }
table.confusion td.zero { color: #bbb; }
table.confusion .metric { color: #555; font-size: 12px; background: #fafafa; }
table.confusion th.corner { font-weight: normal; color: #555; font-size: 12px; }
.tag-exact { color: #225c1a; }
.tag-proxy { color: #8a5a00; }
.tag-approximate { color: #8a1c1c; }
"""


def render_html(
    results: Sequence[Result],
    title: str = DEFAULT_TITLE,
    meta: dict[str, Any] | None = None,
) -> str:
    """The whole report as one self-contained HTML page."""
    meta = meta or {}
    failed = [r for r in results if status(r) != "PASS"]
    boards = _ordered(str(r["board"]) for r in results)
    board_colours = {b: _PALETTE[i % len(_PALETTE)] for i, b in enumerate(boards)}
    groups = _groups(results)
    meta_bits = [
        f"{label} {meta[key]}"
        for key, label in (("simcore", "simcore"), ("date", "on"), ("split", "split"))
        if meta.get(key) not in (None, "")
    ]
    if meta.get("limit") not in (None, ""):
        meta_bits.append(f"at most {meta['limit']} samples per combination")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    if meta.get("command"):
        parts.append(f'<p class="meta">Command: <code>{_e(meta["command"])}</code></p>')
    if meta_bits:
        parts.append(f'<p class="meta">{_e(", ".join(meta_bits))}</p>')
    verdict = "fail" if failed or not results else "pass"
    parts.append(f'<div class="verdict {verdict}">{_e(_totals(results))}</div>')
    if not results:
        parts.append("<p>No results in this file.</p></body></html>")
        return "\n".join(parts) + "\n"

    parts.append("<h2>Summary</h2>")
    parts.append(
        '<p class="caption">One row per model, number format and board. PASS means the '
        "firmware's outputs match the reference (int8 and q16 bit-exact, f32 within the "
        "stated tolerance), its accuracy equals the reference's and no cost gate regressed. "
        "Milliseconds are at the board's clock; the bars under flash and static RAM show "
        "how full the memory region holding them is (static RAM counts the program's own "
        "data; simcore's harness I/O buffers are left out of it but fill the region too).</p>"
    )
    parts.append(_summary_html(results))
    parts.append("<h3>Failures, regressions and notes</h3>")
    parts.append(_issues_html(results))
    parts.append(_mismatch_html(results))

    parts.append("<h2>Cycles per inference across boards</h2>")
    parts.append(
        '<p class="caption">Mean cycles per inference over the test samples, one group per '
        "model and format, on a logarithmic axis (boards differ by orders of magnitude; read "
        "the labels for values). Each label ends with how far the board's cycle model can be "
        "trusted:</p>"
    )
    parts.append(_cycle_model_notes(results))
    parts.append(_cycles_chart(results, board_colours))

    parts.append("<h2>Cycles per layer</h2>")
    parts.append(
        '<p class="caption">Cycles of one inference per layer (mean over the samples), '
        "measured between the firmware's layer marks (simcore_layer in release builds, "
        "simcore_trace in trace builds): layer N runs from the previous mark to its own, so "
        "the layers add up to the inference; each mark's own call (a few cycles) is inside "
        "the layer after it. MACs come from the build manifest; cycles/MAC is the layer's "
        "cycles over its multiply-accumulates. 'rest' is the code after the last mark "
        "(copying the output out).</p>"
    )
    for (model, fmt), rows in groups.items():
        parts.append(f"<h3>{_e(model)} · {_e(fmt)}</h3>")
        parts.append(_layers_table(rows))

    parts.append("<h2>Cycles per function</h2>")
    parts.append(
        '<p class="caption">The generated firmware has one kernel function per layer type, so '
        "this is where each inference's cycles go. Each bar is one board's inference, split "
        "by function as a share of its cycles (shares rather than lengths, so that the fast "
        "boards' bars stay readable; the total is on the right, and the chart above compares "
        "totals). Each board's top functions get a colour, the rest are grey. Hover a segment "
        "for its cycles. Runtime helpers appear by name: on the Cortex-M0+, for example, "
        "64-bit multiplies and floating point are library calls.</p>"
    )
    for (model, fmt), rows in groups.items():
        parts.append(f"<h3>{_e(model)} · {_e(fmt)}</h3>")
        parts.append(_profile_chart(model, fmt, rows))

    parts.append("<h2>Confusion matrices</h2>")
    parts.append(
        '<p class="caption">Rows are the true classes, columns the predicted ones; green '
        "cells are correct predictions, red ones errors, shaded by their share of the row. "
        "Recall and F1 per class on the right, precision per predicted class below; a dash "
        "marks a class without test samples (recall) or never predicted (precision).</p>"
    )
    confusion = [_confusion_section(model, fmt, rows) for (model, fmt), rows in groups.items()]
    parts.append("".join(confusion) or "<p>No class metrics in these results.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(
    results: Sequence[Result],
    path: Path,
    *,
    title: str = DEFAULT_TITLE,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write :func:`render_html` to ``path`` (creating its folder), whole or not at all."""
    from simcore.outputs import write_output

    write_output(path, render_html(results, title=title, meta=meta), what="HTML report")


# -- command line -------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simcore report RESULTS.json [--html OUT.html] [--markdown]``."""
    p = subparsers.add_parser(
        "report",
        help="summarize validate or run results; write an HTML report with charts",
        description="Print the summary table of 'simcore validate --json' files (and "
        "'simcore run --json' results of your own firmware); with --html also write a "
        "self-contained HTML report with charts.",
    )
    p.add_argument(
        "results",
        type=Path,
        nargs="+",
        help="JSON from 'simcore validate --json' or 'simcore run --json' (several: one report)",
    )
    p.add_argument("--html", type=Path, metavar="OUT.html", help="write the HTML report here")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--title", default=DEFAULT_TITLE, help="the HTML report's title")
    p.add_argument(
        "--merge",
        action="store_true",
        help="the files are the shards of one 'simcore validate --shard I/N' run: check that "
        "every shard is there, join them in the unsharded run's order, and exit with the "
        "run's gate verdict (0 all pass, 1 a failure or regression or a missing result)",
    )
    p.add_argument(
        "--json", type=Path, metavar="OUT.json", help="with --merge: write the merged results"
    )
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    if args.json is not None and not args.merge:
        raise UsageError("--json writes merged results: use it with --merge")
    if args.merge:
        return _merge_report(args)
    results, meta = load_reports(args.results)
    sys.stdout.write(summary_table(results, markdown=args.markdown) + "\n")
    if args.html:
        write_html(results, args.html, title=args.title, meta=meta)
        sys.stdout.write(f"report: {args.html}\n")
    return 0


def _merge_report(args: argparse.Namespace) -> int:
    """``report --merge``: one document, table, report and verdict from a run's shards."""
    from simcore.outputs import check_writable, write_output
    from simcore.shard import merge

    for path, what in ((args.json, "merged results"), (args.html, "HTML report")):
        if path is not None:
            check_writable(path, what=what)
    documents = []
    for path in args.results:
        rows, meta = _load(path)
        documents.append((path, {"version": RESULTS_VERSION, "meta": meta, "results": rows}))
    merged = merge(documents)
    results, meta = merged["results"], merged["meta"]
    sys.stdout.write(summary_table(results, markdown=args.markdown) + "\n")
    if args.json:
        write_output(args.json, json.dumps(merged, indent=1) + "\n", what="merged results")
        sys.stdout.write(f"results: {args.json}\n")
    if args.html:
        write_html(results, args.html, title=args.title, meta=meta)
        sys.stdout.write(f"report: {args.html}\n")
    if meta.get("partial"):
        sys.stderr.write(f"simcore: incomplete: {meta['interrupted']}\n")
        return 1
    return 0 if all(status(r) == "PASS" for r in results) else 1
