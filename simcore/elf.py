"""Load a firmware ELF: segments, symbols, source lines, and what CPU it targets.

Nothing runs here. The headers, sections and build attributes are read by
:mod:`simcore.elfparse`, the DWARF line programs (only when a message shows a
source line) by pyelftools. :func:`load_elf` checks that the
file is a 32-bit little-endian ARM executable and :func:`check_fits` that a
board can run it, raising :class:`~simcore.errors.ElfError` with both sides
named otherwise.

What a run needs from an ELF it has loaded before (segments, symbols, code
sections, build attributes) comes from the disk cache (simcore.cache, keyed by
the file's bytes and this module's source), so a warm run neither imports
pyelftools nor parses the headers again; only a file that loaded cleanly is stored.
"""

from __future__ import annotations

import array
import bisect
import functools
import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from simcore import lazylog as logging
from simcore.api import public
from simcore.boards import BoardSpec, RegionKind
from simcore.errors import ElfError

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

    from simcore.elfparse import SectionHeader

log = logging.getLogger(__name__)

EM_ARM = 40

#: Tag_CPU_arch values (ARM ELF ABI addenda) and their names, for messages.
CPU_ARCH_NAMES = {
    0: "pre-v4",
    1: "Armv4",
    2: "Armv4T",
    3: "Armv5T",
    4: "Armv5TE",
    5: "Armv5TEJ",
    6: "Armv6",
    7: "Armv6KZ",
    8: "Armv6T2",
    9: "Armv6K",
    10: "Armv7",
    11: "Armv6-M",
    12: "Armv6S-M",
    13: "Armv7E-M",
    14: "Armv8-A",
    15: "Armv8-R",
    16: "Armv8-M Baseline",
    17: "Armv8-M Mainline",
    21: "Armv8.1-M Mainline",
}


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD segment: ``data`` goes to ``load_address``; ``mem_size`` >= len(data)."""

    load_address: int
    virtual_address: int
    data: bytes
    mem_size: int
    executable: bool
    writable: bool


@dataclass(frozen=True)
class Symbol:
    """A named address; function addresses have the Thumb bit cleared."""

    name: str
    address: int
    size_bytes: int
    kind: str  # "func", "object" or "other"


@dataclass(frozen=True)
class CodeSection:
    """An executable section with its Thumb/data mapping-symbol spans."""

    name: str
    address: int
    data: bytes
    #: Sorted (address, "t" | "d") from the section's own $t/$d mapping symbols.
    mapping: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Attributes:
    """The build attributes that decide whether a core can run the code."""

    cpu_arch: int | None
    cpu_name: str | None
    fp_arch: int | None
    hardfp_use: int | None

    @property
    def arch_name(self) -> str:
        if self.cpu_arch is None:
            return "unknown architecture"
        return CPU_ARCH_NAMES.get(self.cpu_arch, f"Tag_CPU_arch {self.cpu_arch}")


@dataclass(frozen=True)
class LineTable:
    """DWARF line rows sorted by address (parallel lists) and the merged, sorted
    ``[start, end)`` ranges their sequences cover."""

    addresses: list[int]
    file_index: list[int]
    line_numbers: list[int]
    files: list[str]
    ranges: list[tuple[int, int]]

    EMPTY: ClassVar[LineTable]

    @classmethod
    def of(cls, raw: bytes, symbols: dict[str, Symbol]) -> LineTable:
        """Decode the line programs of the ELF ``raw``, or take them from the disk cache."""
        from simcore import cache

        key = cache.digest(_LINES_KIND, [_elf_source_digest(), raw])
        found = cache.load(_LINES_KIND, key)
        if found is not None:
            try:
                return cls._from_arrays(*found)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                log.debug("ignoring malformed line cache entry %s: %s", key, exc)
        from elftools.elf.elffile import ELFFile

        rows, ranges = _line_table(ELFFile(io.BytesIO(raw)), symbols)
        files = sorted({r[1] for r in rows})
        number = {f: i for i, f in enumerate(files)}
        table = cls(
            addresses=[r[0] for r in rows],
            file_index=[number[r[1]] for r in rows],
            line_numbers=[r[2] for r in rows],
            files=files,
            ranges=ranges,
        )
        cache.store(
            _LINES_KIND,
            key,
            {
                "rows": array.array(
                    "q", [*table.addresses, *table.file_index, *table.line_numbers]
                ),
                "ranges": array.array("q", [x for span in ranges for x in span]),
            },
            {"files": files},
        )
        return table

    @classmethod
    def _from_arrays(cls, arrays: dict[str, Any], data: Any) -> LineTable:
        rows, ranges, files = arrays["rows"], arrays["ranges"], data["files"]
        if rows.format != "q" or ranges.format != "q" or len(rows) % 3 or len(ranges) % 2:
            raise ValueError("wrong formats or lengths")
        n = len(rows) // 3
        addresses, file_index, line_numbers = (rows[i * n : (i + 1) * n].tolist() for i in range(3))
        if not all(isinstance(f, str) for f in files) or (
            n and not 0 <= min(file_index) <= max(file_index) < len(files)
        ):
            raise ValueError("bad file index")
        flat = ranges.tolist()
        return cls(
            addresses=addresses,
            file_index=file_index,
            line_numbers=line_numbers,
            files=list(files),
            ranges=list(zip(flat[::2], flat[1::2], strict=True)),
        )


LineTable.EMPTY = LineTable([], [], [], [], [])

_LINES_KIND = "lines"


@functools.cache
def _elf_source_digest() -> str:
    """This module's source: a change to the line decoding invalidates cached rows."""
    from simcore import cache

    return cache.source_digest(Path(__file__).resolve())


