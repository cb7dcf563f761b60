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

import importlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from simcore import compare
from simcore.api import public
from simcore.boards import BoardSpec, get_board, load_boards
from simcore.elf import ElfImage, load_elf
from simcore.errors import DoesNotFit, EmulationError, GoldenError, SimError, UsageError
from simcore.golden.store import FORMAT_ROLE, Golden, list_folders, load_golden_dir
from simcore.limits import Limits
from simcore.results import LayerSpan

log = logging.getLogger(__name__)

FORMATS = ("f32", "int8", "q16")
#: Worker processes at most, whatever --jobs asks.
MAX_JOBS = 256
#: Pools in a row that may die without finishing a batch before each remaining batch
#: runs alone, so the one that kills its worker (out of memory...) is found and failed.
BATCH_ATTEMPTS = 2
#: The golden file each format is built from.
MODEL_ROLE = FORMAT_ROLE


@dataclass(frozen=True)
class Combination:
    """A model, a number format and a board.

    ``model`` is the model's name (it keys baselines and reports); ``golden``
    the golden folder when it is not a shipped one (a user's, from ``simcore
    golden create``); ``sparse`` the build's sparse-kernel mode (auto, on,
    off; see simcore.firmware.sparse).
    """

    model: str
    fmt: str
    board: str
    golden: str | None = None
    sparse: str = "auto"

    @property
    def board_name(self) -> str:
        """The board's name (``board`` may be the path of a user's board file)."""
        return get_board(self.board).name

    @property
    def key(self) -> str:
        forced = "" if self.sparse == "auto" else f"/sparse-{self.sparse}"
        return f"{self.model}/{self.fmt}/{self.board_name}{forced}"

    def load_golden(self) -> Golden:
        """The golden this combination is judged against."""
        from simcore.golden.locate import open_golden

        return open_golden(self.golden if self.golden is not None else self.model)


def all_combinations() -> list[Combination]:
    """Every shipped model x format x board (a broken golden folder too: it fails, loudly)."""
    return [
        Combination(m, f, b) for m in list_folders() for f in FORMATS for b in sorted(load_boards())
    ]


def combinations_for(
    ref: str | Path, formats: list[str] | None = None, boards: list[str] | None = None
) -> list[Combination]:
    """The combinations of the golden ``ref`` names (shipped name, folder or model file).

    Formats default to every format the golden covers, boards to every board.
    """
    from simcore.golden.locate import golden_folder

    folder = golden_folder(ref)
    golden = load_golden_dir(folder)
    where = None if golden.shipped else str(folder)
    fmts = [f for f in FORMATS if f in golden.formats and (not formats or f in formats)]
    if formats:
        missing = [f for f in formats if f not in golden.formats]
        if missing:
            golden.model_path(missing[0])  # raises: says which formats the golden covers
    names = boards or sorted(load_boards())
    return [Combination(golden.name, f, b, where) for f in fmts for b in names]


def combination_for_firmware(elf: Path) -> tuple[Combination, Golden]:
    """The combination a firmware's manifest names, and the golden it must be judged against."""
    from simcore.golden.locate import find_golden_for_model

    manifest = read_manifest(elf)
    model = manifest.get("model") if isinstance(manifest.get("model"), dict) else None
    fmt, board = manifest.get("format"), manifest.get("board")
    if not model or not isinstance(fmt, str) or not isinstance(board, str):
        raise UsageError(
            f"{elf.name} has no simcore build manifest ({elf.with_suffix('.json').name})",
            hint="pass --model, --format and --board",
        )
    path = manifest_model_path(model)
    folder = find_golden_for_model(path, _manifest_sha(manifest))
    if folder is None:
        raise GoldenError(
            f"{elf.name} was built from {path} (sha256 {str(model.get('sha256'))[:12]}...), and "
            f"no golden with that model was found next to it, in ./golden/ or shipped",
            hint=f"create one: simcore golden create {path} --data TEST_INPUTS.npy, "
            "or pass --model GOLDEN_FOLDER",
        )
    golden = load_golden_dir(folder)
    combo = Combination(golden.name, fmt, board, None if golden.shipped else str(folder))
    return combo, golden


