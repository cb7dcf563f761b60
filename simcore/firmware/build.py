"""Build a model into firmware: resolve the model file, generate C, compile, write a manifest.

Output for model ``M`` in format ``F`` (``-trace`` / ``-portable`` /
``-sparse-on`` / ``-sparse-off`` appended for those variants) in ``out_dir``
(default ``simcore.paths.out_dir()/<board>/``):
``M-F.c`` (generated source), ``M-F.elf``, ``M-F.map`` and ``M-F.json`` (the
manifest). Everything written is a pure function of the model file, the
format, the board and the compiler, so a rebuild is byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simcore import paths
from simcore.api import public
from simcore.boards import STACK_GUARD_BYTES, BoardSpec, get_board, load_boards
from simcore.errors import DoesNotFit, ToolchainError
from simcore.firmware.codegen import GeneratedSource, generate
from simcore.firmware.ir import FORMATS, FirmwareError, FloatModel, Int8Model, Int8Op, Layer
from simcore.firmware.q16_ref import Q16_TOLERANCE
from simcore.firmware.reference import F32_TOLERANCE
from simcore.firmware.sparse import SparseMode, parse_mode
from simcore.linker import LinkOptions, resolve
from simcore.toolchain import RUNTIME_DIR, build_elf

log = logging.getLogger(__name__)

#: Manifest paths under it are relative: the repository, or the installed package's copy.
REPO_DIR = paths.ROOT_DIR
MANIFEST_VERSION = 1
#: Samples the I/O buffers hold when RAM allows (the engine runs larger sets in batches).
DEFAULT_CAPACITY = 64
#: RAM the runtime itself needs besides the arena and the I/O buffers (descriptor, libc data).
RUNTIME_RAM_RESERVE = 1024
#: The generated firmware's activation arena (``--place nn_arena=REGION`` moves it).
ARENA_SYMBOL = "nn_arena"
MODEL_FILES = {"f32": "model.keras", "q16": "model.keras", "int8": "model_int8.tflite"}


@dataclass(frozen=True)
class FirmwareBuild:
    """A built model firmware and the facts its manifest records."""

    model: str
    format: str
    board: str
    elf: Path
    map_file: Path
    source: Path
    manifest_path: Path
    model_path: Path
    model_sha256: str
    trace: bool
    portable: bool
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_bytes: int
    output_bytes: int
    capacity: int
    arena_bytes: int
    weights_bytes: int
    code_bytes: int
    flash_bytes: int
    static_ram_bytes: int
    manifest: dict[str, Any]


def golden_dir() -> Path:
    """The folder of shipped models (``golden/``)."""
    return paths.GOLDEN_DIR


def shipped_models() -> list[str]:
    """Names of the models with a golden folder holding both model files."""
    root = golden_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if (p / "model.keras").is_file() and (p / "model_int8.tflite").is_file()
    )


def resolve_model(model: str | Path, fmt: str) -> tuple[str, Path]:
    """Return ``(name, path)`` of the model file a format builds from.

    ``model`` is a shipped model name, a golden folder (shipped or from
    ``simcore golden create``), or a model file: ``.keras`` or float ``.onnx``
    for f32/q16, int8 ``.tflite`` or QDQ ``.onnx`` for int8. A ``.keras`` or
    float ``.onnx`` asked for int8 builds from the int8 model of its golden,
    when it has one (``golden create`` makes it).
    """
    from simcore.golden.locate import find_golden_for_model
    from simcore.golden.store import HEADER_FILE, load_golden_dir

    want = MODEL_FILES[fmt]
    path = Path(model)
    if isinstance(model, str) and not path.exists() and "/" not in model and "." not in model:
        folder = golden_dir() / model
        if not folder.is_dir():
            known = ", ".join(shipped_models()) or "none"
            raise FirmwareError(
                f"unknown model {model!r}",
                hint=f"use one of {known}, a golden folder or a model file",
            )
        path = folder
    suffix = ".tflite" if fmt == "int8" else ".keras"
    if path.is_file() and path.suffix == ".onnx":
        suffix = ".onnx"  # one suffix for float and QDQ models: the content decides
        if fmt == "int8" and not _onnx_quantized(path):
            suffix = ".onnx (QDQ)"
    if path.is_file() and path.suffix != suffix and path.suffix in (".keras", ".tflite", ".onnx"):
        found = find_golden_for_model(path)
        onnx_file = "model_int8.onnx" if fmt == "int8" else "model.onnx"
        if found is not None and ((found / want).is_file() or (found / onnx_file).is_file()):
            path = found
        else:
            hint = f"pass the model's {suffix} file or its golden folder"
            if fmt == "int8":
                hint = (
                    f"create a golden, which quantizes it: simcore golden create {path} --data "
                    "TEST_INPUTS.npy; then build from that golden folder"
                )
            raise FirmwareError(
                f"format {fmt} builds from a {suffix} file, not {path.name}", hint=hint
            )
    if path.is_dir():
        name = path.name
        if (path / HEADER_FILE).is_file():
            golden = load_golden_dir(path)
            name = golden.name
            path = golden.model_path(fmt)
        else:
            path = path / want
    else:
        name = path.stem.removesuffix("_int8").removesuffix("_float")
        if name == "model":
            name = path.parent.name
    if not path.is_file():
        raise FirmwareError(f"model file {path} does not exist", hint="check the name or path")
    if path.suffix == ".onnx":
        return name, path  # a golden's model_int8.onnx, or a model file checked above
    if path.suffix != suffix:
        raise FirmwareError(
            f"format {fmt} builds from a {suffix} file, not {path.name}",
            hint=f"pass the model's {suffix} file or its golden folder",
        )
    return name, path


def _onnx_quantized(path: Path) -> bool:
    from simcore.firmware.onnx_model import is_quantized

    return is_quantized(path)


def load_model(name: str, path: Path, fmt: str) -> FloatModel | Int8Model:
    """Read the model file for ``fmt``."""
    if path.suffix == ".onnx":
        from simcore.firmware.onnx_model import read_onnx, read_onnx_int8

        return read_onnx_int8(path, name) if fmt == "int8" else read_onnx(path, name)
    if fmt == "int8":
        from simcore.firmware.tflite_int8 import read_int8_tflite

        return read_int8_tflite(path, name)
    from simcore.firmware.keras_model import read_keras

    return read_keras(path, name)


def _size(text: str) -> int:
    m = re.fullmatch(r"\s*(0x[0-9a-fA-F]+|\d+)\s*([KM]?)\s*", text)
    if m is None:
        raise FirmwareError(f"cannot read linker size {text!r}")
    return int(m.group(1), 0) * {"": 1, "K": 1024, "M": 1 << 20}[m.group(2)]


def ram_budget(
    board: BoardSpec, script: Path | None = None, link: LinkOptions | None = None
) -> tuple[int, int]:
    """Return (RAM for arena + I/O buffers, code-region size) in bytes.

    They come from the placement of the generated script (the board's ``[link]``
    with ``link``'s overrides), or are read from ``script``, a user's own linker
    script (``build --ld``).
    """
    if script is None:
        layout = resolve(board, link)
        return layout.data_room_bytes() - RUNTIME_RAM_RESERVE, layout.code.size_bytes
    path = script
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise FirmwareError(f"cannot read linker script {path}: {exc}") from None
    regions = {
        m.group(1): _size(m.group(2))
        for m in re.finditer(
            r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*\S+\s*,\s*LENGTH\s*=\s*"
            r"([0-9a-fA-Fx]+\s*[KM]?)",
            text,
            re.M,
        )
    }
    aliases = dict(re.findall(r'REGION_ALIAS\("(\w+)",\s*(\w+)\)', text))
    sizes = {
        k: _size(v) for k, v in re.findall(r"^\s*(HEAP_SIZE|STACK_SIZE)\s*=\s*([^;]+);", text, re.M)
    }
    ram = regions.get(aliases.get("RAM", "RAM"), 0)
    code = regions.get(aliases.get("CODE", "CODE"), regions.get("FLASH", 0))
    free = ram - sizes.get("HEAP_SIZE", 0) - sizes.get("STACK_SIZE", 0)
    return free - STACK_GUARD_BYTES - RUNTIME_RAM_RESERVE, code


def _arena_placed_apart(
    board: BoardSpec, script: Path | None, link: LinkOptions | None, arena_bytes: int
) -> int:
    """The arena bytes that ``--place nn_arena=REGION`` takes out of the data region.

    Raises FirmwareError when the arena alone is larger than its region.
    """
    if script is not None or link is None:
        return 0
    layout = resolve(board, link)
    home = dict(layout.place).get(ARENA_SYMBOL)
    if home is None or home == layout.data:
        return 0
    if arena_bytes > home.size_bytes:
        raise FirmwareError(
            f"the {arena_bytes}-byte activation arena does not fit region {home.name} "
            f"({home.size_bytes} bytes) of board {board.name}",
            hint="--place it in a larger RAM region",
        )
    return arena_bytes


def _kb(n: int) -> str:
    """Bytes as KB with one decimal (29.5 KB), for does-not-fit messages."""
    return f"{n / 1024:.1f} KB"


def _variant_stem(
    name: str, fmt: str, trace: bool, portable: bool, sparse: SparseMode = SparseMode.AUTO
) -> str:
    """The file stem of a build; a forced sparse mode never replaces the default build."""
    forced = "" if sparse is SparseMode.AUTO else f"-sparse-{sparse.value}"
    variants = ("-trace" if trace else "") + ("-portable" if portable else "")
    return f"{name}-{fmt}{variants}{forced}"


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO_DIR))
    except ValueError:  # outside the checkout: absolute, so it means the same from any folder
        return str(p.resolve())


def _tolerance(fmt: str) -> dict[str, Any]:
    if fmt == "f32":
        return {"against": "keras float outputs", **F32_TOLERANCE}
    if fmt == "q16":
        return {
            "against": "simcore.firmware.q16_ref (bit-exact) and keras float outputs",
            "exact": True,
            **Q16_TOLERANCE,
        }
    return {"against": "tflite-micro int8 outputs", "exact": True, "abs": 0}


@public
def build_model_firmware(
    model: str | Path | FloatModel | Int8Model,
    fmt: str,
    board: str | BoardSpec,
    out_dir: Path | None = None,
    trace: bool = False,
    *,
    portable: bool = False,
    capacity: int | None = None,
    inject: str | Sequence[str] | None = None,
    script: Path | None = None,
    cflags: Sequence[str] = (),
    link: LinkOptions | None = None,
    sparse: str | SparseMode = SparseMode.AUTO,
) -> FirmwareBuild:
    """Generate, compile and describe the firmware of ``model`` in ``fmt`` for ``board``.

    ``model`` may also be an already loaded model object (tests build random
    models this way). ``portable`` forces the plain-C int8 path on cores with
    DSP instructions (for measuring both). ``capacity`` fixes how many samples
    the I/O buffers hold (default: up to 64, as RAM allows). ``inject``
    (``KIND[:LAYER[:VARIANT]]``, see :mod:`simcore.diagnose.mistakes`) builds
    the firmware with a deliberate porting mistake (several: a sequence), for
    testing the layout doctor; its files get an ``-inject-...`` stem so they
    never replace a correct build. The linker script is generated from the
    board's ``[link]`` defaults and ``link``'s overrides (stack and heap sizes,
    the regions of code, data and stack; :mod:`simcore.linker`) and written as
    ``<stem>.ld`` beside the ELF. ``script`` links with a linker script of your
    own instead (``build --ld``; the RAM it leaves for the arena and I/O buffers
    is read from it; not with ``link``), ``cflags`` are added to the compiler's
    flags (``build --cflags``; paths in them must be absolute). ``sparse``
    (auto, on, off) picks the sparse Dense kernels (simcore.firmware.sparse);
    a forced mode gets its own ``-sparse-on``/``-sparse-off`` stem.
    """
    if fmt not in FORMATS:
        raise FirmwareError(f"unknown format {fmt!r}", hint=f"choose one of {', '.join(FORMATS)}")
    spec = get_board(board) if isinstance(board, str) else board
    sparse_mode = parse_mode(sparse)
    if isinstance(model, FloatModel | Int8Model):
        loaded = model
        if isinstance(loaded, Int8Model) != (fmt == "int8"):
            raise FirmwareError(f"a {type(loaded).__name__} cannot be built as {fmt}")
        name, model_path = loaded.name, Path(loaded.source)
    else:
        name, model_path = resolve_model(model, fmt)
        loaded = load_model(name, model_path, fmt)
    out = (out_dir or paths.out_dir() / spec.name).resolve()
    stem = _variant_stem(name, fmt, trace, portable, sparse_mode)
    overrides: dict[str, Any] = {"sparse": sparse_mode}
    injected: list[dict[str, Any]] = []
    specs = [inject] if isinstance(inject, str) else list(inject or ())
    if specs:
        from simcore.diagnose import mistakes
        from simcore.firmware.consts import encode

        chain: list[Layer | Int8Op] = list(
            loaded.ops if isinstance(loaded, Int8Model) else loaded.layers
        )
        consts = encode(loaded, fmt)
        fixups = []
        for wanted in specs:
            m = mistakes.injection(wanted, fmt, chain, consts)
            if any(d["layer"] == m.layer and d["kind"] != "input-scale" for d in injected):
                raise FirmwareError(f"injection {wanted!r}: layer {m.layer} already has a mistake")
            chain[m.layer], consts[m.layer] = mistakes.apply(m, fmt, chain, consts)
            fixup = mistakes.input_fixup(m, fmt)
            if fixup:
                fixups.append(fixup)
            injected.append({**asdict(m), "description": m.describe()})
            stem += f"-inject-{m.kind}-L{m.layer}-{re.sub(r'[^a-z0-9]+', '', m.variant)}"
        if len(fixups) > 1:
            raise FirmwareError("inject input-scale once at most")
        overrides |= {
            "layers": chain,
            "consts": consts,
            "input_fixup": fixups[0] if fixups else None,
        }

    if script is not None and not script.is_file():
        raise FirmwareError(f"linker script {script} does not exist", hint="check the --ld path")
    if script is not None and link is not None and link.given():
        raise FirmwareError(
            "--ld and the link options (--stack-size, --heap-size, --code-in, --data-in, "
            "--stack-in) cannot be combined",
            hint="set the sizes and regions in your linker script, or drop --ld",
        )
    free_ram, code_region = ram_budget(spec, script, link)
    probe = generate(loaded, fmt, capacity=1, **overrides)
    per_sample = probe.input_bytes + probe.output_bytes
    arena_in_data = probe.arena_bytes - _arena_placed_apart(spec, script, link, probe.arena_bytes)
    room = free_ram - arena_in_data - per_sample
    if room < 0:
        need = probe.arena_bytes + per_sample
        raise DoesNotFit(
            f"model {name} ({fmt}) does not fit board {spec.name}: needs {_kb(need)} RAM (a "
            f"{probe.arena_bytes}-byte activation arena plus {per_sample} bytes of I/O), board "
            f"has {_kb(max(free_ram, 0))} free for them",
            hint="use a smaller model, the int8 format, or a board with more RAM",
        )
    if probe.weights_bytes > code_region:
        raise DoesNotFit(
            f"model {name} ({fmt}) does not fit board {spec.name}: needs "
            f"{_kb(probe.weights_bytes)} of weights, board has a {_kb(code_region)} code region",
            hint="use the int8 format or a board with more flash",
        )
    cap = capacity if capacity is not None else min(DEFAULT_CAPACITY, 1 + room // per_sample)
    if cap < 1 or cap * per_sample > free_ram - arena_in_data:
        raise FirmwareError(
            f"capacity {cap} samples does not fit board {spec.name}'s RAM",
            hint=f"use at most {1 + room // per_sample}",
        )
    gen = generate(loaded, fmt, capacity=cap, **overrides)

    source = out / f"{stem}.c"
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp_source = source.with_name(f".{source.name}.{os.getpid()}.{threading.get_ident()}")
        tmp_source.write_text(gen.text)
        tmp_source.replace(source)
    except OSError as exc:
        raise FirmwareError(
            f"cannot write to output folder {out}: {exc.strerror}", hint="pass a writable --out"
        ) from None
    defines = (
        *(("SIMCORE_TRACE",) if trace else ()),
        *(("NN_INT8_PORTABLE",) if portable else ()),
        *((f"NN_INT8_SCRATCH={gen.int8_scratch}",) if gen.int8_scratch else ()),
    )
    try:
        result = build_elf(
            [source, RUNTIME_DIR / f"nn_{fmt}.c"],
            spec,
            out / f"{stem}.elf",
            defines=defines,
            libs=("m",) if fmt == "f32" else (),
            script=script.resolve() if script is not None else None,
            extra_cflags=tuple(cflags),
            link=link,
        )
    except ToolchainError as exc:
        if isinstance(exc, DoesNotFit) or "will not fit" in exc.message:
            raise DoesNotFit(
                f"model {name} ({fmt}) does not fit board {spec.name}: {exc.message}",
                hint=exc.hint or "use a smaller model or the int8 format",
            ) from None
        raise
    # The generated script sits beside the ELF; a user's own is named by its path.
    link_record: dict[str, Any] = {"script": str(result.script), "generated": False}
    if result.layout is not None:
        link_record = {"script": f"{stem}.ld", "generated": True, **result.layout.options()}
    return _describe(
        loaded,
        name,
        model_path,
        fmt,
        spec,
        gen,
        result.elf,
        result.map_file,
        source,
        result.command,
        result.compiler_version,
        trace,
        portable,
        cap,
        injected,
        board_file=_board_file(board),
        link=link_record,
        sparse=sparse_mode,
    )


def _board_file(board: str | BoardSpec) -> str | None:
    """The absolute path of a user's board file, so the manifest can name it later."""
    if isinstance(board, BoardSpec) or board in load_boards():
        return None
    return str(Path(board).resolve())


def _describe(
    model: FloatModel | Int8Model,
    name: str,
    model_path: Path,
    fmt: str,
    spec: BoardSpec,
    gen: GeneratedSource,
    elf: Path,
    map_file: Path,
    source: Path,
    command: tuple[str, ...],
    compiler_version: str,
    trace: bool,
    portable: bool,
    capacity: int,
    injected: list[dict[str, Any]],
    board_file: str | None = None,
    link: dict[str, Any] | None = None,
    sparse: SparseMode = SparseMode.AUTO,
) -> FirmwareBuild:
    from simcore.elf import load_elf
    from simcore.memory import flash_bytes, harness_buffers, static_ram_bytes

    image = load_elf(elf)
    code_bytes = sum(s.size_bytes for s in image.symbols.values() if s.kind == "func")
    kernel_code_bytes = sum(
        s.size_bytes
        for s in image.symbols.values()
        if s.kind == "func" and (s.name.startswith("nn_") or s.name in ("infer", "main"))
    )
    flash = flash_bytes(image, spec)
    # The program's static RAM, as run/validate report it: simcore's batch I/O
    # buffers (sized by the capacity, not by the model) are counted apart.
    harness_io = sum(b.size_bytes for b in harness_buffers(image, spec))
    ram = static_ram_bytes(image, spec) - harness_io
    repo = str(REPO_DIR)
    out_dir = str(elf.parent.resolve())
    flags = [
        a.replace(out_dir, "<out>").replace(repo, ".")
        for a in command[1:]
        if a.startswith("-") and not a.startswith(("-o", "-Wl,-Map"))
    ]
    dsp = spec.core.dsp and fmt == "int8" and not portable
    quant: dict[str, Any] = {}
    if isinstance(model, Int8Model):
        quant = {
            "input": {"scale": model.input_scale, "zero_point": model.input_zero_point},
            "output": {"scale": model.output_scale, "zero_point": model.output_zero_point},
        }
    dtype = {"f32": "float32", "q16": "q16.16 int32 (round(x * 65536))", "int8": "int8"}[fmt]
    manifest: dict[str, Any] = {
        "simcore_firmware_manifest": MANIFEST_VERSION,
        "model": {"name": name, "path": _rel(model_path), "sha256": model.sha256},
        "format": fmt,
        "board": spec.name,
        **({"board_file": board_file} if board_file else {}),
        "core": spec.core.name,
        "variant": {
            "trace": trace,
            "portable": portable,
            "int8_dsp_path": dsp,
            "sparse": sparse.value,
            **({"injected_mistakes": injected} if injected else {}),
        },
        "files": {
            "elf": elf.name,
            "elf_sha256": hashlib.sha256(elf.read_bytes()).hexdigest(),
            "map": map_file.name,
            "source": source.name,
        },
        "compiler": {"version": compiler_version, "flags": flags},
        **({"link": link} if link else {}),
        "io": {
            "symbol": "simcore_io",
            "input_shape": list(model.input_shape),
            "output_shape": list(model.output_shape),
            "dtype": dtype,
            "input_bytes": gen.input_bytes,
            "output_bytes": gen.output_bytes,
            "capacity_samples": capacity,
            **({"quantization": quant} if quant else {}),
        },
        "sizes": {
            "weights_bytes": gen.weights_bytes,
            "code_bytes": code_bytes,
            "nn_code_bytes": kernel_code_bytes,
            "arena_bytes": gen.arena_bytes,
            "flash_bytes": flash,
            "static_ram_bytes": ram,
            "harness_io_bytes": harness_io,
            "sparse_saved_bytes": sum(i.sparse.get("saved_bytes", 0) for i in gen.layers),
        },
        "tolerance": _tolerance(fmt),
        "layers": [
            {
                "id": info.id,
                "name": info.name,
                "kind": info.kind,
                "in_shape": list(info.in_shape),
                "out_shape": list(info.out_shape),
                **({"activation": info.activation} if info.activation else {}),
                "buffer": info.buffer,
                "symbols": info.symbols,
                **({"sparse": info.sparse} if info.sparse else {}),
            }
            for info in gen.layers
        ],
    }
    manifest_path = elf.with_suffix(".json")
    from simcore.outputs import write_output

    write_output(
        manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n", what="manifest"
    )
    log.info("built %s (%d B flash, %d B arena)", elf, flash, gen.arena_bytes)
    return FirmwareBuild(
        model=name,
        format=fmt,
        board=spec.name,
        elf=elf,
        map_file=map_file,
        source=source,
        manifest_path=manifest_path,
        model_path=model_path,
        model_sha256=model.sha256,
        trace=trace,
        portable=portable,
        input_shape=tuple(model.input_shape),
        output_shape=tuple(model.output_shape),
        input_bytes=gen.input_bytes,
        output_bytes=gen.output_bytes,
        capacity=capacity,
        arena_bytes=gen.arena_bytes,
        weights_bytes=gen.weights_bytes,
        code_bytes=code_bytes,
        flash_bytes=flash,
        static_ram_bytes=ram,
        manifest=manifest,
    )


__all__ = ["FirmwareBuild", "build_model_firmware", "resolve_model", "shipped_models"]
