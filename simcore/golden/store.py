"""Load and validate golden predictions (NumPy only: the run/validate path uses this).

A golden is a folder. The shipped ones sit under ``golden/`` (one per model);
a user's, written by ``simcore golden create``, anywhere (format version 2,
see :mod:`simcore.golden.create`)::

    golden/<name>/golden.json        header: format version, sha256 of every file,
                                     data-set sha256, quantization, layers, versions, seeds
    golden/<name>/golden.npz         arrays: outputs, splits, per-layer intermediates
    golden/<name>/model.keras        the trained Keras model (float reference)
    golden/<name>/model_float.tflite float TFLite, batch size 1
    golden/<name>/model_int8.tflite  full-integer TFLite, int8 input and output
    golden/data/*.npz                the data sets the goldens were computed on

Version 2 adds what a user's golden needs: the data set inside the folder
(``dataset.path_base = "golden"``, ``data.npz``), labels that may be absent
(``has_labels``), and model roles that may be absent (an int8 ``.tflite``
alone has no Keras model, so only the int8 format can be validated; its float
reference is then the dequantized int8 output, ``float_reference``).

A golden whose header, model, arrays or data set does not match its recorded
sha256 is refused with :class:`~simcore.errors.GoldenError` ("stale,
regenerate"), never compared. Only :mod:`simcore.golden.generate` writes here.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.api import public
from simcore.errors import GoldenError
from simcore.golden.datasets import (
    GOLDEN_DIR,
    REGENERATE_HINT,
    load_dataset,
    mnist_to_float,
    sha256_file,
)

FORMAT_NAME = "simcore-golden"
#: The version this simcore writes; it reads every version in READABLE_VERSIONS.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
HEADER_FILE = "golden.json"
ARRAYS_FILE = "golden.npz"
KERAS_FILE = "model.keras"
TFLITE_FLOAT_FILE = "model_float.tflite"
TFLITE_INT8_FILE = "model_int8.tflite"
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model_int8.onnx"
MODEL_ROLES = ("keras", "tflite_float", "tflite_int8", "onnx", "onnx_int8")
#: The model role each firmware format is built from and compared with.
FORMAT_ROLE = {"f32": "keras", "q16": "keras", "int8": "tflite_int8"}
#: The role used instead when the golden was made from an ONNX model (golden create model.onnx).
ONNX_FORMAT_ROLE = {"f32": "onnx", "q16": "onnx", "int8": "onnx_int8"}


# --- shared by the generator and the loader ------------------------------------------------


def quantize(x: npt.NDArray[Any], scale: float, zero_point: int) -> npt.NDArray[np.int8]:
    """Quantize float inputs to int8 as TFLite's QUANTIZE does: round half away from zero."""
    v = np.asarray(x, dtype=np.float32) / np.float32(scale)
    r = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.asarray(np.clip(r + zero_point, -128, 127), dtype=np.int8)


def dequantize(q: npt.NDArray[Any], scale: float, zero_point: int) -> npt.NDArray[np.float32]:
    """Return ``scale * (q - zero_point)`` as float32."""
    return (np.float32(scale) * (q.astype(np.int32) - zero_point).astype(np.float32)).astype(
        np.float32
    )


