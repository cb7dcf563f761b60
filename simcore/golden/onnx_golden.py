"""``simcore golden create model.onnx``: a golden from an ONNX model, with onnxruntime.

No TensorFlow is imported on this path (only ``onnx``, ``onnxruntime`` and
NumPy: the ``onnx`` extra). The folder has the layout of
:mod:`simcore.golden.create`, with ONNX model roles::

    <out>/model.onnx        the float model (f32 and q16 build from it)
    <out>/model_int8.onnx   the QDQ int8 model (the int8 format builds from it)

From a float model: float predictions from onnxruntime; the int8 model is
made by onnxruntime's own post-training static quantization
(``quantize_static``, QDQ format, int8 weights per output channel and
symmetric, int8 activations asymmetric, MinMax calibration on
``--calibration`` inputs, default: the test inputs). From a QDQ model (one
``quantize_static`` wrote, per-tensor or per-channel): the model is kept as
it is, only the int8 format can be validated, and the float reference is
onnxruntime's output of the QDQ model.

The int8 golden outputs are simcore's integer evaluation of the converted
model (:mod:`simcore.firmware.int8_eval`, TFLite's integer semantics, as the
firmware computes), not onnxruntime's: onnxruntime requantizes with float
scales and rounds half to even, TFLite with fixed-point multipliers, so the
two differ by one step now and then. How often, and by how much at most, is
measured on the test data and recorded in the header (``int8_vs_onnxruntime``).

Data come in the ONNX input's layout (``(N, C, H, W)`` for an image model);
the golden stores them in the firmware's (``(N, H, W, C)``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import importlib.util
import logging
import platform
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.errors import UsageError
from simcore.firmware.onnx_model import INSTALL_HINT, OnnxChain, int8_model, read_chain
from simcore.golden import store
from simcore.golden.create import (
    DATA_FILE,
    MAX_CALIBRATION,
    _labels,
    check_inputs,
    io_header,
    read_data,
    write_folder,
)
from simcore.golden.datasets import sha256_file

log = logging.getLogger(__name__)
#: Samples per onnxruntime call.
BATCH = 256


def _need_onnx() -> None:
    for module in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            raise UsageError(
                f"golden create for an .onnx model needs {module} (not installed)",
                hint=INSTALL_HINT,
            )


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "machine": platform.machine()}
    for dist in ("onnx", "onnxruntime", "numpy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "absent"
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep onnxruntime.quantization's advice (logged on the root logger) off the terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def run_onnxruntime(model: Path, chain: OnnxChain, x: npt.NDArray[np.float32]) -> Any:
    """Outputs ``(n, outputs)`` of onnxruntime for inputs in the ONNX layout."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise UsageError(
            f"onnxruntime cannot load {model.name}: {' '.join(str(exc).split())}"
        ) from None
    dim = session.get_inputs()[0].shape[0]
    step = 1 if dim == 1 else BATCH
    out = [
        np.asarray(session.run(None, {chain.input_name: x[i : i + step]})[0], np.float32)
        for i in range(0, len(x), step)
    ]
    return np.concatenate(out).reshape((len(x), -1))


def quantize_qdq(model: Path, chain: OnnxChain, calibration: npt.NDArray[np.float32]) -> bytes:
    """onnxruntime's post-training static quantization (QDQ, int8) calibrated on ``calibration``.

    The float model is first put through onnxruntime's ``quant_pre_process``
    (basic graph optimizations and shape inference), so the QDQ model may
    hold fewer nodes than the float one (BatchNormalization folded into the
    Conv, MatMul + Add fused into a Gemm); its layers are the same.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.rows = iter(range(len(calibration)))

        def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
            i = next(self.rows, None)
            return None if i is None else {chain.input_name: calibration[i : i + 1]}

    with tempfile.TemporaryDirectory() as tmp, _quiet():
        out = Path(tmp) / "model_int8.onnx"
        prepared = Path(tmp) / "prepared.onnx"
        try:
            # onnxruntime's basic graph optimizations first, as its docs advise: they fold
            # BatchNormalization into the Conv before it and MatMul + Add into a Gemm.
            quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
            )
        except Exception as exc:  # the quantizer's errors are many
            raise UsageError(
                f"onnxruntime could not quantize {model.name}: {' '.join(str(exc).split())[:300]}"
            ) from None
        return out.read_bytes()


def int8_agreement(
    qdq_model: Path, chain8: OnnxChain, x_q: npt.NDArray[np.int8], ours: npt.NDArray[Any]
) -> dict[str, Any]:
    """How simcore's int8 outputs compare with onnxruntime's on the same int8 inputs."""
    im = int8_model(chain8)
    x = chain8.to_onnx_layout(store.dequantize(x_q, im.input_scale, im.input_zero_point))
    theirs = run_onnxruntime(qdq_model, chain8, x)
    q = np.clip(np.round(theirs / np.float32(im.output_scale)) + im.output_zero_point, -128, 127)
    diff = np.abs(q.astype(np.int64) - ours.reshape(q.shape).astype(np.int64))
    return {
        "equal_fraction": float(np.mean(diff == 0)),
        "max_abs_diff": int(diff.max()) if diff.size else 0,
        "why": "onnxruntime requantizes with float scales (round half to even), the firmware "
        "with TFLite's fixed-point multipliers; softmax/sigmoid/tanh use TFLite's fixed-point "
        "functions",
    }


def create_onnx_golden(
    model_path: Path,
    data_path: Path,
    *,
    labels_path: Path | None,
    out: Path,
    name: str,
    calibration_path: Path | None,
    description: str | None,
    say: Callable[[str], None],
) -> Path:
    """Write the golden folder of an ONNX model on a user's data (module docstring); return it."""
    _need_onnx()
    chain = read_chain(model_path, name)  # unsupported operators stop here, before any run
    data = read_data(data_path, labels_path)
    x = check_inputs(
        data.inputs, chain.onnx_input_shape, model_path.name, int8_ok=False, where=str(data_path)
    )
    calib = x
    if calibration_path is not None:
        calib = check_inputs(
            read_data(calibration_path).inputs,
            chain.onnx_input_shape,
            model_path.name,
            int8_ok=False,
            where=str(calibration_path),
        )
    return write_onnx_golden(
        model_path,
        chain,
        x,
        data.labels,
        out=out,
        calibration=calib[:MAX_CALIBRATION],
        calibration_source=str(calibration_path or data_path),
        description=description or f"{model_path.name} on {data.source}",
        data_source=data.source,
        say=say,
    )


