"""Find the first layer where a firmware leaves its model, and name the mistake.

1. Run the firmware (a ``--trace`` build, or any firmware that calls
   ``simcore_trace(N, out, bytes)`` after layer N) on reference samples and
   compare every traced layer with the reference per-layer outputs: the
   golden intermediates of TensorFlow (f32) and TFLite (int8), or the
   bit-exact Q16.16 reference (q16) for shipped models; simcore's per-layer
   reference of the model file otherwise.
2. On the first layer that diverges, recompute the layer from the
   firmware's own input under every mistake of :mod:`simcore.diagnose.mistakes`
   that can sit there, and rank them by how close they bring the recomputed
   output to the traced one. A mistake that reproduces it exactly explains it.
3. Scan the ELF's weight arrays (:mod:`simcore.diagnose.static`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.boards import BoardSpec, get_board
from simcore.diagnose import mistakes as mk
from simcore.diagnose.static import StaticFinding, scan, stored_arrays
from simcore.elf import ElfImage, load_elf
from simcore.errors import UsageError
from simcore.firmware.consts import LayerConsts, encode, to_bytes
from simcore.firmware.evaluate import evaluate
from simcore.firmware.ir import FloatModel, Int8Model, numel
from simcore.firmware.reference import F32_TOLERANCE
from simcore.golden.store import Golden

#: Samples run by default (a mistake can hide on a few: a ReLU left out shows only
#: where the pre-activation is negative).
DEFAULT_SAMPLES = 16
#: Hypotheses listed besides the best one.
SHOWN_ALTERNATIVES = 4
#: Layers tested for a mistake of their own, the first diverging one included.
MAX_FAULTS = 8
DTYPES = {"f32": "<f4", "q16": "<i4", "int8": "i1"}
UNITS = {"f32": "", "q16": "", "int8": " LSB"}


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
            "hypotheses": [h.as_dict() for h in self.hypotheses[:shown]],
            "hypotheses_tested": len(self.hypotheses),
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
    #: untraced-agrees | untraced-differs | static-agrees (static scan only, nothing run)
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
            return (
                "outputs agree (the firmware traced no layer: build it with --trace to check each)"
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
                "the firmware traced no layer: build it with --trace to find the layer"
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
                        f"{'OK' if self.exit_code == 0 else 'DIAGNOSIS'}: {self.summary()}",
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
            f"{'OK' if self.exit_code == 0 else 'DIAGNOSIS'}: {self.summary()}",
        ]
        for fault in self.faults:
            if len(self.faults) > 1:
                lines.append(f"{fault.title()}: {fault.verdict()}")
            lines += self._render_hypotheses(fault)
        lines += self._render_static()
        return "\n".join(lines) + "\n"

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
        shown = [h for h in fault.hypotheses if h is not cause and not h.explains]
        if shown:
            out.append("  closest other hypotheses:")
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


@dataclass(frozen=True)
class Reference:
    """Reference samples: inputs in the firmware's encoding and per-layer expected outputs."""

    inputs: npt.NDArray[Any]
    layers: list[npt.NDArray[Any]]
    description: str
    input_source: str


def _chain(model: FloatModel | Int8Model) -> list[mk.AnyLayer]:
    return list(model.ops if isinstance(model, Int8Model) else model.layers)


def forward(
    fmt: str,
    chain: Sequence[mk.AnyLayer],
    consts: Sequence[LayerConsts],
    inputs: npt.NDArray[Any],
) -> list[npt.NDArray[Any]]:
    """Per-layer outputs ``(n, *out_shape)`` of the chain, in the firmware's arithmetic."""
    per_layer: list[list[npt.NDArray[Any]]] = [[] for _ in chain]
    for sample in inputs:
        x = sample
        for i, (layer, lc) in enumerate(zip(chain, consts, strict=True)):
            x = evaluate(fmt, layer, lc, x)
            per_layer[i].append(x)
    return [np.stack(p) for p in per_layer]


