"""Boards and cores as data: TOML files loaded into frozen dataclasses.

A board names a core, a clock and a memory map. Users add a board by dropping
a TOML file next to the shipped ones (or passing a path); no Python needed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from simcore.api import public
from simcore.errors import BoardError


class RegionKind(Enum):
    """What a memory region is; decides how the engine maps and accounts it."""

    FLASH = "flash"
    RAM = "ram"
    IO = "io"
    #: A mask ROM simcore supplies itself (simcore.rom), mapped read/execute only.
    ROM = "rom"


@dataclass(frozen=True)
class MemoryRegion:
    """A half-open address range ``[start, end)`` of one kind of memory."""

    name: str
    kind: RegionKind
    start: int
    size_bytes: int
    xip_cache: bool = False
    #: The peripheral model behind an ``io`` region (:data:`PERIPHERALS`).
    peripheral: str = "registers"
    #: The ROM image of a ``rom`` region (:data:`ROM_IMAGES`, built by simcore.rom).
    image: str | None = None

    @property
    def end(self) -> int:
        return self.start + self.size_bytes

    def contains(self, address: int, size_bytes: int = 1) -> bool:
        return self.start <= address and address + size_bytes <= self.end


@dataclass(frozen=True)
class DataCacheSpec:
    """A data cache of its own in front of the cached region (``[cache.data_cache]``).

    Where a board has one (the Cortex-M7's L1 D-cache), data reads from the region
    go through it and instruction fetch through ``[cache]``; without one, both share
    ``[cache]`` (the RP2040/RP2350 XIP cache).
    """

    size_bytes: int
    ways: int
    line_bytes: int
    miss_cycles: int
    source: str


@dataclass(frozen=True)
class CacheSpec:
    """A cache in front of one slow memory region, as the board file declares it.

    Instruction fetch from ``region`` always goes through it; data reads only
    with ``data_reads`` (see the board files for why that differs per core).
    A hit costs what the core's timing table says; a miss adds ``miss_cycles``.
    """

    region: str
    size_bytes: int
    ways: int
    line_bytes: int
    miss_cycles: int
    tag: str
    source: str
    data_reads: bool
    data_reads_note: str
    #: A single-cycle IO region whose loads/stores cost ``fast_io_saving`` cycles less
    #: than the core table's figure (RP2040 SIO), if any.
    fast_io_region: str | None = None
    fast_io_saving: int = 0
    data_cache: DataCacheSpec | None = None


@dataclass(frozen=True)
class TimerSpec:
    """A free-running 64-bit tick counter in an io region, read by firmware to time itself.

    Its count is derived from the cycle model: ``ticks = cycles * tick_hz // clock_hz``.
    ``registers`` maps the register names of :data:`_TIMER_REGISTERS` (RP2040 datasheet
    4.6.5 names: TIMELR latches the high half for TIMEHR; the RAW pair does not latch;
    TIMELW then TIMEHW set the count) to their offsets in the region.
    """

    region: str
    tick_hz: int
    source: str
    registers: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class CoreSpec:
    """What a CPU core can execute and how unicorn emulates it."""

    name: str
    display_name: str
    architecture: str
    accepted_cpu_arch: tuple[int, ...]
    unicorn_model: str
    fpu: str  # "none", "single" or "double"
    dsp: bool
    divide: bool
    unaligned_access: bool
    #: SCB->CPUID as the core's TRM gives it.
    cpuid: int = 0
    #: SCB->CCR at reset, and whether software can write it (not on Armv6-M).
    ccr_reset: int = 0
    ccr_writable: bool = True
    #: arm-none-eabi-gcc target flags for this core (-mcpu, -mfpu, -mfloat-abi).
    compiler_flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkSpec:
    """Where a generated linker script places a program (the board file's ``[link]`` table).

    ``code_in`` is where ``.text`` and ``.rodata`` run: a flash region runs them
    in place, a RAM region (a TCM) gets them copied from flash at reset.
    ``data_in`` holds ``.data`` and ``.bss``; ``stack_in`` the heap and the stack
    (with the unmapped guard between them). :mod:`simcore.linker` owns the script.
    """

    code_in: str
    data_in: str
    stack_in: str
    stack_bytes: int
    heap_bytes: int


#: The stack and heap a board without a ``[link]`` table gets (today's shipped figures).
DEFAULT_STACK_BYTES = 8 * 1024
DEFAULT_HEAP_BYTES = 16 * 1024
#: The unmapped page between heap and stack (the linker scripts' ``.stack_guard``).
STACK_GUARD_BYTES = 1024


def parse_size(text: str | int) -> int:
    """Read a size in bytes: ``4096``, ``0x1000``, ``4K`` (or ``4k``), ``1M``; else ValueError."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a size")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"{text} is negative")
        return text
    m = re.fullmatch(r"\s*(0[xX][0-9a-fA-F]+|\d+)\s*([kKmM]?)\s*", text)
    if m is None:
        raise ValueError(f"{text!r} is not a size")
    return int(m.group(1), 0) * {"": 1, "k": 1024, "m": 1 << 20}[m.group(2).lower()]


