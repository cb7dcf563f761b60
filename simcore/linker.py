"""Linker scripts generated from a board's memory map and the link options of a build.

A build places a program with five choices: the region ``.text`` and ``.rodata``
run from (``code_in``: the flash region the image is loaded into, or a RAM
region such as a TCM they are copied to at reset), the RAM region of ``.data``
and ``.bss`` (``data_in``), the RAM region of the heap and the stack
(``stack_in``), and the stack and heap sizes. The board file's ``[link]`` table
gives the defaults (:class:`simcore.boards.LinkSpec`); :class:`LinkOptions`
overrides any of them for one build (``simcore build --code-in ... --stack-size
16K``). Because the choices are whole output sections, an unmodified program
(no section attributes) can be placed: all of its data in AXI SRAM, say.
``place`` moves single zero-initialized variables by name (a TFLM
``tensor_arena``, the generated firmware's ``nn_arena``) to another RAM region
while the rest of ``.bss`` stays where it is; they are not zeroed at reset.

The section layout itself (vectors, init arrays, exception tables, the 1 KB
unmapped stack guard, the symbols newlib and the startup code use) is the one
shared template ``firmware_builds/ld/sections.ld``; a generated script is its
MEMORY and region aliases followed by that text, written beside the ELF so a
build can be inspected and repeated.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simcore import paths
from simcore.boards import (
    STACK_GUARD_BYTES,
    BoardSpec,
    LinkSpec,
    MemoryRegion,
    RegionKind,
    default_link,
)
from simcore.errors import ToolchainError, UsageError

#: The shared section layout every script ends with.
SECTIONS_TEMPLATE = paths.FIRMWARE_DIR / "ld" / "sections.ld"
#: The region aliases the template places sections in.
ALIASES = ("FLASH", "CODE", "DATA", "STACK")
#: The ``simcore build`` switch of each option, for messages.
SWITCHES = {
    "code_in": "--code-in",
    "data_in": "--data-in",
    "stack_in": "--stack-in",
    "stack_bytes": "--stack-size",
    "heap_bytes": "--heap-size",
    "place": "--place",
}
_C_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_MIN_STACK_BYTES = 256


@dataclass(frozen=True)
class LinkOptions:
    """Overrides of a board's ``[link]`` defaults for one build; ``None`` keeps the board's.

    Region options take a region name of the board (``"flash"``, ``"axi_sram"``);
    sizes are bytes, multiples of 8. ``place`` pairs a variable's name with a RAM
    region: ``(("tensor_arena", "axi_sram"),)``.
    """

    code_in: str | None = None
    data_in: str | None = None
    stack_in: str | None = None
    stack_bytes: int | None = None
    heap_bytes: int | None = None
    place: tuple[tuple[str, str], ...] = ()

    def given(self) -> dict[str, Any]:
        """The options set, by field name."""
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ()}


@dataclass(frozen=True)
class LinkLayout:
    """Where one build puts everything: a board's regions chosen for each part."""

    board: BoardSpec
    #: The flash (or RAM) region holding the vector table: the load image.
    load: MemoryRegion
    code: MemoryRegion
    data: MemoryRegion
    stack: MemoryRegion
    stack_bytes: int
    heap_bytes: int
    #: Zero-initialized variables moved out of ``.bss``: (name, region).
    place: tuple[tuple[str, MemoryRegion], ...] = ()

    def options(self) -> dict[str, Any]:
        """The placement as the manifest records it (region names and sizes in bytes)."""
        return {
            "code_in": self.code.name,
            "data_in": self.data.name,
            "stack_in": self.stack.name,
            "stack_bytes": self.stack_bytes,
            "heap_bytes": self.heap_bytes,
            **({"place": {n: r.name for n, r in self.place}} if self.place else {}),
        }

    def data_room_bytes(self) -> int:
        """Bytes of the data region left for static data once heap, guard and stack are in."""
        room = self.data.size_bytes
        if self.stack == self.data:
            room -= self.stack_bytes + self.heap_bytes + STACK_GUARD_BYTES
        return room

    def roles(self, region: MemoryRegion) -> list[str]:
        """What this layout puts in ``region``, as option names."""
        return [
            role
            for role, r in (
                ("code_in", self.code),
                ("data_in", self.data),
                ("stack_in", self.stack),
            )
            if r == region
        ] + (["place"] if any(r == region for _, r in self.place) else [])


def _bad(option: str, value: object, expected: str) -> UsageError:
    return UsageError(f"{SWITCHES[option]} {value}: {expected}")


