"""Memory accounting: flash and static RAM from the ELF, stack and heap peaks from the run.

The stack peak comes from painting: before reset the stack region is filled
with a pattern, after the run the lowest overwritten word marks the high-water
mark. The heap peak is the largest net amount ``_sbrk`` granted (the engine
hooks the symbol and its returns; a refused request does not count). Both are
measured, not estimated from code.

Every figure is also kept per memory region of the board: a region is full when
what is linked into it (program data, harness I/O buffers, heap and stack
reservations) reaches its capacity, whatever room other regions have. simcore's
own I/O buffers (the ``simcore_io`` descriptor and the input/output buffers it
points to) are shown apart from the program's static RAM.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from simcore.boards import BoardSpec, MemoryRegion, RegionKind
from simcore.elf import ElfImage

STACK_PAINT = 0xC5
#: Sections that reserve memory for the heap and the stack rather than hold
#: program data (simcore's linker script, pico-sdk, STM32CubeIDE).
RESERVATION_SECTIONS = frozenset(
    {".heap", ".stack", ".stack_guard", ".stack_dummy", "._user_heap_stack", ".stack1_dummy"}
)
STACK_LIMIT_SYMBOLS = ("__stack_limit", "__StackLimit", "__StackBottom")
GUARD_SYMBOLS = ("__stack_guard_start", "__stack_guard_end")


@dataclass(frozen=True)
class StackLayout:
    """Where the stack lives: painted ``[limit, top)``; optional unmapped guard below."""

    top: int
    limit: int
    guard: tuple[int, int] | None


@dataclass(frozen=True)
class Usage:
    """One resource against its capacity.

    With ``region_used_bytes`` set, ``capacity_bytes`` is the size of the region
    named by ``region`` and ``percent`` how full the program makes it:
    ``region_used_bytes`` over its capacity, which is more than ``used_bytes`` when
    the region holds other things too (heap and stack reservations).
    """

    used_bytes: int
    capacity_bytes: int
    region: str | None = None
    region_used_bytes: int | None = None

    @property
    def percent(self) -> float:
        used = self.used_bytes if self.region_used_bytes is None else self.region_used_bytes
        return 100.0 * used / self.capacity_bytes if self.capacity_bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "used_bytes": self.used_bytes,
            "capacity_bytes": self.capacity_bytes,
            "percent": round(self.percent, 2),
        }
        if self.region is not None:
            out["region"] = self.region
        if self.region_used_bytes is not None:
            out["region_used_bytes"] = self.region_used_bytes
        return out


@dataclass(frozen=True)
class HarnessBuffer:
    """Memory the firmware holds only for simcore (batch I/O), not for the program."""

    name: str
    address: int
    size_bytes: int
    region: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": f"0x{self.address:08x}",
            "size_bytes": self.size_bytes,
            "region": self.region,
        }


@dataclass(frozen=True)
class RegionUsage:
    """What one memory region of the board holds, against its capacity."""

    name: str
    kind: RegionKind
    start: int
    capacity_bytes: int
    program_bytes: int  # flash: the load image; RAM: code, data and bss of the program
    harness_bytes: int  # simcore's I/O buffers
    reserved_bytes: int  # heap, stack and guard reservations (linker sections)
    stack_peak_bytes: int | None = None  # the stack lives here
    heap_peak_bytes: int | None = None  # the heap lives here

    @property
    def used_bytes(self) -> int:
        return self.program_bytes + self.harness_bytes + self.reserved_bytes

    @property
    def percent(self) -> float:
        return 100.0 * self.used_bytes / self.capacity_bytes if self.capacity_bytes else 0.0

    @property
    def program_used_bytes(self) -> int:
        """What the program needs here: everything but simcore's harness buffers."""
        return self.program_bytes + self.reserved_bytes

    @property
    def program_percent(self) -> float:
        cap = self.capacity_bytes
        return 100.0 * self.program_used_bytes / cap if cap else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "start": f"0x{self.start:08x}",
            "capacity_bytes": self.capacity_bytes,
            "used_bytes": self.used_bytes,
            "percent": round(self.percent, 2),
            "program_percent": round(self.program_percent, 2),
            "program_bytes": self.program_bytes,
            "harness_bytes": self.harness_bytes,
            "reserved_bytes": self.reserved_bytes,
            "stack_peak_bytes": self.stack_peak_bytes,
            "heap_peak_bytes": self.heap_peak_bytes,
        }


@dataclass(frozen=True)
class MemoryReport:
    """Memory use of one run against the board's capacity.

    ``static_ram`` is the program's own static RAM (harness buffers excluded); its
    ``region`` is the fullest RAM region holding it, and its percent how much of that
    region the program takes (its static data, heap and stack reservations): simcore's
    batch I/O buffers are not the program's, and a one-sample build would not have them.
    """

    flash: Usage
    static_ram: Usage
    stack_peak: Usage  # capacity: the stack region that was painted
    heap_peak: Usage  # capacity: the heap reservation, when known
    stack_overflowed_paint: bool  # the whole painted region was used: the peak may be higher
    regions: tuple[RegionUsage, ...] = ()  # the board's flash and RAM regions, by address
    harness: tuple[HarnessBuffer, ...] = ()

    @property
    def harness_bytes(self) -> int:
        return sum(b.size_bytes for b in self.harness if b.region is not None)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: getattr(self, name).as_dict()
            for name in ("flash", "static_ram", "stack_peak", "heap_peak")
        }
        out["harness_io"] = {
            "used_bytes": self.harness_bytes,
            "buffers": [b.as_dict() for b in self.harness],
        }
        out["regions"] = [r.as_dict() for r in self.regions]
        return out


