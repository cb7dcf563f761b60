"""The diagnosis as one self-contained HTML page (``simcore diagnose --html FILE``).

The same facts as the text report, with the first diverging layer's error
map drawn inline (SVG): mismatched share per channel and per position.
"""

from __future__ import annotations

import html
from typing import Any

from simcore.diagnose.findings import Diagnosis

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:2px 8px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:.6em 1em;border-radius:4px;margin:1em 0}
.ok{background:#e3f4e1}.bad{background:#fbe3e3}
.pattern{border-left:4px solid #f28e2b;padding:.2em .8em;margin:.6em 0}
.maps svg{margin:.5em 1.5em .5em 0;vertical-align:top}
pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:.85em}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _layers(doc: dict[str, Any], unit: str) -> str:
    rows = []
    for layer in doc["layers"]:
        if "mismatched" in layer:
            cosine = layer["cosine"]
            shown = f"{cosine:.4f}" if isinstance(cosine, float) else cosine or "-"
            cells = (
                f'<td class="num">{layer["mismatched"]}/{layer["total"]}</td>'
                f'<td class="num">{_e(layer["max_abs_error"])}</td>'
                f'<td class="num">{_e(shown)}</td>'
            )
        else:
            cells = f'<td colspan="3">{_e(layer.get("note") or "not traced")}</td>'
        mark = " ← first divergence" if layer["index"] == doc.get("divergent_layer") else ""
        shape = "x".join(str(d) for d in layer["shape"])
        rows.append(
            f"<tr><td>{layer['index']}</td><td>{_e(layer['name'])}{_e(mark)}</td>"
            f"<td>{_e(layer['kind'])}</td><td>{shape}</td>{cells}</tr>"
        )
    return (
        "<table><tr><th>layer</th><th>name</th><th>kind</th><th>shape</th><th>mismatched</th>"
        f"<th>max |err|{_e(unit)}</th><th>cosine</th></tr>{''.join(rows)}</table>"
    )


def render_page(diag: Diagnosis) -> str:
    """The whole diagnosis as an HTML page (no external resources)."""
    doc = diag.as_dict()
    unit = {"int8": " LSB"}.get(diag.fmt, "")
    where = (
        f" on {_e(doc['board'])}, {doc['samples']} samples ({_e(doc['inputs'])})"
        if doc["board"]
        else " (static scan only)"
    )
    verdict = "ok" if diag.exit_code == 0 else "bad"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        f"<title>simcore diagnose: {_e(doc['firmware'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>simcore diagnose: {_e(doc['firmware'])}</h1>",
        f"<p>model {_e(doc['model'])} ({_e(doc['format'])}){where}</p>",
        f'<div class="verdict {verdict}">{_e(doc["summary"])}</div>',
    ]
    if diag.outputs is not None:
        parts += ["<h2>Layers</h2>", _layers(doc, unit)]
    emap = diag.error_map
    if emap is not None:
        parts.append(f"<h2>Error map of layer {emap.layer} ({_e(emap.name)})</h2>")
        parts.append(
            "<p>The firmware's output against the model recomputed from the firmware's own "
            "input. Left: share of mismatched values per output channel; right (for outputs "
            "with two spatial axes): share per position, rows H and columns W, white none, "
            "red all. Hover for the figures.</p>"
        )
        parts.append(f'<div class="maps">{emap.svg()}</div>')
        if emap.patterns:
            parts.append("<h3>Patterns in the error (evidence, not certainty)</h3>")
            for p in emap.patterns:
                parts.append(
                    f'<div class="pattern"><b>{_e(p.kind)}</b>: {_e(p.summary)}<br/>'
                    f"evidence: {_e(p.evidence)}<br/>look at: {_e(p.fix)}</div>"
                )
        parts.append("<h3>Per channel</h3><pre>" + _e("\n".join(emap.render()[1:])) + "</pre>")
    parts.append("<h2>Full report</h2><pre>" + _e(diag.render()) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
