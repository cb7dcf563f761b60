"""Validate firmware against golden predictions: whole test sets, every board, in parallel.

One combination is a model, a format and a board. Validation loads the
golden (refusing a stale one), finds or builds the firmware, checks that
firmware and golden belong together (the model hash in the firmware's
manifest), runs the test inputs in batches of the firmware's I/O capacity
(one emulator start per batch) on worker processes, and compares:

- int8: bit-exact against tflite-micro's outputs, on every sample;
- q16: bit-exact against the Q16.16 NumPy reference, and within its stated
  tolerance of Keras;
- f32: within its stated tolerance of Keras;
- for every format: accuracy against the labels equal to the reference's.

Costs come from the cycle model (cycles per inference from the
``simcore_sample_begin/end`` hooks) and the memory accounting. TensorFlow is
never imported here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from simcore import compare
from simcore.boards import BoardSpec, get_board, load_boards
from simcore.elf import ElfImage, load_elf
from simcore.errors import GoldenError, UsageError
from simcore.golden.store import Golden, list_models, load_golden

log = logging.getLogger(__name__)

FORMATS = ("f32", "int8", "q16")
#: The golden file each format is built from.
MODEL_ROLE = {"f32": "keras", "q16": "keras", "int8": "tflite_int8"}


@dataclass(frozen=True)
class Combination:
    """A model, a number format and a board."""

    model: str
    fmt: str
    board: str

    @property
    def key(self) -> str:
        return f"{self.model}/{self.fmt}/{self.board}"


def all_combinations() -> list[Combination]:
    """Every shipped model x format x board."""
    return [
        Combination(m, f, b) for m in list_models() for f in FORMATS for b in sorted(load_boards())
    ]


@dataclass
class BatchResult:
    """What one emulator run over one batch returned (plain data, picklable)."""

    start: int
    outputs: bytes
    sample_cycles: list[int]
    sample_instructions: list[int]
    cycles: int
    profile: list[dict[str, Any]]
    flash_bytes: int
    static_ram_bytes: int
    stack_peak_bytes: int
    wall_seconds: float


#: ELF images parsed in this (worker) process, by path, modification time and size:
#: parsing DWARF takes longer than emulating a small batch.
_IMAGES: dict[tuple[str, int, int], ElfImage] = {}


def _image(elf: str) -> ElfImage:
    st = os.stat(elf)
    key = (elf, st.st_mtime_ns, st.st_size)
    if key not in _IMAGES:
        if len(_IMAGES) >= 8:  # batches arrive grouped by firmware: keep a few
            del _IMAGES[next(iter(_IMAGES))]
        _IMAGES[key] = load_elf(elf)
    return _IMAGES[key]


def _run_batch(elf: str, board: str, inputs: bytes, n: int, start: int) -> BatchResult:
    """Worker: run one batch (imports the engine lazily so the parent stays light)."""
    from simcore.engine import run_firmware

    result = run_firmware(_image(elf), board, inputs=inputs, n_samples=n, profile_limit=None)
    if result.exit_code != 0:
        raise UsageError(
            f"{Path(elf).name} on {board} exited with code {result.exit_code} "
            f"({result.stop_reason.value} at {result.stop_location}) on samples "
            f"{start}..{start + n - 1}"
        )
    if len(result.sample_cycles) != n:
        raise UsageError(
            f"{Path(elf).name} reported {len(result.sample_cycles)} simcore_sample_begin/end "
            f"pairs for {n} samples",
            hint="call simcore_sample_begin(i)/simcore_sample_end(i) around each inference",
        )
    return BatchResult(
        start=start,
        outputs=result.outputs,
        sample_cycles=result.sample_cycles,
        sample_instructions=result.sample_instructions,
        cycles=result.cycles or 0,
        profile=result.cycle_report.get("profile", []),
        flash_bytes=result.memory.flash.used_bytes,
        static_ram_bytes=result.memory.static_ram.used_bytes,
        stack_peak_bytes=result.memory.stack_peak.used_bytes,
        wall_seconds=result.wall_seconds,
    )


@dataclass
class Firmware:
    """The ELF under test and what validation needs to drive it."""

    elf: Path
    input_bytes: int
    output_bytes: int
    capacity: int
    output_shape: tuple[int, ...]
    manifest: dict[str, Any]
    built: bool


def io_descriptor(elf: Path) -> tuple[int, int, int]:
    """(input_bytes, output_bytes, capacity) from the ELF's initial ``simcore_io``."""
    import struct

    image = load_elf(elf)
    sym = image.symbol("simcore_io")
    if sym is None:
        raise UsageError(
            f"{elf.name} has no simcore_io symbol",
            hint="follow the harness ABI (firmware_builds/include/simcore_abi.h)",
        )
    raw = image.initial_bytes(sym.address, 20)
    if raw is None:
        raise UsageError(f"{elf.name}: simcore_io has no initial value in the load image")
    magic, version, in_b, out_b, cap = struct.unpack("<5I", raw)
    if magic != 0x434D4953 or version != 1:
        raise UsageError(f"{elf.name}: simcore_io is not a harness ABI v1 descriptor")
    return in_b, out_b, cap