def reference_for(
    model: FloatModel | Int8Model,
    fmt: str,
    *,
    samples: int | None = None,
    inputs: npt.NDArray[Any] | None = None,
) -> Reference:
    """Pick reference samples: the golden per-layer samples of a shipped model, else others."""
    from simcore.firmware.q16_ref import to_q16
    from simcore.golden.store import list_models, load_golden
    from simcore.validate import MODEL_ROLE

    chain, consts = _chain(model), encode(model, fmt)
    if inputs is not None:
        x = _as_encoding(fmt, inputs, model.input_shape)
        x = x[:samples] if samples else x
        return Reference(
            x, forward(fmt, chain, consts, x), "simcore's per-layer reference", "given inputs"
        )
    if model.name in list_models():
        golden = load_golden(model.name)
        if golden.model_sha256.get(MODEL_ROLE[fmt]) == model.sha256:
            return _golden_reference(golden, model, fmt, samples or DEFAULT_SAMPLES)
    n = samples or DEFAULT_SAMPLES
    rng = np.random.default_rng(0)
    shape = (n, *model.input_shape)
    if fmt == "int8":
        x = rng.integers(-128, 128, size=shape).astype(np.int64)
    else:
        fx = rng.uniform(0.0, 1.0, size=shape).astype(np.float32)
        x = to_q16(fx).astype(np.int64) if fmt == "q16" else fx
    return Reference(
        x,
        forward(fmt, chain, consts, x),
        "simcore's per-layer reference of the model file",
        f"{n} random inputs (seed 0; pass --inputs for real ones)",
    )


def _golden_reference(golden: Golden, model: FloatModel | Int8Model, fmt: str, n: int) -> Reference:
    """The golden per-layer samples first, then further test inputs, ``n`` in all.

    f32 and int8 layers are compared with the golden intermediates (Keras,
    TFLite) where the golden keeps them, and with simcore's per-layer
    reference (equal to them on those samples, tests/diagnose) elsewhere; q16
    with the bit-exact Q16.16 reference throughout.
    """
    from simcore.firmware.q16_ref import to_q16

    chain, consts = _chain(model), encode(model, fmt)
    kept = [int(r) for r in golden.layer_samples[:n]]
    pool = [int(r) for r in golden.split("test")] + list(range(golden.num_samples))
    extra = [r for r in dict.fromkeys(pool) if r not in kept][: n - len(kept)]
    rows = np.asarray(kept + extra, dtype=np.int64)
    x: npt.NDArray[Any]
    if fmt == "int8":
        x = golden.inputs_int8[rows].astype(np.int64)
    else:
        fx = golden.inputs_float[rows].astype(np.float32)
        x = to_q16(fx).astype(np.int64) if fmt == "q16" else fx
    x = x.reshape((len(rows), *model.input_shape))
    mine = forward(fmt, chain, consts, x)
    src = f"{len(kept)} golden per-layer samples + {len(extra)} more golden inputs"
    layers = golden.layer_outputs_int8 if fmt == "int8" else golden.layer_outputs_float
    if fmt == "q16" or len(layers) != len(chain):
        return Reference(x, mine, "bit-exact Q16.16 reference (q16_ref)", src)
    which = "TFLite int8" if fmt == "int8" else "Keras"
    want = [
        np.concatenate([lo.values[: len(kept)].reshape((len(kept), *lo.shape)), m[len(kept) :]])
        for lo, m in zip(layers, mine, strict=True)
    ]
    desc = f"golden {which} per-layer outputs" + (
        ", simcore's per-layer reference for the others" if extra else ""
    )
    return Reference(x, want, desc, src)


