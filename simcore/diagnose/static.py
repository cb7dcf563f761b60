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
#: Content search tolerance for arrays a user wrote out with fewer digits or other
#: rounding: f32 ``abs + rel * |x|``, q16 in LSB. int8 must match exactly.
CLOSE_F32 = (1e-5, 1e-4)
CLOSE_Q16 = 2


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


def _search_close(image: ElfImage, fmt: str, role: str, data: bytes) -> tuple[int, float] | None:
    """Find a 4-byte aligned copy of ``data``'s values within rounding: (address, max diff)."""
    if fmt == "int8" or len(data) < MIN_SEARCH_BYTES:
        return None
    want = from_bytes(fmt, role, data).astype(np.float64)
    if fmt == "f32":
        tol = CLOSE_F32[0] + CLOSE_F32[1] * np.abs(want)
    else:
        tol = np.full(want.shape, float(CLOSE_Q16))
    if not np.all(np.isfinite(want)):
        return None
    n = want.size
    for seg in image.segments:
        skip = (-seg.virtual_address) % 4
        body = seg.data[skip:]
        vals = from_bytes(fmt, role, body[: len(body) // 4 * 4]).astype(np.float64)
        if vals.size < n:
            continue
        with np.errstate(invalid="ignore"):
            starts = np.flatnonzero(np.abs(vals[: vals.size - n + 1] - want[0]) <= tol[0])
            for s in starts:
                diff = np.abs(vals[s : s + n] - want)
                if np.all(diff <= tol):
                    return seg.virtual_address + skip + 4 * int(s), float(diff.max())
    return None


def _object_at(image: ElfImage, address: int) -> Symbol | None:
    for sym in image.symbols.values():
        if sym.kind == "object" and sym.address <= address < sym.address + max(sym.size_bytes, 1):
            return sym
    return None


#: Index names of an array's axes in the firmware layout, by number of axes.
AXES = {2: "out,in", 4: "o,h,w,i"}


def _difference(fmt: str, role: str, got: bytes, want: bytes, shape: tuple[int, ...]) -> str:
    if len(got) != len(want):
        return f"{len(got)} bytes in the ELF, the model needs {len(want)}"
    a = from_bytes(fmt, role, got).astype(np.float64)
    b = from_bytes(fmt, role, want).astype(np.float64)
    with np.errstate(invalid="ignore"):
        differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    where = np.flatnonzero(differ)

    def at(i: int) -> str:
        if len(shape) < 2:
            return f"[{i}]"
        return "[" + ",".join(str(int(v)) for v in np.unravel_index(i, shape)) + "]"

    shown = ", ".join(f"{at(int(i))} {_num(a[i])} (model {_num(b[i])})" for i in where[:3])
    axes = f" (index {AXES[len(shape)]})" if len(shape) in AXES else ""
    more = ", ..." if len(where) > 3 else ""
    return f"{len(where)} of {a.size} values differ from the model{axes}: {shown}{more}"


def _num(v: float) -> str:
    return f"{v:.6g}"


def _sparse_weights(image: ElfImage, fmt: str, layer: int, shape: tuple[int, ...]) -> bytes | None:
    """A sparse Dense layer's weights decoded to the dense layout's bytes (None: not sparse)."""
    from simcore.firmware.sparse import SparseMatrix

    found = {}
    for part in ("values", "gaps", "rows"):
        sym = image.symbol(f"layer{layer}_sparse_{part}")
        data = None if sym is None else image.initial_bytes(sym.address, sym.size_bytes)
        if data is None:
            return None
        found[part] = data
    rows = np.frombuffer(found["rows"], "<u2")
    if len(shape) != 2 or rows.size != shape[0]:
        return None
    matrix = SparseMatrix(
        values=from_bytes(fmt, "weights", found["values"]),
        gaps=np.frombuffer(found["gaps"], np.uint8),
        rows=rows.astype(np.uint16),
        shape=(int(shape[0]), int(shape[1])),
        nonzeros=0,
    )
    if rows.size and matrix.values.size < int(rows[-1]):
        return None
    return to_bytes(fmt, "weights", matrix.dense())


def stored_arrays(
    image: ElfImage, layer: int, consts: Sequence[LayerConsts]
) -> dict[str, bytes] | None:
    """The bytes of one layer's arrays under the generator's symbols (None: not all found)."""
    out = {}
    for role, arr in consts[layer].arrays().items():
        sym = image.symbol(f"layer{layer}_{role}")
        data = None if sym is None else image.initial_bytes(sym.address, sym.size_bytes)
        if data is None and role == "weights":
            fmt = {"float32": "f32", "int32": "q16", "int8": "int8"}.get(arr.dtype.name)
            data = None if fmt is None else _sparse_weights(image, fmt, layer, arr.shape)
        if data is None:
            return None
        out[role] = data
    return out


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
            if sym is None and role == "weights":  # a sparse Dense layer: judge it decoded
                sym = image.symbol(f"layer{i}_sparse_values")
                got = None if sym is None else _sparse_weights(image, fmt, i, arr.shape)
                name = f"layer{i}_sparse_values"
            if sym is not None and got is not None:
                findings.append(
                    _judge(fmt, i, role, name, sym.address, got, want, arr.shape, alternatives)
                )
                continue
            findings.append(_locate(image, fmt, i, role, want, alternatives))
    return findings


def _judge(
    fmt: str,
    layer: int,
    role: str,
    name: str,
    address: int,
    got: bytes,
    want: bytes,
    shape: tuple[int, ...],
    alternatives: list[tuple[Mistake, bytes]],
) -> StaticFinding:
    if got == want:
        return StaticFinding(layer, role, "match", name, address, None, "as the model")
    for m, alt in alternatives:
        if got == alt:
            return StaticFinding(layer, role, "mistake", name, address, m, m.describe())
    return StaticFinding(
        layer, role, "differs", name, address, None, _difference(fmt, role, got, want, shape)
    )


def _find(image: ElfImage, fmt: str, role: str, data: bytes) -> tuple[int, str] | None:
    """Where ``data`` is in the image, exactly or (f32, q16) within rounding; and how."""
    at = _search(image, data)
    if at is not None:
        return at, "found by content"
    close = _search_close(image, fmt, role, data)
    if close is not None:
        return close[0], f"found by content within rounding (max |diff| {close[1]:.3g})"
    return None


def _locate(
    image: ElfImage,
    fmt: str,
    layer: int,
    role: str,
    want: bytes,
    alternatives: list[tuple[Mistake, bytes]],
) -> StaticFinding:
    found = _find(image, fmt, role, want)
    if found is not None:
        sym = _object_at(image, found[0])
        return StaticFinding(
            layer, role, "match", sym.name if sym else None, found[0], None, found[1]
        )
    for m, alt in alternatives:
        found = _find(image, fmt, role, alt)
        if found is not None:
            sym = _object_at(image, found[0])
            return StaticFinding(
                layer,
                role,
                "layout",
                sym.name if sym else None,
                found[0],
                m,
                f"holds the model's values as '{m.kind}:{m.variant}' would store them "
                f"({m.describe()}); right only if the code reads them that way ({found[1]})",
            )
    why = (
        "too short to search for by content"
        if len(want) < MIN_SEARCH_BYTES
        else "not in the image under any candidate layout"
    )
    return StaticFinding(layer, role, "missing", None, None, None, f"no layer{layer}_{role}; {why}")
