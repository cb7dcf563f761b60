"""Read a .tflite flatbuffer into plain frozen dataclasses, without TensorFlow.

The firmware generator and the NumPy int8 reference both start here: a
model is a list of operators in execution order, each naming its input and
output tensors; a tensor carries its shape, type, quantization (per-tensor or
per-channel scales and zero points) and, for constants, its data.

Only the first subgraph is read (the reference models have one). Options are
decoded for the operators the reference models use; others keep an empty
``options`` mapping and still list their tensors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tflite

from simcore.errors import GoldenError

_TYPE_NAMES = {
    getattr(tflite.TensorType, n): n.lower() for n in dir(tflite.TensorType) if n.isupper()
}
_NUMPY_TYPES: dict[str, Any] = {
    "float32": np.float32,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
}
_OP_NAMES = {
    getattr(tflite.BuiltinOperator, n): n for n in dir(tflite.BuiltinOperator) if n.isupper()
}
_ACTIVATIONS = {
    getattr(tflite.ActivationFunctionType, n): n
    for n in dir(tflite.ActivationFunctionType)
    if n.isupper()
}
_PADDINGS = {getattr(tflite.Padding, n): n for n in dir(tflite.Padding) if n.isupper()}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: ``real = scale * (q - zero_point)`` along ``axis`` if per-channel."""

    scale: npt.NDArray[np.float32]
    zero_point: npt.NDArray[np.int64]
    axis: int

    @property
    def per_channel(self) -> bool:
        """True when there is one scale per channel of ``axis``."""
        return len(self.scale) > 1


@dataclass(frozen=True)
class Tensor:
    """One tensor of the graph; ``data`` is set for constants (weights, biases)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quantization | None
    data: npt.NDArray[Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Operator:
    """One operator: its builtin name, tensor indices (-1 = absent input) and options.

    Options keys by op: FULLY_CONNECTED ``fused_activation``, ``keep_num_dims``;
    CONV_2D ``padding``, ``stride_h``, ``stride_w``, ``dilation_h``, ``dilation_w``,
    ``fused_activation``; MAX_POOL_2D/AVERAGE_POOL_2D ``padding``, ``stride_h``,
    ``stride_w``, ``filter_h``, ``filter_w``, ``fused_activation``; SOFTMAX ``beta``;
    LEAKY_RELU ``alpha``. Activations and paddings are their schema names
    (``"RELU"``, ``"NONE"``, ``"VALID"``, ``"SAME"``).
    """

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any]


@dataclass(frozen=True)
class TfliteModel:
    """A parsed .tflite model (first subgraph)."""

    sha256: str
    version: int
    description: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    @property
    def input_tensor(self) -> Tensor:
        """The first (only) graph input."""
        return self.tensors[self.inputs[0]]

    @property
    def output_tensor(self) -> Tensor:
        """The first (only) graph output."""
        return self.tensors[self.outputs[0]]

    def op_input(self, op: Operator, k: int) -> Tensor | None:
        """Return input ``k`` of ``op``, or None when absent (e.g. no bias)."""
        if k >= len(op.inputs) or op.inputs[k] < 0:
            return None
        return self.tensors[op.inputs[k]]

    def op_output(self, op: Operator) -> Tensor:
        """Return the single output tensor of ``op``."""
        return self.tensors[op.outputs[0]]


def _options(op: Any, opcode: str) -> dict[str, Any]:
    table = op.BuiltinOptions()
    if table is None:
        return {}
    if opcode == "FULLY_CONNECTED":
        o: Any = tflite.FullyConnectedOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "fused_activation": _ACTIVATIONS[o.FusedActivationFunction()],
            "keep_num_dims": bool(o.KeepNumDims()),
        }
    if opcode == "CONV_2D":
        o = tflite.Conv2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "padding": _PADDINGS[o.Padding()],
            "stride_h": o.StrideH(),
            "stride_w": o.StrideW(),
            "dilation_h": o.DilationHFactor(),
            "dilation_w": o.DilationWFactor(),
            "fused_activation": _ACTIVATIONS[o.FusedActivationFunction()],
        }
    if opcode in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "padding": _PADDINGS[o.Padding()],
            "stride_h": o.StrideH(),
            "stride_w": o.StrideW(),
            "filter_h": o.FilterHeight(),
            "filter_w": o.FilterWidth(),
            "fused_activation": _ACTIVATIONS[o.FusedActivationFunction()],
        }
    if opcode == "SOFTMAX":
        o = tflite.SoftmaxOptions()
        o.Init(table.Bytes, table.Pos)
        return {"beta": float(o.Beta())}
    if opcode == "LEAKY_RELU":
        o = tflite.LeakyReluOptions()
        o.Init(table.Bytes, table.Pos)
        return {"alpha": float(o.Alpha())}
    return {}


def read_tflite_bytes(data: bytes) -> TfliteModel:
    """Parse .tflite flatbuffer bytes."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise GoldenError("not a .tflite flatbuffer (file identifier TFL3 missing)")
    model = tflite.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() < 1:
        raise GoldenError(".tflite model has no subgraph")
    graph = model.Subgraphs(0)
    tensors = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        dtype = _TYPE_NAMES.get(t.Type(), f"type{t.Type()}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength() > 0:
            quant = Quantization(
                scale=np.asarray(q.ScaleAsNumpy(), dtype=np.float32),
                zero_point=np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64),
                axis=int(q.QuantizedDimension()),
            )
        const = None
        buf = model.Buffers(t.Buffer())
        if buf is not None and buf.DataLength() > 0:
            raw = buf.DataAsNumpy().tobytes()
            const = np.frombuffer(raw, dtype=_NUMPY_TYPES[dtype]).reshape(shape).copy()
            const.setflags(write=False)
        name = t.Name()
        tensors.append(
            Tensor(
                index=i,
                name=name.decode() if isinstance(name, bytes) else str(name),
                shape=shape,
                dtype=dtype,
                quant=quant,
                data=const,
            )
        )
    operators = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Schema 3a: builtin_code is authoritative, deprecated_builtin_code caps at 127.
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        opcode = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
        operators.append(
            Operator(
                index=i,
                opcode=opcode,
                inputs=tuple(int(k) for k in op.InputsAsNumpy()),
                outputs=tuple(int(k) for k in op.OutputsAsNumpy()),
                options=_options(op, opcode),
            )
        )
    desc = model.Description()
    return TfliteModel(
        sha256=hashlib.sha256(data).hexdigest(),
        version=int(model.Version()),
        description=desc.decode() if isinstance(desc, bytes) else str(desc or ""),
        tensors=tuple(tensors),
        operators=tuple(operators),
        inputs=tuple(int(k) for k in graph.InputsAsNumpy()),
        outputs=tuple(int(k) for k in graph.OutputsAsNumpy()),
    )


def read_tflite(path: Path) -> TfliteModel:
    """Parse the .tflite file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GoldenError(f"cannot read {path}: {exc}") from exc
    try:
        return read_tflite_bytes(data)
    except GoldenError as exc:
        raise GoldenError(f"{path}: {exc.message}", hint=exc.hint) from exc
    except Exception as exc:  # a corrupt flatbuffer raises anything from struct to IndexError
        raise GoldenError(f"{path} is not a readable .tflite model: {exc}") from exc