def manifest_model_path(model: dict[str, Any]) -> Path:
    """The model file a manifest records (relative paths are relative to the checkout)."""
    from simcore.firmware.build import REPO_DIR

    path = Path(str(model.get("path", "")))
    return path if path.is_absolute() else REPO_DIR / path


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
    #: The run's MemoryReport.as_dict(): per-region figures and harness buffers.
    memory: dict[str, Any] = field(default_factory=dict)
    #: Per sample (indices within the batch) and layer, from the firmware's layer marks.
    layer_spans: list[LayerSpan] = field(default_factory=list)
    layer_info: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: The run's share of cycles per confidence tag (the cycle report's share_by_tag).
    share_by_tag: dict[str, float] = field(default_factory=dict)


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


#: The bounds of one batch's run (see :class:`simcore.limits.Limits`).
BatchLimits = Limits


def _run_batch(
    elf: str, board: str, inputs: bytes, n: int, start: int, limits: Limits | None = None
) -> BatchResult:
    """Worker: run one batch (imports the engine lazily so the parent stays light)."""
    from simcore.engine import run_firmware

    limits = limits or Limits()
    result = run_firmware(
        _image(elf),
        board,
        inputs=inputs,
        n_samples=n,
        profile_limit=None,
        max_instructions=limits.max_instructions,
        timeout_s=limits.timeout_s,
        data_hits=False,  # not reported here; weights in XIP flash then run much faster
    )
    if result.exit_code != 0:
        raise EmulationError(
            f"{Path(elf).name} on {board} exited with code {result.exit_code} "
            f"({result.stop_reason.value} at {result.stop_location}) on samples "
            f"{start}..{start + n - 1}"
        )
    if len(result.sample_cycles) != n:
        raise EmulationError(
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
        memory=result.memory.as_dict(),
        layer_spans=result.layer_spans,
        layer_info=result.layer_info,
        share_by_tag=dict(result.cycle_report.get("cycle_model", {}).get("share_by_tag", {})),
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
    model_file = golden.model_path(combo.fmt)  # GoldenError when the golden lacks the format
    want_sha = golden.model_sha256[golden.role(combo.fmt)]
    if elf is None:
        from simcore.firmware.build import build_model_firmware, load_model
        from simcore.paths import out_dir

        forced = "" if combo.sparse == "auto" else f"-sparse-{combo.sparse}"
        elf = out_dir() / board.name / f"{golden.name}-{combo.fmt}{forced}.elf"
        manifest = read_manifest(elf)
        if (
            not elf.exists()
            or _manifest_sha(manifest) != want_sha
            or _stale(elf)
            or _placed_otherwise(manifest, board)
        ):
            model = load_model(golden.name, model_file, combo.fmt)
            build = build_model_firmware(model, combo.fmt, board, sparse=combo.sparse)
            elf, manifest, built = build.elf, build.manifest, True
    else:
        if not elf.exists():
            raise UsageError(f"firmware {elf} does not exist")
        manifest = read_manifest(elf)
    got_sha = _manifest_sha(manifest)
    if got_sha is not None and got_sha != want_sha:
        raise GoldenError(
            f"firmware {elf.name} was built from a model with sha256 {got_sha[:12]}..., but the "
            f"golden for {combo.model} ({golden.role(combo.fmt)}) has {want_sha[:12]}...",
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


def _placed_otherwise(manifest: dict[str, Any], board: BoardSpec) -> bool:
    """Whether the firmware was linked with another placement than the board's defaults.

    ``simcore build --stack-size 16K`` (or ``--ld``) writes to the same file a
    default build does; validate rebuilds rather than compare that one with the
    baseline. A manifest from before placements were recorded used the defaults.
    """
    from simcore.linker import resolve

    link = manifest.get("link")
    if not isinstance(link, dict):
        return False
    placement = {k: v for k, v in link.items() if k not in ("script", "generated")}
    return link.get("generated") is not True or placement != resolve(board).options()


def _manifest_sha(manifest: dict[str, Any]) -> str | None:
    model = manifest.get("model")
    sha = model.get("sha256") if isinstance(model, dict) else None
    return sha if isinstance(sha, str) else None


def read_manifest(elf: Path) -> dict[str, Any]:
    """The manifest ``simcore build`` wrote next to ``elf`` ({} when absent or unreadable)."""
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
    #: None when the golden has no labels (agreement with the reference still is judged).
    accuracy: float | None
    reference_accuracy: float | None
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
    #: Why the combination could not be judged (bad input, a fault, a dead worker).
    error: str | None = None
    #: The error's exit code: 2 for bad input, 1 for a firmware that misbehaved.
    error_exit_code: int = 1
    #: The manifest's ``variant`` (trace, portable, injected mistakes), when it has one.
    firmware_variant: dict[str, Any] = field(default_factory=dict)
    #: Cycles, instructions, share and MACs per layer per inference, from the
    #: firmware's layer marks (:func:`simcore.cycles.layers.layer_table`).
    layers: list[dict[str, Any]] = field(default_factory=list)
    #: Why the firmware does not fit the board (too little RAM or flash): such a
    #: combination is skipped, neither passed nor failed; ``error`` holds the same text.
    does_not_fit: str | None = None

    @property
    def key(self) -> str:
        return self.combo.key

    @classmethod
    def failed(cls, combo: Combination, error: SimError | str, elf: str = "") -> Validation:
        """A combination that could not be judged, carrying the error that stopped it."""
        message = " ".join(str(error).split())
        code = error.exit_code if isinstance(error, SimError) else 1
        return cls(
            combo=combo, elf=elf, n_samples=0, passed=False, exactness="error",
            tolerance={}, failures=[message], accuracy=None, reference_accuracy=None,
            metrics_vs_reference={}, metrics_vs_float={}, argmax_agreement=0.0, classes={},
            cycles_mean=0.0, cycles_median=0.0, cycles_min=0, cycles_max=0,
            seconds_per_inference=0.0, clock_hz=0, cycle_model={}, profile=[], memory={},
            mismatches=[], emulation_seconds=0.0, built=False, error=message,
            error_exit_code=code,
        )  # fmt: skip

    @classmethod
    def unfit(cls, combo: Combination, error: DoesNotFit) -> Validation:
        """A combination skipped because its firmware does not fit the board's memory."""
        result = cls.failed(combo, error)
        result.does_not_fit = result.error
        return result

    def variant(self) -> str | None:
        """What makes the firmware other than a release build (trace, portable, injected)."""
        info = self.firmware_variant
        kinds = [k for k in ("trace", "portable") if info.get(k)]
        if info.get("sparse") in ("on", "off"):
            kinds.append(f"sparse-{info['sparse']}")
        if info.get("injected_mistakes"):
            kinds.append("mistake-injected")
        return "/".join(kinds) or None

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
            "board": self.combo.board_name,
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
            "layers": self.layers,
            "memory": self.memory,
            "mismatches": self.mismatches,
            "emulation_seconds": round(self.emulation_seconds, 3),
            "built": self.built,
            "variant": self.variant(),
            **({"error": self.error} if self.error else {}),
            **({"does_not_fit": self.does_not_fit} if self.does_not_fit else {}),
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
        from simcore.firmware.build import load_model
        from simcore.firmware.ir import FloatModel

        model = load_model(golden.name, golden.model_path("q16"), "q16")
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


#: Modules the planning threads import lazily (building, loading models, encoding).
_PLANNING_MODULES = (
    "simcore.paths",
    "simcore.linker",
    "simcore.elf",
    "simcore.memory",
    "simcore.outputs",
    "simcore.golden.locate",
    "simcore.golden.store",
    "simcore.firmware.build",
    "simcore.firmware.codec",
    "simcore.firmware.consts",
    "simcore.firmware.ir",
    "simcore.firmware.q16_ref",
    "simcore.firmware.reference",
    "simcore.firmware.keras_model",
    "simcore.firmware.onnx_model",
    "simcore.firmware.tflite_int8",
    "simcore.diagnose.mistakes",
)


def preload_planning_modules() -> None:
    """Import what the planning threads would import lazily, here in one thread.

    Two threads importing simcore modules at once can make CPython 3.11's
    compiler fail ("AST constructor recursion depth mismatch"), which happens
    whenever the source is compiled at import: under pytest, which rewrites the
    modules of a package that registers a pytest plugin (simcore does), or
    without up-to-date .pyc files. Seen in this project's test suite.
    """
    for name in _PLANNING_MODULES:
        importlib.import_module(name)


class _Goldens:
    """Goldens loaded once per validation: the combinations of a model share one (a load
    checks every file's sha256; the MNIST goldens hold 10,000 images each). Planning
    threads asking for the same golden wait for one load; a failed load is not kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._per_name: dict[str, threading.Lock] = {}
        self._loaded: dict[str, Golden] = {}

    def get(self, combo: Combination) -> Golden:
        name = combo.golden if combo.golden is not None else combo.model
        with self._lock:
            lock = self._per_name.setdefault(name, threading.Lock())
        with lock:
            if name not in self._loaded:
                self._loaded[name] = combo.load_golden()
            return self._loaded[name]


def _plan(
    combo: Combination,
    firmware: Path | None,
    limit: int | None,
    split: str,
    goldens: _Goldens | None = None,
) -> _Plan:
    started = time.perf_counter()
    if combo.fmt not in FORMATS:
        raise UsageError(
            f"unknown format {combo.fmt!r}", hint=f"choose one of {', '.join(FORMATS)}"
        )
    board = get_board(combo.board)
    golden = combo.load_golden() if goldens is None else goldens.get(combo)
    rows = golden.split(split)
    if limit is not None:
        rows = rows[:limit]
    fw = prepare_firmware(combo, golden, firmware)
    inputs = _encode(combo.fmt, golden, rows)
    batches = []
    for start, count in _batches(inputs, fw.input_bytes, len(rows), fw.capacity):
        chunk = inputs[start * fw.input_bytes : (start + count) * fw.input_bytes]
        batches.append((str(fw.elf), combo.board, chunk, count, start))
    return _Plan(combo, board, golden, rows, fw, batches, started)


class ValidationInterrupted(Exception):
    """Ctrl-C during validation; carries the combinations finished before it."""

    def __init__(self, results: list[Validation], total: int) -> None:
        self.results = results
        self.total = total
        super().__init__(f"interrupted after {len(results)} of {total} combinations")


@public
def validate_many(
    combos: list[Combination],
    *,
    firmware: Path | None = None,
    limit: int | None = None,
    split: str = "test",
    jobs: int = 1,
    progress: bool = False,
    limits: BatchLimits | None = None,
    scheduler: str | None = None,
) -> list[Validation]:
    """Validate several combinations, their batches spread over ``jobs`` processes.

    ``scheduler`` sends the batches to a Dask cluster instead (a scheduler's
    address, or ``local[:N]``; see :mod:`simcore.distributed`); the results are
    the same as a local run's.

    ``limits`` bound each batch's emulation (default: :class:`Limits`' 300 s,
    so a hanging firmware fails its combination instead of hanging the run).

    Firmware is built (where needed) first, on ``jobs`` threads; then every
    batch of every combination goes to one process pool, and each combination
    is judged once its batches are back. One combination's trouble never costs
    the others their results: a combination that cannot be planned (bad
    input) or whose firmware faults, hangs past ``limits`` or exits non-zero
    comes back as :meth:`Validation.failed`; a worker process that dies is
    replaced and its batches run again (see :data:`BATCH_ATTEMPTS`). On
    Ctrl-C, :class:`ValidationInterrupted` carries the finished combinations.
    """
    from concurrent.futures import ThreadPoolExecutor

    limits = limits or BatchLimits()
    if limit is not None and limit < 1:
        raise UsageError(f"limit {limit}: validate at least 1 sample (None for all)")
    if jobs < 1:
        raise UsageError(f"jobs {jobs}: at least 1 worker process")

    goldens = _Goldens()

    def plan_or_error(combo: Combination) -> _Plan | Validation:
        try:
            return _plan(combo, firmware, limit, split, goldens)
        except DoesNotFit as exc:
            return Validation.unfit(combo, exc)
        except SimError as exc:
            return Validation.failed(combo, exc)

    if jobs > 1 and len(combos) > 1:
        preload_planning_modules()
    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as threads:
        plans = list(threads.map(plan_or_error, combos))
    runnable = [(i, p) for i, p in enumerate(plans) if isinstance(p, _Plan)]
    total = sum(len(p.rows) for _, p in runnable)
    # A worker per batch at most: --jobs 64 for one batch starts one process, not 64.
    jobs = max(1, min(jobs, sum(len(p.batches) for _, p in runnable), MAX_JOBS))
    bar = Progress(total, f"validating {len(runnable)} combination(s)") if progress else None
    runner: _BatchRunner
    if scheduler is not None:
        from simcore.distributed import DaskBatchRunner

        runner = DaskBatchRunner(scheduler, jobs, limits, bar)
    else:
        runner = _BatchRunner(jobs, limits, bar)
    try:
        runner.run([(i, p.batches) for i, p in runnable])
    except KeyboardInterrupt:
        finished = [
            r
            for i, r in enumerate(_results(plans, runner))
            if r is not None and (not isinstance(plans[i], _Plan) or runner.complete(i))
        ]
        raise ValidationInterrupted(finished, len(combos)) from None
    return [r for r in _results(plans, runner) if r is not None]


def _results(plans: list[_Plan | Validation], runner: _BatchRunner) -> list[Validation | None]:
    """Judge every plan whose batches are all back (or failed); None for the others."""
    out: list[Validation | None] = []
    for i, plan in enumerate(plans):
        if isinstance(plan, Validation):
            out.append(plan)
        elif i in runner.errors:
            out.append(Validation.failed(plan.combo, runner.errors[i], str(plan.firmware.elf)))
        elif runner.complete(i):
            results = sorted(runner.done_for(i), key=lambda b: b.start)
            judged = _judge(
                plan.combo, plan.board, plan.golden, plan.rows, plan.firmware, results,
                sum(b.wall_seconds for b in results),
            )  # fmt: skip
            out.append(judged)
        else:
            out.append(None)
    return out


class _BatchRunner:
    """Runs batches in worker processes (or in this one for ``jobs`` 1), surviving their failures.

    ``done`` holds each finished batch by (plan, batch) index, ``errors`` the
    first error of each plan whose batch failed (its other batches are skipped).
    """

    def __init__(
        self,
        jobs: int,
        limits: BatchLimits,
        bar: Progress | None,
        call: Callable[[tuple[str, str, bytes, int, int], BatchLimits], BatchResult | SimError]
        | None = None,
    ) -> None:
        self.jobs = jobs
        self.limits = limits
        self.bar = bar
        #: What runs one batch (a module-level function: it is sent to the workers).
        self.call = call or _call
        self.done: dict[tuple[int, int], BatchResult] = {}
        self.errors: dict[int, SimError | str] = {}
        self.sizes: dict[int, int] = {}

    def complete(self, plan: int) -> bool:
        return plan not in self.errors and all(
            (plan, b) in self.done for b in range(self.sizes.get(plan, 0))
        )

    def done_for(self, plan: int) -> list[BatchResult]:
        return [self.done[(plan, b)] for b in range(self.sizes[plan])]

    def _finish(self, key: tuple[int, int], outcome: BatchResult | SimError) -> None:
        if isinstance(outcome, SimError):
            self.errors.setdefault(key[0], outcome)
        else:
            self.done[key] = outcome
            _tick(self.bar, None, len(outcome.sample_cycles))

    def run(self, work: list[tuple[int, list[tuple[str, str, bytes, int, int]]]]) -> None:
        pending: dict[tuple[int, int], tuple[str, str, bytes, int, int]] = {}
        for plan, batches in work:
            self.sizes[plan] = len(batches)
            pending.update({(plan, b): args for b, args in enumerate(batches)})
        if self.jobs <= 1:
            for key, args in pending.items():
                if key[0] not in self.errors:
                    self._finish(key, self.call(args, self.limits))
            return
        stalls = 0
        while pending:
            before = len(pending)
            pending = self._round(pending, self.jobs)
            stalls = stalls + 1 if pending and len(pending) == before else 0
            if stalls >= BATCH_ATTEMPTS:  # pools keep dying with nothing done: find the culprit
                for key, args in pending.items():
                    alone = {key: args}
                    for _ in range(BATCH_ATTEMPTS):
                        if key[0] in self.errors or not alone:
                            break
                        alone = self._round(alone, 1)
                    if alone and key[0] not in self.errors:
                        start, n = args[4], args[3]
                        self.errors.setdefault(
                            key[0],
                            f"a worker process died while running samples {start}..{start + n - 1}"
                            " on its own (killed, or out of memory)",
                        )
                return

    def _round(
        self, pending: dict[tuple[int, int], tuple[str, str, bytes, int, int]], jobs: int
    ) -> dict[tuple[int, int], tuple[str, str, bytes, int, int]]:
        """One pool's life: run what is pending; return what a dead worker left undone."""
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        pool = ProcessPoolExecutor(
            max_workers=jobs, initializer=_worker_init, initargs=(os.getpid(),)
        )
        left = dict(pending)
        try:
            futures = {
                pool.submit(self.call, args, self.limits): key
                for key, args in pending.items()
                if key[0] not in self.errors
            }
            for fut in as_completed(futures):
                key = futures[fut]
                try:
                    outcome = fut.result()
                except BrokenProcessPool:
                    break
                left.pop(key)
                self._finish(key, outcome)
        except BaseException:  # Ctrl-C: stop the workers now, not after their batches
            _terminate(pool)
            raise
        pool.shutdown(wait=True, cancel_futures=True)
        return {k: a for k, a in left.items() if k[0] not in self.errors}


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down without waiting for running batches: its workers are killed."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public way to reach them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


def _call(args: tuple[str, str, bytes, int, int], limits: BatchLimits) -> BatchResult | SimError:
    """Run one batch; a SimError comes back as a value (it pickles), never as a broken pool."""
    elf, board, _inputs, n, start = args
    try:
        return _run_batch(*args, limits)
    except SimError as exc:
        if isinstance(exc, EmulationError) and "samples" not in exc.message:
            return EmulationError(
                f"{Path(elf).name} on {board}, samples {start}..{start + n - 1}: {exc}",
                pc=exc.pc,
                location=exc.location,
            )
        return exc


@public
def validate(
    combo: Combination,
    *,
    firmware: Path | None = None,
    limit: int | None = None,
    split: str = "test",
    jobs: int = 1,
) -> Validation:
    """Validate one combination; raises UsageError/GoldenError for unusable inputs.

    A firmware that faults or hangs comes back as a failed :class:`Validation`
    (its ``error`` says what happened); bad input raises, and a firmware too big
    for the board raises :class:`DoesNotFit` (a UsageError).
    """
    result = validate_many([combo], firmware=firmware, limit=limit, split=split, jobs=jobs)[0]
    if result.does_not_fit:
        raise DoesNotFit(result.does_not_fit)
    if result.error and result.error_exit_code == 2:
        raise UsageError(result.error)
    return result


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
    predicted = compare.predictions(got_float)
    reference_pred = compare.predictions(ref_float)
    accuracy: float | None = None
    ref_acc: float | None = None
    classes: dict[str, Any] = {"labels": list(golden.label_names)}
    if golden.has_labels:
        labels = golden.labels[rows]
        metrics = compare.class_metrics(
            predicted, labels, n_classes=len(golden.label_names) or None
        )
        accuracy = metrics.accuracy
        ref_acc = float(np.mean(reference_pred == labels)) if n else 0.0
        classes |= metrics.as_dict()
        if abs(accuracy - ref_acc) > 1e-12:
            failures.append(f"accuracy {accuracy:.4%} differs from the reference's {ref_acc:.4%}")
    cycles = [c for b in batches for c in b.sample_cycles]
    profile = _merge_profiles(batches, n)
    manifest = fw.manifest
    memory = _memory(batches, board)
    memory["arena_bytes"] = manifest.get("sizes", {}).get("arena_bytes")
    memory["weights_bytes"] = manifest.get("sizes", {}).get("weights_bytes")
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
        accuracy=accuracy,
        reference_accuracy=ref_acc,
        metrics_vs_reference=compare.error_metrics(got_float, ref_float).as_dict(),
        metrics_vs_float=compare.error_metrics(got_float, keras).as_dict(),
        argmax_agreement=float(np.mean(predicted == reference_pred)) if n else 1.0,
        classes=classes,
        cycles_mean=cycles_mean,
        cycles_median=float(np.median(cycles)) if cycles else 0.0,
        cycles_min=min(cycles) if cycles else 0,
        cycles_max=max(cycles) if cycles else 0,
        seconds_per_inference=cycles_mean / board.clock_hz,
        clock_hz=board.clock_hz,
        cycle_model=_cycle_model(table.core, table.exactness.value, batches),
        profile=profile,
        memory=memory,
        mismatches=[{"sample": int(rows[i]), "got": g, "want": w} for i, g, w in mism],
        emulation_seconds=wall,
        built=fw.built,
        firmware_variant=dict(fw.manifest.get("variant") or {}),
        layers=_layers(batches),
    )