def _element_bytes(fmt: str) -> int:
    return 1 if fmt == "int8" else 4


def prepare_firmware(combo: Combination, golden: Golden, elf: Path | None) -> Firmware:
    """Find, build or check the firmware of ``combo``; refuse one built from another model."""
    board = get_board(combo.board)
    built = False
    manifest: dict[str, Any] = {}
    want_sha = golden.model_sha256[MODEL_ROLE[combo.fmt]]
    if elf is None:
        from simcore.firmware.build import build_model_firmware
        from simcore.paths import out_dir

        elf = out_dir() / board.name / f"{combo.model}-{combo.fmt}.elf"
        manifest = _read_manifest(elf)
        if not elf.exists() or _manifest_sha(manifest) != want_sha or _stale(elf):
            build = build_model_firmware(combo.model, combo.fmt, board)
            elf, manifest, built = build.elf, build.manifest, True
    else:
        if not elf.exists():
            raise UsageError(f"firmware {elf} does not exist")
        manifest = _read_manifest(elf)
    got_sha = _manifest_sha(manifest)
    if got_sha is not None and got_sha != want_sha:
        raise GoldenError(
            f"firmware {elf.name} was built from a model with sha256 {got_sha[:12]}..., but the "
            f"golden for {combo.model} ({MODEL_ROLE[combo.fmt]}) has {want_sha[:12]}...",
            hint="rebuild the firmware from the committed model, or regenerate the golden",
        )
    in_b, out_b, cap = io_descriptor(elf)
    sample_shape = golden.inputs_float.shape[1:]
    want_in = int(np.prod(sample_shape)) * _element_bytes(combo.fmt)
    out_shape = tuple(golden.outputs_float.shape[1:])
    want_out = int(np.prod(out_shape)) * _element_bytes(combo.fmt)
    if (in_b, out_b) != (want_in, want_out):
        raise UsageError(
            f"firmware {elf.name} takes {in_b}-byte inputs and gives {out_b}-byte outputs, but "
            f"{combo.model} in {combo.fmt} needs {want_in} and {want_out}",
            hint="check --model and --format against the firmware",
        )
    return Firmware(elf, in_b, out_b, cap, out_shape, manifest, built)


def _stale(elf: Path) -> bool:
    """Whether the generator, runtime, startup or linker scripts changed after ``elf`` was built."""
    from simcore.paths import FIRMWARE_DIR

    package = Path(__file__).resolve().parent
    sources = [
        *FIRMWARE_DIR.glob("runtime/*.c"),
        *FIRMWARE_DIR.glob("include/*.h"),
        *FIRMWARE_DIR.glob("ld/*.ld"),
        *(package / "firmware").glob("*.py"),
        package / "toolchain.py",
    ]
    built = elf.stat().st_mtime
    return any(src.stat().st_mtime > built for src in sources if src.exists())


def _manifest_sha(manifest: dict[str, Any]) -> str | None:
    model = manifest.get("model")
    sha = model.get("sha256") if isinstance(model, dict) else None
    return sha if isinstance(sha, str) else None


def _read_manifest(elf: Path) -> dict[str, Any]:
    path = elf.with_suffix(".json")
    if not path.exists():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data


# -- progress -----------------------------------------------------------------