def resolve(board: BoardSpec, options: LinkOptions | None = None) -> LinkLayout:
    """Merge ``options`` into the board's ``[link]`` defaults and check the result.

    Raises :class:`UsageError` naming the option (as its ``simcore build``
    switch) when a region does not exist or cannot hold what it is asked to,
    or when the stack and heap do not fit their region.
    """
    spec: LinkSpec = board.link or default_link(board.memory, board.vector_table)
    opts = options or LinkOptions()
    by_name = {r.name: r for r in board.memory}
    load = board.region_at(board.vector_table, 8)
    if load is None:
        raise UsageError(f"board {board.name}: its vector table is in no memory region")
    ram = [r.name for r in board.memory if r.kind is RegionKind.RAM]

    def region(
        option: str, value: str, allowed: list[str], what: str, shown: str = ""
    ) -> MemoryRegion:
        if value not in allowed:
            raise _bad(
                option,
                shown or value,
                f"board {board.name} has no {what} named {value}; "
                f"choose one of {', '.join(allowed)}",
            )
        return by_name[value]

    runnable = [load.name, *(r for r in ram if r != load.name)]
    code = region("code_in", opts.code_in or spec.code_in, runnable, "load or RAM region")
    data = region("data_in", opts.data_in or spec.data_in, ram, "RAM region")
    stack = region("stack_in", opts.stack_in or spec.stack_in, ram, "RAM region")
    sizes = {}
    for option, value, lo in (
        ("stack_bytes", opts.stack_bytes, _MIN_STACK_BYTES),
        ("heap_bytes", opts.heap_bytes, 0),
    ):
        if value is not None and (value < lo or value % 8):
            raise _bad(option, value, f"a size in bytes, a multiple of 8, at least {lo}")
        sizes[option] = value
    stack_bytes = sizes["stack_bytes"] if sizes["stack_bytes"] is not None else spec.stack_bytes
    heap_bytes = sizes["heap_bytes"] if sizes["heap_bytes"] is not None else spec.heap_bytes
    if stack_bytes + heap_bytes + STACK_GUARD_BYTES > stack.size_bytes:
        raise UsageError(
            f"a {stack_bytes}-byte stack, a {heap_bytes}-byte heap and the "
            f"{STACK_GUARD_BYTES}-byte stack guard do not fit region {stack.name} "
            f"({stack.size_bytes} bytes) of board {board.name}",
            hint="use a smaller --stack-size or --heap-size, or another --stack-in region",
        )
    place: list[tuple[str, MemoryRegion]] = []
    for name, where in opts.place:
        if not _C_NAME.fullmatch(name):
            raise _bad("place", f"{name}={where}", "expected NAME=REGION with a C variable name")
        if name in (n for n, _ in place):
            raise _bad("place", f"{name}={where}", f"{name} is placed twice")
        place.append((name, region("place", where, ram, "RAM region", f"{name}={where}")))
    return LinkLayout(board, load, code, data, stack, stack_bytes, heap_bytes, tuple(place))


def _placed_sections(layout: LinkLayout) -> list[str]:
    """A SECTIONS block for ``place``, before the template's so its patterns match first.

    A variable ``NAME`` compiled with -fdata-sections is in ``.bss.NAME`` (C), or in
    a section named by its C++ mangled name (``.bss._ZN...12tensor_arenaE`` in a
    namespace, ``.bss._ZZ4mainE5arena`` as a static local).
    """
    if not layout.place:
        return []
    lines = [
        "/* --place: variables moved out of .bss to another region. NOLOAD and outside",
        " * __bss_start..__bss_end: not zeroed at reset (like .noinit). */",
        "SECTIONS",
        "{",
    ]
    for region in dict.fromkeys(r for _, r in layout.place):
        patterns = " ".join(
            f".bss.{n} .bss.{n}.* .bss._ZN*[0-9]{n}E .bss._ZZ*E[0-9]{n} .bss._ZZ*E[0-9]{n}_*"
            for n, r in layout.place
            if r == region
        )
        lines += [
            f"    .place.{region.name} (NOLOAD) : ALIGN(8)",
            "    {",
            f"        *({patterns})",
            f"    }} > {_memory_name(region)}",
        ]
    return [*lines, "}", ""]


def check_placed(layout: LinkLayout, symbols: dict[str, tuple[int, str]]) -> None:
    """Raise a UsageError for a ``place`` name that matched no variable in the linked ELF.

    ``symbols`` maps symbol names to (address, kind). Only zero-initialized
    variables (``.bss``) can be placed; an initialized one stays in ``.data``.
    """
    for name, region in layout.place:
        mangled = f"{len(name)}{name}"
        found = [
            address
            for sym, (address, kind) in symbols.items()
            if kind == "object" and (sym == name or (sym.startswith("_Z") and mangled in sym))
        ]
        if not any(region.contains(a) for a in found):
            raise UsageError(
                f"--place {name}={region.name}: no zero-initialized variable {name} was placed",
                hint="name a global or static variable without an initializer "
                "(initialized variables stay in .data; functions cannot be placed)",
            )


