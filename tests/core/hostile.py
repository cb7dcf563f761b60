"""Hostile inputs for issue 12 ("no traceback, no hang, no lost result"), one generator
and one oracle per class; shared by tests/core/test_hostile_*.py and runnable alone.

Each generator draws one case from a ``random.Random`` (the tests drive it through
hypothesis' ``st.randoms()``, the script below through fixed seeds); each oracle
runs it and returns ``None`` when simcore behaved, or what went wrong. The oracles
import only names that existed before the hardening, so this file also measures an
older simcore::

    python tests/core/hostile.py --n 200          # failures per class
    PYTHONPATH=/old/tree python tests/core/hostile.py

Classes (issue 12): 3 board and core files; 4 sizes and pointers taken from the
firmware; 6 fault messages naming the real cause; 7 silent departures from hardware.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, when run alone
from sim_support import build_asm, ram_of

from simcore import boards as boards_module
from simcore.boards import BoardSpec, get_board, load_boards
from simcore.errors import BoardError, SimError

BOARDS = ("rp2040", "rp2350", "stm32h743")
PAGE = 0x400
PPB = (0xE0000000, 0xE0100000)


def one_line(exc: BaseException) -> bool:
    text = str(exc)
    return bool(text) and "\n" not in text and "\r" not in text


# -- class 3: board and core files ---------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return (
            '"'
            + "".join(
                c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in value
            )
            + '"'
        )
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _key(key: str) -> str:
    if key and all(c.isalnum() or c in "_-" for c in key) and key.isascii():
        return key
    return _toml_value(key)


def board_toml(table: dict[str, Any]) -> str:
    lines = [f"{_key(k)} = {_toml_value(v)}" for k, v in table.items() if k != "memory"]
    memory = table.get("memory")
    if isinstance(memory, list) and memory and all(isinstance(r, dict) for r in memory):
        for region in memory:
            lines.append("[[memory]]")
            lines.extend(f"{_key(k)} = {_toml_value(v)}" for k, v in region.items())
    elif "memory" in table:
        lines.insert(0, f"memory = {_toml_value(memory)}")
    return "\n".join(lines) + "\n"


def _valid_board(rng: random.Random) -> dict[str, Any]:
    shipped = load_boards()[rng.choice(BOARDS)]
    return {
        "name": f"hostile{rng.randrange(1000)}",
        "description": shipped.description,
        "core": shipped.core.name,
        "clock_hz": shipped.clock_hz,
        "vector_table": shipped.vector_table,
        "memory": [
            {
                "name": r.name,
                "kind": r.kind.value,
                "start": r.start,
                "size": r.size_bytes,
                **({"image": r.image} if r.image is not None else {}),
            }
            for r in shipped.memory
        ],
    }


_HOSTILE_VALUES: list[Any] = [
    "0x10000000", "125000000", "", "ram", 1.5, 0.0, 1e30, -1.0, float("inf"), float("-inf"),
    float("nan"), -1, -(1 << 63), (1 << 63) - 1, 1 << 32, (1 << 32) - 1, 0, 1, 3, 0x3FF, 0x401,
    True, False, [], [1, 2], {}, {"a": 1}, "\u202e\u0000", "a" * 500, "x\ny",
]  # fmt: skip


def _mutate_value(rng: random.Random, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and rng.random() < 0.4:
        return rng.choice(
            [value + rng.choice([1, 4, 0x100, 0x3FF]), -value, value * 2**rng.randrange(1, 33),
             value - PAGE, float(value), str(value), bool(value % 2)]
        )  # fmt: skip
    return rng.choice(_HOSTILE_VALUES)


def _mutate_board(rng: random.Random, table: dict[str, Any]) -> str:
    """Apply one structural or value mutation; return its name."""
    memory = table.get("memory")
    regions: list[dict[str, Any]] = (
        memory
        if isinstance(memory, list) and memory and all(isinstance(r, dict) for r in memory)
        else []
    )
    kind = rng.choice(
        ["value", "value", "region-value", "region-value", "drop-key", "drop-region-key",
         "unknown-key", "overlap", "ppb", "beyond-4g", "empty-map", "no-ram", "no-flash",
         "misaligned", "duplicate-name", "many-regions", "vector", "clock", "core", "name"]
    )  # fmt: skip
    if not regions and kind not in ("value", "drop-key", "clock", "core", "name", "vector"):
        kind = "value"
    if kind == "drop-key" and not table:
        kind = "value"
    if kind == "value":
        key = rng.choice(["name", "description", "core", "clock_hz", "vector_table", "memory"])
        table[key] = _mutate_value(rng, table.get(key, 0))
    elif kind == "region-value":
        region = rng.choice(regions)
        key = rng.choice(["name", "kind", "start", "size", "xip_cache"])
        region[key] = _mutate_value(rng, region.get(key, 0))
    elif kind == "drop-key":
        del table[rng.choice(list(table))]
    elif kind == "drop-region-key":
        region = rng.choice(regions)
        region.pop(rng.choice(["name", "kind", "start", "size"]), None)
    elif kind == "unknown-key":
        key = rng.choice(["colour", "clock", "Memory", "\u00e9", "x y", "", "size"])
        target = rng.choice([table, rng.choice(regions)])
        target[key] = rng.choice(_HOSTILE_VALUES)
    elif kind == "overlap":
        a = rng.choice(regions)
        regions.append(
            {"name": "dup", "kind": "ram", "start": a["start"] + PAGE * rng.randrange(0, 4),
             "size": PAGE * rng.randrange(1, 64)}
        )  # fmt: skip
    elif kind == "ppb":
        start = rng.choice([0xE0000000, 0xE000E000, 0xDFFFFC00, 0xE00FFC00])
        regions.append({"name": "ppb", "kind": rng.choice(["ram", "io"]), "start": start,
                        "size": PAGE * rng.randrange(1, 8)})  # fmt: skip
    elif kind == "beyond-4g":
        start = rng.choice([0xFFFFFC00, 0xF0000000, 1 << 32])
        regions.append({"name": "high", "kind": "ram", "start": start,
                        "size": rng.choice([0x800, 0x20000000, 1 << 33])})  # fmt: skip
    elif kind == "empty-map":
        table["memory"] = []
    elif kind in ("no-ram", "no-flash"):
        drop = "ram" if kind == "no-ram" else "flash"
        table["memory"] = [r for r in regions if r["kind"] != drop]
    elif kind == "misaligned":
        region = rng.choice(regions)
        key = rng.choice(["start", "size"])
        region[key] = region[key] + rng.choice([1, 2, 4, 0x100, 0x200])
    elif kind == "duplicate-name":
        regions.append(dict(rng.choice(regions), start=0x60000000))
    elif kind == "many-regions":
        regions.extend(
            {"name": f"r{i}", "kind": "ram", "start": 0x60000000 + i * PAGE, "size": PAGE}
            for i in range(rng.choice([64, 100, 1000]))
        )
    elif kind == "vector":
        table["vector_table"] = rng.choice(
            [0x0, 0x40000000, 0x10000004, 0xE000E000, 0xFFFFFFF8, -128]
        )
    elif kind == "clock":
        table["clock_hz"] = rng.choice(
            [0, -1, 1e9, float("inf"), float("nan"), "125 MHz", True, 1 << 70]
        )
    elif kind == "core":
        table["core"] = rng.choice(["cortex-a53", "", "CORTEX-M0PLUS", 7, ["cortex-m7"]])
    elif kind == "name":
        table["name"] = rng.choice(["../../etc", "a/b", "", "rp2040", "x" * 100, "\u0000", 5])
    return kind


@dataclass
class BoardCase:
    """One hostile board file: its bytes and how they were made."""

    what: str
    data: bytes
    must_load: bool = False


def hostile_board(rng: random.Random) -> BoardCase:
    """A board file: mutated tables, foreign encodings, truncations or random bytes."""
    table = _valid_board(rng)
    form = rng.random()
    if form < 0.08:
        return BoardCase("random-bytes", rng.randbytes(rng.randrange(0, 300)))
    if form < 0.10:
        return BoardCase("valid", board_toml(table).encode(), must_load=True)
    if form < 0.12:
        return BoardCase(
            "valid/utf-8-bom", b"\xef\xbb\xbf" + board_toml(table).encode(), must_load=True
        )
    whats = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        try:
            whats.append(_mutate_board(rng, table))
        except (
            KeyError,
            TypeError,
            IndexError,
            ValueError,
        ):  # an earlier mutation removed its target
            table["clock_hz"] = _mutate_value(rng, 1)
            whats.append("value")
    try:
        text = board_toml(table)
    except TypeError:
        text = board_toml(_valid_board(rng))
    encoding = rng.random()
    if encoding < 0.08:
        return BoardCase("+".join(whats) + "/utf-16", text.encode("utf-16"))
    if encoding < 0.12:
        return BoardCase("+".join(whats) + "/utf-8-bom", b"\xef\xbb\xbf" + text.encode())
    if encoding < 0.16:
        return BoardCase(
            "+".join(whats) + "/latin-1", (text + "# caf\u00e9\n").encode("latin-1", "replace")
        )
    if encoding < 0.22:
        raw = text.encode()
        cut = rng.randrange(0, len(raw) + 1)
        return BoardCase("+".join(whats) + "/truncated", raw[:cut])
    if encoding < 0.26:
        raw = bytearray(text.encode())
        for _ in range(rng.randrange(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return BoardCase("+".join(whats) + "/flipped-bytes", bytes(raw))
    return BoardCase("+".join(whats), text.encode())


def _board_invariants(board: BoardSpec) -> str | None:
    """What is wrong with a board that loaded (None: it can be mapped and run)."""
    for name, value in (("clock_hz", board.clock_hz), ("vector_table", board.vector_table)):
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{name} loaded as {value!r}"
    if not 0 < board.clock_hz <= 10**10:
        return f"clock_hz {board.clock_hz}"
    if not any(r.kind.value == "ram" for r in board.memory):
        return "no RAM region"
    if not any(r.kind.value == "flash" for r in board.memory):
        return "no flash region"
    for r in board.memory:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (r.start, r.size_bytes)):
            return f"region {r.name!r} loaded with {r.start!r}+{r.size_bytes!r}"
        if r.start % PAGE or r.size_bytes % PAGE or r.size_bytes <= 0:
            return f"region {r.name} 0x{r.start:x}+0x{r.size_bytes:x} not 1 KB aligned"
        if r.start < 0 or r.start + r.size_bytes > 1 << 32:
            return f"region {r.name} outside 32 bits"
        if r.start < PPB[1] and PPB[0] < r.start + r.size_bytes:
            return f"region {r.name} overlaps the PPB"
        if not isinstance(r.name, str) or not r.name.isprintable():
            return f"region name {r.name!r}"
    if not isinstance(board.name, str) or not board.name.isprintable() or "/" in board.name:
        return f"board name {board.name!r}"
    return _maps_in_unicorn(board)


def _maps_in_unicorn(board: BoardSpec) -> str | None:
    import unicorn
    from unicorn import arm_const

    uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB)
    uc.ctl_set_cpu_model(arm_const.UC_CPU_ARM_CORTEX_M33)
    try:
        uc.mmio_map(PPB[0], PPB[1] - PPB[0], lambda *a: 0, None, lambda *a: None, None)
        for r in board.memory:
            uc.mem_map(r.start, r.size_bytes)
    except unicorn.UcError as exc:
        return f"unicorn cannot map it: {exc}"
    finally:
        del uc
        gc.collect()  # each engine reserves a translation buffer until collected
    return None


def check_board(case: BoardCase, directory: Path) -> str | None:
    """Load ``case`` with get_board: a one-line BoardError or a board that maps."""
    path = directory / "hostile.toml"
    path.write_bytes(case.data)
    try:
        board = get_board(str(path))
    except BoardError as exc:
        if case.must_load:
            return f"a valid board was refused: {exc}"
        return None if one_line(exc) else f"multi-line BoardError: {exc!r}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    problem = _board_invariants(board)
    return None if problem is None else f"loaded a bad board: {problem}"


def hostile_cores(rng: random.Random) -> BoardCase:
    """A cores.toml with one core table mutated (or the file mangled)."""
    import tomllib

    cores = tomllib.loads((_shipped_data() / "cores.toml").read_text())
    if rng.random() < 0.1:
        return BoardCase("cores/random-bytes", rng.randbytes(rng.randrange(0, 200)))
    name = rng.choice(list(cores))
    core = cores[name]
    key = rng.choice([*core, "extra"])
    what = f"cores/{name}.{key}"
    if key in core and rng.random() < 0.2:
        del core[key]
        what += "/dropped"
    else:
        core[key] = rng.choice(
            [*_HOSTILE_VALUES, "CORTEX_A9", "quad", [11, "x"], [-1], [1 << 40], ["10"]]
        )
    lines = []
    for core_name, table in cores.items():
        lines.append(f"[{_key(core_name)}]")
        lines.extend(f"{_key(k)} = {_toml_value(v)}" for k, v in table.items())
    return BoardCase(what, "\n".join(lines).encode())


def _shipped_data() -> Path:
    return Path(boards_module.__file__).parent / "data"


@contextmanager
def data_dir_with(
    directory: Path, *, cores: bytes | None = None, board: bytes | None = None
) -> Iterator[Path]:
    """A copy of simcore's data directory with ``cores`` or an extra board swapped in."""
    data = directory / "data"
    if data.exists():
        shutil.rmtree(data)
    shutil.copytree(_shipped_data(), data)
    if cores is not None:
        (data / "cores.toml").write_bytes(cores)
    if board is not None:
        (data / "boards" / "zz_hostile.toml").write_bytes(board)
    saved = boards_module._data_dir
    boards_module._data_dir = lambda: data  # type: ignore[assignment]
    boards_module.clear_board_caches()
    try:
        yield data
    finally:
        boards_module._data_dir = saved  # type: ignore[assignment]
        boards_module.clear_board_caches()


