"""Static scan: read each layer's constant arrays from the ELF and match them against the model.

For every array the model needs (``layer<N>_weights`` / ``_bias`` /
``_multiplier`` / ``_shift``, firmware_builds/GENERATED.md) the scan finds
the bytes in the ELF, by symbol when the firmware uses the generator's names,
otherwise by searching the load image for the array's bytes, and compares
them with the model in the firmware's encoding, then with the model under
every mistake that changes stored arrays. A layout mistake is found this way
before anything runs; mistakes in code (activations, input scaling) are not
visible here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simcore.diagnose.mistakes import AnyLayer, Mistake, apply, candidates
from simcore.elf import ElfImage, Symbol
from simcore.firmware.consts import LayerConsts, from_bytes, to_bytes

#: Kinds whose effect is in the stored arrays (the rest are in code).
STATIC_KINDS = (
    "transpose-dense",
    "conv-layout",
    "flatten-nchw",
    "scales-reversed",
    "no-bias",
    "byte-order",
    "q-format",
)
#: Arrays shorter than this are not searched for by content (too many false hits).
MIN_SEARCH_BYTES = 8


@dataclass(frozen=True)
class StaticFinding:
    """What the scan found for one array of one layer.

    ``status``: ``match`` (as the model says), ``mistake`` (the generator's
    symbol holds the model as a firmware with ``mistake`` would), ``layout``
    (found by content in another layout, in firmware with its own names: a
    mistake only if its code reads the array in the generator's layout),
    ``differs`` (neither; ``detail`` says how) or ``missing`` (no symbol and
    the bytes are nowhere in the image).
    """

    layer: int
    role: str
    status: str
    symbol: str | None
    address: int | None
    mistake: Mistake | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "array": self.role,
            "status": self.status,
            "symbol": self.symbol,
            "address": self.address,
            "mistake": None
            if self.mistake is None
            else {
                "kind": self.mistake.kind,
                "variant": self.mistake.variant,
                "description": self.mistake.describe(),
            },
            "detail": self.detail,
        }


def _search(image: ElfImage, data: bytes) -> int | None:
    if len(data) < MIN_SEARCH_BYTES:
        return None
    for seg in image.segments:
        at = seg.data.find(data)
        if at >= 0:
            return seg.virtual_address + at
    return None


def _object_at(image: ElfImage, address: int) -> Symbol | None:
    for sym in image.symbols.values():
        if sym.kind == "object" and sym.address <= address < sym.address + max(sym.size_bytes, 1):
            return sym
    return None


def _difference(fmt: str, role: str, got: bytes, want: bytes) -> str:
    if len(got) != len(want):
        return f"{len(got)} bytes in the ELF, the model needs {len(want)}"
    a = from_bytes(fmt, role, got).astype(np.float64)
    b = from_bytes(fmt, role, want).astype(np.float64)
    with np.errstate(invalid="ignore"):
        differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    where = np.flatnonzero(differ)
    shown = ", ".join(f"[{i}] {_num(a[i])} (model {_num(b[i])})" for i in where[:3]) + (
        ", ..." if len(where) > 3 else ""
    )
    return f"{len(where)} of {a.size} values differ from the model: {shown}"


def _num(v: float) -> str:
    return f"{v:.6g}"


def scan(
    image: ElfImage, fmt: str, chain: Sequence[AnyLayer], consts: Sequence[LayerConsts]
) -> list[StaticFinding]:
    """Check every stored array of every layer; one finding per array."""
    findings: list[StaticFinding] = []
    for i, lc in enumerate(consts):
        arrays = lc.arrays()
        if not arrays:
            continue
        suspects = [
            (m, apply(m, fmt, chain, consts)[1])
            for m in candidates(fmt, chain, i)
            if m.kind in STATIC_KINDS
        ]
        for role, arr in arrays.items():
            want = to_bytes(fmt, role, arr)
            alternatives = []
            for m, mc in suspects:
                alt = mc.arrays().get(role)
                if alt is not None:
                    alt_bytes = to_bytes(fmt, role, alt)
                    if alt_bytes != want:
                        alternatives.append((m, alt_bytes))
            name = f"layer{i}_{role}"
            sym = image.symbol(name)
            got = None if sym is None else image.initial_bytes(sym.address, sym.size_bytes)
            if sym is not None and got is not None:
                findings.append(_judge(fmt, i, role, name, sym.address, got, want, alternatives))
                continue
            findings.append(_locate(image, i, role, want, alternatives))
    return findings


def _judge(
    fmt: str,
    layer: int,
    role: str,
    name: str,
    address: int,
    got: bytes,
    want: bytes,
    alternatives: list[tuple[Mistake, bytes]],
) -> StaticFinding:
    if got == want:
        return StaticFinding(layer, role, "match", name, address, None, "as the model")
    for m, alt in alternatives:
        if got == alt:
            return StaticFinding(layer, role, "mistake", name, address, m, m.describe())
    return StaticFinding(
        layer, role, "differs", name, address, None, _difference(fmt, role, got, want)
    )


def _locate(
    image: ElfImage,
    layer: int,
    role: str,
    want: bytes,
    alternatives: list[tuple[Mistake, bytes]],
) -> StaticFinding:
    at = _search(image, want)
    if at is not None:
        sym = _object_at(image, at)
        return StaticFinding(
            layer, role, "match", sym.name if sym else None, at, None, "found by content"
        )
    for m, alt in alternatives:
        at = _search(image, alt)
        if at is not None:
            sym = _object_at(image, at)
            return StaticFinding(
                layer,
                role,
                "layout",
                sym.name if sym else None,
                at,
                m,
                f"holds the model's values as '{m.kind}:{m.variant}' would store them "
                f"({m.describe()}); right only if the code reads them that way",
            )
    why = (
        "too short to search for by content"
        if len(want) < MIN_SEARCH_BYTES
        else "not in the image under any candidate layout"
    )
    return StaticFinding(layer, role, "missing", None, None, None, f"no layer{layer}_{role}; {why}")
