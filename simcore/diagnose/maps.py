"""Error maps of a diverging layer, and the patterns a map makes obvious.

The doctor recomputes the first diverging layer from the firmware's own traced
input as the model says; :func:`error_map` compares that with what the
firmware wrote, per output channel (the last axis) and per spatial position
(the axes before it, over samples and channels). :func:`find_patterns` then
looks for shapes of error that point at a fix:

- ``rounding``: every mismatch is one step (1 LSB) off;
- ``per-tensor-scale``: some channels are exact and each other channel is off
  by a factor of its own (one requantization scale used for all channels);
- ``tensor-scale``: every channel off by one common factor;
- ``offset``: each wrong channel off by a constant (an offset applied twice,
  or not at all: a zero point times the weights' sum, a bias);
- ``transposed``: the output equals the reference with H and W swapped;
- ``shifted``: the output at (h, w) equals the reference at (h+dy, w+dx)
  (a window that starts a row or column off).

These are patterns with their evidence, not certainties: several mistakes can
draw the same picture. Values at the layer's clamps (ReLU floor, int8 limits)
say nothing about scale or offset and are left out of those fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware.reference import F32_TOLERANCE

#: Rows of the per-channel table shown in text (the JSON has every channel).
TEXT_CHANNELS = 32
#: Largest spatial map drawn as text, per side (larger ones are pooled).
TEXT_SIDE = 32
#: A pattern must hold for this share of the values it speaks about.
HOLDS = 0.9
_SHADES = " .:-=+*#%@"


@dataclass(frozen=True)
class ChannelError:
    """Errors of one output channel over all samples and positions (real units)."""

    channel: int
    mismatched: int
    total: int
    max_abs_error: float
    mean_error: float
    #: Least-squares factor and intercept of got ~ factor * want + intercept over the
    #: unclamped values, and how well that line fits (R^2); None when it cannot be fitted.
    factor: float | None
    intercept: float | None
    fit: float | None
    #: Root mean square of the line's residuals (real units): a scale or offset
    #: mistake leaves only rounding, noise leaves more.
    fit_rms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "mismatched": self.mismatched,
            "total": self.total,
            "max_abs_error": _clean(self.max_abs_error),
            "mean_error": _clean(self.mean_error),
            "factor": _clean(self.factor),
            "intercept": _clean(self.intercept),
            "fit_r2": _clean(self.fit),
            "fit_rms": _clean(self.fit_rms),
        }


@dataclass(frozen=True)
class Pattern:
    """A shape of the error that suggests a fix, with the numbers behind it."""

    kind: str
    summary: str
    evidence: str
    fix: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "summary": self.summary, "evidence": self.evidence,
                "fix": self.fix}  # fmt: skip


@dataclass(frozen=True)
class ErrorMap:
    """Where a layer's output differs from what the model computes from the same input."""

    layer: int
    name: str
    shape: tuple[int, ...]
    unit: str
    channels: list[ChannelError]
    #: Share of mismatched values per spatial position (H, W), over samples and
    #: channels; None for outputs without two spatial axes.
    spatial: npt.NDArray[np.float64] | None
    patterns: list[Pattern]

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "name": self.name,
            "shape": list(self.shape),
            "unit": self.unit.strip() or "value",
            "channels": [c.as_dict() for c in self.channels],
            "spatial_mismatch_share": None
            if self.spatial is None
            else [[round(float(v), 4) for v in row] for row in self.spatial],
            "patterns": [p.as_dict() for p in self.patterns],
        }

    def render(self) -> list[str]:
        """Text: the per-channel table, the spatial map, the patterns."""
        out = [
            f"  error map of layer {self.layer} ({self.name}), the firmware against the model "
            "recomputed from the firmware's own input:",
            f"    {'channel':>7} {'mismatched':>13} {'max |err|':>10} {'mean err':>9} "
            f"{'fit got = a*want + b':>24}",
        ]
        for c in self.channels[:TEXT_CHANNELS]:
            fit = (
                "-"
                if c.factor is None or c.intercept is None or c.fit is None
                else f"a={c.factor:.3f} b={c.intercept:+.2f} R2={c.fit:.3f}"
            )
            out.append(
                f"    {c.channel:>7} {f'{c.mismatched}/{c.total}':>13} "
                f"{_fmt(c.max_abs_error):>10} {_fmt(c.mean_error):>9} {fit:>24}"
            )
        if len(self.channels) > TEXT_CHANNELS:
            out.append(f"    ... {len(self.channels) - TEXT_CHANNELS} more channels in the JSON")
        if self.spatial is not None:
            grid = _pooled(self.spatial, TEXT_SIDE)
            h, w = self.spatial.shape
            pooled = (
                ""
                if grid.shape == self.spatial.shape
                else f", pooled to {grid.shape[0]}x{grid.shape[1]}"
            )
            out.append(f"    mismatched share per position ({h}x{w}{pooled}; ' ' none .. '@' all):")
            for row in grid:
                out.append("    |" + "".join(_shade(v) for v in row) + "|")
        if self.patterns:
            out.append("  patterns in the error (evidence, not certainty):")
            for p in self.patterns:
                out += [f"    {p.kind}: {p.summary}", f"      evidence: {p.evidence}",
                        f"      look at: {p.fix}"]  # fmt: skip
        return out

    def svg(self) -> str:
        """Inline SVG: mismatched share per channel (bars) and per position (heat map)."""
        bar_w, bar_h = 14, 80
        n = len(self.channels)
        width = max(60 + n * bar_w, 200)
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{bar_h + 40}" '
            f'role="img" aria-label="mismatched share per channel"><title>mismatched share '
            f"per channel, layer {self.layer}</title>",
            f'<line x1="40" y1="{bar_h + 10}" x2="{width - 10}" y2="{bar_h + 10}" stroke="#888"/>',
            f'<text x="2" y="18" font-size="10">100%</text>'
            f'<text x="2" y="{bar_h + 12}" font-size="10">0%</text>',
        ]
        for i, c in enumerate(self.channels):
            share = c.mismatched / c.total if c.total else 0.0
            h = share * bar_h
            x = 40 + i * bar_w
            parts.append(
                f'<rect x="{x}" y="{bar_h + 10 - h:.1f}" width="{bar_w - 2}" height="{h:.1f}" '
                f'fill="#e15759"><title>channel {c.channel}: {c.mismatched}/{c.total} '
                f"mismatched, max |err| {_fmt(c.max_abs_error)}</title></rect>"
            )
            if n <= 64 and (n <= 16 or i % 4 == 0):
                parts.append(
                    f'<text x="{x + bar_w / 2 - 1:.1f}" y="{bar_h + 24}" font-size="9" '
                    f'text-anchor="middle">{c.channel}</text>'
                )
        parts.append("</svg>")
        if self.spatial is not None:
            cell = max(4, min(16, 320 // max(self.spatial.shape)))
            h, w = self.spatial.shape
            parts.append(
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * cell}" height="{h * cell}" '
                f'role="img" aria-label="mismatched share per position"><title>mismatched '
                f"share per position (rows = H, columns = W), layer {self.layer}</title>"
            )
            for y in range(h):
                for x in range(w):
                    v = float(self.spatial[y, x])
                    shade = int(255 * (1 - v))
                    parts.append(
                        f'<rect x="{x * cell}" y="{y * cell}" width="{cell}" height="{cell}" '
                        f'fill="rgb(255,{shade},{shade})"><title>({y}, {x}): {v:.0%}</title></rect>'
                    )
            parts.append("</svg>")
        return "".join(parts)


def _clean(v: float | None) -> float | str | None:
    if v is None:
        return None
    return round(v, 6) if math.isfinite(v) else str(v)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def _shade(v: float) -> str:
    return _SHADES[min(len(_SHADES) - 1, math.ceil(v * (len(_SHADES) - 1)))]


def _pooled(grid: npt.NDArray[np.float64], side: int) -> npt.NDArray[np.float64]:
    """Max-pool ``grid`` so that neither side exceeds ``side``."""
    h, w = grid.shape
    fy, fx = math.ceil(h / side), math.ceil(w / side)
    if fy == 1 and fx == 1:
        return grid
    out = np.zeros((math.ceil(h / fy), math.ceil(w / fx)))
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            out[y, x] = grid[y * fy : (y + 1) * fy, x * fx : (x + 1) * fx].max()
    return out


def _real(fmt: str, a: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    v = np.asarray(a, dtype=np.float64)
    return v / 65536.0 if fmt == "q16" else v


def mismatch_mask(fmt: str, got: npt.NDArray[Any], want: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Which values differ, by the same rule as :func:`simcore.diagnose.findings.agreement`."""
    g, w = _real(fmt, got), _real(fmt, want)
    with np.errstate(invalid="ignore", over="ignore"):
        same = (g == w) | (np.isnan(g) & np.isnan(w))
        if fmt == "f32":
            same |= np.abs(g - w) <= F32_TOLERANCE["abs"] + F32_TOLERANCE["rel"] * np.abs(w)
    out: npt.NDArray[np.bool_] = ~same
    return out


def _fit(
    g: npt.NDArray[np.float64], w: npt.NDArray[np.float64]
) -> tuple[float, float, float, float] | None:
    """Least squares g ~ a*w + b: (a, b, R^2, residual RMS), or None with too few or
    constant values."""
    if g.size < 4 or np.ptp(w) == 0:
        return None
    a, b = np.polyfit(w, g, 1)
    resid = g - (a * w + b)
    spread = float(((g - g.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / spread if spread > 0 else 1.0
    return float(a), float(b), r2, float(np.sqrt(np.mean(resid**2)))


def error_map(
    fmt: str,
    layer: int,
    name: str,
    got: npt.NDArray[Any],
    want: npt.NDArray[Any],
    unit: str = "",
) -> ErrorMap:
    """Map the errors of ``got`` against ``want`` (both ``(samples, *shape)``)."""
    got = np.asarray(got)
    want = np.asarray(want)
    shape = tuple(int(d) for d in want.shape[1:])
    bad = mismatch_mask(fmt, got, want)
    g, w = _real(fmt, got), _real(fmt, want)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = g - w
    clamped = _clamped(fmt, g, w)
    n_ch = shape[-1] if shape else 1
    g2, w2 = g.reshape(-1, n_ch), w.reshape(-1, n_ch)
    d2, b2, c2 = diff.reshape(-1, n_ch), bad.reshape(-1, n_ch), clamped.reshape(-1, n_ch)
    channels = []
    for c in range(n_ch):
        err = np.where(b2[:, c], np.abs(d2[:, c]), 0.0)
        keep = ~c2[:, c] & np.isfinite(g2[:, c]) & np.isfinite(w2[:, c])
        fit = _fit(g2[keep, c], w2[keep, c])
        mean = float(np.nanmean(d2[:, c])) if d2.shape[0] else 0.0
        channels.append(
            ChannelError(
                c, int(b2[:, c].sum()), int(b2.shape[0]),
                float(np.nan_to_num(err, nan=np.inf).max(initial=0.0)), mean,
                None if fit is None else fit[0], None if fit is None else fit[1],
                None if fit is None else fit[2], None if fit is None else fit[3],
            )
        )  # fmt: skip
    spatial = None
    if len(shape) == 3:
        spatial = bad.reshape(-1, *shape).mean(axis=(0, 3)).astype(np.float64)
    emap = ErrorMap(layer, name, shape, unit, channels, spatial, [])
    return ErrorMap(
        layer, name, shape, unit, channels, spatial, find_patterns(fmt, got, want, emap)
    )


def _clamped(
    fmt: str, g: npt.NDArray[np.float64], w: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Values at a clamp of the layer: the int8 limits, or the floor a ReLU leaves.

    A floor is a value of ``want`` that at least 5% of the values sit on, at its minimum.
    """
    mask = np.zeros(g.shape, dtype=bool)
    if fmt == "int8":
        mask |= (g <= -128) | (g >= 127) | (w <= -128) | (w >= 127)
    finite = w[np.isfinite(w)]
    if finite.size:
        floor = finite.min()
        if (finite == floor).mean() >= 0.05:
            mask |= (w == floor) | (g == floor)
    return mask


def find_patterns(
    fmt: str, got: npt.NDArray[Any], want: npt.NDArray[Any], emap: ErrorMap
) -> list[Pattern]:
    """The patterns that hold in this map, strongest first."""
    bad = mismatch_mask(fmt, got, want)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return []
    found: list[Pattern] = []
    step = 1.0 / 65536.0 if fmt == "q16" else 1.0
    g, w = _real(fmt, got), _real(fmt, want)
    unit = " LSB" if fmt == "int8" else ""
    if fmt in ("int8", "q16"):
        d = np.abs(g - w)[bad]
        if np.allclose(d, step):
            up = int(((g - w)[bad] > 0).sum())
            found.append(
                Pattern(
                    "rounding",
                    f"every mismatch is one step off ({n_bad} of {bad.size} values)",
                    f"{up} are one step high and {n_bad - up} one step low; no value is off "
                    "by more",
                    "the rounding of the requantization or fixed-point multiply (TFLM rounds "
                    "twice: a rounding doubling high multiply, then a rounding right shift; "
                    "half away from zero), or float rounding where the model uses integers",
                )
            )
            return found
    shape = emap.shape
    if len(shape) == 3:
        found += _spatial_patterns(fmt, got, want, bad, shape)
    spread = float(np.nanstd(w[np.isfinite(w)])) if np.isfinite(w).any() else 0.0
    found += _channel_patterns(emap, unit, max(step, 1e-3 * spread))
    return found


def _spatial_patterns(
    fmt: str,
    got: npt.NDArray[Any],
    want: npt.NDArray[Any],
    bad: npt.NDArray[np.bool_],
    shape: tuple[int, ...],
) -> list[Pattern]:
    h, w, _ = shape
    unchanged = 1.0 - float(bad.mean())
    g = got.reshape(-1, h, w, shape[2])
    r = want.reshape(-1, h, w, shape[2])
    out: list[Pattern] = []
    if h == w:
        same = 1.0 - float(mismatch_mask(fmt, g, r.swapaxes(1, 2)).mean())
        if same >= HOLDS and same > unchanged + 0.1:
            out.append(
                Pattern(
                    "transposed",
                    "the output is the model's with H and W swapped",
                    f"{same:.1%} of values equal the reference at (w, h) against {unchanged:.1%} "
                    "at (h, w)",
                    "the output (or input) indexing: [y][x] written as [x][y], or an image "
                    "read column-major",
                )
            )
            return out
    best: tuple[float, int, int] | None = None
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            if (dy, dx) == (0, 0) or h - abs(dy) < 2 or w - abs(dx) < 2:
                continue
            gs = g[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
            rs = r[:, max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
            share = 1.0 - float(mismatch_mask(fmt, gs, rs).mean())
            if best is None or share > best[0]:
                best = (share, dy, dx)
    if best is not None and best[0] >= HOLDS and best[0] > unchanged + 0.1:
        share, dy, dx = best
        out.append(
            Pattern(
                "shifted",
                f"the output at (h, w) is the model's at (h{dy:+d}, w{dx:+d})",
                f"{share:.1%} of the overlapping values agree when shifted by ({dy:+d}, {dx:+d}) "
                f"against {unchanged:.1%} unshifted",
                "the window's start: padding (valid vs same, pad_top/pad_left), an off-by-one "
                "row or column index, or the stride",
            )
        )
    return out


def _channel_patterns(emap: ErrorMap, unit: str, tolerance: float) -> list[Pattern]:
    """Scale and offset patterns: lines that fit each wrong channel to within rounding
    (residual RMS at most ``tolerance``, one step of the format)."""
    chans = emap.channels
    if len(chans) < 2:
        return []
    exact = [c.channel for c in chans if c.mismatched == 0]
    wrong = [c for c in chans if c.mismatched > 0]
    fitted = [
        c
        for c in wrong
        if c.fit is not None and c.factor is not None and c.fit >= 0.98
        and c.fit_rms is not None and c.fit_rms <= tolerance
    ]  # fmt: skip
    if not wrong or len(fitted) < HOLDS * len(wrong):
        return []
    out: list[Pattern] = []
    offsets = [c for c in fitted if c.factor is not None and abs(c.factor - 1.0) < 0.02]
    if len(offsets) >= HOLDS * len(wrong):
        shifts = [c.intercept or 0.0 for c in offsets]
        spread = max(shifts) - min(shifts)
        where = (
            "every wrong channel"
            if not exact
            else f"channels {_ranges([c.channel for c in wrong])}"
        )
        common = spread < 1.0
        out.append(
            Pattern(
                "offset",
                f"{where} is off by a constant"
                + (" (the same for all)" if common else " of its own"),
                f"got = want + b with slope 1.00±0.02 in {len(offsets)} of {len(wrong)} wrong "
                f"channels; b from {min(shifts):+.3g} to {max(shifts):+.3g}{unit}"
                + (f"; channels {_ranges(exact)} exact" if exact else ""),
                "an offset applied twice or not at all: a zero point (the input offset times "
                "the weights' sum differs per channel), the bias, or the output zero point",
            )
        )
        return out
    factors = [c.factor for c in fitted if c.factor is not None]
    lo, hi = min(factors), max(factors)
    if exact and len(exact) < len(chans):
        out.append(
            Pattern(
                "per-tensor-scale",
                f"channels {_ranges(exact)} are exact and each other channel is off by a factor "
                "of its own",
                f"got = a*want + b fits {len(fitted)} of {len(wrong)} wrong channels to "
                f"within rounding, a from {lo:.3g} to {hi:.3g}",
                "one requantization scale (multiplier/shift) used for every channel where the "
                "model has one per channel: the exact channels share the scale that was used",
            )
        )
    elif not exact and hi - lo < 0.02 * max(abs(hi), 1e-9):
        out.append(
            Pattern(
                "tensor-scale",
                f"every channel is off by the same factor ({(lo + hi) / 2:.4g})",
                f"got = a*want + b fits {len(fitted)} of {len(wrong)} channels to within rounding",
                "the layer's scale: input or output scale, a shift off by one (factor 2), or "
                "an input scaled 0..255 instead of 0..1",
            )
        )
    elif not exact:
        out.append(
            Pattern(
                "channel-scales",
                "each channel is off by a factor of its own",
                f"got = a*want + b fits {len(fitted)} of {len(wrong)} channels to within rounding, "
                f"a from {lo:.3g} to {hi:.3g}",
                "per-channel scales read in another order or for another layer",
            )
        )
    return out


def _ranges(values: list[int]) -> str:
    """``0, 2-5, 7`` for [0, 2, 3, 4, 5, 7]."""
    parts: list[str] = []
    for v in sorted(values):
        if parts and "-" not in parts[-1].split(",")[-1] and int(parts[-1]) == v - 1:
            parts[-1] = f"{parts[-1]}-{v}"
        elif parts and "-" in parts[-1] and int(parts[-1].split("-")[1]) == v - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{v}"
        else:
            parts.append(str(v))
    return ", ".join(parts)
