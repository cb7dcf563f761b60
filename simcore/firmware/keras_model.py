"""Read a Keras 3 ``.keras`` file into a float model, without TensorFlow.

A ``.keras`` file is a zip holding ``config.json`` (the architecture) and
``model.weights.h5`` (variables under ``layers/<layer name>/vars/<i>``), read
here with the standalone json and h5py modules. Sequential models and
Functional models that form a single chain are supported; every layer is
checked against what the generator can emit, and anything else is refused
naming the layer, its type and what is supported.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from simcore.firmware.ir import (
    ACTIVATIONS,
    FirmwareError,
    FloatModel,
    Geometry,
    Layer,
    same_or_valid,
)

SUPPORTED_LAYERS = (
    "InputLayer",
    "Dense",
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "Flatten",
    "Reshape",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "Dropout",
)
#: Keras' default negative slope of the "leaky_relu" activation string.
KERAS_LEAKY_RELU_SLOPE = 0.2


def _activation(value: Any, where: str) -> tuple[str, float]:
    """Return ``(name, alpha)`` of a Keras activation given as a string or a serialized dict."""
    if value is None:
        return "linear", 0.0
    if isinstance(value, dict):
        cfg = value.get("config", {})
        value = cfg.get("name", value.get("class_name")) if isinstance(cfg, dict) else None
    name = str(value).lower()
    if name == "leaky_relu":
        return name, KERAS_LEAKY_RELU_SLOPE
    if name not in ACTIVATIONS:
        raise FirmwareError(
            f"{where}: activation {name!r} is not supported",
            hint=f"supported activations: {', '.join(ACTIVATIONS)}",
        )
    return name, 0.0


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def snake_case(class_name: str) -> str:
    """Keras' ``naming.to_snake_case`` of a class name (``MaxPooling2D`` -> ``max_pooling2d``)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _vars(h5: Any, key: str) -> list[np.ndarray[Any, Any]]:
    """Return the variables stored under ``layers/<key>/vars`` in Keras order (kernel, bias).

    Keras 3 names a layer's weight group after its class, not its name:
    ``dense``, ``dense_1``, ... in model order (saving_lib's container state).
    """
    group = h5.get(f"layers/{key}/vars")
    if group is None:
        return []
    return [np.asarray(group[k]) for k in sorted(group.keys(), key=int)]