def check_cores(case: BoardCase, directory: Path) -> str | None:
    """Load every board with a hostile cores.toml: a one-line BoardError or sound cores."""
    with data_dir_with(directory, cores=case.data):
        try:
            boards = load_boards()
        except BoardError as exc:
            return None if one_line(exc) else f"multi-line BoardError: {exc!r}"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        for board in boards.values():
            core = board.core
            if not (
                isinstance(core.display_name, str)
                and isinstance(core.architecture, str)
                and all(
                    isinstance(a, int) and not isinstance(a, bool) for a in core.accepted_cpu_arch
                )
                and core.unicorn_model in boards_module.UNICORN_MODELS
                and isinstance(core.cpuid, int)
                and isinstance(core.ccr_reset, int)
                and core.compiler_flags
                and all(isinstance(f, str) and f.startswith("-m") for f in core.compiler_flags)
                and core.fpu in ("none", "single", "double")
                and all(isinstance(b, bool) for b in (core.dsp, core.divide, core.unaligned_access))
                and core.accepted_cpu_arch
            ):
                return f"loaded a bad core: {core!r}"
    return None


# -- firmware: tiny assembly programs -------------------------------------------------


def flash_of(board: BoardSpec) -> tuple[int, int]:
    flash = next(r for r in board.memory if r.kind.value == "flash")
    return flash.start, flash.end


