"""Boards and cores as data: TOML files loaded into frozen dataclasses.

A board names a core, a clock and a memory map. Users add a board by dropping
a TOML file next to the shipped ones (or passing a path); no Python needed.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from enum import Enum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from simcore.errors import BoardError


class RegionKind(Enum):
    """What a memory region is; decides how the engine maps and accounts it."""

    FLASH = "flash"
    RAM = "ram"
    IO = "io"


@dataclass(frozen=True)
class MemoryRegion:
    """A half-open address range ``[start, end)`` of one kind of memory."""

    name: str
    kind: RegionKind
    start: int
    size_bytes: int
    xip_cache: bool = False

    @property
    def end(self) -> int:
        return self.start + self.size_bytes

    def contains(self, address: int, size_bytes: int = 1) -> bool:
        return self.start <= address and address + size_bytes <= self.end


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


@dataclass(frozen=True)
class BoardSpec:
    """A board: its core, clock and memory map (regions sorted by address)."""

    name: str
    description: str
    core: CoreSpec
    clock_hz: int
    vector_table: int
    memory: tuple[MemoryRegion, ...]

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


_BOARD_KEYS = {"name", "description", "core", "clock_hz", "vector_table", "memory"}
_REGION_KEYS = {"name", "kind", "start", "size", "xip_cache"}
_CORE_KEYS = {
    "display_name",
    "architecture",
    "accepted_cpu_arch",
    "unicorn_model",
    "fpu",
    "dsp",
    "divide",
    "unaligned_access",
}


def _data_dir() -> Path:
    return Path(str(resources.files("simcore") / "data"))


def _check_keys(where: str, table: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise BoardError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    missing = required - set(table)
    if missing:
        raise BoardError(f"{where}: missing key(s) {', '.join(sorted(missing))}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise BoardError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: invalid TOML: {exc}") from exc


@cache
def load_cores() -> dict[str, CoreSpec]:
    """Load the shipped core descriptions (``data/cores.toml``)."""
    path = _data_dir() / "cores.toml"
    cores = {}
    for name, table in _read_toml(path).items():
        _check_keys(f"{path} [{name}]", table, _CORE_KEYS, _CORE_KEYS)
        if table["fpu"] not in ("none", "single", "double"):
            raise BoardError(f"{path} [{name}]: fpu must be none, single or double")
        cores[name] = CoreSpec(
            name=name,
            display_name=table["display_name"],
            architecture=table["architecture"],
            accepted_cpu_arch=tuple(table["accepted_cpu_arch"]),
            unicorn_model=table["unicorn_model"],
            fpu=table["fpu"],
            dsp=bool(table["dsp"]),
            divide=bool(table["divide"]),
            unaligned_access=bool(table["unaligned_access"]),
        )
    return cores


def parse_board(table: dict[str, Any], where: str) -> BoardSpec:
    """Validate one board table and build its :class:`BoardSpec`."""
    _check_keys(where, table, _BOARD_KEYS, _BOARD_KEYS)
    cores = load_cores()
    if table["core"] not in cores:
        raise BoardError(f"{where}: unknown core {table['core']!r} (known: {', '.join(cores)})")
    regions = []
    for i, reg in enumerate(table["memory"]):
        rwhere = f"{where} memory[{i}]"
        _check_keys(rwhere, reg, _REGION_KEYS, {"name", "kind", "start", "size"})
        try:
            kind = RegionKind(reg["kind"])
        except ValueError:
            raise BoardError(f"{rwhere}: kind must be flash, ram or io") from None
        if reg["size"] <= 0 or reg["start"] < 0 or reg["start"] + reg["size"] > 1 << 32:
            raise BoardError(f"{rwhere}: region does not fit the 32-bit address space")
        regions.append(
            MemoryRegion(
                name=reg["name"],
                kind=kind,
                start=reg["start"],
                size_bytes=reg["size"],
                xip_cache=bool(reg.get("xip_cache", False)),
            )
        )
    regions.sort(key=lambda r: r.start)
    for a, b in itertools.pairwise(regions):
        if a.end > b.start:
            raise BoardError(f"{where}: regions {a.name} and {b.name} overlap")
    if table["clock_hz"] <= 0:
        raise BoardError(f"{where}: clock_hz must be positive")
    board = BoardSpec(
        name=table["name"],
        description=table["description"],
        core=cores[table["core"]],
        clock_hz=int(table["clock_hz"]),
        vector_table=int(table["vector_table"]),
        memory=tuple(regions),
    )
    if board.region_at(board.vector_table, 8) is None:
        raise BoardError(f"{where}: vector_table 0x{board.vector_table:08x} is in no region")
    return board


@cache
def load_boards() -> dict[str, BoardSpec]:
    """Load every shipped board file (``data/boards/*.toml``), keyed by name."""
    boards = {}
    for path in sorted((_data_dir() / "boards").glob("*.toml")):
        board = parse_board(_read_toml(path), str(path))
        if board.name != path.stem:
            raise BoardError(f"{path}: name {board.name!r} differs from the file name")
        boards[board.name] = board
    return boards


def get_board(name_or_path: str) -> BoardSpec:
    """Return a shipped board by name, or load a user's board TOML by path."""
    boards = load_boards()
    if name_or_path in boards:
        return boards[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        return parse_board(_read_toml(path), str(path))
    raise BoardError(
        f"unknown board {name_or_path!r}",
        hint=f"choose one of {', '.join(boards)} or pass a board .toml file",
    )