def _read_zip(path: Path) -> tuple[dict[str, Any], bytes, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FirmwareError(
            f"cannot read model {path}: {exc.strerror}", hint="check the path"
        ) from exc
    sha = hashlib.sha256(data).hexdigest()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            config = json.loads(zf.read("config.json"))
            weights = zf.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise FirmwareError(
            f"{path} is not a readable .keras model ({exc})",
            hint="regenerate it with `nox -s golden` or pass a Keras 3 .keras file",
        ) from None
    return config, weights, sha


def _chain(config: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    cls = config.get("class_name")
    layers = config.get("config", {}).get("layers")
    if cls not in ("Sequential", "Functional", "Model") or not isinstance(layers, list):
        raise FirmwareError(
            f"{path}: model class {cls!r} is not supported",
            hint="use a Sequential model or a Functional model that is a single chain",
        )
    if cls != "Sequential":
        previous = None
        for entry in layers:
            inbound = json.dumps(entry.get("inbound_nodes", []))
            names = {str(n) for n in _inbound_names(entry.get("inbound_nodes", []))}
            if previous is not None and names != {previous}:
                raise FirmwareError(
                    f"{path}: layer {entry.get('name')!r} ({entry.get('class_name')}) does not "
                    f"take the previous layer's output (inbound {inbound[:80]})",
                    hint="only single-chain models are supported",
                )
            previous = entry.get("name") or entry.get("config", {}).get("name")
    return layers


def _inbound_names(nodes: Any) -> list[str]:
    """Collect the layer names a Keras 3 inbound-node list refers to."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if v.get("class_name") == "__keras_tensor__":
                hist = v.get("config", {}).get("keras_history")
                if hist:
                    out.append(str(hist[0]))
                return
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(nodes)
    return out


def read_keras(path: Path, name: str | None = None) -> FloatModel:
    """Read ``path`` (a ``.keras`` zip) into a float model; raise FirmwareError on anything else."""
    import h5py  # only the f32/q16 build path needs it

    config, weights_bytes, sha = _read_zip(path)
    entries = _chain(config, path)
    try:
        h5 = h5py.File(io.BytesIO(weights_bytes), "r")
    except OSError as exc:
        raise FirmwareError(f"{path}: model.weights.h5 is not readable HDF5 ({exc})") from None
    with h5:
        return _build(entries, h5, path, sha, name or path.stem)


def _build(
    entries: list[dict[str, Any]], h5: Any, path: Path, sha: str, model_name: str
) -> FloatModel:
    shape: tuple[int, ...] | None = None
    layers: list[Layer] = []
    used: dict[str, int] = {}
    for entry in entries:
        cls = entry.get("class_name", "?")
        key = snake_case(str(cls))
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        cfg = entry.get("config", {})
        lname = str(cfg.get("name", entry.get("name", "?")))
        where = f"{path.name}: layer {lname!r} ({cls})"
        if cls not in SUPPORTED_LAYERS:
            raise FirmwareError(
                f"{where} is not supported",
                hint=f"supported layers: {', '.join(SUPPORTED_LAYERS)}",
            )
        if cls == "InputLayer":
            batch_shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            shape = tuple(int(d) for d in batch_shape[1:])
            continue
        if shape is None:
            build_shape = entry.get("build_config", {}).get("input_shape")
            if build_shape is None:
                raise FirmwareError(f"{where}: the model has no input shape")
            shape = tuple(int(d) for d in build_shape[1:])
        layer = _layer(cls, cfg, lname, where, shape, _vars(h5, key))
        if layer is not None:
            layers.append(layer)
            shape = layer.out_shape
    if shape is None or not layers:
        raise FirmwareError(f"{path}: the model has no layers")
    first = layers[0].in_shape
    return FloatModel(
        name=model_name, sha256=sha, source=str(path), input_shape=first, layers=tuple(layers)
    )


def _layer(
    cls: str,
    cfg: dict[str, Any],
    name: str,
    where: str,
    shape: tuple[int, ...],
    variables: list[np.ndarray[Any, Any]],
) -> Layer | None:
    if cls == "Dropout":
        return None  # identity at inference
    if cls == "Dense":
        if len(shape) != 1:
            raise FirmwareError(
                f"{where}: Dense on a {len(shape)}-d input is not supported",
                hint="add a Flatten layer before it",
            )
        act, alpha = _activation(cfg.get("activation"), where)
        if not variables:
            raise FirmwareError(f"{where}: no weights in model.weights.h5")
        kernel = variables[0].astype(np.float32)
        units = int(cfg.get("units", kernel.shape[1]))
        bias = (
            variables[1].astype(np.float32)
            if cfg.get("use_bias", True) and len(variables) > 1
            else np.zeros(units, np.float32)
        )
        if kernel.shape != (shape[0], units):
            raise FirmwareError(f"{where}: kernel shape {kernel.shape} != ({shape[0]}, {units})")
        return Layer(
            name,
            "dense",
            shape,
            (units,),
            act,
            alpha,
            np.ascontiguousarray(kernel.T),
            bias,
        )
    if cls == "Conv2D":
        if len(shape) != 3:
            raise FirmwareError(f"{where}: Conv2D needs an HWC input, got shape {shape}")
        for key, ok in (("data_format", "channels_last"), ("groups", 1)):
            if cfg.get(key, ok) != ok:
                raise FirmwareError(
                    f"{where}: {key}={cfg.get(key)!r} is not supported", hint=f"use {key}={ok!r}"
                )
        if _pair(cfg.get("dilation_rate", 1)) != (1, 1):
            raise FirmwareError(
                f"{where}: dilation_rate={cfg.get('dilation_rate')} is not supported",
                hint="use dilation_rate=1",
            )
        padding = str(cfg.get("padding", "valid")).lower()
        if padding not in ("valid", "same"):
            raise FirmwareError(
                f"{where}: padding={padding!r} is not supported", hint="use 'valid' or 'same'"
            )
        act, alpha = _activation(cfg.get("activation"), where)
        if not variables:
            raise FirmwareError(f"{where}: no weights in model.weights.h5")
        kernel = variables[0].astype(np.float32)  # HWIO
        k_h, k_w, c_in, c_out = kernel.shape
        if c_in != shape[2]:
            raise FirmwareError(f"{where}: kernel expects {c_in} channels, input has {shape[2]}")
        s_h, s_w = _pair(cfg.get("strides", 1))
        out_h, out_w, pt, pl = same_or_valid(padding, shape[0], shape[1], k_h, k_w, s_h, s_w)
        bias = (
            variables[1].astype(np.float32)
            if cfg.get("use_bias", True) and len(variables) > 1
            else np.zeros(c_out, np.float32)
        )
        return Layer(
            name,
            "conv2d",
            shape,
            (out_h, out_w, c_out),
            act,
            alpha,
            np.ascontiguousarray(kernel.transpose(3, 0, 1, 2)),
            bias,
            Geometry(k_h, k_w, s_h, s_w, pt, pl),
        )
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        if len(shape) != 3:
            raise FirmwareError(f"{where}: pooling needs an HWC input, got shape {shape}")
        k_h, k_w = _pair(cfg.get("pool_size", 2))
        strides = cfg.get("strides") or (k_h, k_w)
        s_h, s_w = _pair(strides)
        padding = str(cfg.get("padding", "valid")).lower()
        if padding not in ("valid", "same") or cfg.get("data_format", "channels_last") not in (
            None,
            "channels_last",
        ):
            raise FirmwareError(
                f"{where}: padding={padding!r}, data_format={cfg.get('data_format')!r} "
                "is not supported",
                hint="use padding 'valid' or 'same' and channels_last",
            )
        out_h, out_w, pt, pl = same_or_valid(padding, shape[0], shape[1], k_h, k_w, s_h, s_w)
        kind = "maxpool" if cls == "MaxPooling2D" else "avgpool"
        return Layer(
            name,
            kind,
            shape,
            (out_h, out_w, shape[2]),
            geometry=Geometry(k_h, k_w, s_h, s_w, pt, pl),
        )
    if cls in ("Flatten", "Reshape"):
        n = int(np.prod(shape))
        if cls == "Reshape":
            target = tuple(int(d) for d in cfg.get("target_shape", (n,)))
            if -1 in target:
                known = int(np.prod([d for d in target if d != -1]))
                target = tuple(n // known if d == -1 else d for d in target)
            if int(np.prod(target)) != n:
                raise FirmwareError(f"{where}: cannot reshape {shape} to {target}")
            return Layer(name, "flatten", shape, target)
        return Layer(name, "flatten", shape, (n,))
    # Activation layers.
    if cls == "Activation":
        act, alpha = _activation(cfg.get("activation"), where)
    elif cls == "ReLU":
        if cfg.get("max_value") is not None or float(cfg.get("threshold", 0.0)) != 0.0:
            raise FirmwareError(
                f"{where}: max_value/threshold are not supported",
                hint="use a plain ReLU or LeakyReLU",
            )
        slope = float(cfg.get("negative_slope", 0.0))
        act, alpha = ("leaky_relu", slope) if slope else ("relu", 0.0)
    elif cls == "LeakyReLU":
        act = "leaky_relu"
        alpha = float(cfg.get("negative_slope", cfg.get("alpha", 0.3)))
    else:  # Softmax
        axis = cfg.get("axis", -1)
        if axis not in (-1, len(shape)):
            raise FirmwareError(
                f"{where}: softmax over axis {axis} is not supported", hint="use axis=-1"
            )
        act, alpha = "softmax", 0.0
    return Layer(name, "activation", shape, shape, act, alpha)
