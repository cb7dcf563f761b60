"""Compare model variants across formats and boards: one table, one JSON, Pareto plots.

``simcore compare -m A -m B ...`` validates every variant x format x board
with :func:`simcore.validate.validate_many` (the same runner, judging and
golden checks as ``simcore validate``), then reduces each result to the
figures a choice between variants rests on: accuracy (against the labels, or
agreement with the reference model when the golden has none), cycles per
inference (median), latency at the board's clock, flash, and RAM per region
(static data plus the stack's peak). Where a build uses the sparse Dense
kernels, the same weights are validated again as a dense build
(``sparse="off"``) and the row records the flash and cycles the sparse path
saved, measured, not estimated.

Per board, a point is Pareto-optimal when no other variant/format on that
board is at least as accurate and at most as costly (cycles, or flash+RAM)
while better in one of them. The HTML page draws both fronts per board as
self-contained SVG (no scripts, no network).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simcore import __version__
from simcore.report import _CSS, _PALETTE, _e, _ordered, _svg_open, _text
from simcore.validate import Combination, Validation, combinations_for, read_manifest

Row = dict[str, Any]
COMPARE_VERSION = 1
DEFAULT_TITLE = "simcore variant comparison"
#: The two cost axes of the Pareto plots: row key, axis label.
COSTS = (("cycles", "cycles per inference"), ("footprint_bytes", "flash + RAM (bytes)"))


def plan(
    refs: Sequence[str | Path], formats: list[str] | None, boards: list[str] | None
) -> list[Combination]:
    """Every combination of every variant (goldens: shipped names, folders or model files)."""
    combos: list[Combination] = []
    for ref in refs:
        combos += combinations_for(ref, formats, boards)
    return combos


def run_compare(
    combos: list[Combination],
    *,
    limit: int | None = None,
    split: str = "test",
    jobs: int = 1,
    progress: bool = False,
    dense_reference: bool = True,
) -> tuple[list[Row], list[Validation]]:
    """Validate ``combos`` (and dense builds of their sparse ones); return rows and results.

    ``dense_reference`` validates each build that used the sparse kernels again
    with ``sparse="off"``, so its row can say what sparsity saved.
    """
    from simcore.validate import validate_many

    results = validate_many(combos, limit=limit, split=split, jobs=jobs, progress=progress)
    sparse = [r for r in results if not r.error and _sparse_layers(r)]
    dense: dict[str, Validation] = {}
    if dense_reference and sparse:
        again = [
            Combination(r.combo.model, r.combo.fmt, r.combo.board, r.combo.golden, "off")
            for r in sparse
        ]
        for d in validate_many(again, limit=limit, split=split, jobs=jobs, progress=progress):
            dense[_plain_key(d)] = d
    rows = [make_row(r, dense.get(_plain_key(r))) for r in results]
    mark_pareto(rows)
    return rows, [*results, *dense.values()]


def _plain_key(result: Validation) -> str:
    c = result.combo
    return f"{c.model}/{c.fmt}/{c.board_name}"


def _sparse_layers(result: Validation) -> list[dict[str, Any]]:
    """The manifest entries of the result's sparse layers ([] for a dense build)."""
    manifest = read_manifest(Path(result.elf)) if result.elf else {}
    return [la for la in manifest.get("layers", []) if isinstance(la.get("sparse"), dict)]


def _bytes(memory: dict[str, Any], key: str) -> int:
    entry = memory.get(key)
    return int(entry.get("used_bytes", 0)) if isinstance(entry, dict) else 0


