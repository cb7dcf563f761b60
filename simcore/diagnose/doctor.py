"""Find the first layer where a firmware leaves its model, and name the mistake.

1. Run the firmware (a ``--trace`` build, or any firmware that calls
   ``simcore_trace(N, out, bytes)`` after layer N) on reference samples
   (:mod:`simcore.diagnose.reference`) and compare every traced layer with
   the expected per-layer outputs.
2. On the first layer that diverges, and on every later layer that computes
   wrongly from its own traced input, recompute the layer from that input
   under every mistake of :mod:`simcore.diagnose.mistakes` that can sit
   there, and rank them by how close they bring the recomputed output to the
   traced one. A mistake that reproduces it (exactly; f32 within tolerance)
   explains it.
3. Scan the ELF's weight arrays (:mod:`simcore.diagnose.static`).

The findings and the report are :mod:`simcore.diagnose.findings`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.api import public
from simcore.boards import BoardSpec, get_board
from simcore.diagnose import mistakes as mk
from simcore.diagnose.findings import UNITS, Diagnosis, Evidence, Fault, LayerCheck, agreement
from simcore.diagnose.maps import error_map
from simcore.diagnose.reference import chain_of, reference_for
from simcore.diagnose.static import scan, stored_arrays
from simcore.elf import ElfImage, load_elf
from simcore.errors import EmulationError, UsageError
from simcore.firmware.consts import LayerConsts, encode, to_bytes
from simcore.firmware.evaluate import evaluate
from simcore.firmware.ir import numel
from simcore.limits import DEFAULT_TIMEOUT_S, Limits

#: Layers tested for a mistake of their own, the first diverging one included.
MAX_FAULTS = 8
DTYPES = {"f32": "<f4", "q16": "<i4", "int8": "i1"}


def _run(
    image: ElfImage, board: BoardSpec, fmt: str, x: npt.NDArray[Any], limits: Limits | None = None
) -> tuple[bytes, dict[tuple[int, int], bytes]]:
    """Run the samples in batches of the firmware's capacity; return outputs and traces."""
    from simcore.engine import run_firmware
    from simcore.validate import io_descriptor

    in_bytes, _out_bytes, capacity = io_descriptor(image.path)
    enc = np.asarray(x).astype(DTYPES[fmt]).reshape(len(x), -1)
    if enc.shape[1] * enc.dtype.itemsize != in_bytes:
        raise UsageError(
            f"{image.path.name} takes {in_bytes}-byte inputs, but the model's are "
            f"{enc.shape[1] * enc.dtype.itemsize} bytes in this format",
            hint="the firmware belongs to another model or format: check --model and --format",
        )
    outputs = b""
    traces: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(enc), max(capacity, 1)):
        batch = enc[start : start + capacity]
        result = run_firmware(
            image,
            board,
            inputs=batch.tobytes(),
            n_samples=len(batch),
            trace=True,
            cycles=False,
            max_instructions=limits.max_instructions if limits else None,
            timeout_s=limits.timeout_s if limits else DEFAULT_TIMEOUT_S,
        )
        if not result.ok:
            raise EmulationError(
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


@public
def static_diagnose(elf: Path | str, model: str | Path, fmt: str) -> Diagnosis:
    """The static scan alone: no board, no run (``simcore diagnose --static``)."""
    from simcore.firmware.build import load_model, resolve_model

    name, path = resolve_model(model, fmt)
    ir = load_model(name, path, fmt)
    chain = chain_of(ir)
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
    elif any(f.status == "missing" for f in diag.static):
        diag.verdict = "static-incomplete"  # never "OK" while arrays were not found
    return diag


@public
def diagnose(
    elf: Path | str,
    model: str | Path,
    fmt: str,
    board: str | BoardSpec,
    *,
    samples: int | None = None,
    inputs: npt.NDArray[Any] | None = None,
    progress: Callable[[str], None] | None = None,
    limits: Limits | None = None,
) -> Diagnosis:
    """Diagnose ``elf`` against ``model`` (shipped name or model file) in ``fmt`` on ``board``."""
    from simcore.firmware.build import load_model, resolve_model

    say = progress or (lambda _msg: None)
    spec = get_board(board) if isinstance(board, str) else board
    name, path = resolve_model(model, fmt)
    ir = load_model(name, path, fmt)
    image = load_elf(elf)
    chain, consts = chain_of(ir), encode(ir, fmt)
    ref = reference_for(ir, fmt, samples=samples, inputs=inputs)
    n = len(ref.inputs)
    say(f"running {image.path.name} on {spec.name} ({n} samples, traced)")
    raw_out, traces = _run(image, spec, fmt, ref.inputs, limits)

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
    x_first = suspects[0][1]
    expected = np.stack([evaluate(fmt, chain[k], consts[k], s) for s in x_first])
    diag.error_map = error_map(fmt, k, chain[k].name, traced[k], expected, UNITS[fmt])
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
