"""The engine's byte-pattern scans for instructions it hooks (SEV, unmasking, divides,
returns, parking) against a per-halfword decoding written out from the ARMv7-M ARM."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from simcore import engine
from simcore.elf import load_elf


def _returns(hw: int, nxt: int) -> bool:
    return (
        hw == 0x4770
        or hw & 0xFF00 == 0xBD00
        or (hw == 0xE8BD and nxt & 0x8000 != 0)
        or (hw == 0xF85D and nxt == 0xFB04)
    )


def _sev(hw: int, nxt: int) -> bool:
    return hw == 0xBF40 or (hw == 0xF3AF and nxt == 0x8004)


def _divides(hw: int, nxt: int) -> bool:
    return hw & 0xFFF0 in (0xFB90, 0xFBB0) and nxt & 0xF0F0 == 0xF0F0


def _unmasks(hw: int, nxt: int) -> bool:
    return hw in (0xB662, 0xB661) or (hw & 0xFFF0 == 0xF380 and nxt in range(0x8810, 0x8814))


def _parks(hw: int, nxt: int) -> bool:
    return hw in (0xE7FE, 0x4770) or (hw, nxt) == (0xF7FF, 0xBFFE)


CASES: list[tuple[bytes, Callable[[int, int], bool]]] = [
    (engine._RETURNS, _returns),
    (engine._SEV, _sev),
    (engine._DIVIDES, _divides),
    (engine._UNMASKS, _unmasks),
    (engine._PARKS, _parks),
]


def _reference(code: bytes, base: int, match: Callable[[int, int], bool]) -> tuple[int, ...]:
    hw = struct.unpack(f"<{len(code) // 2}H", code[: len(code) // 2 * 2])
    return tuple(
        base + 2 * i for i in range(len(hw)) if match(hw[i], hw[i + 1] if i + 1 < len(hw) else 0)
    )


def _dense(seed: int, size: int) -> bytes:
    """Random halfwords, half of them drawn from the encodings the patterns look for
    and their near misses, at even and odd offsets."""
    rng = random.Random(seed)
    near = [
        0x4770, 0x4771, 0xBD00, 0xBDFF, 0xBC10, 0xE8BD, 0x8000, 0x7FFF, 0xF85D, 0xFB04,
        0xBF40, 0xBF30, 0xF3AF, 0x8004, 0x8003, 0xFB90, 0xFB9F, 0xFBB3, 0xFBA0, 0xF0F0,
        0xFFFF, 0xF0EF, 0xB662, 0xB661, 0xB660, 0xF380, 0xF38F, 0xF390, 0x8810, 0x8813,
        0x8814, 0x8808, 0xE7FE, 0xE7FF, 0xF7FF, 0xBFFE, 0xBFFF,
    ]  # fmt: skip
    out = bytearray()
    while len(out) < 2 * size:
        if rng.random() < 0.1:  # a lone byte: what follows sits at the other alignment
            out.append(rng.randrange(256))
        else:
            hw = rng.choice(near) if rng.random() < 0.6 else rng.randrange(0x10000)
            out += struct.pack("<H", hw)
    return bytes(out[: 2 * size + seed % 2])  # odd seeds end with a lone byte


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("pattern", "match"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_scan_matches_per_halfword_decoding(
    seed: int, pattern: bytes, match: Callable[[int, int], bool]
) -> None:
    code = _dense(seed, 8000)
    expected = _reference(code, 0x1000_0000, match)
    assert expected, "the generator must produce matches"
    assert engine._scan(code, 0x1000_0000, pattern) == expected


@pytest.mark.parametrize(("pattern", "match"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_scan_on_real_firmware(
    example_elfs: dict[str, Path], pattern: bytes, match: Callable[[int, int], bool]
) -> None:
    for elf in example_elfs.values():
        for section in load_elf(elf).code_sections:
            data = section.data
            assert engine._scan(data, section.address, pattern) == _reference(
                data, section.address, match
            )