def array_sha256(a: npt.NDArray[Any]) -> str:
    """Return the sha256 of an array's dtype, shape and C-order bytes."""
    digest = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _canonical(header: dict[str, Any]) -> bytes:
    body = {k: v for k, v in header.items() if k != "header_sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def write_header(path: Path, header: dict[str, Any]) -> None:
    """Write a golden header with its own sha256 (so an edited header is detected)."""
    full = dict(header)
    full["header_sha256"] = hashlib.sha256(_canonical(header)).hexdigest()
    path.write_text(json.dumps(full, indent=1, sort_keys=True) + "\n")


# --- the loaded golden --------------------------------------------------------------------


@dataclass(frozen=True)
class QuantParams:
    """Per-tensor affine quantization: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class LayerOutput:
    """Intermediate output of one layer (float: Keras layer; int8: TFLite operator).

    ``values`` has shape ``(len(layer_samples),) + shape``. For int8 ops,
    ``keras_layer`` names the Keras layer the op belongs to (None if none) and
    ``is_layer_output`` says whether the op's output is that layer's output
    (False for e.g. the FULLY_CONNECTED before a separate TANH op).
    """

    index: int
    name: str
    kind: str
    shape: tuple[int, ...]
    values: npt.NDArray[Any]
    quant: QuantParams | None = None
    keras_layer: str | None = None
    is_layer_output: bool = True

    def dequantized(self) -> npt.NDArray[np.float32]:
        """Return the values as float (int8 layers dequantized, float layers as they are)."""
        if self.quant is None:
            return np.asarray(self.values, dtype=np.float32)
        return dequantize(self.values, self.quant.scale, self.quant.zero_point)


@dataclass(frozen=True)
class Golden:
    """Validated golden predictions of one model; rows are samples in data-set order.

    ``splits`` maps a split name (``test``, ``all``, and ``train`` for IRIS) to
    row indices into every per-sample array here. ``dataset_rows`` maps rows
    to rows of the data-set file. ``layer_samples`` are the rows whose
    per-layer intermediates are kept.
    """

    name: str
    description: str
    task: str
    directory: Path
    keras_path: Path | None
    tflite_float_path: Path | None
    tflite_int8_path: Path | None
    #: sha256 per model role present in the golden (a subset of MODEL_ROLES).
    model_sha256: dict[str, str]
    dataset_name: str
    dataset_sha256: str
    label_names: tuple[str, ...]
    dataset_rows: npt.NDArray[np.int64]
    inputs_float: npt.NDArray[np.float32]
    inputs_int8: npt.NDArray[np.int8]
    labels: npt.NDArray[np.int64]
    outputs_float: npt.NDArray[np.float32]
    outputs_int8_raw: npt.NDArray[np.int8]
    outputs_int8_dequant: npt.NDArray[np.float32]
    input_quant: QuantParams
    output_quant: QuantParams
    splits: dict[str, npt.NDArray[np.int64]]
    layer_samples: npt.NDArray[np.int64]
    layer_outputs_float: tuple[LayerOutput, ...]
    layer_outputs_int8: tuple[LayerOutput, ...]
    header: dict[str, Any]
    #: False when the data came without labels: accuracy is then not reported.
    has_labels: bool = True
    #: What ``outputs_float`` holds: "keras", "onnxruntime" or "tflite_int8 dequantized".
    float_reference: str = "keras"
    #: The ONNX models of a golden made from an .onnx (float, and QDQ int8).
    onnx_path: Path | None = None
    onnx_int8_path: Path | None = None

    @property
    def num_samples(self) -> int:
        """Number of rows (samples) in this golden."""
        return len(self.labels)

    def role(self, fmt: str) -> str:
        """The model role firmware in ``fmt`` is built from: Keras/TFLite's, else ONNX's."""
        role, onnx_role = FORMAT_ROLE[fmt], ONNX_FORMAT_ROLE[fmt]
        if role not in self.model_sha256 and onnx_role in self.model_sha256:
            return onnx_role
        return role

    @property
    def formats(self) -> tuple[str, ...]:
        """The firmware formats this golden can validate (its model roles decide)."""
        return tuple(f for f in FORMAT_ROLE if self.role(f) in self.model_sha256)

    @property
    def shipped(self) -> bool:
        """Whether this is one of simcore's shipped goldens."""
        return self.directory.parent.resolve() == GOLDEN_DIR.resolve()

    def model_path(self, fmt: str) -> Path:
        """The model file firmware in ``fmt`` is built from; GoldenError if the golden has none."""
        path = {
            "keras": self.keras_path,
            "tflite_int8": self.tflite_int8_path,
            "onnx": self.onnx_path,
            "onnx_int8": self.onnx_int8_path,
        }[self.role(fmt)]
        if path is None:
            onnx = any(role.startswith("onnx") for role in self.model_sha256)
            role, source = (
                (ONNX_FORMAT_ROLE[fmt], ".onnx") if onnx else (FORMAT_ROLE[fmt], ".keras")
            )
            raise GoldenError(
                f"golden {self.name} ({self.directory}) has no {role} model, so it "
                f"cannot validate {fmt}; it covers {', '.join(self.formats) or 'no format'}",
                hint=f"create the golden from the float {source} model to get f32, q16 and int8",
            )
        return path

    def split(self, name: str) -> npt.NDArray[np.int64]:
        """Return the row indices of split ``name``."""
        try:
            return self.splits[name]
        except KeyError:
            raise GoldenError(
                f"golden for {self.name} has no split {name!r}; known: {', '.join(self.splits)}"
            ) from None


def list_models(root: Path = GOLDEN_DIR) -> list[str]:
    """Return the names of the models that have a golden folder, sorted."""
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{HEADER_FILE}"))


def list_folders(root: Path = GOLDEN_DIR) -> list[str]:
    """Every model folder under ``root``, with or without its header (``data/`` excluded).

    ``validate --all`` runs these, so a folder that lost its golden.json is
    reported as broken instead of being skipped without a word.
    """
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and p.name != "data" and not p.name.startswith((".", "_"))
    )