@dataclass
class ElfImage:
    """Everything simcore needs from a firmware ELF, loaded once."""

    path: Path
    entry: int
    segments: tuple[Segment, ...]
    symbols: dict[str, Symbol]
    code_sections: tuple[CodeSection, ...]
    attributes: Attributes
    section_sizes: dict[str, tuple[int, int, bool, bool]]  # name -> (addr, size, alloc, nobits)
    #: The file's bytes: DWARF line tables are decoded from them on first use.
    raw: bytes = field(default=b"", repr=False, compare=False)
    _functions: list[Symbol] = field(default_factory=list, repr=False)
    _func_starts: list[int] = field(default_factory=list, repr=False)
    _lines: LineTable | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        funcs = sorted(
            (s for s in self.symbols.values() if s.kind == "func"), key=lambda s: s.address
        )
        self._functions = funcs
        self._func_starts = [f.address for f in funcs]

    @property
    def lines(self) -> LineTable:
        """The DWARF line rows, decoded on first use (from :mod:`simcore.cache` when there).

        Decoding them takes longer than loading the rest of the ELF, and only messages
        about a failed run (a fault, a non-zero exit, a budget running out) show them.
        """
        if self._lines is None:
            self._lines = LineTable.of(self.raw, self.symbols) if self.raw else LineTable.EMPTY
        return self._lines

    def symbol(self, name: str) -> Symbol | None:
        return self.symbols.get(name)

    def initial_bytes(self, address: int, size: int) -> bytes | None:
        """The bytes a run address holds right after startup (from its segment's load image)."""
        for seg in self.segments:
            off = address - seg.virtual_address
            if off >= 0 and off + size <= len(seg.data):
                return seg.data[off : off + size]
        return None

    def function_at(self, address: int) -> Symbol | None:
        """Return the function containing ``address`` (by symbol start and size)."""
        i = bisect.bisect_right(self._func_starts, address) - 1
        if i < 0:
            return None
        func = self._functions[i]
        if func.size_bytes:
            return func if address < func.address + func.size_bytes else None
        # Hand-written assembly often leaves st_size 0: extend to the next
        # function, within the code section that holds it.
        section = next(
            (s for s in self.code_sections if s.address <= func.address < s.address + len(s.data)),
            None,
        )
        if section is None or address >= section.address + len(section.data):
            return None
        nxt = self._func_starts[i + 1] if i + 1 < len(self._func_starts) else None
        return func if nxt is None or address < nxt else None

    def line_at(self, address: int) -> tuple[str, int] | None:
        """Return (file, line) from DWARF for ``address``, if the ELF has line info."""
        lines = self.lines
        i = bisect.bisect_right(lines.addresses, address) - 1
        if i < 0:
            return None
        # An address outside every line sequence (data, RAM, another program's code)
        # has no line: the nearest row below it belongs to something else.
        j = bisect.bisect_right(lines.ranges, (address, 1 << 64)) - 1
        if j < 0 or address >= lines.ranges[j][1]:
            return None
        func = self.function_at(address)
        if func is not None and lines.addresses[i] < func.address:
            return None  # the nearest row belongs to code before this function
        return lines.files[lines.file_index[i]], lines.line_numbers[i]

    def describe(self, address: int, *, lines: bool = True) -> str:
        """``main+0x12 (main.c:41)`` or ``0x10000234`` when nothing is known.

        ``lines=False`` leaves the source line out (and the DWARF line tables unread).
        """
        func = self.function_at(address)
        where = f"{func.name}+0x{address - func.address:x}" if func else f"0x{address:08x}"
        line = self.line_at(address) if lines else None
        if line is not None:
            where += f" ({line[0]}:{line[1]})"
        return where


