"""simcore.elfparse against pyelftools: every ELF a test session builds, read both ways,
and the ARM build-attribute encodings one at a time."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import ARMAttributesSection

from simcore import elfparse
from simcore.elf import load_elf
from simcore.elfparse import MalformedElf


def _both_ways(path: Path) -> None:
    raw = path.read_bytes()
    ours, theirs = elfparse.read(raw), ELFFile(io.BytesIO(raw))
    assert (ours.header.type, ours.header.machine, ours.header.entry) == (2, 40, theirs["e_entry"])
    assert [
        (p.type == 1, p.offset, p.vaddr, p.paddr, p.filesz, p.memsz, p.flags)
        for p in ours.segments
    ] == [
        (s["p_type"] == "PT_LOAD", s["p_offset"], s["p_vaddr"], s["p_paddr"], s["p_filesz"],
         s["p_memsz"], s["p_flags"])
        for s in theirs.iter_segments()
    ]  # fmt: skip
    sections = list(theirs.iter_sections())
    mine = [(s.name, s.addr, s.offset, s.size, s.flags, s.link, s.entsize) for s in ours.sections]
    assert mine == [
        (s.name, s["sh_addr"], s["sh_offset"], s["sh_size"], s["sh_flags"], s["sh_link"],
         s["sh_entsize"])
        for s in sections
    ]  # fmt: skip
    for ours_s, theirs_s in zip(ours.sections, sections, strict=True):
        if theirs_s["sh_type"] != "SHT_NOBITS":
            assert elfparse.section_data(raw, ours_s) == theirs_s.data(), ours_s.name
        if isinstance(theirs_s, ARMAttributesSection):
            expected = {
                attr.tag: attr.value
                for sub in theirs_s.iter_subsections()
                for subsub in sub.iter_subsubsections()
                for attr in subsub.iter_attributes()
            }
            got = elfparse.arm_attributes(elfparse.section_data(raw, ours_s))
            names = {
                5: "TAG_CPU_NAME",
                6: "TAG_CPU_ARCH",
                10: "TAG_FP_ARCH",
                27: "TAG_ABI_HARDFP_USE",
            }
            assert {names[t]: v for t, v in got.items() if t in names} == {
                n: expected[n] for n in names.values() if n in expected
            }
            assert len(got) == len(expected)


def test_every_example_reads_as_pyelftools_reads_it(example_elfs: dict[str, Path]) -> None:
    for elf in example_elfs.values():
        _both_ways(elf)
        load_elf(elf)  # and loads


def _attributes_section(*subsections: bytes) -> bytes:
    return b"A" + b"".join(subsections)


def _subsection(vendor: bytes, *subsubsections: bytes) -> bytes:
    body = vendor + b"\0" + b"".join(subsubsections)
    return struct.pack("<I", 4 + len(body)) + body


def _file_attributes(body: bytes, tag: int = 1) -> bytes:
    return bytes([tag]) + struct.pack("<I", 5 + len(body)) + body


def test_build_attribute_encodings() -> None:
    """Strings for tags 4, 5, 67 and odd tags past 32; a number and a vendor name for
    Tag_compatibility; a nested attribute for Tag_also_compatible_with; ULEB128 numbers
    of several bytes; Tag_Section sub-subsections and other vendors' subsections skipped."""
    body = (
        b"\x05Cortex-M33\0"  # Tag_CPU_name
        + b"\x06\x11"  # Tag_CPU_arch 17 (v8-M.main)
        + b"\x20\x01gnu\0"  # Tag_compatibility 1, "gnu"
        + b"\x41\x06\x0a\0"  # Tag_also_compatible_with: Tag_CPU_arch 10, then NUL
        + b"\x0a\x85\x01"  # Tag_FP_arch 133 in two ULEB128 bytes
        + b"\x25odd tag\0"  # tag 37: odd past 32, a string
        + b"\x22\x01"  # tag 34 (Tag_CPU_unaligned_access): even, a number
        + b"\x1b\x01"  # Tag_ABI_HardFP_use 1
    )
    section = _attributes_section(
        _subsection(b"aeabi", _file_attributes(body), _file_attributes(b"\x01\0\x06\x03", tag=2)),
        _subsection(b"gnu", b"\x01\x02\x03\x04\x05"),
    )
    assert elfparse.arm_attributes(section) == {
        5: "Cortex-M33", 6: 17, 32: 1, 65: 10, 10: 133, 37: "odd tag", 34: 1, 27: 1,
    }  # fmt: skip


@pytest.mark.parametrize(
    "section",
    [
        b"B",  # another format version
        _attributes_section(struct.pack("<I", 400) + b"aeabi\0"),  # longer than the section
        _attributes_section(_subsection(b"aeabi", _file_attributes(b"\x05no end"))),
        _attributes_section(_subsection(b"aeabi", _file_attributes(b"\x06\x80"))),  # cut ULEB
    ],
    ids=["format", "subsection-length", "string", "number"],
)
def test_malformed_build_attributes_are_malformed(section: bytes) -> None:
    with pytest.raises(MalformedElf):
        elfparse.arm_attributes(section)


def test_headers_past_the_end_are_malformed(example_elfs: dict[str, Path]) -> None:
    raw = example_elfs["rp2350"].read_bytes()
    shoff = struct.unpack_from("<I", raw, 32)[0]
    with pytest.raises(MalformedElf, match="section header"):
        elfparse.read(raw[: shoff + 10])
    with pytest.raises(MalformedElf, match="program header"):
        elfparse.read(raw[:60])