class Template:
    """An ELF built once whose marker words are patched per case (fast hostile corpora)."""

    def __init__(self, elf: Path, markers: dict[str, int]) -> None:
        self.raw = elf.read_bytes()
        self.offsets = {}
        for name, marker in markers.items():
            word = struct.pack("<I", marker)
            found = [i for i in range(len(self.raw) - 3) if self.raw[i : i + 4] == word]
            if len(found) != 1:
                raise RuntimeError(f"marker {name} found {len(found)} times")
            self.offsets[name] = found[0]

    def patch(self, path: Path, **values: int) -> Path:
        raw = bytearray(self.raw)
        for name, value in values.items():
            raw[self.offsets[name] : self.offsets[name] + 4] = struct.pack("<I", value & 0xFFFFFFFF)
        path.write_bytes(bytes(raw))
        return path


@dataclass
class Outcome:
    """What a run did: an exception (type name, message) or a result."""

    error: str | None = None
    message: str = ""
    exit_code: int | None = None
    stop: str | None = None
    result: Any = None
    seconds: float = 0.0
    exception: BaseException | None = field(default=None, repr=False)

    def names(self, *types: str) -> bool:
        """Whether the error is (a subclass of) one of ``types``, by class name."""
        if self.exception is None:
            return False
        return any(c.__name__ in types for c in type(self.exception).__mro__)


