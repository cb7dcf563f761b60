"""The parts of an ELF32 little-endian file a run loads, read with ``struct``.

:mod:`simcore.elf` loads a firmware's header, program headers, section headers
and ARM build attributes from here; pyelftools stays for the DWARF line
programs, read only when a message shows a source line. Importing pyelftools
(its ``construct`` package pulls in ``pdb``) cost a run of a new ELF 112 M host
instructions, more than everything else simcore adds to a warm run; what is
read here is the fixed-layout part of the format (ELF gABI, "ELF for the Arm
Architecture" and its build-attributes addendum), and the tests read every ELF
they build both ways and compare.

Every offset and size is checked against the file: a malformed or truncated
file raises :class:`MalformedElf`, which the loader reports as an ElfError.
"""

from __future__ import annotations

import struct
from typing import NamedTuple


class MalformedElf(ValueError):
    """The file is not a well-formed ELF32 little-endian file (the message says where)."""


#: e_type ET_EXEC, e_machine EM_ARM, sh_type SHT_NOBITS and SHT_ARM_ATTRIBUTES (gABI; Arm ELF).
ET_EXEC, EM_ARM, SHT_NOBITS, SHT_ARM_ATTRIBUTES = 2, 40, 8, 0x70000003
#: p_type PT_LOAD; sh_flags SHF_ALLOC and SHF_EXECINSTR.
PT_LOAD, SHF_ALLOC, SHF_EXECINSTR = 1, 0x2, 0x4
#: e_shnum, e_shstrndx escapes: the real values are in section header 0 (gABI).
_SHN_XINDEX, _SHN_LORESERVE = 0xFFFF, 0xFF00

_EHDR = struct.Struct("<16sHHIIIIIHHHHHH")
_PHDR = struct.Struct("<IIIIIIII")
_SHDR = struct.Struct("<IIIIIIIIII")

#: Names of the e_type and e_machine values a wrong file is likely to have, for messages.
TYPE_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
MACHINE_NAMES = {
    3: "EM_386", 8: "EM_MIPS", 20: "EM_PPC", 40: "EM_ARM", 62: "EM_X86_64", 83: "EM_AVR",
    94: "EM_XTENSA", 183: "EM_AARCH64", 243: "EM_RISCV",
}  # fmt: skip


class Header(NamedTuple):
    type: int
    machine: int
    entry: int


class ProgramHeader(NamedTuple):
    type: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    flags: int


class SectionHeader(NamedTuple):
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int


class ElfFile(NamedTuple):
    header: Header
    segments: tuple[ProgramHeader, ...]
    sections: tuple[SectionHeader, ...]


def _unpack(layout: struct.Struct, raw: bytes, at: int, what: str) -> tuple[int, ...]:
    if at < 0 or at + layout.size > len(raw):
        raise MalformedElf(f"{what} at 0x{at:x} lies past the end of the file")
    return layout.unpack_from(raw, at)


def cstring(raw: bytes, offset: int) -> str:
    """The NUL-terminated string at ``offset`` of the file ('' when there is none there):
    lenient, as readers of ELF string tables are."""
    end = raw.find(b"\0", offset)
    return (
        "" if end < 0 or not 0 <= offset < len(raw) else raw[offset:end].decode("utf-8", "replace")
    )


def section_data(raw: bytes, section: SectionHeader) -> bytes:
    """The bytes of a section (empty for SHT_NOBITS)."""
    if section.type == SHT_NOBITS:
        return b""
    end = section.offset + section.size
    if end > len(raw):
        raise MalformedElf(f"section {section.name or '?'} lies past the end of the file")
    return raw[section.offset : end]


def segment_data(raw: bytes, segment: ProgramHeader) -> bytes:
    """The file bytes of a segment (``p_filesz`` of them)."""
    end = segment.offset + segment.filesz
    if end > len(raw):
        raise MalformedElf("segment data cut short: truncated ELF")
    return raw[segment.offset : end]