def _memory_name(region: MemoryRegion) -> str:
    """The region's name in the script: the board's, unless it is one of the aliases."""
    return f"{region.name}_region" if region.name in ALIASES else region.name


def script_text(layout: LinkLayout) -> str:
    """The whole linker script of ``layout``: MEMORY, aliases, sizes, then the shared sections."""
    board = layout.board
    lines = [
        f"/* Generated by simcore (simcore/linker.py) for board {board.name}; do not edit,",
        " * rebuild with other options instead. Placement:",
        *(f" *   {SWITCHES[k]} {v}" for k, v in layout.options().items() if k != "place"),
        *(f" *   --place {n}={r.name}" for n, r in layout.place),
        " */",
        "MEMORY",
        "{",
    ]
    for r in board.memory:
        if r.kind in (RegionKind.IO, RegionKind.ROM):
            continue
        start = board.vector_table if r == layout.load else r.start
        mode = "rx" if r.kind is RegionKind.FLASH else "rwx"
        lines.append(
            f"    {_memory_name(r)} ({mode}) : ORIGIN = 0x{start:08x}, LENGTH = 0x{r.end - start:x}"
        )
    lines += [
        "}",
        f'REGION_ALIAS("FLASH", {_memory_name(layout.load)});',
        f'REGION_ALIAS("CODE", {_memory_name(layout.code)});',
        f'REGION_ALIAS("DATA", {_memory_name(layout.data)});',
        f'REGION_ALIAS("STACK", {_memory_name(layout.stack)});',
        f"HEAP_SIZE = {layout.heap_bytes};",
        f"STACK_SIZE = {layout.stack_bytes};",
        "",
        *_placed_sections(layout),
    ]
    try:
        sections = SECTIONS_TEMPLATE.read_text()
    except OSError as exc:
        raise ToolchainError(
            f"cannot read the section template {SECTIONS_TEMPLATE}: {exc.strerror}",
            hint="reinstall simcore (the firmware tree is incomplete)",
        ) from None
    return "\n".join(lines) + "\n" + sections


def write_script(layout: LinkLayout, path: Path) -> Path:
    """Write ``layout``'s script to ``path`` (atomically: concurrent builds may share a folder)."""
    text = script_text(layout)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ToolchainError(
            f"cannot write linker script {path}: {exc.strerror}", hint="pass a writable output"
        ) from None
    return path


_OVERFLOW = re.compile(r"region `([^']+)' overflowed by (\d+) bytes")


def _fix(layout: LinkLayout, region: MemoryRegion) -> str:
    """The option that makes room in ``region``, for an overflow message."""
    board = layout.board
    roles = layout.roles(region)
    bigger = [
        r.name
        for r in sorted(board.regions(RegionKind.RAM), key=lambda r: -r.size_bytes)
        if r.size_bytes > region.size_bytes and r != region
    ]
    fixes = []
    if "code_in" in roles and region != layout.load:
        fixes.append(f"--code-in {layout.load.name}")
    if "data_in" in roles and bigger:
        fixes.append(f"--data-in {bigger[0]}")
    if "stack_in" in roles and region == layout.data and bigger:
        fixes.append(f"--stack-in {bigger[0]}")
    if "stack_in" in roles:
        fixes.append("a smaller --stack-size or --heap-size")
    if "place" in roles and bigger:
        fixes.append(f"--place NAME={bigger[0]}")
    if fixes:
        return "build with " + ", or ".join(fixes)
    return f"the program is larger than board {board.name}'s {region.name}: make it smaller"


def explain_overflow(stderr: str, layout: LinkLayout | None) -> ToolchainError | None:
    """A one-line error for the linker's "region overflowed" message, naming the fix.

    ``None`` when ``stderr`` reports no overflow. With a user's own script
    (``layout`` None) the region is named as the script names it.
    """
    found = _OVERFLOW.findall(stderr)
    if not found:
        return None
    name, excess = found[0]
    if layout is None:
        return ToolchainError(
            f"region {name} overflowed by {excess} bytes",
            hint="make the program smaller or give it more room in your linker script",
        )
    regions = {_memory_name(r): r for r in layout.board.memory}
    region = regions.get(name)
    if region is None:
        return ToolchainError(f"region {name} overflowed by {excess} bytes")
    held = {"code_in": "code and constants", "data_in": ".data and .bss",
            "stack_in": "heap and stack", "place": "placed variables"}  # fmt: skip
    what = ", ".join(held[r] for r in layout.roles(region)) or "the load image"
    if region == layout.load and "load image" not in what:
        what += ", the load image"
    return ToolchainError(
        f"{region.name} overflowed by {excess} bytes ({what}; {region.size_bytes} bytes)",
        hint=_fix(layout, region),
    )