#: Build-attribute tags (Arm ABI addenda): Tag_CPU_name, Tag_CPU_arch, Tag_FP_arch,
#: Tag_ABI_HardFP_use.
_TAG_CPU_NAME, _TAG_CPU_ARCH, _TAG_FP_ARCH, _TAG_ABI_HARDFP_USE = 5, 6, 10, 27


def _attributes(raw: bytes, sections: tuple[SectionHeader, ...]) -> Attributes:
    from simcore import elfparse

    values: dict[int, int | str] = {}
    for section in sections:
        if section.type == elfparse.SHT_ARM_ATTRIBUTES:
            values.update(elfparse.arm_attributes(elfparse.section_data(raw, section)))

    def _int(tag: int) -> int | None:
        v = values.get(tag)
        return v if isinstance(v, int) else None

    name = values.get(_TAG_CPU_NAME)
    return Attributes(
        cpu_arch=_int(_TAG_CPU_ARCH),
        cpu_name=name if isinstance(name, str) else None,
        fp_arch=_int(_TAG_FP_ARCH),
        hardfp_use=_int(_TAG_ABI_HARDFP_USE),
    )


#: STT_* and STB_LOCAL values of st_info (ELF gABI).
_STT_OBJECT, _STT_FUNC, _STT_SECTION, _STT_FILE = 1, 2, 3, 4
_STB_LOCAL = 0
#: st_shndx values that name no section (SHN_UNDEF, SHN_ABS, SHN_COMMON), as pyelftools has them.
_SHN_SPECIAL = frozenset({0, 0xFFF1, 0xFFF2})
_ELF32_SYM = struct.Struct("<IIIBBH")
#: SHT_SYMTAB and SHT_DYNSYM.
_SHT_SYMBOL_TABLES = (2, 11)


