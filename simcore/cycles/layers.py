"""Cycles per layer: spans between layer marks, and the per-inference table shown to users.

A *layer mark* is a call of ``simcore_layer(id)`` (release builds of generated
firmware, one argument, no data) or of ``simcore_trace(id, ptr, nbytes)`` (trace
builds, hand-written firmware). simcore hooks the entry of either and records the
modeled cycle and instruction counts there; it never changes what runs.

A layer's span is from the previous mark (or ``simcore_sample_begin``) to its own
mark, so the spans of a sample add up to the sample's cycles exactly: the marks'
own cost (the call and the empty body, measured in the README) is inside the
spans, charged to the layer after each mark.

MACs per layer come from the build manifest next to the ELF (shape of the output
times the weights per output channel); hand-written firmware without one gets
cycles only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from simcore.results import AFTER_LAST_LAYER, LayerSpan

#: Bytes per weight element per firmware format (the manifest gives array sizes in bytes).
_ELEMENT_BYTES = {"f32": 4, "q16": 4, "int8": 1}


def per_layer(marks: Iterable[tuple[str, int, int, int]]) -> list[LayerSpan]:
    """Spans per sample and layer from the run's marks in order.

    ``marks`` are ``(kind, index, cycles, instructions)`` with kind ``"begin"`` /
    ``"end"`` (index: the sample) or ``"layer"`` (index: the layer id). Marks
    outside a begin/end pair are ignored; a layer marked twice in one sample gets
    the sum of its spans.
    """
    spans: list[LayerSpan] = []
    sample: int | None = None
    last = (0, 0)
    acc: dict[int, list[int]] = {}
    for kind, index, cycles, insns in marks:
        if kind == "begin":
            sample, last, acc = index, (cycles, insns), {}
            continue
        if sample is None:
            continue
        layer = index if kind == "layer" else AFTER_LAST_LAYER
        if kind == "end" and index != sample:
            sample = None  # an end without its begin: nothing to trust
            continue
        entry = acc.setdefault(layer, [0, 0])
        entry[0] += cycles - last[0]
        entry[1] += insns - last[1]
        last = (cycles, insns)
        if kind == "end":
            if len(acc) > 1:  # a sample without layer marks has no layers
                spans.extend(LayerSpan(sample, lid, c, n) for lid, (c, n) in acc.items())
            sample = None
    return spans


def macs(entry: dict[str, Any], fmt: str | None) -> int | None:
    """Multiply-accumulates of one manifest layer per inference, if it has weights.

    Conv2D: output elements times weights per output channel (kh*kw*cin, or kh*kw
    for a depthwise layer, whose weights are kh*kw*cout); Dense: the weights.
    """
    size = _ELEMENT_BYTES.get(fmt or "")
    symbols = entry.get("symbols") or {}
    weights = [v for k, v in symbols.items() if k.endswith("_weights") and isinstance(v, int)]
    out_shape = [int(d) for d in entry.get("out_shape") or []]
    if size is None or not weights or not out_shape:
        return None
    n_weights = weights[0] // size
    kind = str(entry.get("kind", ""))
    if kind in ("dense", "fully_connected"):
        return n_weights
    if "conv" in kind:
        channels = out_shape[-1]
        per_output = n_weights // channels if channels else 0
        total = per_output
        for d in out_shape:
            total *= d
        return total
    return None


def layer_info(manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Name, kind and MACs of each layer of a build manifest, by layer id."""
    fmt = manifest.get("format")
    out: dict[int, dict[str, Any]] = {}
    for entry in manifest.get("layers") or []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), int):
            out[int(entry["id"])] = {
                "name": entry.get("name"),
                "kind": entry.get("kind"),
                "macs": macs(entry, fmt if isinstance(fmt, str) else None),
            }
    return out


def layer_table(
    spans: Sequence[LayerSpan], info: dict[int, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Per layer: cycles and instructions per inference (mean over samples), share, MACs.

    Rows in layer order, the stretch after the last mark last (``layer`` -1,
    named "after last layer"). ``share`` is of the summed spans, which equal the
    summed per-sample cycles.
    """
    info = info or {}
    by_layer: dict[int, list[LayerSpan]] = defaultdict(list)
    for span in spans:
        by_layer[span.layer_id].append(span)
    samples = len({s.sample_index for s in spans}) or 1
    total = sum(s.cycles for s in spans) or 1
    order = sorted(by_layer, key=lambda k: (k == AFTER_LAST_LAYER, k))
    rows = []
    for lid in order:
        group = by_layer[lid]
        cycles = sum(s.cycles for s in group)
        insns = sum(s.instructions for s in group)
        meta = info.get(lid, {})
        mac = meta.get("macs")
        per_inference = cycles / samples
        rows.append(
            {
                "layer": lid,
                "name": "after last layer" if lid == AFTER_LAST_LAYER else meta.get("name"),
                "kind": meta.get("kind"),
                "cycles_per_inference": round(per_inference, 1),
                "instructions_per_inference": round(insns / samples, 1),
                "share": round(cycles / total, 6),
                "macs": mac,
                "cycles_per_mac": round(per_inference / mac, 3) if mac else None,
                "samples": len({s.sample_index for s in group}),
            }
        )
    return rows


def format_layer_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The table as text lines for the CLI."""
    lines = [
        f"{'layer':<5} {'name':<24} {'cycles':>12} {'instr':>12} {'share':>7} "
        f"{'MACs':>10} {'cyc/MAC':>8}"
    ]
    for r in rows:
        lid = "rest" if r["layer"] == AFTER_LAST_LAYER else str(r["layer"])
        name = str(r["name"] or r["kind"] or "")
        mac = f"{r['macs']:,}" if r["macs"] else "-"
        cpm = f"{r['cycles_per_mac']:.2f}" if r["cycles_per_mac"] else "-"
        lines.append(
            f"{lid:<5} {name[:24]:<24} {r['cycles_per_inference']:>12,.0f} "
            f"{r['instructions_per_inference']:>12,.0f} {r['share']:>7.1%} {mac:>10} {cpm:>8}"
        )
    return lines


__all__ = ["format_layer_table", "layer_info", "layer_table", "macs", "per_layer"]