def _layers(batches: list[BatchResult]) -> list[dict[str, Any]]:
    """Cycles per layer over all batches (sample indices made global)."""
    from simcore.cycles.layers import layer_table

    spans = [
        replace(s, sample_index=s.sample_index + b.start) for b in batches for s in b.layer_spans
    ]
    return layer_table(spans, batches[0].layer_info) if spans else []


def _memory(batches: list[BatchResult], board: BoardSpec) -> dict[str, Any]:
    """The first batch's memory figures (the same ELF each time), with the deepest stack.

    Flash and static RAM are each against the region they live in (its percent
    is how full that region is), as in ``simcore run --json``.
    """
    first = batches[0].memory
    if not first:  # a BatchResult made without the run's memory dict: totals only
        return {
            "flash": _usage(batches[0].flash_bytes, _capacity(board, "flash")),
            "static_ram": _usage(batches[0].static_ram_bytes, _capacity(board, "ram")),
            "stack_peak": _usage(max(b.stack_peak_bytes for b in batches), None),
        }
    memory = {k: (dict(v) if isinstance(v, dict) else v) for k, v in first.items()}
    deepest = max(batches, key=lambda b: b.stack_peak_bytes)
    memory["stack_peak"] = dict(deepest.memory.get("stack_peak", {}))
    memory["regions"] = deepest.memory.get("regions", first.get("regions", []))
    heaps = [int(b.memory.get("heap_peak", {}).get("used_bytes", 0)) for b in batches]
    for key, used in (("stack_peak", deepest.stack_peak_bytes), ("heap_peak", max(heaps))):
        entry = memory.get(key)
        if isinstance(entry, dict):
            entry["used_bytes"] = used
            if entry.get("capacity_bytes"):
                entry["percent"] = round(100.0 * used / entry["capacity_bytes"], 2)
    return memory