def make_row(result: Validation, dense: Validation | None = None) -> Row:
    """The comparison figures of one validated combination (``dense``: its dense build)."""
    d = result.as_dict()
    mem = result.memory
    flash, static, stack = (_bytes(mem, k) for k in ("flash", "static_ram", "stack_peak"))
    regions = [
        {
            "name": reg.get("name"),
            "program_bytes": reg.get("program_bytes"),
            "stack_peak_bytes": reg.get("stack_peak_bytes"),
            "capacity_bytes": reg.get("capacity_bytes"),
        }
        for reg in mem.get("regions", [])
        if isinstance(reg, dict)
        and reg.get("kind") == "ram"
        and (reg.get("program_bytes") or reg.get("stack_peak_bytes"))
    ]
    score, score_kind = (
        (result.accuracy, "accuracy")
        if result.accuracy is not None
        else (result.argmax_agreement, "agreement")
    )
    row: Row = {
        "model": d["model"],
        "format": d["format"],
        "board": d["board"],
        "key": d["key"],
        "passed": d["passed"],
        "error": result.error,
        "n_samples": result.n_samples,
        "accuracy": result.accuracy,
        "reference_accuracy": result.reference_accuracy,
        "agreement": result.argmax_agreement,
        "score": score if not result.error else None,
        "score_kind": score_kind,
        "exactness": result.exactness,
        "cycles": result.cycles_median,
        "cycles_mean": result.cycles_mean,
        "clock_hz": result.clock_hz,
        "latency_ms": 1000.0 * result.cycles_median / result.clock_hz if result.clock_hz else None,
        "flash_bytes": flash,
        "static_ram_bytes": static,
        "stack_peak_bytes": stack,
        "ram_bytes": static + stack,
        "ram_regions": regions,
        "footprint_bytes": flash + static + stack,
        "weights_bytes": mem.get("weights_bytes"),
        "cycle_model": result.cycle_model,
        "sparse": None,
        "pareto": {"cycles": False, "footprint_bytes": False},
    }
    layers = _sparse_layers(result) if not result.error else []
    if layers:
        sparse: dict[str, Any] = {
            "layers": [la["name"] for la in layers],
            "nonzeros": sum(int(la["sparse"]["nonzeros"]) for la in layers),
            "weights": sum(int(la["sparse"]["weights"]) for la in layers),
            "encoded_saved_bytes": sum(int(la["sparse"]["saved_bytes"]) for la in layers),
        }
        if dense is not None and not dense.error:
            dense_flash = _bytes(dense.memory, "flash")
            sparse |= {
                "dense_flash_bytes": dense_flash,
                "dense_cycles": dense.cycles_median,
                "flash_saved_bytes": dense_flash - flash,
                "cycles_saved": dense.cycles_median - result.cycles_median,
                "dense_passed": dense.passed,
            }
        row["sparse"] = sparse
    return row


def _dominates(a: Row, b: Row, cost: str) -> bool:
    return bool(
        a["score"] >= b["score"]
        and a[cost] <= b[cost]
        and (a["score"] > b["score"] or a[cost] < b[cost])
    )


def mark_pareto(rows: list[Row]) -> None:
    """Set each row's ``pareto`` flags: on its board's front for each cost (failed rows never)."""
    for board in _ordered(r["board"] for r in rows):
        ok = [r for r in rows if r["board"] == board and r["passed"] and r["score"] is not None]
        for cost, _ in COSTS:
            for r in ok:
                r["pareto"][cost] = not any(_dominates(o, r, cost) for o in ok if o is not r)


# -- the terminal table -----------------------------------------------------------


def _size(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:.1f} KB" if n >= 10 * 1024 else f"{int(n):,} B"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _saving(row: Row) -> str:
    s = row.get("sparse")
    if not s:
        return ""
    if "flash_saved_bytes" not in s:
        return f"sparse: -{_size(s['encoded_saved_bytes'])} weights"
    return (
        f"sparse: -{_size(s['flash_saved_bytes'])} flash, "
        f"{-s['cycles_saved']:+,.0f} cycles vs dense"
    )


def table(rows: Sequence[Row]) -> str:
    """The comparison as an aligned text table, one line per variant/format/board."""
    head = [
        "variant",
        "fmt",
        "board",
        "accuracy",
        "cycles/inf",
        "ms/inf",
        "flash",
        "RAM",
        "front",
        "status",
        "sparse path",
    ]
    body = []
    for r in rows:
        front = "".join(
            mark for mark, cost in (("C", "cycles"), ("M", "footprint_bytes")) if r["pareto"][cost]
        )
        acc = _pct(r["score"]) + ("" if r["score_kind"] == "accuracy" else " agr")
        status = "ERROR" if r["error"] else ("PASS" if r["passed"] else "FAIL")
        ms = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.3f}"
        body.append(
            [
                r["model"],
                r["format"],
                r["board"],
                acc if not r["error"] else "-",
                f"{r['cycles']:,.0f}",
                ms,
                _size(r["flash_bytes"]),
                _size(r["ram_bytes"]),
                front or "-",
                status,
                _saving(r),
            ]
        )
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    right = {3, 4, 5, 6, 7}

    def line(cells: list[str]) -> str:
        return "  ".join(
            (c.rjust(w) if i in right else c.ljust(w))
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(head), line(["-" * w for w in widths]), *map(line, body)]
    out.append(
        "front: C = Pareto-optimal on its board for accuracy vs cycles, M = for accuracy vs "
        "flash+RAM; RAM = static data + stack peak"
    )
    return "\n".join(out)