def _symbols(
    raw: bytes, sections: tuple[SectionHeader, ...]
) -> tuple[dict[str, Symbol], list[tuple[int, str, int]]]:
    """Named symbols, plus mapping symbols as (address, kind, section index)."""
    from simcore.elfparse import MalformedElf, cstring

    symbols: dict[str, Symbol] = {}
    mapping: list[tuple[int, str, int]] = []
    for section in sections:
        if section.type not in _SHT_SYMBOL_TABLES:
            continue
        if section.link >= len(sections) or section.entsize < _ELF32_SYM.size:
            raise MalformedElf(f"symbol table {section.name} has no string table or entry size")
        strtab = sections[section.link].offset
        base, entsize = section.offset, section.entsize
        for n in range(section.size // entsize):
            at = base + n * entsize
            if at + _ELF32_SYM.size > len(raw):
                raise MalformedElf(f"symbol {n} of {section.name} lies past the end of the file")
            name_off, value, size, info, _other, shndx = _ELF32_SYM.unpack_from(raw, at)
            name = cstring(raw, strtab + name_off)
            if name.startswith("$") and len(name) >= 2 and name[1] in "td":
                if shndx not in _SHN_SPECIAL:
                    mapping.append((value, name[1], shndx))
                continue
            stype = info & 0xF
            if not name or stype in (_STT_FILE, _STT_SECTION):
                continue
            kind = "func" if stype == _STT_FUNC else "object" if stype == _STT_OBJECT else "other"
            address = value & ~1 if kind == "func" else value
            # Prefer global definitions over local ones of the same name.
            if name in symbols and info >> 4 == _STB_LOCAL:
                continue
            symbols[name] = Symbol(name, address, size, kind)
    return symbols, mapping


def _line_table(
    elf: ELFFile, symbols: dict[str, Symbol]
) -> tuple[list[tuple[int, str, int]], list[tuple[int, int]]]:
    """Sorted (address, file, line) rows of the DWARF line programs, and the merged
    [start, end) ranges their sequences cover."""
    from elftools.common.exceptions import ELFError as PyElfError

    if not elf.has_dwarf_info():
        return [], []
    function_sizes: dict[int, set[int]] = {}
    for sym in symbols.values():
        if sym.kind == "func":
            function_sizes.setdefault(sym.address, set()).add(sym.size_bytes)
    sequences: list[tuple[list[tuple[int, str, int]], int]] = []
    sequence: list[tuple[int, str, int]] = []
    try:
        dwarf = elf.get_dwarf_info()
        for cu in dwarf.iter_CUs():
            lineprog = dwarf.line_program_for_CU(cu)
            if lineprog is None:
                continue
            header = lineprog.header
            files = header["file_entry"]
            version = header["version"]
            for entry in lineprog.get_entries():
                state = entry.state
                if state is None:
                    continue
                if state.end_sequence:
                    sequences.append((sequence, state.address))
                    sequence = []
                    continue
                idx = state.file if version >= 5 else state.file - 1
                if 0 <= idx < len(files):
                    raw = files[idx].name
                    fname = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
                else:
                    fname = "?"
                sequence.append((state.address, fname, state.line))
    except (PyElfError, KeyError, IndexError, ValueError) as exc:
        log.warning("ignoring unreadable DWARF line info: %s", exc)
        return [], []
    kept = _drop_discarded(sequences, function_sizes)
    rows = [row for seq in kept for row in seq[0]]
    rows.sort(key=lambda r: r[0])
    ranges: list[tuple[int, int]] = []
    for start, end in sorted((seq[0][0][0], seq[1]) for seq in kept):
        if ranges and start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], end))
        else:
            ranges.append((start, end))
    return rows, ranges


def _drop_discarded(
    sequences: list[tuple[list[tuple[int, str, int]], int]], function_sizes: dict[int, set[int]]
) -> list[tuple[list[tuple[int, str, int]], int]]:
    """Drop line sequences of code the linker discarded (--gc-sections).

    ld relocates their addresses to 0, which is real code on boards with a
    TCM at 0x0. Where several sequences start at one address, keep the one
    whose length equals the size of a function symbol there (or none).
    """
    by_start: dict[int, list[tuple[list[tuple[int, str, int]], int]]] = {}
    for seq in sequences:
        if seq[0]:
            by_start.setdefault(seq[0][0][0], []).append(seq)
    kept = []
    for start, group in by_start.items():
        if len(group) == 1:
            kept.extend(group)
            continue
        sizes = function_sizes.get(start, set())
        kept.extend(seq for seq in group if seq[1] - start in sizes)
    return kept