def default_link(memory: Sequence[MemoryRegion], vector_table: int) -> LinkSpec:
    """The placement of a board without ``[link]``.

    Code runs in place from the region of the vector table; data, heap and
    stack go to the largest RAM region (the lowest on a tie), with an 8 KB stack
    and a 16 KB heap, or a quarter and an eighth of that region if it is smaller
    than 64 KB (a 16 KB nRF51 gets 4 KB and 2 KB).
    """
    load = next(r for r in memory if r.contains(vector_table))
    ram = max(
        (r for r in memory if r.kind is RegionKind.RAM), key=lambda r: (r.size_bytes, -r.start)
    )
    stack = min(DEFAULT_STACK_BYTES, ram.size_bytes // 4 // 8 * 8)
    heap = min(DEFAULT_HEAP_BYTES, ram.size_bytes // 8 // 8 * 8)
    return LinkSpec(load.name, ram.name, ram.name, stack, heap)


@dataclass(frozen=True)
class BoardSpec:
    """A board: its core, clock and memory map (regions sorted by address)."""

    name: str
    description: str
    core: CoreSpec
    clock_hz: int
    vector_table: int
    memory: tuple[MemoryRegion, ...]
    #: The cache in front of slow memory (the board file's ``[cache]`` table), if any.
    cache: CacheSpec | None = None
    #: Placement defaults of generated linker scripts (``[link]``; :func:`default_link` if absent).
    link: LinkSpec | None = None
    #: A microsecond timer firmware can read (the board file's ``[timer]``), if any.
    timer: TimerSpec | None = None
    #: Cycles of the core's implementation options as this chip has them (the board
    #: file's ``[core_timing]``: timing-table row name -> cycles, e.g. multiply = 1).
    core_timing: tuple[tuple[str, int], ...] = ()
    #: The chip's peripheral data (``data/peripherals/<name>.toml``, simcore.registers),
    #: if the board file names one (``peripherals = "rp2040"``).
    peripherals: str | None = None

    def region_at(self, address: int, size_bytes: int = 1) -> MemoryRegion | None:
        """Return the region holding ``[address, address + size_bytes)``, if one does."""
        for region in self.memory:
            if region.contains(address, size_bytes):
                return region
        return None

    def regions(self, kind: RegionKind) -> tuple[MemoryRegion, ...]:
        return tuple(r for r in self.memory if r.kind is kind)

    def describe_map(self) -> str:
        """One line listing the regions, for error messages."""
        return ", ".join(f"{r.name} 0x{r.start:08x}-0x{r.end:08x}" for r in self.memory)


#: Unicorn maps ARM memory in pages of this size (``uc.ctl_get_page_size()``, measured
#: 1024 on unicorn 2.1.4 for the M0, M33 and M7 models): region starts and sizes must
#: be multiples of it.
PAGE_BYTES = 0x400
ADDRESS_SPACE = 1 << 32
#: The Private Peripheral Bus (System Control Space, DWT, SysTick): simcore maps it
#: itself on every board, so no board region may overlap it.
PPB_START, PPB_END = 0xE0000000, 0xE0100000
MAX_CLOCK_HZ = 10_000_000_000
MAX_REGIONS = 64
#: The unicorn CPU models the engine knows (simcore.engine maps them to unicorn ids).
UNICORN_MODELS = ("CORTEX_M0", "CORTEX_M4", "CORTEX_M33", "CORTEX_M7")
#: Cortex-M VTOR holds bits [31:7]: a vector table is at least 128-byte aligned.
VECTOR_TABLE_ALIGN = 128

_BOARD_KEYS = (
    "name",
    "description",
    "core",
    "clock_hz",
    "vector_table",
    "memory",
    "cache",
    "link",
    "timer",
    "core_timing",
    "peripherals",
)
_LINK_KEYS = ("code_in", "data_in", "stack_in", "stack_size", "heap_size")
#: The ``[timer]`` table: a free-running microsecond counter (RP2040/RP2350 TIMER).
_TIMER_REGISTERS = ("timehw", "timelw", "timehr", "timelr", "timerawh", "timerawl")
_TIMER_KEYS = ("region", "tick_hz", "source", *_TIMER_REGISTERS)
_BOARD_REQUIRED = ("name", "description", "core", "clock_hz", "vector_table", "memory")
_REGION_KEYS = ("name", "kind", "start", "size", "xip_cache", "peripheral", "image")
#: The ROM images simcore writes and builds itself (simcore.rom.RECIPES).
ROM_IMAGES = ("rp2040", "rp2350")
#: Peripheral models an ``io`` region can have: plain registers that read back what
#: was written, or the RP2040/RP2350 SIO block (CPUID, hardware divider).
PERIPHERALS = ("registers", "rp2040-sio")
_CACHE_KEYS = (
    "region",
    "size_bytes",
    "ways",
    "line_bytes",
    "miss_cycles",
    "tag",
    "source",
    "data_reads",
    "data_reads_note",
    "fast_io_region",
    "fast_io_saving",
    "data_cache",
)
_DATA_CACHE_KEYS = ("size_bytes", "ways", "line_bytes", "miss_cycles", "source")
_CACHE_REQUIRED = ("region", "size_bytes", "ways", "line_bytes", "miss_cycles", "tag", "source")
#: How far a cache figure can be trusted (the timing tables' tags).
CACHE_TAGS = ("exact", "proxy", "model", "measured", "approximate")
_CORE_KEYS = (
    "display_name",
    "architecture",
    "accepted_cpu_arch",
    "unicorn_model",
    "fpu",
    "dsp",
    "divide",
    "unaligned_access",
    "cpuid",
    "ccr_reset",
    "ccr_writable",
    "compiler_flags",
)
_BOARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
_REGION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_MAX_TEXT = 200
#: Sources and notes (one line each) may say more.
_MAX_NOTE = 1000


def _data_dir() -> Path:
    return Path(str(resources.files("simcore") / "data"))


def _printable(text: str, limit: int = 80) -> str:
    """``text`` on one line: control characters escaped, long text cut."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _show(value: object) -> str:
    """A TOML value as a user wrote it, with its type where that is the problem."""
    if isinstance(value, bool):
        return "true (a boolean)" if value else "false (a boolean)"
    if isinstance(value, int):
        return f"{value} (0x{value:x})" if value >= 0 else str(value)
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, str):
        return f"the string {_printable(repr(value), 60)}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    return f"a {type(value).__name__}"


class _Schema:
    """Typed access to one TOML table; every refusal is a one-line BoardError.

    The message names the file and the key path (``memory[1].size``), shows the
    value found and ends with what is expected.
    """

    def __init__(self, file: str, table: object, path: str = "") -> None:
        self.file = _printable(file, 160)
        self.path = path
        if not isinstance(table, dict):
            self.fail(table, "a table of keys")
        self.table: dict[str, Any] = table

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _where(self, key: str | None) -> str:
        where = self._key(key) if key is not None else self.path
        return f"{self.file}: {where}" if where else self.file

    def fail(self, value: object, expected: str, key: str | None = None) -> NoReturn:
        raise BoardError(f"{self._where(key)} is {_show(value)}", hint=f"expected {expected}")

    def error(self, message: str, expected: str, key: str | None = None) -> NoReturn:
        raise BoardError(f"{self._where(key)}: {message}", hint=f"expected {expected}")

    def keys(self, allowed: Sequence[str], required: Sequence[str]) -> None:
        known = ", ".join(allowed)
        for key in self.table:
            if key not in allowed:
                self.error(f"unknown key {_printable(repr(key), 40)}", f"only {known}")
        for key in required:
            if key not in self.table:
                self.error(f"missing key {key!r}", f"all of {', '.join(required)}")

    def get(self, key: str, default: object = None) -> Any:
        return self.table.get(key, default)

    def text(
        self,
        key: str,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
        max_len: int = _MAX_TEXT,
    ) -> str:
        value = self.table[key]
        expected = what or f"a string of at most {max_len} printable characters"
        if not isinstance(value, str):
            self.fail(value, expected, key)
        if pattern is not None:
            if not pattern.fullmatch(value):
                self.fail(value, expected, key)
        elif not value or len(value) > max_len or not value.isprintable():
            self.fail(value, expected, key)
        return value

    def integer(self, key: str, lo: int, hi: int, what: str, multiple: int = 1) -> int:
        value = self.table[key]
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(value, what, key)
        if not lo <= value <= hi or value % multiple:
            self.fail(value, what, key)
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            self.fail(value, "true or false", key)
        return value

    def choice(self, key: str, choices: Sequence[str], noun: str) -> str:
        value = self.table[key]
        expected = f"one of {', '.join(choices)}"
        if not isinstance(value, str):
            self.fail(value, expected, key)
        if value not in choices:
            self.error(f"unknown {noun} {_printable(repr(value), 60)}", expected, key)
        return value

    def tables(self, key: str, lo: int, hi: int, what: str) -> list[_Schema]:
        value = self.table[key]
        if not isinstance(value, list) or not lo <= len(value) <= hi:
            self.fail(value, what, key)
        return [_Schema(self.file, item, f"{self._key(key)}[{i}]") for i, item in enumerate(value)]


def _read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file as UTF-8 (a UTF-8 byte-order mark is accepted)."""
    shown = _printable(str(path), 160)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BoardError(
            f"cannot read {shown}: {exc.strerror or type(exc).__name__}",
            hint="pass a readable board .toml file",
        ) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BoardError(f"{shown}: UTF-16 text", hint="save the board file as UTF-8")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise BoardError(
            f"{shown}: not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x})",
            hint="save the board file as UTF-8 TOML",
        ) from None
    from simcore.cache import parsed_toml

    try:
        return parsed_toml(text)
    except ValueError as exc:
        import tomllib  # here: a run whose files are cached never parses TOML

        if not isinstance(exc, tomllib.TOMLDecodeError):
            raise
        raise BoardError(
            f"{shown}: invalid TOML: {_printable(str(exc), 120)}", hint="fix the TOML syntax"
        ) from None
    except RecursionError:
        raise BoardError(f"{shown}: invalid TOML: nested too deeply", hint="fix the TOML") from None


def _parse_core(name: str, table: object, where: str) -> CoreSpec:
    s = _Schema(where, table, f"[{name}]")
    s.keys(_CORE_KEYS, _CORE_KEYS)
    arch = s.get("accepted_cpu_arch")
    if (
        not isinstance(arch, list)
        or not arch
        or not all(isinstance(a, int) and not isinstance(a, bool) and 0 <= a < 64 for a in arch)
    ):
        s.fail(arch, "a non-empty array of Tag_CPU_arch numbers (0-63)", "accepted_cpu_arch")
    flags = s.get("compiler_flags")
    if (
        not isinstance(flags, list)
        or not flags
        or not all(isinstance(f, str) and f.startswith("-m") and f.isprintable() for f in flags)
    ):
        s.fail(flags, "a non-empty array of -m target flags for gcc", "compiler_flags")
    return CoreSpec(
        name=name,
        display_name=s.text("display_name"),
        architecture=s.text("architecture"),
        accepted_cpu_arch=tuple(arch),
        unicorn_model=s.choice("unicorn_model", UNICORN_MODELS, "unicorn model"),
        fpu=s.choice("fpu", ("none", "single", "double"), "FPU"),
        dsp=s.flag("dsp"),
        divide=s.flag("divide"),
        unaligned_access=s.flag("unaligned_access"),
        cpuid=s.integer("cpuid", 0, 0xFFFFFFFF, "the 32-bit SCB->CPUID value"),
        ccr_reset=s.integer("ccr_reset", 0, 0xFFFFFFFF, "the 32-bit SCB->CCR reset value"),
        ccr_writable=s.flag("ccr_writable"),
        compiler_flags=tuple(flags),
    )


@cache
def load_cores() -> dict[str, CoreSpec]:
    """Load the shipped core descriptions (``data/cores.toml``)."""
    path = _data_dir() / "cores.toml"
    cores = {}
    for name, table in _read_toml(path).items():
        if not _BOARD_NAME.fullmatch(name):
            raise BoardError(
                f"{_printable(str(path))}: core name {_printable(repr(name), 40)}",
                hint="expected letters, digits, '.', '_', '+' or '-'",
            )
        cores[name] = _parse_core(name, table, str(path))
    if not cores:
        raise BoardError(f"{path}: no cores", hint="expected at least one [core] table")
    return cores


_SIZE = (
    f"a whole number of bytes, a multiple of {PAGE_BYTES} (unicorn maps memory in "
    f"{PAGE_BYTES // 1024} KB pages), at least {PAGE_BYTES}"
)
_START = f"an address, a multiple of {PAGE_BYTES} below 0x100000000"


def _parse_region(s: _Schema) -> MemoryRegion:
    s.keys(_REGION_KEYS, ("name", "kind", "start", "size"))
    name = s.text("name", _REGION_NAME, "a region name: a letter or '_' then letters, digits, '_'")
    kind = RegionKind(s.choice("kind", [k.value for k in RegionKind], "region kind"))
    start = s.integer("start", 0, ADDRESS_SPACE - PAGE_BYTES, _START, PAGE_BYTES)
    size = s.integer("size", PAGE_BYTES, ADDRESS_SPACE, _SIZE, PAGE_BYTES)
    if start + size > ADDRESS_SPACE:
        s.error(
            f"0x{start:08x} + 0x{size:x} ends past 4 GB (0x{start + size:x})",
            "a region inside the 32-bit address space",
        )
    if start < PPB_END and start + size > PPB_START:
        s.error(
            f"0x{start:08x}-0x{start + size:08x} overlaps the Private Peripheral Bus "
            f"0x{PPB_START:08x}-0x{PPB_END:08x} (System Control Space, DWT, SysTick)",
            "a region outside the PPB: simcore maps the PPB itself",
        )
    xip = s.flag("xip_cache")
    if xip and kind is not RegionKind.FLASH:
        s.fail(xip, "xip_cache only on a region of kind flash", "xip_cache")
    peripheral = "registers"
    if "peripheral" in s.table:
        peripheral = s.choice("peripheral", PERIPHERALS, "peripheral model")
        if kind is not RegionKind.IO:
            s.fail(peripheral, "a peripheral only on a region of kind io", "peripheral")
    image = None
    if kind is RegionKind.ROM:
        if "image" not in s.table:
            s.error(
                "missing key 'image'", f"the ROM image of a rom region: {', '.join(ROM_IMAGES)}"
            )
        image = s.choice("image", ROM_IMAGES, "ROM image")
    elif "image" in s.table:
        s.fail(s.get("image"), "an image only on a region of kind rom", "image")
    return MemoryRegion(
        name=name,
        kind=kind,
        start=start,
        size_bytes=size,
        xip_cache=xip,
        peripheral=peripheral,
        image=image,
    )


def parse_board(table: object, where: str) -> BoardSpec:
    """Validate one board table against the board schema and build its :class:`BoardSpec`.

    Every board simcore loads, shipped or a user's, goes through here; a value of
    the wrong type or out of range is a :class:`BoardError` naming ``where`` (the
    file), the key and what is expected.
    """
    s = _Schema(where, table)
    s.keys(_BOARD_KEYS, _BOARD_REQUIRED)
    name = s.text("name", _BOARD_NAME, "a board name: letters, digits, '.', '_', '+', '-'")
    description = s.text("description")
    cores = load_cores()
    core = s.choice("core", list(cores), "core")
    clock_hz = s.integer(
        "clock_hz", 1, MAX_CLOCK_HZ, f"the core clock in Hz, a whole number 1-{MAX_CLOCK_HZ:,}"
    )
    vector_table = s.integer(
        "vector_table",
        0,
        ADDRESS_SPACE - VECTOR_TABLE_ALIGN,
        f"an address, a multiple of {VECTOR_TABLE_ALIGN} (Cortex-M VTOR alignment)",
        VECTOR_TABLE_ALIGN,
    )
    regions = [
        _parse_region(r)
        for r in s.tables("memory", 1, MAX_REGIONS, f"1-{MAX_REGIONS} [[memory]] tables")
    ]
    names = [r.name for r in regions]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        s.error(f"two regions are named {dup!r}", "a distinct name per region", "memory")
    regions.sort(key=lambda r: r.start)
    for a, b in itertools.pairwise(regions):
        if a.end > b.start:
            s.error(
                f"regions {a.name} (0x{a.start:08x}-0x{a.end:08x}) and {b.name} "
                f"(0x{b.start:08x}-0x{b.end:08x}) overlap",
                "disjoint regions",
                "memory",
            )
    for kind, why in ((RegionKind.FLASH, "the program image"), (RegionKind.RAM, "the stack")):
        if not any(r.kind is kind for r in regions):
            s.error(
                f"no region of kind {kind.value}",
                f"at least one {kind.value} region for {why}",
                "memory",
            )
    board = BoardSpec(
        name=name,
        description=description,
        core=cores[core],
        clock_hz=clock_hz,
        vector_table=vector_table,
        memory=tuple(regions),
    )
    if "cache" in s.table:
        cache_spec = _parse_cache(_Schema(where, s.get("cache"), "cache"), regions)
        board = replace(board, cache=cache_spec)
    if "timer" in s.table:
        board = replace(board, timer=_parse_timer(_Schema(where, s.get("timer"), "timer"), regions))
    if "core_timing" in s.table:
        options = _parse_core_timing(_Schema(where, s.get("core_timing"), "core_timing"), core)
        board = replace(board, core_timing=options)
    if "peripherals" in s.table:
        from simcore.registers import load_chip  # the chip files use this module's schema

        chip = s.text("peripherals", _REGION_NAME, "the name of a chip file in data/peripherals")
        for space in load_chip(chip).spaces:
            for r in regions:
                if r.kind is not RegionKind.IO and r.start < space.end and space.start < r.end:
                    s.error(
                        f"region {r.name} overlaps the peripheral space {space.name} of {chip} "
                        f"(0x{space.start:08x}-0x{space.end:08x})",
                        "memory regions outside the chip's peripheral spaces",
                        "peripherals",
                    )
            if space.start < PPB_END and space.end > PPB_START:
                s.error(
                    f"{chip} space {space.name} overlaps the PPB",
                    "no space in 0xe0000000-0xe00fffff",
                    "peripherals",
                )
        board = replace(board, peripherals=chip)
    for r in regions:
        if r.xip_cache and (board.cache is None or board.cache.region != r.name):
            s.error(
                f"region {r.name} has xip_cache = true but no [cache] table covers it",
                "a [cache] table with region = " + repr(r.name) + " (size_bytes, ways, "
                "line_bytes, miss_cycles, tag, source), or no xip_cache",
                "memory",
            )
    region = board.region_at(vector_table, 8)
    if region is None or region.kind is RegionKind.IO:
        s.error(
            f"0x{vector_table:08x} is in no flash or RAM region ({board.describe_map()})",
            "the address of the reset vector table inside a flash or RAM region",
            "vector_table",
        )
    default = default_link(regions, vector_table)
    if "link" in s.table:
        default = _parse_link(_Schema(where, s.get("link"), "link"), regions, default)
    return replace(board, link=default)


def _parse_link(s: _Schema, regions: list[MemoryRegion], default: LinkSpec) -> LinkSpec:
    """The ``[link]`` table: regions that exist and can hold what is put there, sizes that fit."""
    s.keys(_LINK_KEYS, ())
    names = {r.name: r for r in regions}
    ram = [r.name for r in regions if r.kind is RegionKind.RAM]
    # Code runs in place from the region the image is loaded into, or from a RAM copy.
    runnable = [default.code_in, *(r for r in ram if r != default.code_in)]

    def region(key: str, allowed: list[str], what: str, fallback: str) -> str:
        if key not in s.table:
            return fallback
        value = s.text(key, _REGION_NAME, f"the name of {what}")
        if value not in allowed:
            s.error(f"{value!r} is not {what} of this board", f"one of {', '.join(allowed)}", key)
        return value

    def size(key: str, lo: int, fallback: int) -> int:
        if key not in s.table:
            return fallback
        value = s.get(key)
        expected = f'a size in bytes, a multiple of 8, at least {lo} (4096, 0x1000, "4K", "1M")'
        try:
            n = parse_size(value) if isinstance(value, str | int) else -1
        except ValueError:
            n = -1
        if n < lo or n % 8:
            s.fail(value, expected, key)
        return n

    code_in = region("code_in", runnable, "the load region or a RAM region", default.code_in)
    data_in = region("data_in", ram, "a RAM region", default.data_in)
    stack_in = region("stack_in", ram, "a RAM region", default.stack_in)
    stack = size("stack_size", 256, default.stack_bytes)
    heap = size("heap_size", 0, default.heap_bytes)
    room = names[stack_in].size_bytes
    if stack + heap + STACK_GUARD_BYTES > room:
        s.error(
            f"stack_size {stack} + heap_size {heap} + the {STACK_GUARD_BYTES}-byte stack guard "
            f"exceed region {stack_in} ({room} bytes)",
            "a stack and heap that fit their region",
            "stack_size",
        )
    return LinkSpec(code_in, data_in, stack_in, stack, heap)


def _parse_core_timing(s: _Schema, core: str) -> tuple[tuple[str, int], ...]:
    """``[core_timing]``: cycles for the rows of the core's table that are chip options."""
    from simcore.cycles.tables import load_table  # the tables module imports this one

    table = load_table(core)
    options = [r.name for r in table.rows if r.board_option]
    if not options:
        s.error(f"{core} has no implementation options", "no [core_timing] table")
    s.keys(options, ())
    return tuple(
        (name, s.integer(name, 0, 1000, "the cycles this chip's option takes, 0-1000"))
        for name in sorted(s.table)
    )


def _parse_cache(s: _Schema, regions: list[MemoryRegion]) -> CacheSpec:
    """The ``[cache]`` table: geometry the native model can build, regions that exist."""
    s.keys(_CACHE_KEYS, _CACHE_REQUIRED)
    names = {r.name: r for r in regions}
    region = s.text("region", _REGION_NAME, "the name of a flash region of this board")
    if region not in names or names[region].kind is not RegionKind.FLASH:
        s.error(
            f"no flash region named {_printable(repr(region), 40)}",
            f"one of {', '.join(r.name for r in regions if r.kind is RegionKind.FLASH)}",
            "region",
        )
    size, ways, line = _cache_geometry(s)
    fast_io = s.get("fast_io_region")
    if fast_io is not None:
        fast_io = s.text("fast_io_region", _REGION_NAME, "the name of an io region")
        if fast_io not in names or names[fast_io].kind is not RegionKind.IO:
            s.error(f"no io region named {fast_io!r}", "the name of an io region", "fast_io_region")
    data_reads = s.flag("data_reads")
    return CacheSpec(
        region=region,
        size_bytes=size,
        ways=ways,
        line_bytes=line,
        miss_cycles=s.integer("miss_cycles", 0, 100_000, "the cycles a miss adds, 0-100000"),
        tag=s.choice("tag", CACHE_TAGS, "tag"),
        source=s.text("source", max_len=_MAX_NOTE),
        data_reads=data_reads,
        data_reads_note=s.text("data_reads_note", max_len=_MAX_NOTE)
        if "data_reads_note" in s.table
        else "",
        fast_io_region=fast_io,
        fast_io_saving=s.integer("fast_io_saving", 0, 16, "cycles saved, 0-16")
        if "fast_io_saving" in s.table
        else 0,
        data_cache=_parse_data_cache(_Schema(s.file, s.get("data_cache"), s._key("data_cache")))
        if "data_cache" in s.table
        else None,
    )


def _parse_timer(s: _Schema, regions: list[MemoryRegion]) -> TimerSpec:
    """The ``[timer]`` table: an io region, a tick rate and register offsets inside it."""
    s.keys(_TIMER_KEYS, _TIMER_KEYS)
    names = {r.name: r for r in regions}
    region = s.text("region", _REGION_NAME, "the name of an io region of this board")
    if region not in names or names[region].kind is not RegionKind.IO:
        s.error(f"no io region named {_printable(repr(region), 40)}", "an io region", "region")
    if names[region].peripheral != "registers":
        s.error(
            f"io region {region} is already the {names[region].peripheral} model",
            "an io region without a peripheral model of its own",
            "region",
        )
    size = names[region].size_bytes
    registers = tuple(
        (name, s.integer(name, 0, size - 4, f"a word offset inside {region}", multiple=4))
        for name in _TIMER_REGISTERS
    )
    return TimerSpec(
        region=region,
        tick_hz=s.integer("tick_hz", 1, 1 << 32, "ticks per second, 1 to 2**32"),
        source=s.text("source", max_len=_MAX_NOTE),
        registers=registers,
    )


def _cache_geometry(s: _Schema) -> tuple[int, int, int]:
    """``size_bytes``, ``ways`` and ``line_bytes`` of a cache table, checked."""
    line = s.integer("line_bytes", 4, 4096, "a power of two from 4 to 4096 bytes")
    if line & (line - 1):
        s.fail(line, "a power of two from 4 to 4096 bytes", "line_bytes")
    ways = s.integer("ways", 1, 64, "1-64 ways")
    size = s.integer("size_bytes", line * ways, 1 << 24, "the cache size in bytes, at most 16 MB")
    sets = size // (ways * line)
    if size % (ways * line) or sets & (sets - 1):
        s.error(
            f"{size} bytes in {ways} ways of {line}-byte lines make {size / (ways * line):g} sets",
            "size_bytes = ways x line_bytes x a power of two",
            "size_bytes",
        )
    return size, ways, line


def _parse_data_cache(s: _Schema) -> DataCacheSpec:
    """The ``[cache.data_cache]`` table: a separate data cache's geometry and miss cost."""
    s.keys(_DATA_CACHE_KEYS, _DATA_CACHE_KEYS)
    size, ways, line = _cache_geometry(s)
    return DataCacheSpec(
        size_bytes=size,
        ways=ways,
        line_bytes=line,
        miss_cycles=s.integer("miss_cycles", 0, 100_000, "the cycles a miss adds, 0-100000"),
        source=s.text("source", max_len=_MAX_NOTE),
    )


def board_names() -> list[str]:
    """The shipped boards' names: their file names in ``data/boards``, without parsing them.

    A shipped board's ``name`` must equal its file name (:func:`load_shipped_board` checks
    it), so the list is known from the folder alone.
    """
    return [path.stem for path in sorted((_data_dir() / "boards").glob("*.toml"))]


@cache
def _shipped_board(directory: Path, name: str) -> BoardSpec:
    path = directory / f"{name}.toml"
    board = parse_board(_read_toml(path), str(path))
    if board.name != path.stem:
        raise BoardError(
            f"{_printable(str(path), 160)}: name {board.name!r} differs from the file name",
            hint=f"expected name = {_printable(repr(path.stem), 60)}",
        )
    return board


def load_shipped_board(name: str) -> BoardSpec:
    """Load one shipped board file (``data/boards/<name>.toml``) and only what it names.

    A run asks for one board: parsing only its file (and its core's timing table and
    chip file) keeps start-up short, and a broken unrelated file in the folder does not
    stop it. ``name`` must be one of :func:`board_names`.
    """
    return _shipped_board(_data_dir() / "boards", name)


@cache
def load_boards() -> dict[str, BoardSpec]:
    """Load every shipped board file (``data/boards/*.toml``), keyed by name."""
    return {name: load_shipped_board(name) for name in board_names()}


def clear_board_caches() -> None:
    """Forget every board, core and chip file read so far (for tests that swap the data)."""
    from simcore.registers import load_chip

    for cached in (load_boards, _shipped_board, load_cores, load_chip):
        cached.cache_clear()


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the system, and the like
        return False


@public
def get_board(name_or_path: str | Path) -> BoardSpec:
    """Return a shipped board by name, or load a user's board TOML by path.

    A user's board goes through the same schema as the shipped ones, and may not
    take a shipped board's name (results, baselines and cache models are keyed by it).
    """
    boards = board_names()
    name_or_path = str(name_or_path)
    if name_or_path in boards:
        return load_shipped_board(name_or_path)
    path = Path(name_or_path)
    shown = _printable(name_or_path, 160)
    if path.suffix.lower() == ".toml" or "/" in name_or_path or "\\" in name_or_path:
        if not _is_file(path):
            raise BoardError(
                f"board file {shown} does not exist or is not a file",
                hint=f"pass a board .toml file or one of {', '.join(boards)}",
            )
        try:
            shipped = path.resolve().parent == (_data_dir() / "boards").resolve()
        except (OSError, RuntimeError):
            shipped = False
        if shipped and path.stem in boards:
            return load_shipped_board(path.stem)
        board = parse_board(_read_toml(path), name_or_path)
        if board.name in boards:
            raise BoardError(
                f"{shown}: name {board.name!r} is the name of a shipped board",
                hint="expected a name of your own for your board",
            )
        return board
    raise BoardError(
        f"unknown board {_printable(repr(name_or_path), 80)}",
        hint=f"choose one of {', '.join(boards)} or pass a board .toml file",
    )