# -- the HTML page -------------------------------------------------------------------


def _log_ticks(lo: float, hi: float, cost: str) -> list[float]:
    """Axis ticks in [lo, hi]: 1-2-5 steps for cycles, powers of two KB for bytes."""
    if cost == "cycles":
        low, high = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        ticks = [m * 10.0**e for e in range(low, high + 1) for m in (1, 2, 5)]
    else:
        ticks = [1024.0 * 2.0**k for k in range(-10, 31)]
    inside = [t for t in ticks if lo <= t <= hi]
    while len(inside) > 7:
        inside = inside[::2]
    return inside or [lo, hi]


def pareto_svg(
    rows: Sequence[Row], board: str, cost: str, label: str, colours: dict[str, str]
) -> str:
    """One scatter plot: accuracy (y) against a cost on a log axis (x); the front joined."""
    pts = [r for r in rows if r["board"] == board and r["score"] is not None and r[cost]]
    width, height, left, right, top, bottom = 560, 320, 64, 150, 24, 44
    title = f"{board}: accuracy vs {label}"
    if not pts:
        return (
            _svg_open(width, 60, "chart-pareto", title)
            + _text(10, 30, "no passing results on this board", cls="muted")
            + "</svg>"
        )
    costs = [float(r[cost]) for r in pts]
    lo, hi = min(costs) / 1.5, max(costs) * 1.5
    scores = [float(r["score"]) for r in pts]
    y_lo = max(0.0, math.floor((min(scores) - 0.02) * 20) / 20)
    y_hi = 1.0 if max(scores) <= 1.0 else max(scores)
    if y_hi - y_lo < 0.05:
        y_lo = max(0.0, y_hi - 0.05)
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(v: float) -> float:
        return left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    parts = [_svg_open(width, height, "chart-pareto", title)]
    for t in _log_ticks(lo, hi, cost):
        parts.append(
            f'<line class="grid" x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{top + plot_h}"/>'
        )
        parts.append(
            _text(px(t), top + plot_h + 14, _si_bytes(t, cost), anchor="middle", cls="tick")
        )
    steps = 5
    for i in range(steps + 1):
        v = y_lo + (y_hi - y_lo) * i / steps
        parts.append(
            f'<line class="grid" x1="{left}" y1="{py(v):.1f}" x2="{left + plot_w}" '
            f'y2="{py(v):.1f}"/>'
        )
        parts.append(_text(left - 6, py(v) + 4, f"{100 * v:.1f}%", anchor="end", cls="tick"))
    parts.append(
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
        f'y2="{top + plot_h}"/>'
    )
    parts.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>')
    parts.append(_text(left + plot_w / 2, height - 8, f"{label} (log scale)", anchor="middle"))
    front = sorted((r for r in pts if r["pareto"][cost]), key=lambda r: float(r[cost]))
    if len(front) > 1:
        path = " ".join(f"{px(float(r[cost])):.1f},{py(float(r['score'])):.1f}" for r in front)
        parts.append(f'<polyline class="front" points="{path}"/>')
    shapes = {"f32": "circle", "q16": "square", "int8": "diamond"}
    for r in pts:
        x, y = px(float(r[cost])), py(float(r["score"]))
        fill = colours[r["model"]]
        on = r["pareto"][cost]
        cls = "point front-point" if on else "point"
        tip = (
            f"{r['model']} {r['format']}: {_pct(r['score'])} {r['score_kind']}, "
            f"{_si_bytes(float(r[cost]), cost)} {label}" + (" (Pareto-optimal)" if on else "")
        )
        marker = _marker(shapes.get(r["format"], "circle"), x, y, fill, on)
        parts.append(f'<g class="{cls}"><title>{_e(tip)}</title>{marker}</g>')
    legend_x = left + plot_w + 16
    y = top + 8
    for model in _ordered(r["model"] for r in pts):
        parts.append(
            f'<rect x="{legend_x}" y="{y - 8}" width="10" height="10" fill="{colours[model]}"/>'
        )
        parts.append(_text(legend_x + 14, y + 1, model, cls="legend"))
        y += 16
    y += 6
    for fmt in _ordered(r["format"] for r in pts):
        parts.append(_marker(shapes.get(fmt, "circle"), legend_x + 5, y - 3, "#888", False))
        parts.append(_text(legend_x + 14, y + 1, fmt, cls="legend"))
        y += 16
    parts.append(_marker("circle", legend_x + 5, y + 3, "#fff", True))
    parts.append(_text(legend_x + 14, y + 7, "Pareto-optimal", cls="legend"))
    parts.append("</svg>")
    return "".join(parts)