def read(raw: bytes) -> ElfFile:
    """The header, program headers and named section headers of ``raw``, which the caller
    has checked starts with the ELF32 little-endian identification."""
    (_, e_type, machine, _, entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     shstrndx) = _unpack(_EHDR, raw, 0, "the ELF header")  # fmt: skip
    header = Header(e_type, machine, entry)
    segments = []
    if phnum:
        if phentsize < _PHDR.size:
            raise MalformedElf(f"program header entries of {phentsize} bytes")
        for i in range(phnum):
            p_type, offset, vaddr, paddr, filesz, memsz, flags, _ = _unpack(
                _PHDR, raw, phoff + i * phentsize, f"program header {i}"
            )
            segments.append(ProgramHeader(p_type, offset, vaddr, paddr, filesz, memsz, flags))
    if not shoff:
        return ElfFile(header, tuple(segments), ())
    if shentsize < _SHDR.size:
        raise MalformedElf(f"section header entries of {shentsize} bytes")
    first = _unpack(_SHDR, raw, shoff, "section header 0")
    if shnum == 0:
        shnum = first[5]  # sh_size of section 0
    if shstrndx == _SHN_XINDEX:
        shstrndx = first[6]  # sh_link of section 0
    if shnum * shentsize > len(raw):
        raise MalformedElf(f"{shnum} section headers do not fit in the file")
    headers = [
        _unpack(_SHDR, raw, shoff + i * shentsize, f"section header {i}") for i in range(shnum)
    ]
    names_at = None
    if 0 < shstrndx < shnum and shstrndx < _SHN_LORESERVE:
        names_at = headers[shstrndx][4]
    sections = []
    for i, (name_off, sh_type, flags, addr, offset, size, link, _, _, entsize) in enumerate(
        headers
    ):
        name = cstring(raw, names_at + name_off) if names_at is not None and i else ""
        sections.append(SectionHeader(name, sh_type, flags, addr, offset, size, link, entsize))
    return ElfFile(header, tuple(segments), tuple(sections))


# -- ARM build attributes ("Addenda to, and errata in, the ABI for the Arm Architecture") --

#: Tags whose value is a NUL-terminated string: Tag_CPU_raw_name, Tag_CPU_name,
#: Tag_conformance; Tag_compatibility (32) is a number then a string, Tag_also_compatible_with
#: (65) another attribute; any other tag below 32 is a ULEB128 number, and above it an even
#: tag is a number and an odd one a string.
_STRING_TAGS = frozenset({4, 5, 67})
_TAG_COMPATIBILITY, _TAG_ALSO_COMPATIBLE_WITH = 32, 65
#: Sub-subsection tags: Tag_File, Tag_Section, Tag_Symbol.
_TAG_FILE = 1


def _uleb128(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise MalformedElf("a build attribute's number runs past its subsection")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _ntbs(data: bytes, at: int) -> tuple[str, int]:
    end = data.find(b"\0", at)
    if end < 0:
        raise MalformedElf("a build attribute's string runs past its subsection")
    return data[at:end].decode("utf-8", "replace"), end + 1


def _attribute(data: bytes, at: int) -> tuple[int, int | str, int]:
    """One (tag, value) at ``at`` and where the next starts."""
    tag, at = _uleb128(data, at)
    if tag == _TAG_ALSO_COMPATIBLE_WITH:
        _, value, at = _attribute(data, at)
        if isinstance(value, int):  # its number is followed by a NUL
            at += 1
        return tag, value, at
    if tag in _STRING_TAGS or (tag > _TAG_COMPATIBILITY and tag % 2):
        text, at = _ntbs(data, at)
        return tag, text, at
    number, at = _uleb128(data, at)
    if tag == _TAG_COMPATIBILITY:
        _, at = _ntbs(data, at)  # the vendor's name
    return tag, number, at


def arm_attributes(data: bytes) -> dict[int, int | str]:
    """The whole-file ("aeabi", Tag_File) build attributes of a SHT_ARM_ATTRIBUTES
    section's bytes, by tag number (a later value of a tag wins)."""
    values: dict[int, int | str] = {}
    if not data:
        return values
    if data[0] != ord("A"):
        raise MalformedElf(f"build attributes of format {data[0]:#x}, not 'A'")
    at = 1
    while at + 4 <= len(data):
        (length,) = struct.unpack_from("<I", data, at)
        end = at + length
        if length < 5 or end > len(data):
            raise MalformedElf("a build-attributes subsection runs past its section")
        vendor, inner = _ntbs(data[:end], at + 4)
        while vendor == "aeabi" and inner + 5 <= end:
            tag, after = _uleb128(data[:end], inner)
            if after + 4 > end:
                raise MalformedElf("a build-attributes sub-subsection is cut short")
            (size,) = struct.unpack_from("<I", data, after)
            sub_end = inner + size
            if size < 5 or sub_end > end:
                raise MalformedElf("a build-attributes sub-subsection runs past its subsection")
            if tag == _TAG_FILE:
                body, pos = data[:sub_end], after + 4
                while pos < sub_end:
                    attr, value, pos = _attribute(body, pos)
                    values[attr] = value
            inner = sub_end
        at = end
    return values