@public
def load_elf(path: Path | str) -> ElfImage:
    """Read and check an ELF file; raise ElfError for anything simcore cannot run."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ElfError(f"{path}: no such file") from None
    except OSError as exc:
        raise ElfError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) < 16 or raw[:4] != b"\x7fELF":
        what = "an empty file" if not raw else "not an ELF file (no \\x7fELF magic)"
        raise ElfError(f"{path}: {what}", hint="pass the linked firmware .elf, not a .bin or .hex")
    if raw[4] != 1:
        raise ElfError(f"{path}: 64-bit ELF; Cortex-M firmware is a 32-bit ELF")
    if raw[5] != 1:
        raise ElfError(f"{path}: big-endian ELF; simcore runs little-endian Cortex-M code")
    from simcore import cache

    key = cache.digest(_IMAGE_KIND, [_elf_source_digest(), raw])
    found = cache.load(_IMAGE_KIND, key)
    if found is not None:
        try:
            return _image_from_arrays(path, raw, *found)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            log.debug("ignoring malformed ELF cache entry %s: %s", key, exc)
    image = _parse_checked(path, raw)
    cache.store(_IMAGE_KIND, key, *_image_to_arrays(image))
    return image


def _parse_checked(path: Path, raw: bytes) -> ElfImage:
    """:func:`_parse`, with a malformed file's errors as ElfError."""
    from simcore.elfparse import MalformedElf

    try:
        return _parse(path, raw)
    except MalformedElf as exc:
        raise ElfError(f"{path}: malformed or truncated ELF ({exc})") from None


_IMAGE_KIND = "elf"