def _marker(shape: str, x: float, y: float, fill: str, ring: bool) -> str:
    stroke = ' stroke="#111" stroke-width="2"' if ring else ' stroke="#fff" stroke-width="1"'
    if shape == "square":
        return (
            f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{fill}"{stroke}/>'
        )
    if shape == "diamond":
        return (
            f'<path d="M{x:.1f} {y - 6:.1f} L{x + 6:.1f} {y:.1f} L{x:.1f} {y + 6:.1f} '
            f'L{x - 6:.1f} {y:.1f} Z" fill="{fill}"{stroke}/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{fill}"{stroke}/>'


def _si_bytes(v: float, cost: str) -> str:
    if cost == "cycles":
        for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if v >= factor:
                return f"{v / factor:.3g}{suffix}"
        return f"{v:.3g}"
    return f"{v / 1024:.3g} KB" if v >= 1024 else f"{v:.0f} B"


_PAGE_CSS = """
svg.chart polyline.front { fill: none; stroke: #111; stroke-width: 1.2; stroke-dasharray: 4 3; }
.boards { display: flex; flex-wrap: wrap; gap: 12px; }
td.front { font-weight: 600; color: #225c1a; }
"""


def render_html(
    rows: Sequence[Row], *, title: str = DEFAULT_TITLE, meta: dict[str, Any] | None = None
) -> str:
    """The comparison as one self-contained HTML page: a table and two Pareto plots per board."""
    meta = meta or {}
    colours = {
        m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(_ordered(r["model"] for r in rows))
    }
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
        f"<title>{_e(title)}</title><style>{_CSS}{_PAGE_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    if meta.get("command"):
        parts.append(f'<p class="meta">Command: <code>{_e(meta["command"])}</code></p>')
    if not rows:
        parts.append("<p>No results.</p></body></html>")
        return "\n".join(parts) + "\n"
    parts.append("<h2>Which variant for which MCU</h2>")
    parts.append(
        '<p class="caption">Per board, accuracy against cycles per inference and against '
        "flash + RAM (static data and the stack's peak). A ringed point is Pareto-optimal on "
        "its board: no other variant or format there is at least as accurate and cheaper. "
        "The dashed line joins the front; points under it cost more for less. Accuracy is "
        "against the golden's labels (agreement with the reference model when it has none); "
        "failed combinations are left out. Hover a point for its figures.</p>"
    )
    for board in _ordered(r["board"] for r in rows):
        parts.append(f'<h3>{_e(board)}</h3><div class="boards">')
        for cost, label in COSTS:
            parts.append(pareto_svg(rows, board, cost, label, colours))
        parts.append("</div>")
    parts.append("<h2>Figures</h2>")
    head = [
        "variant",
        "format",
        "board",
        "accuracy",
        "cycles/inf",
        "ms/inf",
        "flash",
        "RAM (per region)",
        "Pareto front",
        "status",
        "sparse path vs dense build",
    ]
    parts.append(
        '<table class="compare"><thead><tr>'
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
    )
    for r in rows:
        regions = ", ".join(
            f"{reg['name']} {_size((reg['program_bytes'] or 0) + (reg['stack_peak_bytes'] or 0))}"
            for reg in r["ram_regions"]
        )
        front = " + ".join(
            name
            for name, cost in (("cycles", "cycles"), ("memory", "footprint_bytes"))
            if r["pareto"][cost]
        )
        status = "ERROR" if r["error"] else ("PASS" if r["passed"] else "FAIL")
        cls = "pass" if status == "PASS" else "fail"
        ms = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.3f}"
        cells = [
            (r["model"], "key"),
            (r["format"], ""),
            (r["board"], ""),
            (_pct(r["score"]) + ("" if r["score_kind"] == "accuracy" else " (agreement)"), "num"),
            (f"{r['cycles']:,.0f}", "num"),
            (ms, "num"),
            (_size(r["flash_bytes"]), "num"),
            (f"{_size(r['ram_bytes'])}" + (f" ({regions})" if regions else ""), "num"),
            (front or "-", "front" if front else ""),
            (status, "status"),
            (_saving(r).removeprefix("sparse: ") or "-", ""),
        ]
        parts.append(
            f'<tr class="{cls}">'
            + "".join(
                f'<td class="{c}">{_e(v)}</td>' if c else f"<td>{_e(v)}</td>" for v, c in cells
            )
            + "</tr>"
        )
    parts.append("</tbody></table>")
    errors = [r for r in rows if r["error"] or not r["passed"]]
    if errors:
        parts.append("<h3>Not judged or failed</h3><ul>")
        parts += [f"<li>{_e(r['key'])}: {_e(r['error'] or r['exactness'])}</li>" for r in errors]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- command line ------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simcore compare -m VARIANT -m VARIANT ... [--json] [--html]``."""
    from simcore.limits import count_arg

    p = subparsers.add_parser(
        "compare",
        help="validate model variants x formats x boards; table, JSON and Pareto plots",
        description="Validate each variant (a shipped model, golden folder or model file) "
        "in every format and on every board, then print one table of accuracy, cycles, "
        "latency, flash and RAM, mark the Pareto-optimal choices per board, and write the "
        "same figures as JSON and as an HTML page with Pareto plots.",
    )
    p.add_argument(
        "--model",
        "-m",
        action="append",
        required=True,
        metavar="VARIANT",
        help="a variant to compare (repeat; shipped name, golden folder or model file)",
    )
    p.add_argument(
        "--format",
        "-f",
        action="append",
        choices=["f32", "int8", "q16"],
        help="only these formats (repeatable; default every format a golden covers)",
    )
    p.add_argument(
        "--board",
        "-b",
        action="append",
        help="only these boards (repeatable; name or board .toml; default every board)",
    )
    p.add_argument("--limit", type=count_arg, help="only the first N test samples")
    p.add_argument("--split", default="test", help="golden split: test (default) or all")
    p.add_argument("--jobs", "-j", type=count_arg, help="worker processes (default: CPU count)")
    p.add_argument(
        "--no-dense-reference",
        action="store_true",
        help="do not validate dense builds of sparse ones (no savings measured)",
    )
    p.add_argument("--json", type=Path, help="write the figures (and full results) as JSON")
    p.add_argument("--html", type=Path, help="write the HTML page with Pareto plots")
    p.add_argument("--title", default=DEFAULT_TITLE, help="the HTML page's title")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from simcore.cli import _board_ref
    from simcore.errors import UsageError
    from simcore.outputs import check_writable, write_output
    from simcore.validate import default_jobs

    for path, what in ((args.json, "results"), (args.html, "HTML page")):
        if path is not None:
            check_writable(path, what=what)
    boards = [_board_ref(b) for b in args.board] if args.board else None
    combos = plan(args.model, args.format, boards)
    if not combos:
        raise UsageError("no combination matches the filters")
    rows, results = run_compare(
        combos,
        limit=args.limit,
        split=args.split,
        jobs=args.jobs or default_jobs(),
        progress=not args.quiet,
        dense_reference=not args.no_dense_reference,
    )
    meta = {
        "simcore": __version__,
        "command": "simcore " + " ".join(sys.argv[1:]),
        "split": args.split,
        "limit": args.limit,
    }
    sys.stdout.write(table(rows) + "\n")
    if args.json:
        doc = {
            "version": COMPARE_VERSION,
            "meta": meta,
            "rows": rows,
            "results": [r.as_dict() for r in results],
        }
        write_output(args.json, json.dumps(doc, indent=1) + "\n", what="results")
        sys.stdout.write(f"results: {args.json}\n")
    if args.html:
        write_output(args.html, render_html(rows, title=args.title, meta=meta), what="HTML page")
        sys.stdout.write(f"page: {args.html}\n")
    for r in rows:
        if r["error"]:
            sys.stderr.write(f"simcore: error: {r['key']}: {r['error']}\n")
    if any(r.error and r.error_exit_code == 2 for r in results):
        return 2
    return 0 if all(r["passed"] for r in rows) else 1