def _capacity(board: BoardSpec, kind: str) -> int:
    return sum(r.size_bytes for r in board.memory if r.kind.value == kind)


def _usage(used: int, capacity: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"used_bytes": used, "capacity_bytes": capacity}
    if capacity:
        out["percent"] = round(100.0 * used / capacity, 3)
    return out


def _cycle_model(core: str, table_exactness: str, batches: list[BatchResult]) -> dict[str, Any]:
    """The combination's cycle tag: exact only if its inexact share is small (all batches)."""
    from simcore.cycles.model import run_exactness

    total = sum(b.cycles for b in batches) or 1
    shares: dict[str, float] = {}
    for b in batches:
        for tag, share in b.share_by_tag.items():
            shares[tag] = shares.get(tag, 0.0) + share * b.cycles / total
    exactness, inexact = run_exactness(table_exactness, shares)
    return {
        "core": core,
        "exactness": exactness,
        "table_exactness": table_exactness,
        "inexact_share": round(inexact, 6),
    }


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
    return ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init, initargs=(os.getpid(),))


def _worker_init(parent: int) -> None:
    """Make a worker end with its parent, however the parent ends (even SIGKILL).

    Linux delivers SIGTERM to the worker when the parent dies (PR_SET_PDEATHSIG);
    elsewhere, and as a fallback, a daemon thread notices the parent is gone.
    """
    import signal
    import threading

    # Ctrl-C reaches the whole process group: the parent handles it (it keeps the
    # finished results and stops the workers); a worker must not die mid-batch on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the call above
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="simcore-parent-watch", daemon=True).start()


def default_jobs() -> int:
    return os.cpu_count() or 1