def run(elf: Path, board: str, **options: Any) -> Outcome:
    from simcore.engine import run_firmware

    options.setdefault("timeout_s", 10.0)
    started = time.perf_counter()
    try:
        result = run_firmware(elf, board, **options)
    except MemoryError as exc:
        return Outcome(error="MemoryError", message=str(exc), exception=exc)
    except Exception as exc:
        return Outcome(
            error=type(exc).__name__,
            message=str(exc),
            exception=exc,
            seconds=time.perf_counter() - started,
        )
    return Outcome(
        exit_code=result.exit_code,
        stop=result.stop_reason.value,
        result=result,
        seconds=time.perf_counter() - started,
    )


def _got(out: Outcome) -> str:
    return f"{out.error or out.stop}: {out.message[:150]}"


def _basic(out: Outcome) -> str | None:
    """Failures common to every class: not a SimError, or not one line."""
    if out.exception is not None and not isinstance(out.exception, SimError):
        return f"{out.error}: {out.message[:200]}"
    if out.exception is not None and not one_line(out.exception):
        return f"multi-line message: {out.message[:200]!r}"
    return None


# -- class 4: sizes and pointers from the firmware --------------------------------------

_M = {"sp": 0x5AFE0000, "buf": 0x5AFE0001, "len": 0x5AFE0002, "in": 0x5AFE0003,
      "out": 0x5AFE0004, "cap": 0x5AFE0005, "n": 0x5AFE0006, "inp": 0x5AFE0007,
      "outp": 0x5AFE0008, "layer": 0x5AFE0009}  # fmt: skip

_FIRMWARE_SIZES = {
    # SYS_WRITE to stdout of (buf, len) from a parameter block in RAM
    "sys_write": (
        "movs r0, #5\n ldr r1, =block\n bkpt 0xab\n movs r0, #0",
        f"block: .word 1, {_M['buf']:#x}, {_M['len']:#x}",
        "",
    ),
    # SYS_WRITE0 of a string at a firmware pointer
    "sys_write0": (f"movs r0, #4\n ldr r1, ={_M['buf']:#x}\n bkpt 0xab\n movs r0, #0", "", ""),
    # SYS_HEAPINFO: simcore writes 16 bytes where the firmware's block points
    "sys_heapinfo": (
        "movs r0, #0x16\n ldr r1, =block\n bkpt 0xab\n movs r0, #0",
        f"block: .word {_M['buf']:#x}",
        "",
    ),
    # simcore_trace(layer, ptr, nbytes)
    "trace": (
        f"ldr r0, ={_M['layer']:#x}\n ldr r1, ={_M['buf']:#x}\n ldr r2, ={_M['len']:#x}\n"
        " bl simcore_trace\n movs r0, #0",
        "",
        "    .global simcore_trace\n    .thumb_func\n    .type simcore_trace, %function\n"
        "simcore_trace:\n    bx lr\n    .size simcore_trace, . - simcore_trace\n",
    ),
    # the simcore_io descriptor (read at main)
    "io": (
        "bl main\n movs r0, #0",
        "    .global simcore_io\n    .type simcore_io, %object\nsimcore_io:\n"
        f"    .word 0x434D4953, 1, {_M['in']:#x}, {_M['out']:#x}, {_M['cap']:#x}, {_M['n']:#x},"
        f" {_M['inp']:#x}, {_M['outp']:#x}\n    .size simcore_io, 32",
        "    .global main\n    .thumb_func\n    .type main, %function\nmain:\n    bx lr\n"
        "    .size main, . - main\n",
    ),
    # the vector table's initial SP
    "sp": ("push {r0, r1}\n pop {r0, r1}\n movs r0, #0", "", ""),
}


