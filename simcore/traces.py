"""Traced layer outputs out of a run: ``simcore run --trace --dump traces.npz``.

Each ``simcore_trace(layer, ptr, nbytes)`` call of a run is a record of raw
bytes. When the firmware's build manifest is next to the ELF (and is that
ELF's: its sha256 matches), the bytes become arrays of the layer's output
shape and the format's dtype (float32, int8, Q16.16 int32); otherwise they
stay bytes (uint8). The ``.npz`` holds, per traced layer ``N``:

- ``layerN``: ``(samples, *shape)``, one row per sample that traced the layer;
- ``layerN_samples``: the sample indices of those rows;

and ``meta``: a JSON string with the ELF, the format and each layer's name,
shape, dtype and manifest entry. NumPy reads it back without pickles
(``np.load(path)``).
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simcore.errors import UsageError
from simcore.outputs import write_output
from simcore.results import TraceRecord

if TYPE_CHECKING:  # numpy is imported when traces are dumped: the engine imports this module
    import numpy as np
    import numpy.typing as npt

#: The numpy dtype of each firmware format's activations.
DTYPES: dict[str, str] = {"f32": "<f4", "int8": "i1", "q16": "<i4"}


def elf_manifest(elf: Path) -> dict[str, Any]:
    """The build manifest of ``elf`` if it is that ELF's, else {}."""
    try:
        data = json.loads(elf.with_suffix(".json").read_text())
        recorded = data["files"]["elf_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    import hashlib  # here: importing it loads OpenSSL, which a run without a manifest skips

    actual = hashlib.sha256(elf.read_bytes()).hexdigest()
    return data if isinstance(data, dict) and recorded == actual else {}


def traces_to_arrays(
    elf: Path, traces: list[TraceRecord]
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
    """Arrays per traced layer (shaped and typed from the manifest when it has the layer)."""
    import numpy as np

    manifest = elf_manifest(elf)
    fmt = manifest.get("format")
    dtype: np.dtype[Any] = np.dtype("u1")
    if isinstance(fmt, str) and fmt in DTYPES:
        dtype = np.dtype(DTYPES[fmt])
    layers = {
        int(entry["id"]): entry
        for entry in manifest.get("layers", [])
        if isinstance(entry, dict) and isinstance(entry.get("id"), int)
    }
    by_layer: dict[int, list[TraceRecord]] = defaultdict(list)
    for record in traces:
        by_layer[record.layer_id].append(record)
    arrays: dict[str, npt.NDArray[Any]] = {}
    meta: dict[str, Any] = {"elf": str(elf), "format": fmt, "layers": {}}
    for layer_id, records in sorted(by_layer.items()):
        records.sort(key=lambda r: r.sample_index)
        entry = layers.get(layer_id, {})
        shape = tuple(int(d) for d in entry.get("out_shape", []))
        per_sample = int(np.prod(shape)) * dtype.itemsize if shape else 0
        sizes = {len(r.data) for r in records}
        typed = bool(shape) and sizes == {per_sample}
        if typed:
            rows = [np.frombuffer(r.data, dtype=dtype).reshape(shape) for r in records]
        elif len(sizes) == 1:
            rows = [np.frombuffer(r.data, dtype=np.uint8) for r in records]
        else:  # rows of different lengths: each sample its own array
            for r in records:
                arrays[f"layer{layer_id}_sample{r.sample_index}"] = np.frombuffer(
                    r.data, dtype=np.uint8
                ).copy()
            rows = []
        if rows:
            arrays[f"layer{layer_id}"] = np.stack(rows)
        arrays[f"layer{layer_id}_samples"] = np.asarray(
            [r.sample_index for r in records], dtype=np.int64
        )
        meta["layers"][str(layer_id)] = {
            "name": entry.get("name"),
            "kind": entry.get("kind"),
            "shape": list(shape) if typed else None,
            "dtype": str(dtype) if typed else "uint8",
            "samples": len(records),
        }
    return arrays, meta


def dump_traces(path: Path, elf: Path, traces: list[TraceRecord]) -> dict[str, Any]:
    """Write the traced layers of a run to ``path`` (.npz); return the ``meta`` it holds."""
    if not traces:
        raise UsageError(
            f"{elf.name} made no simcore_trace() calls: nothing to dump",
            hint="build it with --trace (simcore build --trace) or call simcore_trace()",
        )
    import numpy as np

    arrays, meta = traces_to_arrays(elf, traces)
    buffer = io.BytesIO()
    savez: Any = np.savez_compressed  # numpy's stubs reject **arrays
    savez(buffer, meta=np.asarray(json.dumps(meta)), **arrays)
    write_output(path, buffer.getvalue(), what="trace dump")
    return meta
