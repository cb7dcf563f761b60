"""Run an int8 .tflite model on the tflite-micro Python interpreter.

tflite-micro (PyPI ``tflite-micro``) is bit-exact with TFLM's default
double-rounding arithmetic, unlike tf.lite/LiteRT. It is imported lazily: it
is a generation and test dependency, never one of the validate path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.errors import GoldenError


def _runtime() -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise GoldenError(
            "tflite-micro is not installed", hint="pip install tflite-micro (in the dev extra)"
        ) from exc
    return runtime


def run_int8(
    model_bytes: bytes,
    inputs_int8: npt.NDArray[np.int8],
    keep_tensors: Callable[[int], bool] | None = None,
    tensor_ids: list[int] | None = None,
) -> tuple[npt.NDArray[np.int8], list[list[npt.NDArray[np.int8]]]]:
    """Run every input (N, ...) through tflite-micro; batch size 1 per invoke.

    Returns the int8 outputs (N, ...) and, for each sample index ``i`` with
    ``keep_tensors(i)``, the int8 contents of ``tensor_ids`` (op outputs) in order.
    """
    runtime = _runtime()
    config = (
        runtime.InterpreterConfig.kPreserveAllTensors
        if keep_tensors is not None
        else runtime.InterpreterConfig.kAllocationRecording
    )
    interp = runtime.Interpreter.from_bytes(model_bytes, intrepreter_config=config)
    in_shape = tuple(int(d) for d in interp.get_input_details(0)["shape"])
    outputs: list[npt.NDArray[np.int8]] = []
    kept: list[list[npt.NDArray[np.int8]]] = []
    for i in range(len(inputs_int8)):
        interp.set_input(np.ascontiguousarray(inputs_int8[i].reshape(in_shape)), 0)
        interp.invoke()
        outputs.append(np.array(interp.get_output(0), dtype=np.int8).reshape(-1))
        if keep_tensors is not None and keep_tensors(i):
            tensors = []
            for tid in tensor_ids or []:
                t = interp.GetTensor(int(tid), 0)
                tensors.append(np.array(t["tensor_data"], dtype=np.int8))
            kept.append(tensors)
    out = np.stack(outputs).astype(np.int8)
    return out, kept