class FirmwareCorpus:
    """Templates built once per (kind, board) in a scratch directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._templates: dict[tuple[str, str], Template] = {}
        self._counter = 0

    def template(self, kind: str, board: str) -> Template:
        key = (kind, board)
        if key not in self._templates:
            body, data, extra = _FIRMWARE_SIZES[kind]
            sp = hex(_M["sp"]) if kind == "sp" else None
            elf = build_asm(
                self.directory, board, body, data=data, extra=extra, sp=sp, tag=f"t-{kind}-{board}"
            )
            markers = {k: v for k, v in _M.items() if f"{v:#x}" in body + data + (sp or "")}
            self._templates[key] = Template(elf, markers)
        return self._templates[key]

    def path(self, suffix: str = ".elf") -> Path:
        self._counter += 1
        return self.directory / f"case{self._counter}{suffix}"

    def build(self, board: str, body: str, **kw: Any) -> Path:
        self._counter += 1
        return build_asm(self.directory, board, body, tag=f"c{self._counter}", **kw)


def _address(rng: random.Random, board: BoardSpec) -> int:
    """An address, biased to the edges of the board's regions."""
    region = rng.choice(board.memory)
    return rng.choice(
        [0, 4, rng.randrange(1 << 32), 0xDEAD0000, 0xFFFFFFFC, 0xE000E000, region.start,
         region.end - rng.choice([1, 4, 16, 64]), region.end, region.end + 4,
         region.start + rng.randrange(region.size_bytes)]
    )  # fmt: skip


def _length(rng: random.Random) -> int:
    return rng.choice(
        [
            0,
            1,
            4,
            16,
            255,
            0x1000,
            0x10000,
            0x7FFFFFFF,
            0xFFFFFFFF,
            rng.randrange(1 << 32),
            rng.randrange(1 << 20),
        ]
    )


@dataclass
class FirmwareCase:
    """One hostile firmware: how to make it, how to run it, what it must do."""

    what: str
    board: str
    make: Callable[[FirmwareCorpus], Path]
    options: dict[str, Any]
    expect: Callable[[Outcome], str | None]


def _exits_with(what: str, board: str, body: str, code: int, cycles: bool) -> FirmwareCase:
    """A firmware that must run to ``done`` with exit code ``code`` (no fault, no stop)."""

    def expect(out: Outcome) -> str | None:
        if out.stop == "done" and out.exit_code == code:
            return None
        return f"{what}: {out.error or out.stop}: {out.message[:200]}"

    return FirmwareCase(what, board, lambda c: c.build(board, body), {"cycles": cycles}, expect)


def _inside(
    board: BoardSpec, address: int, size: int, kinds: tuple[str, ...] = ("flash", "ram")
) -> bool:
    region = board.region_at(address, max(size, 1))
    return region is not None and region.kind.value in kinds


