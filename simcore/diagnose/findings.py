"""What the layout doctor found, and how it reads: the report and its JSON.

:class:`Diagnosis` is built by :mod:`simcore.diagnose.doctor`; its
:meth:`~Diagnosis.render` (for a person) and :meth:`~Diagnosis.as_dict` (the
``--json`` findings) show the same facts. :func:`agreement` is the one
comparison every check uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.diagnose import mistakes as mk
from simcore.diagnose.maps import ErrorMap
from simcore.diagnose.static import StaticFinding
from simcore.firmware.reference import F32_TOLERANCE

#: Hypotheses listed besides the best one.
SHOWN_ALTERNATIVES = 4
UNITS = {"f32": "", "q16": "", "int8": " LSB"}
#: How to get per-layer checks, for generated and hand-written firmware alike.
TRACE_HINT = (
    "build it with simcore build --trace, or in your own firmware call "
    "simcore_trace(N, output, bytes) after layer N (firmware_builds/include/simcore_abi.h)"
)


@dataclass(frozen=True)
class Agreement:
    """How one array of outputs agrees with another (the second is the reference)."""

    mismatched: int
    total: int
    max_abs_error: float
    cosine: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "mismatched": self.mismatched,
            "total": self.total,
            "max_abs_error": _finite(self.max_abs_error),
            "cosine": None if self.cosine is None else _finite(self.cosine),
        }


def _finite(v: float) -> float | str:
    return v if np.isfinite(v) else str(v)


@dataclass(frozen=True)
class LayerCheck:
    """One layer's traced output against the reference."""

    index: int
    name: str
    kind: str
    shape: tuple[int, ...]
    traced: bool
    agreement: Agreement | None
    note: str = ""

    @property
    def diverges(self) -> bool:
        return self.agreement is not None and self.agreement.mismatched > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "traced": self.traced,
            **({} if self.agreement is None else self.agreement.as_dict()),
            **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True)
class Evidence:
    """A hypothesis recomputed: how its output agrees with the firmware's traced output."""

    mistake: mk.Mistake | None
    agreement: Agreement
    #: Whether the ELF's arrays of the layer are exactly what the mistake predicts
    #: (None: they have no generator symbols to compare).
    stored_agrees: bool | None = None

    @property
    def explains(self) -> bool:
        return self.agreement.mismatched == 0

    def as_dict(self) -> dict[str, Any]:
        m = self.mistake
        return {
            **(
                {}
                if m is None
                else {"kind": m.kind, "variant": m.variant, "description": m.describe()}
            ),
            "explains": self.explains,
            "stored_arrays_agree": self.stored_agrees,
            **self.agreement.as_dict(),
        }


@dataclass(frozen=True)
class Fault:
    """A layer that computes wrongly from its own (traced) input, and the hypotheses tested."""

    check: LayerCheck
    #: The layer recomputed as the model says, against the firmware's output.
    baseline: Evidence
    #: Every applicable mistake recomputed, closest first.
    hypotheses: list[Evidence]

    @property
    def cause(self) -> Evidence | None:
        best = self.hypotheses[0] if self.hypotheses else None
        return best if best is not None and best.explains else None

    def better(self) -> list[Evidence]:
        """The hypotheses that fit better than the layer as the model says (fewer
        mismatched values; as many, with a smaller largest error), closest first."""
        base = self.baseline.agreement
        return [
            h
            for h in self.hypotheses
            if (h.agreement.mismatched, h.agreement.max_abs_error)
            < (base.mismatched, base.max_abs_error)
        ]

    def title(self) -> str:
        c = self.check
        return f"layer {c.index} ({c.name}, {c.kind})"

    def verdict(self) -> str:
        cause = self.cause
        if cause is not None and cause.mistake is not None:
            return cause.mistake.describe()
        return "no known mistake explains it"

    def as_dict(self, shown: int) -> dict[str, Any]:
        return {
            "layer": self.check.index,
            "name": self.check.name,
            "without_mistake": self.baseline.as_dict(),
            "cause": None if self.cause is None else self.cause.as_dict(),
            "hypotheses": [h.as_dict() for h in self.better()[:shown]],
            "hypotheses_tested": len(self.hypotheses),
            "hypotheses_worse_than_unchanged": len(self.hypotheses) - len(self.better()),
        }