def flash_bytes(image: ElfImage, board: BoardSpec) -> int:
    """Bytes of the load image stored in flash (text, rodata and the .data image)."""
    total = 0
    for seg in image.segments:
        region = board.region_at(seg.load_address, max(len(seg.data), 1))
        if region is not None and region.kind is RegionKind.FLASH:
            total += len(seg.data)
    return total


def static_ram_bytes(image: ElfImage, board: BoardSpec) -> int:
    """Bytes of RAM taken by data and bss (code copied to a TCM counts too)."""
    total = 0
    for name, (addr, size, alloc, _nobits) in image.section_sizes.items():
        if not alloc or size == 0 or name in RESERVATION_SECTIONS:
            continue
        region = board.region_at(addr, size)
        if region is not None and region.kind is RegionKind.RAM:
            total += size
    return total


#: The most simcore paints below the initial SP (a board may have gigabytes of RAM;
#: microcontroller stacks are kilobytes). A larger stack reads as exhausted paint.
MAX_STACK_PAINT_BYTES = 16 << 20


def stack_region(board: BoardSpec, initial_sp: int) -> MemoryRegion | None:
    """The RAM region the stack grows down in: the one holding the word below ``initial_sp``."""
    region = board.region_at(initial_sp - 4, 4) if initial_sp >= 4 else None
    return region if region is not None and region.kind is RegionKind.RAM else None


def stack_layout(image: ElfImage, board: BoardSpec, initial_sp: int) -> StackLayout:
    """Find the stack's extent from linker symbols, or from the end of static data.

    Everything stays inside the RAM region of the initial SP (the caller checks there
    is one), and at most :data:`MAX_STACK_PAINT_BYTES` are painted: linker symbols
    and the SP come from the firmware and are not trusted further.
    """
    region = stack_region(board, initial_sp)
    floor = region.start if region is not None else initial_sp
    guard = None
    start, end = (image.symbol(n) for n in GUARD_SYMBOLS)
    if start is not None and end is not None and floor <= start.address < end.address <= initial_sp:
        guard = (start.address, end.address)
    limit = next(
        (s.address for n in STACK_LIMIT_SYMBOLS if (s := image.symbol(n)) is not None), None
    )
    if limit is None or not floor <= limit < initial_sp:
        # No usable symbol: everything between the end of static data and the initial SP.
        for _name, (addr, size, alloc, _) in image.section_sizes.items():
            if alloc and size and addr < initial_sp and addr + size > floor:
                floor = max(floor, addr + size)
        limit = min(floor, initial_sp)
    limit = max(limit, initial_sp - MAX_STACK_PAINT_BYTES)
    return StackLayout(top=initial_sp, limit=min((limit + 3) & ~3, initial_sp), guard=guard)


def stack_peak_bytes(layout: StackLayout, painted: bytes) -> tuple[int, bool]:
    """Return (peak bytes, whether the whole painted region was used)."""
    size = len(painted)
    for offset in range(0, size, 4):
        if painted[offset : offset + 4] != bytes([STACK_PAINT]) * 4:
            return size - offset, offset == 0
    return 0, False


def heap_capacity(image: ElfImage) -> int:
    start, end = image.symbol("__heap_start"), image.symbol("__heap_end")
    if start is not None and end is not None and end.address > start.address:
        return end.address - start.address
    return 0


#: ``simcore_io_t`` up to its buffer pointers (simcore_abi.h, ABI version 1).
_IO_LAYOUT = "<8I"
_IO_MAGIC = 0x434D4953


def harness_buffers(image: ElfImage, board: BoardSpec) -> tuple[HarnessBuffer, ...]:
    """The ``simcore_io`` descriptor and its input/output buffers, from the load image.

    A firmware without a valid descriptor has none. Buffers are named by the
    object symbol at their address when there is one.
    """
    sym = image.symbol("simcore_io")
    if sym is None:
        return ()
    raw = image.initial_bytes(sym.address, struct.calcsize(_IO_LAYOUT))
    if raw is None:
        return ()
    magic, version, in_b, out_b, cap, _n, in_ptr, out_ptr = struct.unpack(_IO_LAYOUT, raw)
    if magic != _IO_MAGIC or version != 1:
        return ()
    by_address = {s.address: s.name for s in image.symbols.values() if s.kind == "object"}

    def buffer(name: str, address: int, size: int) -> HarnessBuffer:
        region = board.region_at(address, max(size, 1))
        return HarnessBuffer(
            by_address.get(address, name),
            address,
            size,
            region.name if region is not None and region.kind is RegionKind.RAM else None,
        )

    out = [buffer("simcore_io", sym.address, sym.size_bytes or struct.calcsize(_IO_LAYOUT))]
    for name, address, size in (
        ("simcore_io.input", in_ptr, in_b * cap),
        ("simcore_io.output", out_ptr, out_b * cap),
    ):
        if size and all(not b.address <= address < b.address + b.size_bytes for b in out):
            out.append(buffer(name, address, size))
    return tuple(out)