def sizes_case(rng: random.Random) -> FirmwareCase:
    """Class 4: a pointer or size the firmware hands to simcore."""
    board_name = rng.choice(BOARDS)
    board = get_board(board_name)
    kind = rng.choice(list(_FIRMWARE_SIZES))
    if kind == "sp":
        ram_start, ram_end = ram_of(board)
        sp = rng.choice(
            [_address(rng, board), 0xDEAD0000, ram_end, ram_end - 8, ram_start + 4, ram_end + 4,
             ram_end | rng.randrange(1, 4), flash_of(board)[1], 0]
        )  # fmt: skip
        accepted = _inside(
            board, (sp & ~3) - 4, 4, ("ram",)
        )  # simcore's rule: a word below SP in RAM

        def expect_sp(out: Outcome) -> str | None:
            if accepted:
                if out.stop == "done" or (out.names("EmulationError") and out.seconds < 5):
                    return None  # two pushes may run off the end of RAM: a fault, exit 1
                return f"SP 0x{sp:08x} in RAM gave {out.error or out.stop}: {out.message[:150]}"
            if not out.names("ElfError"):
                return (
                    f"SP 0x{sp:08x} outside RAM gave {out.error or out.stop}: {out.message[:150]}"
                )
            return None

        return FirmwareCase(
            f"sp=0x{sp:08x}",
            board_name,
            lambda c: c.template("sp", board_name).patch(c.path(), sp=sp),
            {},
            expect_sp,
        )
    if kind == "io":
        in_b, out_b = (
            rng.choice([0, 4, 16, 0x1000, 0xFFFFFFFF, rng.randrange(1 << 32)]),
            rng.choice([0, 4, 64, 0x80000000, rng.randrange(1 << 32)]),
        )
        cap = rng.choice([0, 1, 16, 1 << 20, 0xFFFFFFFF, rng.randrange(1 << 32)])
        n = rng.choice([0, 1, cap, cap + 1, 0xFFFFFFFF]) & 0xFFFFFFFF
        inp, outp = _address(rng, board), _address(rng, board)
        fits = (
            all(
                total == 0 or _inside(board, ptr, total, ("ram",))
                for ptr, total in ((inp, in_b * cap), (outp, out_b * cap))
            )
            and n <= cap
        )

        def expect_io(out: Outcome) -> str | None:
            if fits:
                if out.stop != "done":
                    return f"a valid simcore_io did not run: {out.error} {out.message[:150]}"
                return None if len(out.result.outputs) == n * out_b else "outputs of the wrong size"
            if not out.names("ElfError"):
                return f"a bad simcore_io in the image gave {_got(out)}"
            return None

        fields = {"in": in_b, "out": out_b, "cap": cap, "n": n, "inp": inp, "outp": outp}
        desc = f"io in={in_b} out={out_b} cap={cap} n={n} in@0x{inp:08x} out@0x{outp:08x}"
        return FirmwareCase(
            desc, board_name,
            lambda c: c.template("io", board_name).patch(c.path(), **fields),
            {}, expect_io,
        )  # fmt: skip
    buf = _address(rng, board)
    length = _length(rng)
    values = {"buf": buf}
    if kind in ("sys_write", "trace"):
        values["len"] = length
    if kind == "trace":
        values["layer"] = rng.randrange(1 << 32)
    if kind in ("sys_write", "trace"):
        fits = length == 0 or _inside(board, buf, length)
    elif kind == "sys_write0":
        # A string must end inside the region it starts in (unmapped memory ends it badly).
        region = board.region_at(buf)
        fits = region is not None and region.kind.value in ("flash", "ram")
    elif kind == "sys_heapinfo":
        fits = _inside(board, buf, 16, ("ram",))
    options = {"trace": True} if kind == "trace" else {}

    def expect(out: Outcome) -> str | None:
        if kind == "sys_write0" and fits:
            # Memory read as a string may legitimately run off the end without a NUL.
            return (
                None
                if out.stop == "done" or out.names("EmulationError")
                else f"{out.error}: {out.message[:150]}"
            )
        if fits:
            if out.stop != "done":
                return f"an in-bounds {kind} failed: {out.error} {out.message[:150]}"
            if kind == "trace" and len(out.result.traces[0].data) != length:
                return "trace of the wrong size"
            return None
        if out.names("ElfError", "UsageError") or not out.names("EmulationError"):
            return f"an out-of-bounds {kind} gave {_got(out)} (expected a fault, exit 1)"
        if out.seconds > 5:
            return f"took {out.seconds:.1f} s"
        return None

    desc = f"{kind} buf=0x{buf:08x}" + (f" len={values['len']:#x}" if "len" in values else "")
    return FirmwareCase(
        desc,
        board_name,
        lambda c: c.template(kind, board_name).patch(c.path(), **values),
        options,
        expect,
    )


# -- class 6: fault messages naming the real cause -------------------------------------


def _message_case(
    what: str,
    board: str,
    body: str,
    must: list[str],
    must_not: list[str],
    types: tuple[str, ...],
    **build: Any,
) -> FirmwareCase:
    options = build.pop("options", {})

    def expect(out: Outcome) -> str | None:
        if types and not out.names(*types):
            return f"expected {'/'.join(types)}, got {out.error or out.stop}: {out.message[:200]}"
        missing = [m for m in must if m not in out.message]
        present = [m for m in must_not if m in out.message]
        if missing or present:
            return f"message {out.message[:240]!r} lacks {missing} / has {present}"
        return None

    return FirmwareCase(what, board, lambda c: c.build(board, body, **build), options, expect)


_WRONG_CAUSES = ["is not available on", "instruction budget of 0", "timing table", "add a row"]


