"""``simcore golden create``: a golden folder from a user's own model and test data.

The folder has the shipped goldens' layout and checks (every file hashed,
format version 2), plus the data it was computed on, so everything downstream
(build, validate, diagnose, report, baselines) treats it like a shipped one::

    <out>/golden.json        header: sha256 of every file, quantization, layers, provenance
    <out>/golden.npz         outputs (float, int8), splits, per-layer intermediates
    <out>/data.npz           the test inputs as given (float32, or int8) and labels if any
    <out>/model.keras        a copy of the Keras model (from a .keras)
    <out>/model_int8.tflite  the full-integer model: the user's, or converted from the .keras

From a ``.keras`` model: float predictions from Keras; an int8 model by
TensorFlow's post-training full-integer quantization, calibrated on
``--calibration`` inputs (default: the test inputs), converted from a batch-1
clone of the model (a batch-N conversion adds SHAPE/PACK operators no MCU
runtime wants); int8 predictions from tflite-micro (bit-exact with TFLM).
From an int8 ``.tflite``: int8 predictions from tflite-micro; the float
reference is their dequantized value and only the int8 format can be
validated. From an ``.onnx``: see :mod:`simcore.golden.onnx_golden`
(onnxruntime, no TensorFlow; the folder holds ``model.onnx`` and
``model_int8.onnx`` instead of the Keras and TFLite models).

TensorFlow is needed for a ``.keras`` model, tflite-micro for both (the
``golden`` extra); neither is imported anywhere on the validate path.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.api import public
from simcore.errors import UsageError
from simcore.golden import store
from simcore.golden.datasets import sha256_file

log = logging.getLogger(__name__)
_savez: Any = np.savez_compressed  # numpy's stubs reject **arrays

DATA_FILE = "data.npz"
#: Samples whose per-layer outputs the golden keeps (for the layout doctor).
LAYER_SAMPLES = 5
#: Calibration samples used at most for the int8 conversion.
MAX_CALIBRATION = 1000
#: Array names read from a .npz, in order of preference.
INPUT_KEYS = ("inputs", "x", "x_test", "X", "X_test", "data", "images")
LABEL_KEYS = ("labels", "y", "y_test", "Y", "Y_test", "targets")
INSTALL_HINT = "install the golden extra: pip install 'simcore[golden]'"


@dataclass(frozen=True)
class UserData:
    """Test inputs (and labels) as read from the user's files."""

    inputs: npt.NDArray[Any]
    labels: npt.NDArray[Any] | None
    source: str


def _load_array_file(path: Path, what: str) -> npt.NDArray[Any] | dict[str, npt.NDArray[Any]]:
    """A .npy array or a .npz's arrays; every failure a one-line UsageError."""
    if not path.exists():
        raise UsageError(f"{what} file {path} does not exist")
    if path.is_dir():
        raise UsageError(f"{what} file {path} is a directory, not a .npy/.npz file")
    if path.suffix not in (".npy", ".npz"):
        raise UsageError(f"{what} file {path} is not a .npy or .npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {k: loaded[k] for k in loaded.files}
        return np.asarray(loaded)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise UsageError(f"cannot read {what} file {path}: {detail}") from None


def _pick(arrays: dict[str, npt.NDArray[Any]], keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in arrays), None)


def read_data(data: Path, labels: Path | None = None) -> UserData:
    """Read test inputs from ``.npy``/``.npz`` (and labels from ``--labels`` or the .npz)."""
    loaded = _load_array_file(data, "data")
    y: npt.NDArray[Any] | None = None
    if isinstance(loaded, dict):
        key = _pick(loaded, INPUT_KEYS) or (next(iter(loaded)) if len(loaded) == 1 else None)
        if key is None:
            raise UsageError(
                f"{data} holds arrays {', '.join(sorted(loaded)) or '(none)'}; none is named "
                f"like inputs ({', '.join(INPUT_KEYS)})",
                hint="save the inputs as 'inputs' (and labels as 'labels')",
            )
        x = loaded[key]
        label_key = _pick(loaded, LABEL_KEYS)
        if label_key is not None and labels is None:
            y = loaded[label_key]
        source = f"{data}[{key}]" + (f", labels {data}[{label_key}]" if y is not None else "")
    else:
        x, source = loaded, str(data)
    if labels is not None:
        lab = _load_array_file(labels, "labels")
        if isinstance(lab, dict):
            key = _pick(lab, LABEL_KEYS) or (next(iter(lab)) if len(lab) == 1 else None)
            if key is None:
                raise UsageError(f"{labels} holds no array named like labels")
            lab = lab[key]
        y = lab
        source += f", labels {labels}"
    return UserData(x, y, source)


