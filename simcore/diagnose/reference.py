"""Reference samples for the layout doctor: inputs and the per-layer outputs expected.

Shipped models use their golden per-layer intermediates (Keras for f32,
TFLite for int8) where the golden keeps them, and simcore's per-layer
reference, which equals them there (tests/diagnose), for further golden
inputs; q16 uses the bit-exact Q16.16 reference throughout. A model file
without a golden gets seeded random inputs or the user's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.diagnose import mistakes as mk
from simcore.errors import UsageError
from simcore.firmware.consts import LayerConsts, encode
from simcore.firmware.evaluate import evaluate
from simcore.firmware.ir import FloatModel, Int8Model, numel
from simcore.firmware.reference import run_chain
from simcore.golden.store import Golden

#: Samples run by default (a mistake can hide on a few: a ReLU left out shows only
#: where the pre-activation is negative).
DEFAULT_SAMPLES = 16


@dataclass(frozen=True)
class Reference:
    """Reference samples: inputs in the firmware's encoding and per-layer expected outputs."""

    inputs: npt.NDArray[Any]
    layers: list[npt.NDArray[Any]]
    description: str
    input_source: str


def chain_of(model: FloatModel | Int8Model) -> list[mk.AnyLayer]:
    return list(model.ops if isinstance(model, Int8Model) else model.layers)


def forward(
    fmt: str,
    chain: Sequence[mk.AnyLayer],
    consts: Sequence[LayerConsts],
    inputs: npt.NDArray[Any],
) -> list[npt.NDArray[Any]]:
    """Per-layer outputs ``(n, *out_shape)`` of the chain, in the firmware's arithmetic."""
    steps = [partial(evaluate, fmt, layer, lc) for layer, lc in zip(chain, consts, strict=True)]
    return run_chain(steps, inputs)


def reference_for(
    model: FloatModel | Int8Model,
    fmt: str,
    *,
    samples: int | None = None,
    inputs: npt.NDArray[Any] | None = None,
) -> Reference:
    """Pick reference samples: the golden per-layer samples of a shipped model, else others."""
    from pathlib import Path

    from simcore.firmware.q16_ref import to_q16
    from simcore.golden.locate import find_golden_for_model
    from simcore.golden.store import load_golden_dir

    chain, consts = chain_of(model), encode(model, fmt)
    if inputs is not None:
        x = _as_encoding(fmt, inputs, model.input_shape)
        x = x[:samples] if samples else x
        return Reference(
            x, forward(fmt, chain, consts, x), "simcore's per-layer reference", "given inputs"
        )
    folder = find_golden_for_model(Path(model.source), model.sha256)
    if folder is not None:
        golden = load_golden_dir(folder)
        if golden.model_sha256.get(golden.role(fmt)) == model.sha256:
            return _golden_reference(golden, model, fmt, samples or DEFAULT_SAMPLES)
    n = samples or DEFAULT_SAMPLES
    rng = np.random.default_rng(0)
    shape = (n, *model.input_shape)
    if fmt == "int8":
        x = rng.integers(-128, 128, size=shape).astype(np.int64)
    else:
        fx = rng.uniform(0.0, 1.0, size=shape).astype(np.float32)
        x = to_q16(fx).astype(np.int64) if fmt == "q16" else fx
    return Reference(
        x,
        forward(fmt, chain, consts, x),
        "simcore's per-layer reference of the model file",
        f"{n} random inputs (seed 0; pass --inputs for real ones)",
    )


def _golden_reference(golden: Golden, model: FloatModel | Int8Model, fmt: str, n: int) -> Reference:
    """The golden per-layer samples first, then further test inputs, ``n`` in all.

    f32 and int8 layers are compared with the golden intermediates (Keras,
    TFLite) where the golden keeps them, and with simcore's per-layer
    reference (equal to them on those samples, tests/diagnose) elsewhere; q16
    with the bit-exact Q16.16 reference throughout.
    """
    from simcore.firmware.q16_ref import to_q16

    chain, consts = chain_of(model), encode(model, fmt)
    kept = [int(r) for r in golden.layer_samples[:n]]
    pool = [int(r) for r in golden.split("test")] + list(range(golden.num_samples))
    extra = [r for r in dict.fromkeys(pool) if r not in kept][: n - len(kept)]
    rows = np.asarray(kept + extra, dtype=np.int64)
    x: npt.NDArray[Any]
    if fmt == "int8":
        x = golden.inputs_int8[rows].astype(np.int64)
    else:
        fx = golden.inputs_float[rows].astype(np.float32)
        x = to_q16(fx).astype(np.int64) if fmt == "q16" else fx
    x = x.reshape((len(rows), *model.input_shape))
    mine = forward(fmt, chain, consts, x)
    src = f"{len(kept)} golden per-layer samples + {len(extra)} more golden inputs"
    layers = golden.layer_outputs_int8 if fmt == "int8" else golden.layer_outputs_float
    if fmt == "q16" or len(layers) != len(chain):
        return Reference(x, mine, "bit-exact Q16.16 reference (q16_ref)", src)
    which = "TFLite int8" if fmt == "int8" else "Keras"
    want = [
        np.concatenate([lo.values[: len(kept)].reshape((len(kept), *lo.shape)), m[len(kept) :]])
        for lo, m in zip(layers, mine, strict=True)
    ]
    desc = f"golden {which} per-layer outputs" + (
        ", simcore's per-layer reference for the others" if extra else ""
    )
    return Reference(x, want, desc, src)


def _as_encoding(fmt: str, values: npt.NDArray[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
    from simcore.firmware.q16_ref import to_q16

    arr = np.asarray(values)
    n = arr.size // max(numel(shape), 1)
    if n * numel(shape) != arr.size or n == 0:
        raise UsageError(f"inputs have {arr.size} values, not a multiple of the input {shape}")
    arr = arr.reshape((n, *shape))
    if fmt == "int8":
        if arr.dtype.kind not in "iu" or arr.min() < -128 or arr.max() > 127:
            raise UsageError("int8 firmware takes int8 inputs (quantize them first)")
        return arr.astype(np.int64)
    f = arr.astype(np.float32)
    return to_q16(f).astype(np.int64) if fmt == "q16" else f
