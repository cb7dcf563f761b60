"""Memory accounting: flash and static RAM from the ELF, stack and heap peaks from the run.

The stack peak comes from painting: before reset the stack region is filled
with a pattern, after the run the lowest overwritten word marks the high-water
mark. The heap peak is the largest net amount requested from ``_sbrk`` (the
engine hooks the symbol). Both are measured, not estimated from code.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """One resource against its capacity."""

    used_bytes: int
    capacity_bytes: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used_bytes / self.capacity_bytes if self.capacity_bytes else 0.0


@dataclass(frozen=True)
class MemoryReport:
    """Memory use of one run against the board's capacity."""

    flash: Usage
    static_ram: Usage
    stack_peak: Usage  # capacity: the stack region that was painted
    heap_peak: Usage  # capacity: the heap reservation, when known
    stack_overflowed_paint: bool  # the whole painted region was used: the peak may be higher

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        out: dict[str, dict[str, float | int]] = {}
        for name in ("flash", "static_ram", "stack_peak", "heap_peak"):
            usage: Usage = getattr(self, name)
            out[name] = {
                "used_bytes": usage.used_bytes,
                "capacity_bytes": usage.capacity_bytes,
                "percent": round(usage.percent, 2),
            }
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