def _as_encoding(fmt: str, values: npt.NDArray[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
    from simcore.firmware.q16_ref import to_q16

    arr = np.asarray(values)
    n = arr.size // max(numel(shape), 1)
    if n * numel(shape) != arr.size or n == 0:
        raise UsageError(f"inputs have {arr.size} values, not a multiple of the input {shape}")
    arr = arr.reshape((n, *shape))
    if fmt == "int8":
        if arr.dtype.kind not in "iu" or arr.min() < -128 or arr.max() > 127:
            raise UsageError("int8 firmware takes int8 inputs (quantize them first)")
        return arr.astype(np.int64)
    f = arr.astype(np.float32)
    return to_q16(f).astype(np.int64) if fmt == "q16" else f


def _run(
    image: ElfImage, board: BoardSpec, fmt: str, x: npt.NDArray[Any]
) -> tuple[bytes, dict[tuple[int, int], bytes]]:
    """Run the samples in batches of the firmware's capacity; return outputs and traces."""
    from simcore.engine import run_firmware
    from simcore.validate import io_descriptor

    in_bytes, _out_bytes, capacity = io_descriptor(image.path)
    enc = np.asarray(x).astype(DTYPES[fmt]).reshape(len(x), -1)
    if enc.shape[1] * enc.dtype.itemsize != in_bytes:
        raise UsageError(
            f"{image.path.name} takes {in_bytes}-byte inputs, the model "
            f"{enc.shape[1] * enc.dtype.itemsize}",
            hint="check --model and --format",
        )
    outputs = b""
    traces: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(enc), max(capacity, 1)):
        batch = enc[start : start + capacity]
        result = run_firmware(
            image, board, inputs=batch.tobytes(), n_samples=len(batch), trace=True, cycles=False
        )
        if not result.ok:
            raise UsageError(
                f"{image.path.name} stopped with exit code {result.exit_code} at "
                f"{result.stop_location}",
                hint="the firmware must run to completion to be diagnosed",
            )
        outputs += result.outputs
        for t in result.traces:
            traces[(start + t.sample_index, t.layer_id)] = t.data
    return outputs, traces


def _traced_layer(
    fmt: str, shape: tuple[int, ...], n: int, index: int, traces: dict[tuple[int, int], bytes]
) -> tuple[npt.NDArray[Any] | None, str]:
    parts = [traces.get((s, index)) for s in range(n)]
    if all(p is None for p in parts):
        return None, "not traced"
    if any(p is None for p in parts):
        return None, "traced for some samples only"
    want = numel(shape) * np.dtype(DTYPES[fmt]).itemsize
    sizes = {len(p) for p in parts if p is not None}
    if sizes != {want}:
        return None, f"traced {sorted(sizes)[0]} bytes, expected {want}"
    arr = np.frombuffer(b"".join(p for p in parts if p is not None), dtype=DTYPES[fmt])
    return arr.reshape((n, *shape)).astype(np.float32 if fmt == "f32" else np.int64), ""


def static_diagnose(elf: Path | str, model: str | Path, fmt: str) -> Diagnosis:
    """The static scan alone: no board, no run (``simcore diagnose --static``)."""
    from simcore.firmware.build import load_model, resolve_model

    name, path = resolve_model(model, fmt)
    ir = load_model(name, path, fmt)
    chain = _chain(ir)
    diag = Diagnosis(
        firmware=str(elf),
        model=name,
        fmt=fmt,
        board="",
        samples=0,
        reference="the model's arrays",
        verdict="static-agrees",
        layers=[
            LayerCheck(i, la.name, la.kind, la.out_shape, False, None, "not run")
            for i, la in enumerate(chain)
        ],
        outputs=None,
        input_source="none (static scan)",
        static=scan(load_elf(elf), fmt, chain, encode(ir, fmt)),
    )
    if diag.stored_problems:
        diag.verdict = "stored"
    return diag


def diagnose(
    elf: Path | str,
    model: str | Path,
    fmt: str,
    board: str | BoardSpec,
    *,
    samples: int | None = None,
    inputs: npt.NDArray[Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Diagnosis:
    """Diagnose ``elf`` against ``model`` (shipped name or model file) in ``fmt`` on ``board``."""
    from simcore.firmware.build import load_model, resolve_model

    say = progress or (lambda _msg: None)
    spec = get_board(board) if isinstance(board, str) else board
    name, path = resolve_model(model, fmt)
    ir = load_model(name, path, fmt)
    image = load_elf(elf)
    chain, consts = _chain(ir), encode(ir, fmt)
    ref = reference_for(ir, fmt, samples=samples, inputs=inputs)
    n = len(ref.inputs)
    say(f"running {image.path.name} on {spec.name} ({n} samples, traced)")
    raw_out, traces = _run(image, spec, fmt, ref.inputs)

    checks: list[LayerCheck] = []
    traced: dict[int, npt.NDArray[Any]] = {}
    for i, layer in enumerate(chain):
        got, note = _traced_layer(fmt, layer.out_shape, n, i, traces)
        if got is None:
            checks.append(LayerCheck(i, layer.name, layer.kind, layer.out_shape, False, None, note))
            continue
        traced[i] = got
        checks.append(
            LayerCheck(
                i, layer.name, layer.kind, layer.out_shape, True, agreement(fmt, got, ref.layers[i])
            )
        )
    out_arr = np.frombuffer(raw_out, dtype=DTYPES[fmt]).reshape((n, *ir.output_shape))
    outputs = agreement(fmt, out_arr, ref.layers[-1])
    say("scanning the ELF's weight arrays")
    static = scan(image, fmt, chain, consts)
    diag = Diagnosis(
        firmware=str(elf),
        model=name,
        fmt=fmt,
        board=spec.name,
        samples=n,
        reference=ref.description,
        verdict="agrees",
        layers=checks,
        outputs=outputs,
        input_source=ref.input_source,
        static=static,
    )
    stray = sorted({lid for _, lid in traces} - set(range(len(chain))))
    if stray:
        diag.notes.append(
            f"the firmware traced ids {', '.join(map(str, stray))}, which are not layers of "
            f"this model (0..{len(chain) - 1}; ids are layer indexes, GENERATED.md)"
        )
    if not traced:
        diag.verdict = "untraced-agrees" if outputs.mismatched == 0 else "untraced-differs"
        if diag.verdict == "untraced-agrees" and diag.stored_problems:
            diag.verdict = "stored"
        return diag
    first = next((c for c in checks if c.diverges), None)
    if first is None:
        diag.verdict = "agrees" if outputs.mismatched == 0 else "unexplained"
        if diag.verdict == "agrees" and diag.stored_problems:
            diag.verdict = "stored"
        return diag
    diag.divergent = first
    k = first.index
    suspects = [(k, ref.inputs if k == 0 else traced.get(k - 1, ref.layers[k - 1]))]
    for i in sorted(traced):
        if i > k and len(suspects) < MAX_FAULTS and (i - 1) in traced:
            x_in = traced[i - 1]
            if fmt == "f32" and not np.all(np.isfinite(x_in)):
                continue  # float32 and float64 part ways on inf and NaN
            if _recompute(fmt, chain, consts, i, None, x_in, traced[i]).agreement.mismatched:
                suspects.append((i, x_in))
    for i, x_in in suspects:
        say(f"testing hypotheses on layer {i} ({chain[i].name})")
        diag.faults.append(
            _fault(fmt, chain, consts, checks[i], x_in, traced[i], stored_arrays(image, i, consts))
        )
    diag.verdict = "explained" if all(f.cause for f in diag.faults) else "unexplained"
    return diag


def _recompute(
    fmt: str,
    chain: Sequence[mk.AnyLayer],
    consts: Sequence[LayerConsts],
    index: int,
    mistake: mk.Mistake | None,
    x_in: npt.NDArray[Any],
    fw: npt.NDArray[Any],
) -> Evidence:
    """Layer ``index`` recomputed on ``x_in`` (under ``mistake``) against the firmware's ``fw``."""
    if mistake is None:
        layer, lc = chain[index], consts[index]
    else:
        layer, lc = mk.apply(mistake, fmt, chain, consts)
    xs = mk.apply_input(mistake, fmt, x_in)
    y = np.stack([evaluate(fmt, layer, lc, s) for s in xs])
    return Evidence(mistake, agreement(fmt, fw, y))


def _fault(
    fmt: str,
    chain: Sequence[mk.AnyLayer],
    consts: Sequence[LayerConsts],
    check: LayerCheck,
    x_in: npt.NDArray[Any],
    fw: npt.NDArray[Any],
    stored: dict[str, bytes] | None,
) -> Fault:
    """Test every mistake that can sit in the layer and rank them.

    Closest first: fewest mismatched values; among equals, the mistakes whose
    predicted arrays are exactly what the ELF stores (``stored``, by symbol;
    None when unknown) before those it contradicts; then the smaller error.
    Mistakes that predict the very same layer as an earlier one (reversing
    two channels is rotating them) are tested once.
    """
    k = check.index
    found: list[Evidence] = []
    seen: set[tuple[Any, ...]] = set()
    for m in mk.candidates(fmt, chain, k):
        if not mk.changes_layer(m, fmt, chain, consts):
            continue
        layer, lc = mk.apply(m, fmt, chain, consts)
        key = (m.kind == "input-scale", m.variant if m.kind == "input-scale" else "",
               mk.behaviour(layer), *_array_bytes(fmt, lc).items())  # fmt: skip
        if key in seen:
            continue
        seen.add(key)
        ev = _recompute(fmt, chain, consts, k, m, x_in, fw)
        if stored is not None:
            ev = replace(ev, stored_agrees=_array_bytes(fmt, lc) == stored)
        found.append(ev)
    order = {kind: j for j, kind in enumerate(mk.KINDS)}
    rank = {True: 0, None: 1, False: 2}
    found.sort(
        key=lambda e: (
            e.agreement.mismatched,
            rank[e.stored_agrees],
            e.agreement.max_abs_error,
            order[e.mistake.kind] if e.mistake else 0,
        )
    )
    return Fault(check, _recompute(fmt, chain, consts, k, None, x_in, fw), found)


def _array_bytes(fmt: str, lc: LayerConsts) -> dict[str, bytes]:
    return {role: to_bytes(fmt, role, a) for role, a in lc.arrays().items()}