class Progress:
    """A progress bar on a terminal; a plain line every 10% elsewhere (CI logs)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() and not os.environ.get("CI")
        self.done = 0
        self.next_line = 0.1
        self.started = time.perf_counter()

    def advance(self, n: int) -> None:
        self.done += n
        frac = self.done / self.total
        elapsed = time.perf_counter() - self.started
        if self.tty:
            width = 30
            bar = "#" * int(frac * width)
            self.stream.write(
                f"\r{self.label:<28} [{bar:<{width}}] {self.done}/{self.total} {elapsed:5.1f}s"
            )
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif frac >= self.next_line or self.done >= self.total:
            self.stream.write(f"{self.label}: {self.done}/{self.total} samples, {elapsed:.1f}s\n")
            self.stream.flush()
            while self.next_line <= frac:
                self.next_line += 0.1


# -- the result -----------------------------------------------------------------


@dataclass
class Validation:
    """The outcome of validating one combination (JSON via :meth:`as_dict`)."""

    combo: Combination
    elf: str
    n_samples: int
    passed: bool
    exactness: str  # "bit-exact", "within tolerance", or what failed
    tolerance: dict[str, Any]  # what "exact" or "within tolerance" was checked against
    failures: list[str]
    accuracy: float
    reference_accuracy: float
    metrics_vs_reference: dict[str, Any]
    metrics_vs_float: dict[str, Any]
    argmax_agreement: float
    classes: dict[str, Any]
    cycles_mean: float
    #: The gated figure: unlike the mean it does not move with the number of
    #: samples (each batch's first inference runs with cold caches).
    cycles_median: float
    cycles_min: int
    cycles_max: int
    seconds_per_inference: float
    clock_hz: int
    cycle_model: dict[str, Any]
    profile: list[dict[str, Any]]
    memory: dict[str, Any]
    mismatches: list[dict[str, Any]]
    #: Emulation time summed over batches (worker processes run in parallel).
    emulation_seconds: float
    built: bool
    regressions: list[str] = field(default_factory=list)
    baseline_notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.combo.key

    def figures(self) -> dict[str, float]:
        """The figures a baseline gates (larger is worse); cycles is the median per inference."""
        return {
            "cycles": round(self.cycles_median, 1),
            "flash_bytes": float(self.memory["flash"]["used_bytes"]),
            "static_ram_bytes": float(self.memory["static_ram"]["used_bytes"]),
            "stack_peak_bytes": float(self.memory["stack_peak"]["used_bytes"]),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.combo.model,
            "format": self.combo.fmt,
            "board": self.combo.board,
            "key": self.key,
            "elf": self.elf,
            "n_samples": self.n_samples,
            "passed": self.passed and not self.regressions,
            "exactness": self.exactness,
            "tolerance": self.tolerance,
            "failures": self.failures,
            "regressions": self.regressions,
            "baseline_notes": self.baseline_notes,
            "accuracy": self.accuracy,
            "reference_accuracy": self.reference_accuracy,
            "argmax_agreement": self.argmax_agreement,
            "metrics_vs_reference": self.metrics_vs_reference,
            "metrics_vs_float": self.metrics_vs_float,
            "classes": self.classes,
            "cycles": {
                "mean": self.cycles_mean,
                "median": self.cycles_median,
                "min": self.cycles_min,
                "max": self.cycles_max,
            },
            "seconds_per_inference": self.seconds_per_inference,
            "clock_hz": self.clock_hz,
            "cycle_model": self.cycle_model,
            "profile": self.profile,
            "memory": self.memory,
            "mismatches": self.mismatches,
            "emulation_seconds": round(self.emulation_seconds, 3),
            "built": self.built,
        }


# -- running --------------------------------------------------------------------


def _batches(inputs: bytes, per_sample: int, n: int, capacity: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, capacity):
        yield start, min(capacity, n - start)


def _encode(fmt: str, golden: Golden, rows: npt.NDArray[np.int64]) -> bytes:
    from simcore.firmware.codec import encode_inputs

    x = golden.inputs_int8[rows] if fmt == "int8" else golden.inputs_float[rows]
    return encode_inputs(fmt, x)


def _reference(
    combo: Combination, golden: Golden, rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64], dict[str, Any]]:
    """(exactness reference in the firmware's encoding, its float value, tolerance)."""
    from simcore.firmware import q16_ref
    from simcore.firmware.reference import F32_TOLERANCE

    if combo.fmt == "int8":
        raw = golden.outputs_int8_raw[rows]
        q = golden.output_quant
        return raw, (raw.astype(np.float64) - q.zero_point) * q.scale, {"exact": True}
    if combo.fmt == "q16":
        from simcore.firmware.build import load_model, resolve_model
        from simcore.firmware.ir import FloatModel

        model = load_model(*resolve_model(combo.model, "q16"), "q16")
        assert isinstance(model, FloatModel)
        raw = q16_ref.forward(model, q16_ref.to_q16(golden.inputs_float[rows]))
        raw = np.asarray(raw).reshape((len(rows), -1))
        tol = {"exact": True, **q16_ref.Q16_TOLERANCE}
        return raw, q16_ref.from_q16(raw), tol
    keras = golden.outputs_float[rows].astype(np.float64)
    return keras, keras, {"exact": False, **F32_TOLERANCE}


@dataclass
class _Plan:
    """A combination ready to run: its golden, firmware, rows and batch arguments."""

    combo: Combination
    board: BoardSpec
    golden: Golden
    rows: npt.NDArray[np.int64]
    firmware: Firmware
    batches: list[tuple[str, str, bytes, int, int]]
    started: float


def _plan(combo: Combination, firmware: Path | None, limit: int | None, split: str) -> _Plan:
    started = time.perf_counter()
    if combo.fmt not in FORMATS:
        raise UsageError(
            f"unknown format {combo.fmt!r}", hint=f"choose one of {', '.join(FORMATS)}"
        )
    board = get_board(combo.board)
    golden = load_golden(combo.model)
    rows = golden.split(split)
    if limit is not None:
        rows = rows[:limit]
    fw = prepare_firmware(combo, golden, firmware)
    inputs = _encode(combo.fmt, golden, rows)
    batches = []
    for start, count in _batches(inputs, fw.input_bytes, len(rows), fw.capacity):
        chunk = inputs[start * fw.input_bytes : (start + count) * fw.input_bytes]
        batches.append((str(fw.elf), board.name, chunk, count, start))
    return _Plan(combo, board, golden, rows, fw, batches, started)


def validate_many(
    combos: list[Combination],
    *,
    firmware: Path | None = None,
    limit: int | None = None,
    split: str = "test",
    jobs: int = 1,
    progress: bool = False,
) -> list[Validation]:
    """Validate several combinations, their batches spread over ``jobs`` processes.

    Firmware is built (where needed) first, on ``jobs`` threads; then every
    batch of every combination goes to one process pool, and each combination
    is judged as soon as its batches are back.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as threads:
        plans = list(threads.map(lambda c: _plan(c, firmware, limit, split), combos))
    total = sum(len(p.rows) for p in plans)
    bar = Progress(total, f"validating {len(plans)} combination(s)") if progress else None
    out: list[Validation] = []
    pool = make_pool(jobs)
    try:
        pending = [
            (p, [pool.submit(_run_batch, *args) for args in p.batches] if pool else [])
            for p in plans
        ]
        for plan, futures in pending:
            results = []
            if pool is None:
                for args in plan.batches:
                    results.append(_run_batch(*args))
                    _tick(bar, None, args[3])
            else:
                for fut in futures:
                    batch = fut.result()
                    results.append(batch)
                    _tick(bar, None, len(batch.sample_cycles))
            results.sort(key=lambda b: b.start)
            out.append(
                _judge(
                    plan.combo,
                    plan.board,
                    plan.golden,
                    plan.rows,
                    plan.firmware,
                    results,
                    sum(b.wall_seconds for b in results),
                )
            )
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out


def validate(
    combo: Combination,
    *,
    firmware: Path | None = None,
    limit: int | None = None,
    split: str = "test",
    jobs: int = 1,
) -> Validation:
    """Validate one combination; raises UsageError/GoldenError for unusable inputs."""
    return validate_many([combo], firmware=firmware, limit=limit, split=split, jobs=jobs)[0]


def _tick(progress: Progress | None, on_batch: Callable[[int], None] | None, n: int) -> None:
    if progress is not None:
        progress.advance(n)
    if on_batch is not None:
        on_batch(n)


def _judge(
    combo: Combination,
    board: BoardSpec,
    golden: Golden,
    rows: npt.NDArray[np.int64],
    fw: Firmware,
    batches: list[BatchResult],
    wall: float,
) -> Validation:
    from simcore.firmware.codec import decode_outputs, outputs_as_float

    n = len(rows)
    raw = decode_outputs(combo.fmt, b"".join(b.outputs for b in batches), fw.output_shape)
    raw = raw.reshape((n, -1))
    q = golden.output_quant
    got_float = outputs_as_float(combo.fmt, raw, q.scale, q.zero_point).reshape((n, -1))
    ref_raw, ref_float, tol = _reference(combo, golden, rows)
    ref_raw = np.asarray(ref_raw).reshape((n, -1))
    keras = golden.outputs_float[rows].astype(np.float64).reshape((n, -1))
    failures: list[str] = []
    if tol["exact"]:
        bad = np.any(raw != ref_raw, axis=1)
        exactness = "bit-exact" if not bad.any() else f"{int(bad.sum())} of {n} samples differ"
        if bad.any():
            failures.append(f"not bit-exact: {int(bad.sum())} of {n} samples differ")
        mism = compare.first_mismatches(raw, ref_raw)
    else:
        limit = tol["abs"] + tol["rel"] * np.abs(ref_float)
        bad = np.any(np.abs(got_float - ref_float) > limit, axis=1)
        exactness = (
            "within tolerance" if not bad.any() else f"{int(bad.sum())} of {n} outside tolerance"
        )
        if bad.any():
            failures.append(
                f"{int(bad.sum())} of {n} samples outside the f32 tolerance "
                f"(abs {tol['abs']:g} + rel {tol['rel']:g})"
            )
        mism = [
            (int(i), got_float[i].tolist(), ref_float[i].tolist()) for i in np.nonzero(bad)[0][:5]
        ]
    if combo.fmt == "q16" and "abs" in tol:
        off = np.abs(got_float - keras).max(initial=0.0)
        if off > tol["abs"]:
            failures.append(f"q16 outputs differ from Keras by {off:.3g} > {tol['abs']:g}")
    labels = golden.labels[rows]
    predicted = compare.predictions(got_float)
    reference_pred = compare.predictions(ref_float)
    classes = compare.class_metrics(predicted, labels, n_classes=len(golden.label_names) or None)
    ref_acc = float(np.mean(reference_pred == labels)) if n else 0.0
    if abs(classes.accuracy - ref_acc) > 1e-12:
        failures.append(
            f"accuracy {classes.accuracy:.4%} differs from the reference's {ref_acc:.4%}"
        )
    cycles = [c for b in batches for c in b.sample_cycles]
    profile = _merge_profiles(batches, n)
    manifest = fw.manifest
    memory = {
        "flash": _usage(batches[0].flash_bytes, _capacity(board, "flash")),
        "static_ram": _usage(batches[0].static_ram_bytes, _capacity(board, "ram")),
        "stack_peak": _usage(max(b.stack_peak_bytes for b in batches), None),
        "arena_bytes": manifest.get("sizes", {}).get("arena_bytes"),
        "weights_bytes": manifest.get("sizes", {}).get("weights_bytes"),
    }
    cycles_mean = float(np.mean(cycles)) if cycles else 0.0
    from simcore.cycles.tables import load_table

    table = load_table(board.core.name)
    return Validation(
        combo=combo,
        elf=str(fw.elf),
        n_samples=n,
        passed=not failures,
        exactness=exactness,
        tolerance=tol,
        failures=failures,
        accuracy=classes.accuracy,
        reference_accuracy=ref_acc,
        metrics_vs_reference=compare.error_metrics(got_float, ref_float).as_dict(),
        metrics_vs_float=compare.error_metrics(got_float, keras).as_dict(),
        argmax_agreement=float(np.mean(predicted == reference_pred)) if n else 1.0,
        classes=classes.as_dict() | {"labels": list(golden.label_names)},
        cycles_mean=cycles_mean,
        cycles_median=float(np.median(cycles)) if cycles else 0.0,
        cycles_min=min(cycles) if cycles else 0,
        cycles_max=max(cycles) if cycles else 0,
        seconds_per_inference=cycles_mean / board.clock_hz,
        clock_hz=board.clock_hz,
        cycle_model={"core": table.core, "exactness": table.exactness.value},
        profile=profile,
        memory=memory,
        mismatches=[{"sample": int(rows[i]), "got": g, "want": w} for i, g, w in mism],
        emulation_seconds=wall,
        built=fw.built,
    )


def _capacity(board: BoardSpec, kind: str) -> int:
    return sum(r.size_bytes for r in board.memory if r.kind.value == kind)


def _usage(used: int, capacity: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"used_bytes": used, "capacity_bytes": capacity}
    if capacity:
        out["percent"] = round(100.0 * used / capacity, 3)
    return out


def _merge_profiles(batches: list[BatchResult], n: int) -> list[dict[str, Any]]:
    """Sum per-function cycles over batches; report per inference and as a share."""
    totals: dict[str, list[int]] = {}
    for b in batches:
        for entry in b.profile:
            t = totals.setdefault(entry["function"], [0, 0])
            t[0] += int(entry["cycles"])
            t[1] += int(entry["instructions"])
    grand = sum(c for c, _ in totals.values()) or 1
    rows = [
        {
            "function": name,
            "cycles_per_inference": round(c / max(n, 1), 1),
            "instructions_per_inference": round(i / max(n, 1), 1),
            "share": round(c / grand, 6),
        }
        for name, (c, i) in totals.items()
    ]
    rows.sort(key=lambda r: -float(str(r["share"])))
    return rows[:25]


def make_pool(jobs: int) -> ProcessPoolExecutor | None:
    """A worker pool of ``jobs`` processes (None for 1: run in this process)."""
    if jobs <= 1:
        return None
    return ProcessPoolExecutor(max_workers=jobs)


def default_jobs() -> int:
    return os.cpu_count() or 1