def check_inputs(
    x: npt.NDArray[Any], shape: tuple[int, ...], model: str, *, int8_ok: bool, where: str
) -> npt.NDArray[Any]:
    """Return ``x`` as float32 (or int8 if ``int8_ok``), refusing what does not fit ``shape``."""
    want = f"(N, {', '.join(map(str, shape))})"
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        hint = f"reshape the data to {want}"
        if x.ndim >= 1 and x.size and x.size // max(x.shape[0], 1) == int(np.prod(shape)):
            dims = ", ".join(map(str, shape))
            hint = f"the values per sample fit: reshape with x.reshape(-1, {dims})"
        raise UsageError(
            f"{where} has shape {tuple(x.shape)}, but {model} takes inputs {want}", hint=hint
        )
    if len(x) == 0:
        raise UsageError(f"{where} holds no samples")
    if x.dtype == np.int8 and int8_ok:
        return x
    if x.dtype.kind != "f":
        allowed = "float or int8" if int8_ok else "float"
        raise UsageError(
            f"{where} has dtype {x.dtype}, but {model} takes {allowed} inputs",
            hint="convert to float32 as the model was trained (e.g. images / 255.0)",
        )
    bad = ~np.isfinite(x)
    if bad.any():
        raise UsageError(f"{where} holds {int(bad.sum())} NaN or infinite values")
    return np.asarray(x, dtype=np.float32)