def _image_to_arrays(image: ElfImage) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cache entry of a loaded image: section and segment bytes as arrays, the rest JSON."""
    arrays = {f"segment{i}": s.data for i, s in enumerate(image.segments)}
    arrays |= {f"code{i}": c.data for i, c in enumerate(image.code_sections)}
    a = image.attributes
    data = {
        "entry": image.entry,
        "segments": [
            [s.load_address, s.virtual_address, s.mem_size, s.executable, s.writable]
            for s in image.segments
        ],
        "symbols": [[s.name, s.address, s.size_bytes, s.kind] for s in image.symbols.values()],
        "code": [[c.name, c.address, [list(m) for m in c.mapping]] for c in image.code_sections],
        "attributes": [a.cpu_arch, a.cpu_name, a.fp_arch, a.hardfp_use],
        "sections": [[name, *sizes] for name, sizes in image.section_sizes.items()],
    }
    return arrays, data


def _image_from_arrays(path: Path, raw: bytes, arrays: dict[str, Any], data: Any) -> ElfImage:
    """The image :func:`_image_to_arrays` stored; ValueError (or a lookup error) if malformed."""

    def ints(values: Any, n: int) -> list[Any]:
        if not isinstance(values, list) or len(values) != n:
            raise ValueError(f"expected {n} values, not {values!r}")
        return values

    def data_of(name: str) -> bytes:
        view = arrays[name]
        if view.format != "B" or view.ndim != 1:
            raise ValueError(f"{name} is not bytes")
        return bytes(view)

    segments = tuple(
        Segment(int(load), int(vaddr), data_of(f"segment{i}"), int(memsz), bool(x), bool(w))
        for i, (load, vaddr, memsz, x, w) in enumerate(ints(s, 5) for s in data["segments"])
    )
    symbols = {
        str(name): Symbol(str(name), int(address), int(size), str(kind))
        for name, address, size, kind in (ints(s, 4) for s in data["symbols"])
    }
    code = tuple(
        CodeSection(
            str(name),
            int(address),
            data_of(f"code{i}"),
            tuple((int(a), str(k)) for a, k in (ints(m, 2) for m in mapping)),
        )
        for i, (name, address, mapping) in enumerate(ints(c, 3) for c in data["code"])
    )
    cpu_arch, cpu_name, fp_arch, hardfp = ints(data["attributes"], 4)
    for value, kind in ((cpu_arch, int), (cpu_name, str), (fp_arch, int), (hardfp, int)):
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ValueError(f"attribute {value!r} is not {kind.__name__}")
    sections = {
        str(name): (int(addr), int(size), bool(alloc), bool(nobits))
        for name, addr, size, alloc, nobits in (ints(s, 5) for s in data["sections"])
    }
    if not segments or len(arrays) != len(segments) + len(code):
        raise ValueError("wrong number of segments or code sections")
    return ElfImage(
        path=path,
        entry=int(data["entry"]),
        segments=segments,
        symbols=symbols,
        code_sections=code,
        attributes=Attributes(cpu_arch, cpu_name, fp_arch, hardfp),
        section_sizes=sections,
        raw=raw,
    )


def _parse(path: Path, raw: bytes) -> ElfImage:
    from simcore import elfparse

    elf = elfparse.read(raw)
    header = elf.header
    if header.machine != elfparse.EM_ARM:
        name = elfparse.MACHINE_NAMES.get(header.machine, f"machine {header.machine}")
        raise ElfError(f"{path}: built for {name}, not ARM (EM_ARM)")
    if header.type != elfparse.ET_EXEC:
        name = elfparse.TYPE_NAMES.get(header.type, f"type {header.type}")
        raise ElfError(
            f"{path}: ELF type {name}, not an executable",
            hint="link the firmware (an object file or shared library cannot be run)",
        )
    segments = []
    for seg in elf.segments:
        if seg.type != elfparse.PT_LOAD or seg.memsz == 0:
            continue
        segments.append(
            Segment(
                load_address=seg.paddr,
                virtual_address=seg.vaddr,
                data=elfparse.segment_data(raw, seg),
                mem_size=seg.memsz,
                executable=bool(seg.flags & 1),
                writable=bool(seg.flags & 2),
            )
        )
    if not segments:
        raise ElfError(f"{path}: no loadable segments")
    symbols, mapping = _symbols(raw, elf.sections)
    sections: dict[str, tuple[int, int, bool, bool]] = {}
    code_sections = []
    for index, sec in enumerate(elf.sections):
        if not sec.name:
            continue
        alloc = bool(sec.flags & elfparse.SHF_ALLOC)
        nobits = sec.type == elfparse.SHT_NOBITS
        sections[sec.name] = (sec.addr, sec.size, alloc, nobits)
        if alloc and sec.flags & elfparse.SHF_EXECINSTR and sec.size and not nobits:
            own = tuple(sorted((addr, kind) for addr, kind, shndx in mapping if shndx == index))
            code = elfparse.section_data(raw, sec)
            code_sections.append(CodeSection(sec.name, sec.addr, code, own))
    return ElfImage(
        path=path,
        entry=header.entry,
        segments=tuple(segments),
        symbols=symbols,
        code_sections=tuple(code_sections),
        attributes=_attributes(raw, elf.sections),
        section_sizes=sections,
        raw=raw,
    )


def check_fits(image: ElfImage, board: BoardSpec) -> None:
    """Raise ElfError unless every segment fits the board and its core runs the code."""
    core = board.core
    attrs = image.attributes
    if attrs.cpu_arch is not None and attrs.cpu_arch not in core.accepted_cpu_arch:
        raise ElfError(
            f"{image.path.name} is {attrs.arch_name} code"
            + (f" (built for {attrs.cpu_name})" if attrs.cpu_name else "")
            + f"; {board.name}'s {core.display_name} runs {core.architecture} only",
            hint="rebuild for this board's core or pick a board with a matching core",
        )
    if attrs.fp_arch and core.fpu == "none":
        raise ElfError(
            f"{image.path.name} uses floating-point hardware; "
            f"{board.name}'s {core.display_name} has no FPU",
            hint="rebuild with -mfloat-abi=soft",
        )
    if attrs.fp_arch and core.fpu == "single" and attrs.hardfp_use in (None, 0, 3):
        # Absent or 0 means "as Tag_FP_arch allows", i.e. double precision too;
        # 1 (single precision only) is what -mfpu=fpv5-sp-d16 or fpv4-sp-d16 records.
        raise ElfError(
            f"{image.path.name} uses double-precision FPU instructions; "
            f"{board.name}'s {core.display_name} FPU is single precision only",
            hint="rebuild with " + " ".join(core.compiler_flags),
        )
    for seg in image.segments:
        for address, size, what in (
            (seg.load_address, len(seg.data), "load image"),
            (seg.virtual_address, seg.mem_size, "run address range"),
        ):
            if size == 0:
                continue
            region = board.region_at(address, size)
            if region is None or (
                what == "load image" and region.kind in (RegionKind.IO, RegionKind.ROM)
            ):
                raise ElfError(
                    f"{image.path.name}: segment {what} 0x{address:08x}-0x{address + size:08x} "
                    f"does not fit {board.name}'s memory ({board.describe_map()})",
                    hint="check the linker script's MEMORY regions against the board",
                )
