"""The sparse encoding of pruned Dense weights, and when the generator uses it.

A Dense weight matrix ``[out][in]`` is stored without its zeros as three
flash arrays (C struct ``nn_sparse_t`` in firmware_builds/include/
nn_common.h): the non-zero ``values`` row by row in column order, one
``gaps`` byte per value (its column minus the previous value's column; the
first of a row counts from column 0) and ``rows``, the uint16 end index of
each row's values. A gap wider than 255 columns is bridged by filler entries
of value 0 and gap 255. The kernels walk a row with ``x += gap; acc += v * *x``,
the dense kernel's sum in the same order without its zero terms: bit-exact in
int8 and q16 (integer sums), and in f32 for finite inputs (adding ``0 * x``
leaves a float sum unchanged).

When: :data:`SparseMode` ``auto`` (the default) encodes a layer when the
encoding is smaller than the dense matrix and no core is estimated to run it
slower. Flash is known exactly here; the cycle estimate comes from measured
ratios, sparse / dense cycles of a pruned 400x10 Dense layer (mnist_cnn's
size) on each board (``python -m simcore.firmware.sparse_figures``; README
"Sparse Dense layers"). The slowest core sets each format's threshold, the
share of the dense bytes the encoding must stay under
(:data:`AUTO_MAX_BYTES_RATIO`):

- f32: 5 bytes per entry against 4 per weight; the sparse layer is faster on
  every core from about 35% zeros (stm32h743: 1.13x at 25%, 0.90x at 40%):
  0.75 of the dense bytes, about 40% zeros.
- q16: the M7's dense q16 loop is fast (its 64-bit multiply-accumulate), so
  sparse pays there only from about 60% zeros (1.17x at 50%, 0.94x at 60%):
  0.5 of the dense bytes, 60% zeros.
- int8: 2 bytes per entry against 1, and the M33/M7 multiply two dense int8
  weights per SMLAD: the stm32h743 breaks even at 70% zeros (1.01x, 0.70x
  at 80%): 0.55 of the dense bytes, about 73% zeros.

``on`` encodes every Dense layer with weights, ``off`` none. Conv2D stays
dense: its weights are small next to its compute and a pruned kernel leaves
the input patch walk (most of its cycles) unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.errors import FirmwareError

#: The widest column step one gap byte holds.
MAX_GAP = 255
#: ``auto`` encodes a layer when the sparse arrays take less than this share of the dense
#: bytes, by format; see the module docstring.
AUTO_MAX_BYTES_RATIO = {"f32": 0.75, "q16": 0.5, "int8": 0.55}
#: Bytes per weight by format.
ELEMENT_BYTES = {"f32": 4, "q16": 4, "int8": 1}
#: ``rows`` holds uint16 end indices: at most this many entries per layer.
MAX_ENTRIES = 0xFFFF


class SparseMode(StrEnum):
    """Whether Dense layers use the sparse kernels."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


@dataclass(frozen=True)
class SparseMatrix:
    """A Dense matrix ``[out][in]`` in the sparse encoding (arrays as they go to flash)."""

    values: npt.NDArray[Any]
    gaps: npt.NDArray[np.uint8]
    rows: npt.NDArray[np.uint16]
    shape: tuple[int, int]
    nonzeros: int

    @property
    def entries(self) -> int:
        """Stored values: the non-zeros plus the zero fillers that bridge wide gaps."""
        return int(self.values.size)

    def nbytes(self, element_bytes: int) -> int:
        """Flash bytes of the three arrays with ``element_bytes`` per value."""
        return self.entries * (element_bytes + 1) + 2 * int(self.rows.size)

    def dense(self) -> npt.NDArray[Any]:
        """The matrix back in the dense layout (for tests and the static scan)."""
        out = np.zeros(self.shape, dtype=self.values.dtype)
        start = 0
        for o, end in enumerate(self.rows.tolist()):
            cols = np.cumsum(self.gaps[start:end].astype(np.int64))
            out[o, cols] = self.values[start:end]
            start = end
        return out


def encode_sparse(weights: npt.NDArray[Any]) -> SparseMatrix:
    """Encode a ``[out][in]`` matrix; raise FirmwareError when it needs over 65535 entries."""
    if weights.ndim != 2:
        raise FirmwareError(f"a sparse matrix is 2-D [out][in], not shape {weights.shape}")
    values: list[Any] = []
    gaps: list[int] = []
    rows: list[int] = []
    for row in weights:
        col = 0
        for j in np.flatnonzero(row).tolist():
            while j - col > MAX_GAP:  # filler entries: weight 0, one byte of gap each
                values.append(0)
                gaps.append(MAX_GAP)
                col += MAX_GAP
            values.append(row[j])
            gaps.append(j - col)
            col = j
        rows.append(len(values))
    if len(values) > MAX_ENTRIES:
        raise FirmwareError(
            f"a {weights.shape[0]}x{weights.shape[1]} matrix needs {len(values)} sparse entries, "
            f"more than the encoding's {MAX_ENTRIES}",
            hint="build this layer dense (--sparse off)",
        )
    return SparseMatrix(
        values=np.asarray(values, dtype=weights.dtype),
        gaps=np.asarray(gaps, dtype=np.uint8),
        rows=np.asarray(rows, dtype=np.uint16),
        shape=(int(weights.shape[0]), int(weights.shape[1])),
        nonzeros=int(np.count_nonzero(weights)),
    )


def choose_sparse(weights: npt.NDArray[Any], fmt: str, mode: SparseMode) -> SparseMatrix | None:
    """The sparse encoding of a Dense layer's weights in ``fmt`` if ``mode`` picks it, else None."""
    if mode is SparseMode.OFF:
        return None
    if mode is SparseMode.AUTO:
        element_bytes = ELEMENT_BYTES[fmt]
        limit = AUTO_MAX_BYTES_RATIO[fmt] * weights.size * element_bytes
        # Cheap first test (no encoding): even without fillers it would not pay.
        if np.count_nonzero(weights) * (element_bytes + 1) >= limit:
            return None
        try:
            matrix = encode_sparse(weights)
        except FirmwareError:
            return None
        return matrix if matrix.nbytes(element_bytes) < limit else None
    return encode_sparse(weights)


def parse_mode(text: str | SparseMode) -> SparseMode:
    """A SparseMode from its name (FirmwareError naming the choices otherwise)."""
    try:
        return SparseMode(text)
    except ValueError:
        raise FirmwareError(
            f"unknown sparse mode {text!r}",
            hint=f"choose one of {', '.join(m.value for m in SparseMode)}",
        ) from None