def _stale(name: str, what: str) -> GoldenError:
    return GoldenError(f"golden for {name} is stale: {what}", hint=REGENERATE_HINT)


def read_header(name: str, root: Path = GOLDEN_DIR) -> dict[str, Any]:
    """Read and check the header of shipped-style golden ``root/name``."""
    path = root / name / HEADER_FILE
    if not path.is_file():
        known = ", ".join(list_models(root)) or "none"
        raise GoldenError(
            f"no golden for model {name!r} (no {path}); known: {known}",
            hint="pass a golden folder or model file, or create one with `simcore golden create`",
        )
    return read_header_at(root / name)


def read_header_at(directory: Path) -> dict[str, Any]:
    """Read and check a golden folder's header: format, version and its own sha256."""
    path = directory / HEADER_FILE
    name = directory.name
    if not path.is_file():
        raise GoldenError(
            f"{directory} is not a golden folder (no {HEADER_FILE})",
            hint="create one with `simcore golden create MODEL --data DATA`",
        )
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _stale(name, f"header {path} is unreadable ({exc})") from exc
    if not isinstance(header, dict):
        raise _stale(name, f"header {path} is not a JSON object")
    if header.get("format") != FORMAT_NAME or header.get("version") not in READABLE_VERSIONS:
        raise _stale(
            name,
            f"header {path} is format {header.get('format')!r} version "
            f"{header.get('version')!r}, this simcore reads {FORMAT_NAME!r} versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}",
        )
    recorded = header.get("header_sha256")
    actual = hashlib.sha256(_canonical(header)).hexdigest()
    if recorded != actual:
        raise _stale(name, f"header {path} was edited: sha256 {actual} != {recorded}")
    return header


def _check_file(name: str, directory: Path, role: str, entry: dict[str, str]) -> Path:
    path = directory / entry["path"]
    if not path.is_file():
        raise _stale(name, f"{role} file {path} is missing")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        what = "golden arrays" if role == "arrays" else f"model ({role})"
        raise _stale(name, f"{what} {path.name} sha256 {actual} != {entry['sha256']}")
    return path


def _layers(
    header: dict[str, Any], arrays: dict[str, npt.NDArray[Any]], n: int
) -> tuple[tuple[LayerOutput, ...], tuple[LayerOutput, ...]]:
    floats = tuple(
        LayerOutput(
            index=int(d["index"]),
            name=str(d["name"]),
            kind=str(d["class"]) + (f"({d['activation']})" if d.get("activation") else ""),
            shape=tuple(d["output_shape"]),
            values=arrays[f"layer_float_{d['index']}"],
        )
        for d in header["keras_layers"]
    )
    ints = tuple(
        LayerOutput(
            index=int(d["index"]),
            name=str(d["output_tensor"]),
            kind=str(d["op"]),
            shape=tuple(d["output_shape"]),
            values=arrays[f"layer_int8_{d['index']}"].reshape((n, *d["output_shape"])),
            quant=QuantParams(float(d["scale"]), int(d["zero_point"])),
            keras_layer=d.get("keras_layer"),
            is_layer_output=bool(d.get("layer_output", False)),
        )
        for d in header["int8_ops"]
    )
    return floats, ints


def _dataset(
    name: str, directory: Path, ds_info: dict[str, Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64] | None]:
    """The data set's inputs and labels (None when it has none), checked by sha256."""
    if ds_info.get("path_base") == "golden":  # a user's golden keeps its data inside
        path = directory / str(ds_info["path"])
        if not path.is_file():
            raise _stale(name, f"data file {path} is missing")
        if sha256_file(path) != ds_info["sha256"]:
            raise _stale(name, f"data file {path.name} sha256 differs from the header's")
        try:
            with np.load(path, allow_pickle=False) as npz:
                inputs = npz["inputs"]
                labels = npz["labels"].astype(np.int64) if "labels" in npz.files else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise _stale(name, f"data file {path} unreadable ({exc})") from exc
        return inputs, labels
    try:
        dataset = load_dataset(
            ds_info["name"], expected_sha256=ds_info["sha256"], data_dir=directory.parent / "data"
        )
    except GoldenError as exc:
        raise _stale(name, f"data set: {exc.message}") from exc
    return dataset.inputs, dataset.labels