@dataclass
class Diagnosis:
    """Everything ``simcore diagnose`` found; :meth:`render` and :meth:`as_dict` show the same."""

    firmware: str
    model: str
    fmt: str
    board: str
    samples: int
    reference: str
    #: agrees | explained | unexplained | stored (outputs agree, stored arrays do not) |
    #: untraced-agrees | untraced-differs | static-agrees (static scan only, nothing run) |
    #: static-incomplete (static scan only, and some arrays were not found at all)
    verdict: str
    layers: list[LayerCheck]
    #: None when nothing was run (static scan only).
    outputs: Agreement | None
    divergent: LayerCheck | None = None
    input_source: str = ""
    #: The first diverging layer first, then every later layer that computes wrongly
    #: from its own traced input (a second mistake; errors a layer merely passes on
    #: are not faults).
    faults: list[Fault] = field(default_factory=list)
    static: list[StaticFinding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Per-channel and per-position errors of the first diverging layer, with patterns.
    error_map: ErrorMap | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict in ("agrees", "untraced-agrees", "static-agrees") else 1

    @property
    def baseline(self) -> Evidence | None:
        return self.faults[0].baseline if self.faults else None

    @property
    def hypotheses(self) -> list[Evidence]:
        """The first fault's hypotheses, closest first."""
        return self.faults[0].hypotheses if self.faults else []

    @property
    def cause(self) -> Evidence | None:
        """What explains the first diverging layer (None: nothing does)."""
        return self.faults[0].cause if self.faults else None

    def summary(self) -> str:
        """One sentence: the verdict."""
        if self.verdict == "agrees":
            return f"no divergence: all {len(self.traced)} traced layers and the outputs agree"
        if self.verdict == "untraced-agrees":
            return "outputs agree (the firmware traced no layer: " + TRACE_HINT + " to check each)"
        if self.verdict == "static-incomplete":
            missing = [f for f in self.static if f.status == "missing"]
            return (
                f"{len(missing)} of {len(self.static)} arrays of the model were not found in the "
                "ELF under any name or candidate layout, so the scan cannot vouch for them (the "
                "others hold what the model says); a port that computes them at run time, "
                "stores them in another format or packs them differently needs a run: "
                f"simcore diagnose without --static, after {TRACE_HINT}"
            )
        if self.verdict == "static-agrees":
            return (
                "every stored array holds what the model says (static scan only: mistakes in "
                "code, such as activations or input scaling, need a run)"
            )
        if self.verdict == "stored":
            f = self.stored_problems[0]
            what = (
                f"as '{f.mistake.label}' would ({f.mistake.describe()})"
                if f.mistake is not None
                else f"differently: {f.detail}"
            )
            if self.outputs is None:
                return f"layer {f.layer} stores {f.symbol or f.role} {what} (static scan only)"
            return (
                f"layer {f.layer} stores {f.symbol or f.role} {what}; the traced outputs still "
                f"agree on these {self.samples} samples (the mistake hardly shows on them)"
            )
        if self.verdict == "untraced-differs":
            assert self.outputs is not None
            return (
                f"outputs differ in {self.outputs.mismatched} of {self.outputs.total} values, and "
                "the firmware traced no layer: " + TRACE_HINT + " to find the layer"
            )
        d = self.divergent
        if d is None:
            return (
                "every traced layer agrees but the outputs differ: the mistake is in an untraced "
                "layer or in copying the output"
            )
        if len(self.faults) > 1:
            return f"{len(self.faults)} layers compute wrongly: " + "; ".join(
                f"{f.title()}: {f.verdict()}" for f in self.faults
            )
        where = f"layer {d.index} ({d.name}, {d.kind})"
        cause = self.cause
        if cause is not None and cause.mistake is not None:
            return f"{where} diverges: {cause.mistake.describe()}"
        return f"{where} diverges, and no known mistake explains it"

    @property
    def stored_problems(self) -> list[StaticFinding]:
        """Arrays under the generator's names that do not hold what the model says."""
        return [f for f in self.static if f.status in ("mistake", "differs")]

    @property
    def traced(self) -> list[LayerCheck]:
        return [c for c in self.layers if c.traced]

    def as_dict(self) -> dict[str, Any]:
        return {
            "simcore_diagnosis": 1,
            "firmware": self.firmware,
            "model": self.model,
            "format": self.fmt,
            "board": self.board,
            "samples": self.samples,
            "inputs": self.input_source,
            "reference": self.reference,
            "verdict": self.verdict,
            "summary": self.summary(),
            "exit_code": self.exit_code,
            "outputs": None if self.outputs is None else self.outputs.as_dict(),
            "layers": [c.as_dict() for c in self.layers],
            "divergent_layer": None if self.divergent is None else self.divergent.index,
            "cause": None if self.cause is None else self.cause.as_dict(),
            "faults": [f.as_dict(SHOWN_ALTERNATIVES + 1) for f in self.faults],
            "static_scan": [f.as_dict() for f in self.static],
            "error_map": None if self.error_map is None else self.error_map.as_dict(),
            "notes": self.notes,
        }

    def render(self) -> str:
        """The report a person reads."""
        if self.outputs is None:
            return (
                "\n".join(
                    [
                        f"simcore diagnose --static: {self.firmware}",
                        f"  model {self.model} ({self.fmt})",
                        "",
                        f"{self._head()}: {self.summary()}",
                        *self._render_static(),
                    ]
                )
                + "\n"
            )
        unit = UNITS[self.fmt]
        labels = [f"{c.index} {c.name} ({c.kind})" for c in self.layers]
        wide = max([len(s) for s in labels] + [len("layer")])
        lines = [
            f"simcore diagnose: {self.firmware}",
            f"  model {self.model} ({self.fmt}) on {self.board}, {self.samples} samples "
            f"({self.input_source}); reference: {self.reference}",
            "",
            f"  {'layer':<{wide}} {'shape':<10} {'mismatched':>12} {'max |err|' + unit:>14} "
            f"{'cosine':>8}",
        ]
        for c, label in zip(self.layers, labels, strict=True):
            shape = "x".join(str(d) for d in c.shape)
            if c.agreement is None:
                lines.append(f"  {label:<{wide}} {shape:<10} {c.note or 'not traced':>12}")
                continue
            a = c.agreement
            cos = "-" if a.cosine is None else f"{a.cosine:.4f}"
            mark = ""
            if c is self.divergent:
                mark = "  <- first divergence"
            elif any(f.check is c for f in self.faults):
                mark = "  <- computes wrongly too"
            lines.append(
                f"  {label:<{wide}} {shape:<10} {f'{a.mismatched}/{a.total}':>12} "
                f"{_fmt(a.max_abs_error):>14} {cos:>8}{mark}"
            )
        o = self.outputs
        lines += [
            f"  {'outputs':<{wide}} {'':<10} {f'{o.mismatched}/{o.total}':>12} "
            f"{_fmt(o.max_abs_error):>14}",
            *(f"  note: {n}" for n in self.notes),
            "",
            f"{self._head()}: {self.summary()}",
        ]
        for fault in self.faults:
            if len(self.faults) > 1:
                lines.append(f"{fault.title()}: {fault.verdict()}")
            lines += self._render_hypotheses(fault)
        if self.error_map is not None and self.cause is None:
            # A hypothesis that reproduces the layer says more than its map; the map
            # stays in --json and --html.
            lines += self.error_map.render()
        lines += self._render_static()
        return "\n".join(lines) + "\n"

    def _head(self) -> str:
        if self.verdict == "static-incomplete":
            return "INCOMPLETE"
        return "OK" if self.exit_code == 0 else "DIAGNOSIS"

    def _render_hypotheses(self, fault: Fault) -> list[str]:
        n = fault.check.index
        base = fault.baseline.agreement
        out = [
            f"  recomputing layer {n} from the firmware's own input as the model says: "
            f"{base.mismatched} of {base.total} values differ from the firmware's "
            f"(max |err| {_fmt(base.max_abs_error)})"
        ]
        cause = fault.cause
        if cause is not None and cause.mistake is not None:
            how = (
                "exactly"
                if cause.agreement.max_abs_error == 0
                else f"within the {self.fmt} tolerance (max |err| "
                f"{_fmt(cause.agreement.max_abs_error)})"
            )
            out.append(
                f"  under '{cause.mistake.label}' it reproduces the firmware's output {how}: "
                f"0 of {cause.agreement.total} values differ"
                + (
                    ", and the ELF's arrays are exactly what it predicts"
                    if cause.stored_agrees
                    else ""
                )
            )
            rest = [h for h in fault.hypotheses[1:] if h.explains]
            if rest:
                out.append(
                    "  the outputs are also consistent with: "
                    + "; ".join(
                        h.mistake.label
                        + (" (but the ELF's arrays are not)" if h.stored_agrees is False else "")
                        for h in rest
                        if h.mistake
                    )
                )
        else:
            out.append(
                f"  none of the {len(fault.hypotheses)} hypotheses for this layer reproduces it"
                + ("" if fault.hypotheses else " (no hypothesis applies to this kind of layer)")
            )
        shown = [h for h in fault.better() if h is not cause and not h.explains]
        if shown:
            out.append("  closest other hypotheses (each fits better than the layer unchanged):")
            for h in shown[:SHOWN_ALTERNATIVES]:
                assert h.mistake is not None
                a = h.agreement
                out.append(
                    f"    {h.mistake.label:<34} {a.mismatched}/{a.total} differ, max |err| "
                    f"{_fmt(a.max_abs_error)}  ({h.mistake.describe()})"
                )
        return out

    def _render_static(self) -> list[str]:
        if not self.static:
            return ["static scan: the model has no weight arrays to look for"]
        bad = [f for f in self.static if f.status != "match"]
        good = len(self.static) - len(bad)
        head = f"static scan: {good} of {len(self.static)} arrays match the model"
        out = [head + ("" if bad else " as stored")]
        for f in bad:
            name = f.symbol or f"layer{f.layer}_{f.role}"
            where = "" if f.address is None else f" at 0x{f.address:08x}"
            out.append(f"  {name}{where}: {f.status}: {f.detail}")
        return out


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return str(v)
    return f"{v:.4g}"


# -- comparison ---------------------------------------------------------------------------


def _real(fmt: str, a: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    v = np.asarray(a, dtype=np.float64)
    return v / 65536.0 if fmt == "q16" else v


def agreement(fmt: str, got: npt.NDArray[Any], want: npt.NDArray[Any]) -> Agreement:
    """Compare two arrays of the firmware's encoding, element by element.

    int8 and q16 must be equal; f32 within the f32 tolerance of ``want``
    (NaN matches NaN, inf matches an equal inf). Errors are in real units
    (int8: in quantization steps).
    """
    g, w = _real(fmt, got).reshape(-1), _real(fmt, want).reshape(-1)
    if g.size != w.size:
        return Agreement(max(g.size, w.size), max(g.size, w.size), float("inf"), None)
    with np.errstate(invalid="ignore", over="ignore"):
        both_nan = np.isnan(g) & np.isnan(w)
        same = (g == w) | both_nan
        if fmt == "f32":
            tol = F32_TOLERANCE["abs"] + F32_TOLERANCE["rel"] * np.abs(w)
            same |= np.abs(g - w) <= tol
        diff = np.where(both_nan | (g == w), 0.0, np.abs(g - w))
        diff = np.where(np.isnan(diff), np.inf, diff)
        cosine = None
        if np.all(np.isfinite(g)) and np.all(np.isfinite(w)):
            norm = float(np.linalg.norm(g) * np.linalg.norm(w))
            cosine = float(g @ w / norm) if norm > 0 else (1.0 if not np.any(g - w) else 0.0)
    return Agreement(int((~same).sum()), int(g.size), float(diff.max(initial=0.0)), cosine)


# -- the run ------------------------------------------------------------------------------
