"""Types shared by the firmware tests (conftest fixtures are not importable by name)."""

from __future__ import annotations

import ctypes
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware import FirmwareBuild

P = ctypes.c_void_p


class Geom(ctypes.Structure):
    """``nn_geom_t`` (include/nn_common.h) for calling the host-built kernels."""

    _fields_ = [
        (n, ctypes.c_uint16) for n in ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c")
    ] + [(n, ctypes.c_uint8) for n in ("k_h", "k_w", "stride_h", "stride_w", "pad_top", "pad_left")]


class Quant(ctypes.Structure):
    """``nn_int8_quant_t`` (include/nn_int8.h)."""

    _fields_ = [
        ("input_offset", ctypes.c_int32),
        ("output_offset", ctypes.c_int32),
        ("act_min", ctypes.c_int32),
        ("act_max", ctypes.c_int32),
        ("multiplier", P),
        ("shift", P),
    ]


def ptr(a: npt.NDArray[Any]) -> int:
    """The address of an array's data, for a ctypes call."""
    return int(a.ctypes.data)


#: The ``fw_build`` fixture: ``fw_build(model, fmt, board, **options) -> FirmwareBuild``.
Builder = Callable[..., FirmwareBuild]


def write_keras(
    path: Path,
    layers: list[dict[str, Any]],
    weights: dict[str, list[Any]],
    input_shape: tuple[int, ...],
) -> Path:
    """Write a minimal Keras 3 ``.keras`` file (Sequential) without Keras.

    ``layers`` are ``{"class_name": ..., "config": {...}}`` entries; ``weights``
    maps the weight-group key (``dense``, ``dense_1``, ``conv2d``...) to its
    variables in Keras order.
    """
    import h5py

    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": path.stem,
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, *input_shape], "name": "input"},
                },
                *layers,
            ],
        },
    }
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        for key, variables in weights.items():
            group = h5.create_group(f"layers/{key}/vars")
            for i, v in enumerate(variables):
                group.create_dataset(str(i), data=np.asarray(v, dtype=np.float32))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.x"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", buf.getvalue())
    return path


def small_keras(
    path: Path, *, extra: list[dict[str, Any]] | None = None, activation: str = "relu"
) -> Path:
    """A 4-8-3 Dense network (``activation`` hidden, softmax out) with fixed weights."""
    rng = np.random.default_rng(7)
    layers = [
        {
            "class_name": "Dense",
            "config": {"name": "hidden", "units": 8, "activation": activation, "use_bias": True},
        },
        {
            "class_name": "Dense",
            "config": {"name": "out", "units": 3, "activation": "softmax", "use_bias": True},
        },
        *(extra or []),
    ]
    weights = {
        "dense": [rng.normal(size=(4, 8)), rng.normal(size=8) * 0.1],
        "dense_1": [rng.normal(size=(8, 3)), rng.normal(size=3) * 0.1],
    }
    return write_keras(path, layers, weights, (4,))