def write_onnx_golden(
    model_path: Path,
    chain: OnnxChain,
    x: npt.NDArray[np.float32],
    raw_labels: npt.NDArray[Any] | None,
    *,
    out: Path,
    calibration: npt.NDArray[np.float32],
    calibration_source: str,
    description: str,
    data_source: str,
    say: Callable[[str], None],
    dataset: dict[str, Any] | None = None,
    source_model: str | None = None,
) -> Path:
    """Write the golden of ``model_path`` on inputs ``x`` (ONNX layout); return the folder.

    ``dataset`` names a shipped data set (its golden.json entry) the inputs
    come from, in its order; the folder then holds no copy of the data.
    ``source_model`` is what the header names as the model's origin
    (default: the path of ``model_path``).
    """
    from simcore.firmware.int8_eval import forward
    from simcore.golden.create import UserData

    name = chain.name
    say(f"onnxruntime predictions on {len(x)} samples")
    outputs_float = run_onnxruntime(model_path, chain, x)
    n = len(x)
    labels = _labels(UserData(x, raw_labels, data_source), n, outputs_float.shape[1], name)
    models: dict[str, tuple[str, bytes]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if chain.quantized:
            qdq_path, int8_from = model_path, "the given QDQ .onnx"
            models["onnx_int8"] = (store.ONNX_INT8_FILE, model_path.read_bytes())
        else:
            say(f"quantizing to int8 with onnxruntime (calibration: {len(calibration)} samples)")
            qdq = quantize_qdq(model_path, chain, calibration)
            qdq_path = Path(tmp) / store.ONNX_INT8_FILE
            qdq_path.write_bytes(qdq)
            int8_from = (
                "onnxruntime.quantization.quantize_static: QDQ, int8 weights per channel "
                "(symmetric), int8 activations, MinMax calibration on "
                f"{len(calibration)} samples of {calibration_source}"
            )
            models["onnx"] = (store.ONNX_FILE, model_path.read_bytes())
            models["onnx_int8"] = (store.ONNX_INT8_FILE, qdq)
        chain8 = read_chain(qdq_path, name)
        im = int8_model(chain8)
        x_fw = chain.to_firmware_layout(x).astype(np.float32)
        x_q = store.quantize(x_fw, im.input_scale, im.input_zero_point)
        say(f"int8 predictions on {n} samples")
        outputs_q = forward(im, x_q).reshape((n, -1)).astype(np.int8)
        agreement = int8_agreement(qdq_path, chain8, x_q, outputs_q)
    rows = np.arange(n, dtype=np.int64)
    n_classes = 2 if outputs_float.shape[1] == 1 else outputs_float.shape[1]
    data_arrays: dict[str, npt.NDArray[Any]] | None = None
    if dataset is None:
        data_arrays = {"inputs": x_fw}
        if labels is not None:
            data_arrays["labels"] = labels
    arrays: dict[str, npt.NDArray[Any]] = {
        "rows": rows,
        "labels": labels if labels is not None else np.full(n, -1, dtype=np.int64),
        "outputs_float": outputs_float,
        "outputs_int8_raw": outputs_q,
        "layer_samples": np.zeros(0, np.int64),
        "split_test": rows,
        "split_all": rows,
    }
    layout = (
        "NCHW data transposed to NHWC (the firmware's layout)"
        if chain.input_layout == "nchw"
        else "as given"
    )
    header: dict[str, Any] = {
        "format": store.FORMAT_NAME,
        "version": store.FORMAT_VERSION,
        "name": name,
        "description": description,
        "task": "classification",
        "generated_by": "simcore golden create",
        "source_model": {
            "path": source_model or str(model_path.resolve()),
            "sha256": sha256_file(model_path),
        },
        "float_reference": "onnxruntime" + (" (QDQ model)" if chain.quantized else ""),
        "int8_from": int8_from,
        "int8_reference": "simcore int8 reference",
        "int8_vs_onnxruntime": agreement,
        "dataset": dataset
        or {
            "name": "user",
            "path": DATA_FILE,
            "path_base": "golden",
            "source": data_source,
            "input_transform": layout,
        },
        **io_header(
            has_labels=labels is not None,
            n_classes=n_classes,
            n=n,
            input_shape=chain.input_shape,
            input_q=(im.input_scale, im.input_zero_point),
            x_q=x_q,
            output_shape=outputs_float.shape[1:],
            output_q=(im.output_scale, im.output_zero_point),
            input_extra={"onnx_shape": list(chain.onnx_input_shape)},
        ),
        "versions": _versions(),
        "keras_layers": [],
        "int8_ops": [],
    }
    return write_folder(out, models, data_arrays, arrays, header)