def _float_inputs(
    ds_info: dict[str, Any], raw: npt.NDArray[Any], in_q: QuantParams
) -> npt.NDArray[np.float32]:
    """The model's float inputs from the stored data (MNIST pixels, int8 data, or as given)."""
    if ds_info["name"] == "mnist_test":
        return mnist_to_float(raw)
    if raw.dtype == np.int8:  # a user's int8 model fed int8 data: the float it stands for
        return dequantize(raw, in_q.scale, in_q.zero_point)
    return raw.astype(np.float32)


@public
def load_golden(name: str, root: Path = GOLDEN_DIR) -> Golden:
    """Load the golden ``root/name`` (shipped layout), refusing it unless every sha256 matches."""
    read_header(name, root)  # the "no golden for model ..." message names the known ones
    return load_golden_dir(root / name)


@public
def load_golden_dir(directory: Path) -> Golden:
    """Load the golden in ``directory``, refusing it unless every sha256 matches."""
    header = read_header_at(directory)
    name = str(header.get("name") or directory.name)
    files = header["files"]
    paths = {role: _check_file(name, directory, role, files[role]) for role in files}
    ds_info = header["dataset"]
    raw_inputs_all, labels_all = _dataset(name, directory, ds_info)
    try:
        with np.load(paths["arrays"], allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise _stale(name, f"golden arrays unreadable ({exc})") from exc

    has_labels = bool(header.get("has_labels", True))
    try:
        rows = arrays["rows"].astype(np.int64)
        in_q = QuantParams(float(header["input"]["scale"]), int(header["input"]["zero_point"]))
        out_q = QuantParams(float(header["output"]["scale"]), int(header["output"]["zero_point"]))
        inputs_float = _float_inputs(ds_info, raw_inputs_all[rows], in_q)
        inputs_int8 = quantize(inputs_float, in_q.scale, in_q.zero_point)
        if array_sha256(inputs_int8) != header["input"]["int8_sha256"]:
            raise _stale(name, "quantized inputs differ from those the goldens were made from")
        labels = arrays["labels"].astype(np.int64)
        if has_labels:
            if labels_all is None:
                raise _stale(name, "the header promises labels the data set does not have")
            expected_labels = labels_all[rows] - int(ds_info.get("label_offset", 0))
            if not np.array_equal(labels, expected_labels):
                raise _stale(name, "labels differ from the data set's")
        raw = arrays["outputs_int8_raw"].astype(np.int8)
        splits = {k[len("split_") :]: v.astype(np.int64) for k, v in arrays.items()
                  if k.startswith("split_")}  # fmt: skip
        layer_samples = arrays["layer_samples"].astype(np.int64)
        floats, ints = _layers(header, arrays, len(layer_samples))
    except KeyError as exc:
        raise _stale(name, f"golden arrays or header lack {exc}") from exc
    except IndexError as exc:
        raise _stale(name, f"golden rows do not fit the data set ({exc})") from exc
    n = len(rows)
    if not (len(labels) == n == len(raw) == len(arrays["outputs_float"])):
        raise _stale(name, "per-sample arrays have different lengths")
    return Golden(
        name=name,
        description=str(header.get("description", "")),
        task=str(header["task"]),
        directory=directory,
        keras_path=paths.get("keras"),
        tflite_float_path=paths.get("tflite_float"),
        tflite_int8_path=paths.get("tflite_int8"),
        model_sha256={role: files[role]["sha256"] for role in MODEL_ROLES if role in files},
        dataset_name=str(ds_info["name"]),
        dataset_sha256=str(ds_info["sha256"]),
        label_names=tuple(header["label_names"]),
        dataset_rows=rows,
        inputs_float=inputs_float,
        inputs_int8=inputs_int8,
        labels=labels,
        outputs_float=arrays["outputs_float"].astype(np.float32),
        outputs_int8_raw=raw,
        outputs_int8_dequant=dequantize(raw, out_q.scale, out_q.zero_point),
        input_quant=in_q,
        output_quant=out_q,
        splits=splits,
        layer_samples=layer_samples,
        layer_outputs_float=floats,
        layer_outputs_int8=ints,
        header=header,
        has_labels=has_labels,
        float_reference=str(header.get("float_reference", "keras")),
        onnx_path=paths.get("onnx"),
        onnx_int8_path=paths.get("onnx_int8"),
    )