def _overlap(start: int, size: int, buffers: tuple[HarnessBuffer, ...]) -> int:
    end = start + size
    return sum(max(0, min(end, b.address + b.size_bytes) - max(start, b.address)) for b in buffers)


def region_usages(
    image: ElfImage,
    board: BoardSpec,
    harness: tuple[HarnessBuffer, ...],
    stack: StackLayout | None = None,
    stack_peak: int = 0,
    heap_peak: int = 0,
) -> tuple[RegionUsage, ...]:
    """What each flash and RAM region of the board holds, from the ELF's segments and sections."""
    flash: dict[str, int] = {}
    for seg in image.segments:
        region = board.region_at(seg.load_address, max(len(seg.data), 1))
        if region is not None and region.kind is RegionKind.FLASH:
            flash[region.name] = flash.get(region.name, 0) + len(seg.data)
    program: dict[str, int] = {}
    in_harness: dict[str, int] = {}
    reserved: dict[str, int] = {}
    for name, (addr, size, alloc, _nobits) in image.section_sizes.items():
        if not alloc or size == 0:
            continue
        region = board.region_at(addr, size)
        if region is None or region.kind is not RegionKind.RAM:
            continue
        if name in RESERVATION_SECTIONS:
            reserved[region.name] = reserved.get(region.name, 0) + size
            continue
        shared = _overlap(addr, size, harness)
        in_harness[region.name] = in_harness.get(region.name, 0) + shared
        program[region.name] = program.get(region.name, 0) + size - shared
    stack_region_name = None
    if stack is not None and stack.top > stack.limit:
        region = board.region_at(stack.limit, stack.top - stack.limit)
        stack_region_name = region.name if region is not None else None
    heap = image.symbol("__heap_start")
    heap_region = board.region_at(heap.address) if heap is not None else None
    out = []
    for region in board.memory:
        if region.kind in (RegionKind.IO, RegionKind.ROM):
            continue
        is_flash = region.kind is RegionKind.FLASH
        out.append(
            RegionUsage(
                name=region.name,
                kind=region.kind,
                start=region.start,
                capacity_bytes=region.size_bytes,
                program_bytes=flash.get(region.name, 0)
                if is_flash
                else program.get(region.name, 0),
                harness_bytes=0 if is_flash else in_harness.get(region.name, 0),
                reserved_bytes=0 if is_flash else reserved.get(region.name, 0),
                stack_peak_bytes=stack_peak if region.name == stack_region_name else None,
                heap_peak_bytes=(
                    heap_peak
                    if heap_region is not None and region.name == heap_region.name
                    else None
                ),
            )
        )
    return tuple(out)


def _fullest(regions: list[RegionUsage]) -> RegionUsage | None:
    return max(regions, key=lambda r: r.program_percent, default=None)


def memory_report(
    image: ElfImage,
    board: BoardSpec,
    stack: StackLayout,
    painted: bytes,
    heap_peak: int,
) -> MemoryReport:
    """Account one finished run: ``painted`` is the stack region read back after it."""
    stack_peak, exhausted = stack_peak_bytes(stack, painted)
    harness = harness_buffers(image, board)
    regions = region_usages(image, board, harness, stack, stack_peak, heap_peak)
    flash_regions = [r for r in regions if r.kind is RegionKind.FLASH]
    ram = [r for r in regions if r.kind is RegionKind.RAM]
    flash_home = _fullest([r for r in flash_regions if r.program_bytes]) or _fullest(flash_regions)
    flash_used = sum(r.program_bytes for r in flash_regions)
    static_home = _fullest([r for r in ram if r.program_bytes]) or _fullest(
        [r for r in ram if r.program_used_bytes]
    )
    static_used = sum(r.program_bytes for r in ram)
    stack_home = next((r.name for r in ram if r.stack_peak_bytes is not None), None)
    heap_home = next((r.name for r in ram if r.heap_peak_bytes is not None), None)
    return MemoryReport(
        flash=(
            Usage(flash_used, flash_home.capacity_bytes, flash_home.name, flash_home.program_bytes)
            if flash_home is not None
            else Usage(flash_used, 0)
        ),
        static_ram=(
            Usage(
                static_used,
                static_home.capacity_bytes,
                static_home.name,
                static_home.program_used_bytes,
            )
            if static_home is not None
            else Usage(static_used, sum(r.capacity_bytes for r in ram))
        ),
        stack_peak=Usage(stack_peak, len(painted), stack_home),
        heap_peak=Usage(heap_peak, heap_capacity(image), heap_home),
        stack_overflowed_paint=exhausted,
        regions=regions,
        harness=harness,
    )