def check_labels(
    y: npt.NDArray[Any], n: int, n_outputs: int, model: str, where: str
) -> npt.NDArray[np.int64]:
    """Class indices (N,) from integer labels or one-hot rows, checked against the outputs."""
    n_classes = 2 if n_outputs == 1 else n_outputs
    if y.ndim == 2 and y.shape[1] == n_classes and y.shape[1] > 1:
        y = np.argmax(y, axis=1)  # one-hot rows
    elif y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise UsageError(
            f"{where} has shape {tuple(y.shape)}, but the data has {n} samples",
            hint=f"give {n} class indices (N,) or one-hot rows (N, {n_classes})",
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
            raise UsageError(f"{where} holds non-integer values; labels are class indices")
    elif y.dtype.kind not in "iub":
        raise UsageError(f"{where} has dtype {y.dtype}; labels are integer class indices")
    labels = y.astype(np.int64)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise UsageError(
            f"{where} holds classes {labels.min()}..{labels.max()}, but {model} has "
            f"{n_classes} classes (0..{n_classes - 1})"
        )
    return labels


def _labels(data: UserData, n: int, n_outputs: int, model: str) -> npt.NDArray[np.int64] | None:
    if data.labels is None:
        return None
    return check_labels(data.labels, n, n_outputs, model, "the labels")


def _int8_outputs(int8_bytes: bytes) -> int:
    from simcore.golden.tflite_model import read_tflite_bytes

    return int(np.prod(read_tflite_bytes(int8_bytes).output_tensor.shape[1:]))


def _need(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise UsageError(
            f"golden create needs {what} ({module} is not installed)", hint=INSTALL_HINT
        )


# --- the Keras side (TensorFlow) -----------------------------------------------------------


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _native_output_to_log():  # TensorFlow logs banners on fd 2 as it loads
        import keras
        import tensorflow  # noqa: F401

    return keras


def load_keras(path: Path) -> Any:
    """Load a .keras model (TensorFlow), one line on failure."""
    keras = _keras()
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad file
        detail = " ".join(str(exc).split())[:300]
        raise UsageError(f"cannot load Keras model {path}: {detail}") from None


def batch1_clone(model: Any) -> Any:
    """The model rebuilt with batch size 1, the same weights (no SHAPE/PACK after conversion)."""
    keras = _keras()
    shape = tuple(model.input_shape[1:])
    try:
        fixed = keras.models.clone_model(model, input_tensors=keras.Input(batch_shape=(1, *shape)))
        fixed.set_weights(model.get_weights())
    except Exception as exc:
        raise UsageError(
            f"cannot rebuild {model.name} with batch size 1 for the int8 conversion: "
            f"{' '.join(str(exc).split())[:200]}",
            hint="save a Sequential or functional model, or give an int8 .tflite converted "
            "from a batch-1 model",
        ) from None
    return fixed


@contextlib.contextmanager
def _native_output_to_log() -> Iterator[None]:
    """Send what TensorFlow prints (to fd 1 and 2, from C++ too) to the debug log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            log.debug("converter output:\n%s", sink.read().decode(errors="replace"))


def quantize_int8(model: Any, calibration: npt.NDArray[np.float32]) -> bytes:
    """Full-integer post-training quantization (int8 input and output) of a Keras model."""
    from simcore.golden.generate import convert

    try:
        with _native_output_to_log():
            return convert(batch1_clone(model), calibration[:MAX_CALIBRATION])
    except UsageError:
        raise
    except Exception as exc:  # the converter's errors are many and long
        raise UsageError(
            f"TensorFlow could not convert {model.name} to int8: {' '.join(str(exc).split())[:300]}"
        ) from None


# --- writing the folder ----------------------------------------------------------------------


def _int8_ops(
    int8_bytes: bytes,
    x_q: npt.NDArray[np.int8],
    layer_rows: npt.NDArray[np.int64],
    keras_layers: list[dict[str, Any]],
) -> tuple[npt.NDArray[np.int8], list[dict[str, Any]], dict[str, npt.NDArray[Any]]]:
    """tflite-micro outputs for every input, and every op's output on ``layer_rows``."""
    from simcore.golden.generate import _mark_stages, _match_layer, run_tflm
    from simcore.golden.tflite_model import read_tflite_bytes

    tfl = read_tflite_bytes(int8_bytes)
    keep = {int(r) for r in layer_rows}
    outputs, kept = run_tflm(
        int8_bytes,
        x_q,
        keep_tensors=lambda i: i in keep,
        tensor_ids=[op.outputs[0] for op in tfl.operators],
    )
    by_row = dict(zip(sorted(keep), kept, strict=True))
    arrays: dict[str, npt.NDArray[Any]] = {}
    ops: list[dict[str, Any]] = []
    for k, op in enumerate(tfl.operators):
        t = tfl.tensors[op.outputs[0]]
        arrays[f"layer_int8_{k}"] = np.stack([by_row[int(r)][k] for r in layer_rows]).astype(
            np.int8
        )
        scale, zp = (float(t.quant.scale[0]), int(t.quant.zero_point[0])) if t.quant else (1.0, 0)
        ops.append(
            {
                "index": k,
                "op": op.opcode,
                "output_tensor": t.name,
                "output_shape": list(t.shape[1:]),
                "scale": scale,
                "zero_point": zp,
                "keras_layer": _match_layer(t.name, keras_layers) if keras_layers else None,
            }
        )
    if keras_layers and ops:
        _mark_stages(ops, keras_layers[-1]["name"])
    else:
        for desc in ops:
            desc["layer_output"] = True
    return outputs, ops, arrays


def _int8_io(
    int8_bytes: bytes, path: str
) -> tuple[tuple[int, ...], store.QuantParams, store.QuantParams]:
    """Input shape and input/output quantization of an int8 model; refuses float models."""
    from simcore.golden.tflite_model import read_tflite_bytes

    try:
        tfl = read_tflite_bytes(int8_bytes)
    except Exception as exc:
        raise UsageError(f"{path} is not a readable .tflite model ({exc})") from None
    in_t, out_t = tfl.input_tensor, tfl.output_tensor
    if in_t.dtype != "int8" or out_t.dtype != "int8" or in_t.quant is None or out_t.quant is None:
        raise UsageError(
            f"{path} has {in_t.dtype} input and {out_t.dtype} output; simcore takes "
            "full-integer models with int8 input and output",
            hint="convert with inference_input_type = inference_output_type = tf.int8, or give "
            "the .keras model",
        )
    q_in = store.QuantParams(float(in_t.quant.scale[0]), int(in_t.quant.zero_point[0]))
    q_out = store.QuantParams(float(out_t.quant.scale[0]), int(out_t.quant.zero_point[0]))
    return tuple(int(d) for d in in_t.shape[1:]), q_in, q_out


@public
def create_golden(
    model_path: Path,
    data_path: Path,
    *,
    labels_path: Path | None = None,
    out_dir: Path | None = None,
    name: str | None = None,
    calibration_path: Path | None = None,
    description: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write a golden folder for ``model_path`` on the test data; return the folder."""
    from simcore.golden.generate import keras_layer_outputs, versions

    say = progress or (lambda _msg: None)
    if not model_path.is_file():
        raise UsageError(f"model file {model_path} does not exist")
    kind = model_path.suffix
    if kind not in (".keras", ".tflite", ".onnx"):
        raise UsageError(
            f"{model_path} is not a .keras, .tflite or .onnx model",
            hint="save the Keras model as .keras, or give an int8 .tflite or an .onnx",
        )
    if kind == ".onnx":  # onnxruntime, no TensorFlow
        from simcore.golden.onnx_golden import create_onnx_golden

        name = name or model_path.stem
        return create_onnx_golden(
            model_path,
            data_path,
            labels_path=labels_path,
            out=out_dir if out_dir is not None else Path("golden") / name,
            name=name,
            calibration_path=calibration_path,
            description=description,
            say=say,
        )
    if kind == ".keras":
        _need("tensorflow", "TensorFlow")
    _need("tflite_micro", "tflite-micro")
    name = name or model_path.stem.removesuffix("_int8")
    out = out_dir if out_dir is not None else Path("golden") / name
    data = read_data(data_path, labels_path)

    keras_model = None
    calib: npt.NDArray[np.float32] | None = None
    if kind == ".keras":
        say(f"loading {model_path}")
        keras_model = load_keras(model_path)
        shape = tuple(int(d) for d in keras_model.input_shape[1:] if d is not None)
        if len(shape) != len(keras_model.input_shape) - 1:
            raise UsageError(f"{model_path} has a dynamic input shape {keras_model.input_shape}")
        x = check_inputs(data.inputs, shape, model_path.name, int8_ok=False, where=str(data_path))
        n_outputs = int(np.prod([d or 1 for d in keras_model.output_shape[1:]]))
        labels = _labels(data, len(x), n_outputs, model_path.name)
        calib = x
        if calibration_path is not None:
            c = read_data(calibration_path).inputs
            calib = check_inputs(
                c, shape, model_path.name, int8_ok=False, where=str(calibration_path)
            )
        say(f"quantizing to int8 (calibration: {min(len(calib), MAX_CALIBRATION)} samples)")
        int8_bytes = quantize_int8(keras_model, calib)
        _, q_in, q_out = _int8_io(int8_bytes, "the converted model")
        inputs_stored: npt.NDArray[Any] = x
        inputs_float = x
    else:
        int8_bytes = model_path.read_bytes()
        shape, q_in, q_out = _int8_io(int8_bytes, str(model_path))
        xs = check_inputs(data.inputs, shape, model_path.name, int8_ok=True, where=str(data_path))
        n_outputs = _int8_outputs(int8_bytes)
        labels = _labels(data, len(xs), n_outputs, model_path.name)
        inputs_stored = xs
        inputs_float = (
            store.dequantize(xs, q_in.scale, q_in.zero_point) if xs.dtype == np.int8 else xs
        )
    n = len(inputs_float)
    x_q = store.quantize(inputs_float, q_in.scale, q_in.zero_point)
    layer_rows = np.arange(min(LAYER_SAMPLES, n), dtype=np.int64)

    arrays: dict[str, npt.NDArray[Any]] = {}
    keras_layers: list[dict[str, Any]] = []
    if keras_model is not None:
        say(f"Keras predictions on {n} samples")
        outputs_float = np.asarray(
            keras_model.predict(inputs_float, verbose=0, batch_size=256), dtype=np.float32
        )
        for desc, values in keras_layer_outputs(keras_model, inputs_float[layer_rows]):
            keras_layers.append(desc)
            arrays[f"layer_float_{desc['index']}"] = values
    say(f"tflite-micro int8 predictions on {n} samples")
    outputs_q, int8_ops, int8_arrays = _int8_ops(int8_bytes, x_q, layer_rows, keras_layers)
    arrays.update(int8_arrays)
    if keras_model is None:
        outputs_float = store.dequantize(outputs_q, q_out.scale, q_out.zero_point)
    outputs_float = outputs_float.reshape((n, -1)) if outputs_float.ndim == 1 else outputs_float
    n_classes = 2 if n_outputs == 1 else n_outputs

    data_arrays: dict[str, npt.NDArray[Any]] = {"inputs": inputs_stored}
    if labels is not None:
        data_arrays["labels"] = labels
    rows = np.arange(n, dtype=np.int64)
    arrays |= {
        "rows": rows,
        "labels": labels if labels is not None else np.full(n, -1, dtype=np.int64),
        "outputs_float": outputs_float.astype(np.float32),
        "outputs_int8_raw": outputs_q.reshape((n, -1)).astype(np.int8),
        "layer_samples": layer_rows,
        "split_test": rows,
        "split_all": rows,
    }
    models = {"tflite_int8": (store.TFLITE_INT8_FILE, int8_bytes)}
    if keras_model is not None:
        models["keras"] = (store.KERAS_FILE, model_path.read_bytes())
    header: dict[str, Any] = {
        "format": store.FORMAT_NAME,
        "version": store.FORMAT_VERSION,
        "name": name,
        "description": description or f"{model_path.name} on {data.source}",
        "task": "classification",
        "generated_by": "simcore golden create",
        "source_model": {"path": str(model_path.resolve()), "sha256": sha256_file(model_path)},
        "float_reference": "keras" if keras_model is not None else "tflite_int8 dequantized",
        "int8_from": (
            f"TensorFlow post-training full-integer quantization, calibrated on "
            f"{min(len(calib), MAX_CALIBRATION)} samples of "
            f"{calibration_path or data_path}"
            if calib is not None
            else "the given .tflite"
        ),
        "dataset": {
            "name": "user",
            "path": DATA_FILE,
            "path_base": "golden",
            "source": data.source,
            "input_transform": "as given"
            + (", int8 (the model's quantized input)" if inputs_stored.dtype == np.int8 else ""),
        },
        **io_header(
            has_labels=labels is not None,
            n_classes=n_classes,
            n=n,
            input_shape=shape,
            input_q=(q_in.scale, q_in.zero_point),
            x_q=x_q,
            output_shape=outputs_float.shape[1:],
            output_q=(q_out.scale, q_out.zero_point),
        ),
        "versions": versions(),
        "keras_layers": keras_layers,
        "int8_ops": int8_ops,
    }
    return write_folder(out, models, data_arrays, arrays, header)


def io_header(
    *,
    has_labels: bool,
    n_classes: int,
    n: int,
    input_shape: Sequence[int],
    input_q: tuple[float, int],
    x_q: npt.NDArray[np.int8],
    output_shape: Sequence[int],
    output_q: tuple[float, int],
    input_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The header fields every golden writer shares (Keras/TFLite and ONNX): labels,
    the int8 input (with the hash of the quantized inputs) and output quantization,
    and the splits. ``input_extra`` goes into ``input`` after its shape."""
    return {
        "has_labels": has_labels,
        "label_names": [str(i) for i in range(n_classes)],
        "input": {
            "shape": list(input_shape),
            **(input_extra or {}),
            "scale": input_q[0],
            "zero_point": input_q[1],
            "int8_sha256": store.array_sha256(x_q),
        },
        "output": {
            "shape": list(output_shape),
            "scale": output_q[0],
            "zero_point": output_q[1],
        },
        "splits": {"test": n, "all": n},
    }


def write_folder(
    final: Path,
    models: dict[str, tuple[str, bytes]],
    data_arrays: dict[str, npt.NDArray[Any]] | None,
    arrays: dict[str, npt.NDArray[Any]],
    header: dict[str, Any],
) -> Path:
    """Write a golden folder: ``models`` (role -> file name, bytes), data, arrays and header.

    ``header`` gets its ``files`` and the data set's sha256 here (without
    ``data_arrays``, its ``dataset`` names a shipped data set). The folder is
    written next to ``final`` and renamed at the end: an interrupted or failed
    create never leaves a half-written golden where a valid one is expected.
    """
    replaceable = not final.exists() or (final / store.HEADER_FILE).is_file()
    if not replaceable and (not final.is_dir() or any(final.iterdir())):
        raise UsageError(
            f"{final} exists and is not a golden folder; not overwriting it",
            hint="pass another --out",
        )
    out = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(out, ignore_errors=True)
    try:
        out.mkdir(parents=True)
        files: dict[str, str] = {}
        for role, (file_name, content) in models.items():
            (out / file_name).write_bytes(content)
            files[role] = file_name
        _savez(out / store.ARRAYS_FILE, **arrays)
        files["arrays"] = store.ARRAYS_FILE
        header = {
            **header,
            "files": {
                role: {"path": f, "sha256": sha256_file(out / f)} for role, f in files.items()
            },
        }
        if data_arrays is not None:
            _savez(out / DATA_FILE, **data_arrays)
            header["dataset"] = {**header["dataset"], "sha256": sha256_file(out / DATA_FILE)}
        store.write_header(out / store.HEADER_FILE, header)
        # Read it back through the loader every command uses: what we wrote must load.
        store.load_golden_dir(out)
        if final.exists():
            shutil.rmtree(final)
        out.replace(final)
    except OSError as exc:
        raise UsageError(f"cannot write golden folder {final}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return final