def cause_case(rng: random.Random) -> FirmwareCase:
    """Class 6: a fault whose message must name its real cause."""
    board = rng.choice(BOARDS)
    spec = get_board(board)
    thumb2 = board != "rp2040"
    pad = "nop\n" * rng.randrange(0, 4)
    cycles = rng.random() < 0.75
    opts = {"options": {"cycles": cycles}}
    kind = rng.choice(
        ["udf", "wfi", "wfe", "invstate", "null", "ram-code", "ram-fault-line", "yield", "xn"]
    )
    if kind == "xn":
        target = rng.choice([0xE000E000, 0xE0001000, 0xE000ED00]) + 2 * rng.randrange(64)
        if board != "stm32h743" and rng.random() < 0.5:
            target = 0xD0000000 + 2 * rng.randrange(64)
        body = f"{pad}ldr r0, ={target | 1:#x}\n{rng.choice(['bx', 'blx'])} r0"
        return _message_case(
            f"jump to 0x{target:08x}", board, body, [f"0x{target:08x}", "execute-never"],
            _WRONG_CAUSES, ("EmulationError",), **opts,
        )  # fmt: skip
    if kind == "udf":
        wide = thumb2 and rng.random() < 0.5
        imm = rng.randrange(1 << 16) if wide else rng.randrange(256)
        body = f"{pad}udf{'.w' if wide else ''} #{imm}"
        return _message_case(
            f"udf #{imm}",
            board,
            body,
            [f"UDF #{imm}", "undefined"],
            _WRONG_CAUSES,
            ("SimError",),
            **opts,
        )
    if kind in ("wfi", "wfe"):
        loop = rng.random() < 0.5
        body = f"{pad}1: {kind}\n" + ("b 1b" if loop else "")
        return _message_case(
            kind,
            board,
            body,
            [kind.upper(), "sleep forever"],
            [*_WRONG_CAUSES, "budget"],
            ("SimError",),
            **opts,
        )
    if kind == "invstate":
        ram_start, _ = ram_of(spec)
        target = rng.choice(
            [
                "plain",
                f"{ram_start + 2 * rng.randrange(1, 64):#x}",
                f"{0x30000000 + 4 * rng.randrange(100):#x}",
            ]
        )
        body = (
            f"{pad}ldr r0, ={target}\n{rng.choice(['bx', 'blx'])} r0\n.align 2\nplain: movs r0, #7"
        )
        return _message_case(
            f"bx to even {target}",
            board,
            body,
            ["INVSTATE", "Thumb bit"],
            _WRONG_CAUSES,
            ("SimError",),
            **opts,
        )
    if kind == "null":
        insn = rng.choice(["blx", "bx"])
        body = f"{pad}movs r{(r := rng.randrange(8))}, #0\n{insn} r{r}"
        return _message_case(
            f"{insn} to NULL", board, body, ["NULL pointer"], _WRONG_CAUSES, ("SimError",), **opts
        )
    ram_start, _ = ram_of(spec)
    at = ram_start + 0x100 + 4 * rng.randrange(64)
    if kind == "ram-code":
        # Copy `movs r0, #k; bx lr` to RAM and call it: real code, run from RAM.
        k = rng.randrange(256)
        body = (
            f"ldr r1, ={at:#x}\n ldr r2, ={0x4770_2000 | k:#x}\n str r2, [r1]\n"
            f" adds r1, #1\n blx r1"
        )
        if not cycles:
            return _exits_with("ram code, cycles off", board, body, k, cycles=False)
        return _message_case(
            f"ram code at {at:#x}",
            board,
            body,
            [f"0x{at:08x}", "outside the ELF's executable sections"],
            _WRONG_CAUSES,
            ("SimError",),
            **opts,
        )
    if kind == "ram-fault-line":
        # A UDF copied to RAM: the message must not borrow a source line of the program.
        body = f"ldr r1, ={at:#x}\n ldr r2, =0xde05de05\n str r2, [r1]\n adds r1, #1\n blx r1"
        if cycles:
            must, must_not = ["outside the ELF's executable sections"], _WRONG_CAUSES
        else:
            must, must_not = ["UDF #5", f"0x{at:08x}"], [*_WRONG_CAUSES, ".s:"]
        return _message_case(
            f"udf in RAM at {at:#x}", board, body, must, must_not, ("SimError",), **opts
        )
    # YIELD is a hint: a NOP on a single core.
    k = rng.randrange(256)
    body = f"{pad}{'yield.w' if thumb2 and rng.random() < 0.5 else 'yield'}\nmovs r0, #{k}"
    return _exits_with("yield", board, body, k, cycles)


# -- class 7: silent departures from hardware ------------------------------------------


def departure_case(rng: random.Random) -> FirmwareCase:
    """Class 7: what real hardware does differently must not pass silently."""
    board = rng.choice(BOARDS)
    spec = get_board(board)
    kind = rng.choice(
        ["flash-store", "flash-store", "svc", "div0", "div0", "reset-arm", "sysreset", "sev-wfe",
         "nocp"]
    )  # fmt: skip
    if kind == "nocp":
        if board == "rp2040":
            board = rng.choice(["rp2350", "stm32h743"])
        enable = rng.random() < 0.5
        k = rng.randrange(1, 100)
        body = (
            "ldr r1, =0xE000ED88\nldr r0, =0x00F00000\nstr r0, [r1]\n" if enable else ""
        ) + f"movs r0, #{k}\nvmov s0, r0\nvmov r0, s0"

        def expect_fpu(out: Outcome) -> str | None:
            if enable:
                return None if out.exit_code == k else f"FPU enabled: {_got(out)}"
            ok = out.names("EmulationError") and "NOCP" in out.message
            return None if ok else f"FPU used while off gave {_got(out)}"

        return FirmwareCase(
            f"fpu {'on' if enable else 'off'}",
            board,
            lambda c: c.build(board, body),
            {},
            expect_fpu,
        )
    if kind == "div0" and board == "rp2040":
        board, spec = "rp2350", get_board("rp2350")
    cycles = rng.random() < 0.75
    opts: dict[str, Any] = {"options": {"cycles": cycles}}
    if kind == "flash-store":
        start, end = flash_of(spec)
        size, insn = rng.choice([(1, "strb"), (2, "strh"), (4, "str"), (8, "stm"), (4, "push")])
        address = start + rng.randrange(0x1000, (end - start) // 2) // size * size
        if insn == "stm":
            body = f"ldr r1, ={address:#x}\n stm r1!, {{r2, r3}}"
        elif insn == "push":
            address = address + 8
            body = f"ldr r1, ={address:#x}\n mov sp, r1\n push {{r0}}"
            address -= 4
        else:
            body = f"ldr r1, ={address:#x}\n movs r0, #{rng.randrange(256)}\n {insn} r0, [r1]"
        return _message_case(
            f"{insn} to flash 0x{address:08x}",
            board,
            body,
            [f"0x{address:08x}", "flash", "read-only"],
            [],
            ("EmulationError",),
            **opts,
        )  # fmt: skip
    if kind == "svc":
        imm = rng.randrange(256)
        return _message_case(
            f"svc #{imm}",
            board,
            f"svc #{imm}\nmovs r0, #0",
            [f"SVC #{imm}"],
            [],
            ("EmulationError",),
            **opts,
        )
    if kind == "div0":
        op = rng.choice(["sdiv", "udiv"])
        divisor = rng.choice([0, 0, 1, 3])
        dividend = rng.randrange(1 << 16)
        ccr = rng.choice([0x10, 0x210, 0x0, 0x200, 0x18])
        trap = bool(ccr & 0x10) and divisor == 0
        store = rng.choice(["str", "strb"]) if ccr & 0x10 else "str"
        body = (
            f"ldr r3, =0xE000ED14\n ldr r2, ={ccr:#x}\n {store} r2, [r3]\n"
            f" ldr r0, ={dividend:#x}\n ldr r1, ={divisor:#x}\n {op} r0, r0, r1"
        )
        quotient = 0 if divisor == 0 else dividend // divisor

        def expect_div(out: Outcome) -> str | None:
            if trap:
                if not out.names("EmulationError") or "DIVBYZERO" not in out.message:
                    return f"divide by zero with DIV_0_TRP gave {_got(out)}"
                return None
            return (
                None
                if out.stop == "done" and out.exit_code == quotient
                else f"{out.error or out.exit_code}: {out.message[:150]}"
            )

        return FirmwareCase(
            f"{op} {dividend}/{divisor} ccr={ccr:#x}",
            board,
            lambda c: c.build(board, body),
            {"cycles": cycles},
            expect_div,
        )
    if kind == "reset-arm":
        return _message_case(
            "reset vector without Thumb bit",
            board,
            "movs r0, #0",
            ["Thumb bit"],
            [],
            ("ElfError",),
            reset="_start_arm",
            **opts,
        )
    if kind == "sysreset":
        body = "ldr r1, =0xE000ED0C\n ldr r0, =0x05FA0004\n str r0, [r1]\n movs r0, #0"
        return _message_case(
            "AIRCR.SYSRESETREQ", board, body, ["reset", "AIRCR"], [], ("EmulationError",), **opts
        )
    # SEV sets the event register: the WFE after it does not sleep.
    nops = "nop\n" * rng.randrange(3)
    body = f"sev\n{nops}wfe\nmovs r0, #{(k := rng.randrange(256))}"
    return _exits_with("sev; wfe", board, body, k, cycles)


def check_firmware(case: FirmwareCase, corpus: FirmwareCorpus) -> str | None:
    elf = case.make(corpus)
    out = run(elf, case.board, **case.options)
    problem = _basic(out) or case.expect(out)
    out.exception = out.result = None
    gc.collect()  # each engine reserves a translation buffer until collected
    return problem


# -- the script --------------------------------------------------------------------------

CLASSES: dict[str, tuple[Callable[[random.Random], Any], str]] = {
    "3-boards": (hostile_board, "board"),
    "3-cores": (hostile_cores, "cores"),
    "4-sizes": (sizes_case, "firmware"),
    "6-causes": (cause_case, "firmware"),
    "7-departures": (departure_case, "firmware"),
}


def check(kind: str, case: Any, directory: Path, corpus: FirmwareCorpus) -> str | None:
    if kind == "board":
        return check_board(case, directory)
    if kind == "cores":
        return check_cores(case, directory)
    return check_firmware(case, corpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="cases per class")
    parser.add_argument("--only", action="append", default=[], help="classes (default all)")
    parser.add_argument("--show", type=int, default=3, help="failures shown per class")
    args = parser.parse_args(argv)
    import simcore

    print(f"simcore from {Path(simcore.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        corpus = FirmwareCorpus(directory)
        for name, (generate, kind) in CLASSES.items():
            if args.only and name not in args.only:
                continue
            failures = []
            started = time.perf_counter()
            for seed in range(args.n):
                case = generate(random.Random(f"{name}-{seed}"))
                try:
                    problem = check(kind, case, directory, corpus)
                except Exception as exc:  # the oracle itself must never hide a crash
                    problem = f"oracle crashed: {type(exc).__name__}: {exc}"
                if problem is not None:
                    failures.append((case.what, problem))
            took = time.perf_counter() - started
            print(f"{name:<14} {args.n:>5} cases  {len(failures):>5} failed  ({took:.0f} s)")
            for what, problem in failures[: args.show]:
                print(f"    {what[:60]}: {problem[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
