"""Read an ONNX model into the generator's IR (float, or int8 from a QDQ model), without TensorFlow.

ONNX image tensors are NCHW; the IR and the firmware are NHWC (HWC per
sample). Every tensor of the chain is tracked with its *layout*:

- ``nchw``: the ONNX tensor is ``[1, C, H, W]``, the firmware holds it as
  ``(H, W, C)``. Conv and pooling take and give this layout.
- ``plain``: the firmware holds the ONNX tensor in its own order (vectors,
  and the NHWC tensors a TensorFlow export carries between its Transposes).

A Flatten (or a Reshape to ``[1, n]``) of an ``nchw`` tensor leaves the
values in HWC order while ONNX numbers them in CHW order; that permutation is
carried on the flat vector and folded into the next Gemm/MatMul's weight
columns, so no data moves at run time. A Transpose between the two layouts
(as tf2onnx writes around its convolutions) only changes the layout tag.

Int8 comes from a QDQ model (``onnxruntime.quantization.quantize_static``
with ``QuantFormat.QDQ``): QuantizeLinear -> DequantizeLinear pairs give each
activation its scale and zero point, DequantizeLinear of int8/int32
initializers gives the weights (per-tensor or per-channel, symmetric) and
biases. The operators then run with TFLite's integer semantics
(:mod:`simcore.firmware.quant`): a Relu becomes the clamp of the Conv/Gemm
before it, Softmax/Sigmoid/Tanh produce TFLite's fixed output scales and are
requantized to the model's when those differ.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware import quant
from simcore.firmware.ir import (
    FirmwareError,
    FloatModel,
    Geometry,
    Int8Model,
    Int8Op,
    Layer,
    numel,
)

INSTALL_HINT = "install the onnx extra: pip install 'simcore[onnx]'"
#: Operators of the compute chain (QuantizeLinear/DequantizeLinear and Constant are folded away).
SUPPORTED_OPS = (
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "BatchNormalization",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Flatten",
    "Reshape",
    "Transpose",
    "Identity",
    "Dropout",
)
_ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
#: TFLite's fixed int8 output quantization of these activations (scale, zero point).
_FIXED_OUTPUT = {"sigmoid": (1.0 / 256, -128), "softmax": (1.0 / 256, -128), "tanh": (1.0 / 128, 0)}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise FirmwareError(
            "reading an .onnx model needs the onnx package", hint=INSTALL_HINT
        ) from None
    return onnx


@dataclass(frozen=True)
class QConst:
    """A constant integer tensor with its dequantization (DequantizeLinear of an initializer)."""

    values: npt.NDArray[np.int64]
    scale: npt.NDArray[np.float32]
    zero_point: npt.NDArray[np.int64]
    axis: int


@dataclass
class Step:
    """One layer of the chain before activations are fused; shapes are the firmware's (HWC)."""

    node: str
    op: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    out_tensor: str
    activation: str = "linear"
    alpha: float = 0.0
    weights: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    bias: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    #: int8 weights in the firmware layout and their per-output-channel scales (QDQ models).
    weights_q: npt.NDArray[np.int64] | None = field(default=None, repr=False)
    weight_scale: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    bias_q: QConst | None = field(default=None, repr=False)
    geometry: Geometry | None = None


@dataclass(frozen=True)
class OnnxChain:
    """An ONNX graph as a chain of :class:`Step`, with what the int8 conversion needs."""

    name: str
    sha256: str
    source: str
    onnx_input_shape: tuple[int, ...]
    input_layout: str
    input_shape: tuple[int, ...]
    input_name: str
    steps: tuple[Step, ...]
    #: Activation quantization from QuantizeLinear -> DequantizeLinear pairs, by tensor name.
    quant: dict[str, tuple[float, int]]
    quantized: bool

    def to_firmware_layout(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Samples in the ONNX input layout ``(n, *onnx_input_shape)`` -> the firmware's."""
        x = np.asarray(x).reshape((-1, *self.onnx_input_shape))
        if self.input_layout == "nchw":
            x = x.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(x.reshape((-1, *self.input_shape)))

    def to_onnx_layout(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Samples in the firmware's layout -> the ONNX input layout (inverse of the above)."""
        x = np.asarray(x).reshape((-1, *self.input_shape))
        if self.input_layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x.reshape((-1, *self.onnx_input_shape)))


def is_quantized(path: Path) -> bool:
    """Whether ``path`` is a QDQ model (it has QuantizeLinear/DequantizeLinear nodes)."""
    return read_chain(path).quantized


def read_onnx(path: Path, name: str | None = None) -> FloatModel:
    """Read a float ONNX model into the float IR (activations fused into Conv/Gemm)."""
    chain = read_chain(path, name)
    if chain.quantized:
        raise FirmwareError(
            f"{path.name} is a QDQ-quantized model",
            hint="build it with --format int8, or pass the float model for f32/q16",
        )
    return float_model(chain)


def read_onnx_int8(path: Path, name: str | None = None) -> Int8Model:
    """Read a QDQ-quantized ONNX model into the int8 IR."""
    chain = read_chain(path, name)
    if not chain.quantized:
        raise FirmwareError(
            f"{path.name} is a float model; the int8 format builds from a QDQ-quantized one",
            hint=f"create a golden, which quantizes it: simcore golden create {path} --data "
            "TEST_INPUTS.npy; then build from that golden folder",
        )
    return int8_model(chain)


# --- reading the graph ---------------------------------------------------------------------


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _ints(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in v)


class _Reader:
    """Walks the graph once: folds constants and QDQ pairs, then builds the chain of steps."""

    def __init__(self, model: Any, path: Path) -> None:
        from onnx import numpy_helper

        self.path = path
        self.graph = model.graph
        self.consts: dict[str, npt.NDArray[Any]] = {
            t.name: numpy_helper.to_array(t) for t in self.graph.initializer
        }
        self.qconsts: dict[str, QConst] = {}
        self.quant: dict[str, tuple[float, int]] = {}
        self.alias: dict[str, str] = {}
        self.pending_q: dict[str, tuple[str, float, int]] = {}
        self.quantized = False
        self.nodes: list[Any] = []

    def where(self, node: Any) -> str:
        return f"{self.path.name}: node {node.name or '(unnamed)'!r} ({node.op_type})"

    def name(self, t: str) -> str:
        while t in self.alias:
            t = self.alias[t]
        return t

    def const(self, t: str) -> npt.NDArray[Any] | None:
        return self.consts.get(self.name(t))

    def fold(self) -> None:
        """Fold Constant, QuantizeLinear and DequantizeLinear nodes; keep the others in order."""
        from onnx import numpy_helper

        for node in self.graph.node:
            op = node.op_type
            if op == "Constant":
                attr = node.attribute[0]
                if attr.name != "value":
                    raise FirmwareError(f"{self.where(node)}: only tensor constants are supported")
                self.consts[node.output[0]] = numpy_helper.to_array(attr.t)
                continue
            if op in _QDQ_OPS:
                self.quantized = True
                self._qdq(node)
                continue
            if op not in SUPPORTED_OPS:
                raise FirmwareError(
                    f"{self.where(node)} is not supported",
                    hint=f"supported operators: {', '.join(SUPPORTED_OPS)}",
                )
            self.nodes.append(node)

    def _qparams(self, node: Any) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], int]:
        scale = self.const(node.input[1])
        zp = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None or (len(node.input) > 2 and node.input[2] and zp is None):
            raise FirmwareError(f"{self.where(node)}: scale and zero point must be constants")
        a = _attrs(node)
        if a.get("block_size", 0):
            raise FirmwareError(f"{self.where(node)}: blocked quantization is not supported")
        if zp is None and node.op_type == "QuantizeLinear":  # uint8 output by default
            raise FirmwareError(
                f"{self.where(node)}: a QuantizeLinear without an int8 zero point is not supported",
                hint="quantize with activation_type=weight_type=QuantType.QInt8",
            )
        zp_arr = np.zeros(np.shape(scale), np.int64) if zp is None else zp.astype(np.int64)
        if zp is not None and zp.dtype not in (np.int8, np.int32):
            raise FirmwareError(
                f"{self.where(node)}: {zp.dtype} quantization is not supported",
                hint="quantize with activation_type=weight_type=QuantType.QInt8",
            )
        return np.asarray(scale, np.float32).reshape(-1), zp_arr.reshape(-1), int(a.get("axis", 1))

    def _qdq(self, node: Any) -> None:
        scale, zp, axis = self._qparams(node)
        src, out = self.name(node.input[0]), node.output[0]
        value = self.consts.get(src)
        if node.op_type == "QuantizeLinear":
            if value is not None:  # a float constant quantized in the graph
                shape = [1] * value.ndim
                if len(scale) > 1:
                    shape[axis % value.ndim] = -1
                q = np.round(value / scale.reshape(shape)) + zp.reshape(shape)
                self.qconsts[out] = QConst(q.astype(np.int64), scale, zp, axis)
                self.consts[out] = q.astype(np.int64)
                return
            if len(scale) != 1:
                raise FirmwareError(f"{self.where(node)}: per-channel activations not supported")
            self.pending_q[out] = (src, float(scale[0]), int(zp[0]))
            return
        # DequantizeLinear
        if src in self.pending_q:
            x, s, z = self.pending_q[src]
            if len(scale) != 1 or (float(scale[0]), int(zp[0])) != (s, z):
                raise FirmwareError(
                    f"{self.where(node)}: quantization differs from its QuantizeLinear"
                )
            self.alias[out] = x
            self.quant.setdefault(x, (s, z))
            if self.quant[x] != (s, z):
                raise FirmwareError(f"{self.where(node)}: tensor {x!r} is quantized twice")
            return
        if value is None:
            raise FirmwareError(
                f"{self.where(node)}: DequantizeLinear of a computed tensor without its "
                "QuantizeLinear is not supported",
                hint="use a QDQ model as onnxruntime.quantization.quantize_static writes it",
            )
        ints = value.astype(np.int64)
        shape = [1] * ints.ndim
        if len(scale) > 1:
            shape[axis % ints.ndim] = -1
        self.qconsts[out] = QConst(ints, scale, zp, axis % max(ints.ndim, 1))
        self.consts[out] = (
            (ints - zp.reshape(shape)).astype(np.float64) * scale.reshape(shape)
        ).astype(np.float32)


def read_chain(path: Path, name: str | None = None) -> OnnxChain:
    """Read ``path`` into an :class:`OnnxChain`; FirmwareError on anything the IR cannot hold."""
    onnx = _onnx()
    if not path.is_file():
        raise FirmwareError(f"model file {path} does not exist", hint="check the path")
    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise FirmwareError(f"{path} is not a readable ONNX model ({exc})") from None
    reader = _Reader(model, path)
    reader.fold()
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in reader.consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise FirmwareError(
            f"{path.name}: {len(inputs)} inputs and {len(graph.output)} outputs",
            hint="only single-input, single-output models are supported",
        )
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in dims)
    if len(shape) < 2 or any(d <= 0 for d in shape[1:]) or shape[0] not in (1, -1):
        raise FirmwareError(
            f"{path.name}: input {inputs[0].name!r} has shape {shape}",
            hint="the input needs a batch axis (1 or dynamic) and fixed other dimensions",
        )
    onnx_shape = shape[1:]
    first = reader.nodes[0].op_type if reader.nodes else ""
    layout = "nchw" if len(onnx_shape) == 3 and first != "Transpose" else "plain"
    ir_shape = (*onnx_shape[1:], onnx_shape[0]) if layout == "nchw" else onnx_shape
    builder = _Builder(reader, inputs[0].name, layout, ir_shape)
    for node in reader.nodes:
        builder.add(node)
    builder.finish(graph.output[0].name)
    return OnnxChain(
        name=name or path.stem,
        sha256=hashlib.sha256(data).hexdigest(),
        source=str(path),
        onnx_input_shape=onnx_shape,
        input_layout=layout,
        input_shape=ir_shape,
        input_name=inputs[0].name,
        steps=tuple(builder.steps),
        quant=reader.quant,
        quantized=reader.quantized,
    )


def _chw_order(h: int, w: int, c: int) -> npt.NDArray[np.int64]:
    """For each position of an HWC-flattened tensor, its index in the CHW (ONNX) flattening."""
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def _same_pads(mode: str, size: int, k: int, s: int) -> tuple[int, int, int]:
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    first = total // 2 if mode == "SAME_UPPER" else total - total // 2
    return out, first, total - first


class _Builder:
    """Turns the kept nodes into steps, tracking the current tensor's layout and shape."""

    def __init__(self, reader: _Reader, input_name: str, layout: str, shape: tuple[int, ...]):
        self.r = reader
        self.current = input_name
        self.layout = layout
        self.shape = shape
        #: Pending CHW order of a flattened NCHW tensor (None: the firmware's order is ONNX's).
        self.order: npt.NDArray[np.int64] | None = None
        self.steps: list[Step] = []

    # -- helpers --------------------------------------------------------------------------

    def _data_input(self, node: Any) -> None:
        """Check the node computes on the current tensor (its other inputs are constants)."""
        r = self.r
        live = [r.name(t) for t in node.input if t and r.const(t) is None]
        if live != [self.current]:
            raise FirmwareError(
                f"{r.where(node)} does not take the previous node's output",
                hint="only single-chain models are supported",
            )

    def _need_const(self, node: Any, i: int, what: str) -> npt.NDArray[Any]:
        v = self.r.const(node.input[i]) if len(node.input) > i and node.input[i] else None
        if v is None:
            raise FirmwareError(f"{self.r.where(node)}: {what} must be a constant")
        return v

    def _qconst(self, node: Any, i: int) -> QConst | None:
        if len(node.input) <= i or not node.input[i]:
            return None
        return self.r.qconsts.get(self.r.name(node.input[i]))

    def _alias(self, node: Any) -> None:
        """The output is the current tensor (no firmware layer); it keeps its quantization."""
        out = node.output[0]
        self.r.alias[out] = self.current
        q = self.r.quant.pop(out, None)
        if q is not None:
            self.r.quant.setdefault(self.current, q)

    def _emit(self, node: Any, step: Step) -> None:
        self.steps.append(step)
        self.shape = step.out_shape
        self.current = node.output[0]

    def _image(self, node: Any) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise FirmwareError(
                f"{self.r.where(node)}: needs an NCHW image, got shape {self.shape}"
            )
        if self.layout != "nchw":
            h, w, c = self.shape
            if h != 1 and w * c != 1:  # the firmware's CHW-ordered values are not HWC
                raise FirmwareError(
                    f"{self.r.where(node)}: its input is not in NCHW layout",
                    hint="transpose NHWC tensors to NCHW before a Conv or pooling node",
                )
            # (C, H, W) with C == 1 or H*W == 1 is the same bytes as (H, W, C).
            new = (w, c, h)
            self.steps.append(
                Step(node.name + "/nchw", "Reshape", "flatten", self.shape, new, self.current)
            )
            self.shape, self.layout = new, "nchw"
        h, w, c = self.shape
        return h, w, c

    def _window(
        self, node: Any, a: dict[str, Any], h: int, w: int, k_h: int, k_w: int
    ) -> tuple[int, int, Geometry]:
        where = self.r.where(node)
        if any(d != 1 for d in a.get("dilations", (1, 1))):
            raise FirmwareError(f"{where}: dilations are not supported", hint="use dilation 1")
        s_h, s_w = _ints(a.get("strides", (1, 1)))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out_h, pt, _ = _same_pads(auto, h, k_h, s_h)
            out_w, pl, _ = _same_pads(auto, w, k_w, s_w)
        elif auto in ("NOTSET", "VALID"):
            pads = _ints(a.get("pads", (0, 0, 0, 0))) if auto == "NOTSET" else (0, 0, 0, 0)
            pt, pl, pb, pr = pads
            out_h = (h + pt + pb - k_h) // s_h + 1
            out_w = (w + pl + pr - k_w) // s_w + 1
            if a.get("ceil_mode", 0) and ((h + pt + pb - k_h) % s_h or (w + pl + pr - k_w) % s_w):
                raise FirmwareError(
                    f"{where}: ceil_mode=1 is not supported", hint="use ceil_mode=0"
                )
            if max(pt, pl) >= max(k_h, k_w) or out_h < 1 or out_w < 1:
                raise FirmwareError(f"{where}: pads {pads} do not fit the {k_h}x{k_w} window")
        else:
            raise FirmwareError(f"{where}: auto_pad={auto} is not supported")
        return out_h, out_w, Geometry(k_h, k_w, s_h, s_w, pt, pl)

    # -- operators ------------------------------------------------------------------------

    def add(self, node: Any) -> None:
        op, a = node.op_type, _attrs(node)
        self._data_input(node)
        if op in ("Identity", "Dropout"):
            self._alias(node)
            return
        if op == "Conv":
            self._conv(node, a)
        elif op in ("Gemm", "MatMul"):
            self._dense(node, a)
        elif op == "Add":
            self._add(node)
        elif op == "BatchNormalization":
            self._batchnorm(node, a)
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool"):
            self._pool(node, a)
        elif op in ("Flatten", "Reshape"):
            self._reshape(node, a)
        elif op == "Transpose":
            self._transpose(node, a)
        else:
            self._activation(node, a)

    def _conv(self, node: Any, a: dict[str, Any]) -> None:
        where = self.r.where(node)
        h, w, c = self._image(node)
        if int(a.get("group", 1)) != 1:
            raise FirmwareError(
                f"{where}: group={a.get('group')} is not supported", hint="use group=1"
            )
        kernel = self._need_const(node, 1, "the weight").astype(np.float32)
        if kernel.ndim != 4 or kernel.shape[1] != c:
            raise FirmwareError(f"{where}: weights {kernel.shape} do not fit {c} input channels")
        c_out, _, k_h, k_w = kernel.shape
        out_h, out_w, geom = self._window(node, a, h, w, k_h, k_w)
        bias = self._bias(node, 2, c_out)
        wq = self._qconst(node, 1)
        step = Step(
            node.name,
            "Conv",
            "conv2d",
            self.shape,
            (out_h, out_w, c_out),
            node.output[0],
            weights=np.ascontiguousarray(kernel.transpose(0, 2, 3, 1)),
            bias=bias,
            geometry=geom,
            bias_q=self._qconst(node, 2),
        )
        if wq is not None:
            self._int_weights(node, step, wq, wq.values.transpose(0, 2, 3, 1), 0)
        self._emit(node, step)

    def _bias(self, node: Any, i: int, n: int) -> npt.NDArray[np.float32]:
        if len(node.input) <= i or not node.input[i]:
            return np.zeros(n, np.float32)
        b = self._need_const(node, i, "the bias").astype(np.float32).reshape(-1)
        if b.size == 1:
            b = np.full(n, b[0], np.float32)
        if b.size != n:
            raise FirmwareError(f"{self.r.where(node)}: bias has {b.size} values, not {n}")
        return b

    def _int_weights(
        self, node: Any, step: Step, wq: QConst, values: npt.NDArray[np.int64], out_axis: int
    ) -> None:
        """Set the int8 weights (``values``, output channel first) of ``step``.

        ``out_axis`` is the output-channel axis of the initializer, along which
        per-channel scales must run.
        """
        where = self.r.where(node)
        if np.any(wq.zero_point != 0):
            raise FirmwareError(
                f"{where}: asymmetric int8 weights are not supported",
                hint="quantize weights symmetrically (quantize_static's default for QInt8)",
            )
        if values.min() < -128 or values.max() > 127:
            raise FirmwareError(f"{where}: weights are not int8")
        channels = values.shape[0]
        scale = wq.scale
        if len(scale) > 1 and (wq.axis != out_axis or len(scale) != channels):
            raise FirmwareError(f"{where}: weights are quantized per channel along the input axis")
        step.weights_q = np.ascontiguousarray(values)
        step.weight_scale = scale if len(scale) > 1 else np.full(channels, scale[0], np.float32)

    def _dense(self, node: Any, a: dict[str, Any]) -> None:
        where = self.r.where(node)
        if len(self.shape) != 1:
            raise FirmwareError(
                f"{where}: on a {len(self.shape)}-d input is not supported",
                hint="add a Flatten before it",
            )
        n_in = self.shape[0]
        b = self._need_const(node, 1, "the weight").astype(np.float32)
        wq = self._qconst(node, 1)
        trans_b = node.op_type == "Gemm" and int(a.get("transB", 0)) == 1
        if node.op_type == "Gemm" and int(a.get("transA", 0)):
            raise FirmwareError(f"{where}: transA=1 is not supported")
        if b.ndim != 2:
            raise FirmwareError(f"{where}: weights {b.shape} are not a matrix")
        kernel = b if trans_b else b.T  # [out][in]
        if kernel.shape[1] != n_in:
            raise FirmwareError(f"{where}: weights {b.shape} do not fit {n_in} inputs")
        alpha = float(a.get("alpha", 1.0))
        beta = float(a.get("beta", 1.0))
        units = kernel.shape[0]
        bias = self._bias(node, 2, units) * np.float32(beta) if node.op_type == "Gemm" else None
        order = self.order
        if order is not None:  # the firmware's vector is HWC-ordered, ONNX's CHW: permute columns
            kernel = kernel[:, order]
        step = Step(
            node.name,
            node.op_type,
            "dense",
            self.shape,
            (units,),
            node.output[0],
            weights=np.ascontiguousarray(kernel * np.float32(alpha)),
            bias=bias if bias is not None else np.zeros(units, np.float32),
            bias_q=self._qconst(node, 2) if node.op_type == "Gemm" else None,
        )
        if wq is not None:
            if alpha != 1.0 or beta != 1.0:
                raise FirmwareError(f"{where}: alpha/beta other than 1 are not supported in int8")
            values = wq.values if trans_b else wq.values.T
            if order is not None:
                values = values[:, order]
            self._int_weights(node, step, wq, values, 0 if trans_b else 1)
        self.order = None
        self._emit(node, step)

    def _last_linear(self, node: Any, what: str) -> Step:
        prev = self.steps[-1] if self.steps else None
        if prev is None or prev.kind not in ("dense", "conv2d") or prev.activation != "linear":
            raise FirmwareError(
                f"{self.r.where(node)} is supported only as {what} of a Conv, Gemm or MatMul"
            )
        return prev

    def _add(self, node: Any) -> None:
        prev = self._last_linear(node, "the bias")
        n = prev.out_shape[-1]
        other = next(t for t in node.input if self.r.const(t) is not None)
        b = np.asarray(self.r.const(other), np.float32)
        # One value per output channel: the last axis of a Gemm's output, axis 1 of a Conv's.
        axis = -1 if prev.kind == "dense" else -3
        if b.size != 1 and (b.size != n or b.ndim < -axis or b.shape[axis] != n):
            raise FirmwareError(
                f"{self.r.where(node)}: a {b.shape} addend is not one value per channel ({n})"
            )
        assert prev.bias is not None
        prev.bias = (prev.bias + b.reshape(-1)).astype(np.float32)
        prev.bias_q = None  # requantized from the float sum in int8
        prev.out_tensor = node.output[0]
        self.current = node.output[0]

    def _batchnorm(self, node: Any, a: dict[str, Any]) -> None:
        prev = self._last_linear(node, "folded into the output")
        if prev.weights_q is not None:
            raise FirmwareError(
                f"{self.r.where(node)}: BatchNormalization in a QDQ model is not supported",
                hint="fold it into the Conv before quantizing: "
                "onnxruntime.quantization.shape_inference.quant_pre_process does",
            )
        g, beta, mean, var = (
            self._need_const(node, i, "the BatchNormalization parameters").astype(np.float64)
            for i in range(1, 5)
        )
        scale = g / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        assert prev.weights is not None and prev.bias is not None
        shape = (-1,) + (1,) * (prev.weights.ndim - 1)
        prev.weights = (prev.weights * scale.reshape(shape)).astype(np.float32)
        prev.bias = ((prev.bias - mean) * scale + beta).astype(np.float32)
        prev.out_tensor = node.output[0]
        self.current = node.output[0]

    def _pool(self, node: Any, a: dict[str, Any]) -> None:
        where = self.r.where(node)
        h, w, c = self._image(node)
        if node.op_type == "GlobalAveragePool":
            geom = Geometry(h, w, 1, 1, 0, 0)
            out_h = out_w = 1
        else:
            k_h, k_w = _ints(a["kernel_shape"])
            if int(a.get("storage_order", 0)):
                raise FirmwareError(f"{where}: storage_order=1 is not supported")
            out_h, out_w, geom = self._window(node, a, h, w, k_h, k_w)
            padded = any(_ints(a.get("pads", ()))) or a.get("auto_pad", b"NOTSET") not in (
                b"NOTSET",
                b"VALID",
                "NOTSET",
                "VALID",
            )
            if node.op_type == "AveragePool" and padded and int(a.get("count_include_pad", 0)):
                raise FirmwareError(
                    f"{where}: count_include_pad=1 with padding is not supported",
                    hint="the firmware averages over the window's taps inside the image",
                )
        kind = "maxpool" if node.op_type == "MaxPool" else "avgpool"
        self._emit(
            node,
            Step(
                node.name,
                node.op_type,
                kind,
                self.shape,
                (out_h, out_w, c),
                node.output[0],
                geometry=geom,
            ),
        )

    def _flatten_to(self, node: Any, n: int) -> None:
        if self.layout == "nchw" and len(self.shape) == 3:
            h, w, c = self.shape
            order = _chw_order(h, w, c)
            self.order = None if np.array_equal(order, np.arange(n)) else order
        self.layout = "plain"
        self._emit(node, Step(node.name, node.op_type, "flatten", self.shape, (n,), node.output[0]))

    def _reshape(self, node: Any, a: dict[str, Any]) -> None:
        where = self.r.where(node)
        n = numel(self.shape)
        if node.op_type == "Flatten":
            if int(a.get("axis", 1)) != 1:
                raise FirmwareError(f"{where}: axis={a.get('axis')} is not supported", hint="use 1")
            self._flatten_to(node, n)
            return
        target = [int(d) for d in self._need_const(node, 1, "the target shape").reshape(-1)]
        onnx_now = self._onnx_shape()
        full = [1, *onnx_now]  # ONNX's 0 copies the input's dimension
        target = [full[i] if d == 0 and i < len(full) else d for i, d in enumerate(target)]
        if not target or target[0] not in (1, -1) or (target[0] == -1 and -1 in target[1:]):
            raise FirmwareError(f"{where}: reshape to {target} changes the batch axis")
        rest = target[1:]
        if -1 in rest:
            known = int(np.prod([d for d in rest if d != -1]))
            rest = [n // max(known, 1) if d == -1 else d for d in rest]
        if int(np.prod(rest)) != n:
            raise FirmwareError(f"{where}: cannot reshape {tuple(onnx_now)} to {target}")
        if len(rest) == 1:
            self._flatten_to(node, n)
            return
        if self.order is not None or (self.layout == "nchw" and tuple(rest) != tuple(onnx_now)):
            raise FirmwareError(
                f"{where}: reshaping an NCHW tensor to {target} is not supported",
                hint="flatten it to [N, -1] before a Gemm/MatMul",
            )
        if tuple(rest) == tuple(onnx_now):
            self._alias(node)
            return
        self.layout = "plain"
        self._emit(
            node, Step(node.name, "Reshape", "flatten", self.shape, tuple(rest), node.output[0])
        )

    def _onnx_shape(self) -> list[int]:
        if self.layout == "nchw" and len(self.shape) == 3:
            h, w, c = self.shape
            return [c, h, w]
        return list(self.shape)

    def _transpose(self, node: Any, a: dict[str, Any]) -> None:
        perm = _ints(a.get("perm", ()))
        if len(self.shape) == 3 and self.layout == "plain" and perm == (0, 3, 1, 2):
            self.layout = "nchw"  # NHWC -> NCHW: the firmware's bytes are already HWC
        elif len(self.shape) == 3 and self.layout == "nchw" and perm == (0, 2, 3, 1):
            self.layout = "plain"
        elif perm != tuple(range(len(self.shape) + 1)):
            raise FirmwareError(
                f"{self.r.where(node)}: perm {perm} is not supported",
                hint="only NHWC<->NCHW transposes of images are",
            )
        self._alias(node)

    def _activation(self, node: Any, a: dict[str, Any]) -> None:
        where, op = self.r.where(node), node.op_type
        if op == "Softmax":
            axis = int(a.get("axis", -1))
            rank = len(self.shape) + 1
            if len(self.shape) != 1 or axis not in (-1, rank - 1):
                raise FirmwareError(
                    f"{where}: softmax over axis {axis} of a rank-{rank} tensor is not supported",
                    hint="flatten to [N, classes] first",
                )
            act, alpha = "softmax", 0.0
        else:
            act = _ACTIVATIONS[op]
            alpha = float(a.get("alpha", 0.01)) if op == "LeakyRelu" else 0.0
        self._emit(
            node,
            Step(node.name, op, "activation", self.shape, self.shape, node.output[0], act, alpha),
        )

    def finish(self, output: str) -> None:
        if self.r.name(output) != self.current:
            raise FirmwareError(
                f"{self.r.path.name}: the node chain does not end at the graph output {output!r}",
                hint="only single-chain models are supported",
            )
        if self.order is not None:
            raise FirmwareError(
                f"{self.r.path.name}: the graph output is a flattened NCHW tensor",
                hint="end the model with a Gemm/MatMul or an activation of one",
            )
        if (
            self.layout == "nchw"
            and len(self.shape) == 3
            and self.shape[2] > 1
            and (self.shape[0] * self.shape[1] > 1)
        ):
            raise FirmwareError(
                f"{self.r.path.name}: the graph output is an NCHW image",
                hint="end the model with a Flatten and a Gemm/MatMul",
            )
        if not self.steps:
            raise FirmwareError(f"{self.r.path.name}: the model has no layers")


# --- float and int8 models -----------------------------------------------------------------


def _label(s: Step, index: int) -> str:
    """A layer name for the generated C's comments: the node's, without comment-breaking text."""
    return re.sub(r"[^A-Za-z0-9_.:/-]", "_", s.node) or f"{s.op.lower()}_{index}"


def float_model(chain: OnnxChain) -> FloatModel:
    """The float IR: each activation fused into the Conv/Gemm before it when that has none."""
    layers: list[Layer] = []
    for s in chain.steps:
        prev = layers[-1] if layers else None
        if (
            s.kind == "activation"
            and prev is not None
            and prev.kind in ("dense", "conv2d")
            and prev.activation == "linear"
        ):
            layers[-1] = replace(prev, activation=s.activation, alpha=s.alpha)
            continue
        layers.append(
            Layer(
                _label(s, len(layers)),
                s.kind,
                s.in_shape,
                s.out_shape,
                s.activation,
                s.alpha,
                s.weights,
                s.bias,
                s.geometry,
            )
        )
    return FloatModel(
        name=chain.name,
        sha256=chain.sha256,
        source=chain.source,
        input_shape=chain.input_shape,
        layers=tuple(layers),
    )


def int8_model(chain: OnnxChain) -> Int8Model:
    """The int8 IR of a QDQ chain, with TFLite's integer parameters."""
    where = Path(chain.source).name
    if chain.input_name not in chain.quant:
        raise FirmwareError(f"{where}: the graph input is not quantized (no QuantizeLinear)")
    q_in = chain.quant[chain.input_name]
    cur = q_in
    ops: list[Int8Op] = []
    steps = list(chain.steps)
    i = 0
    while i < len(steps):
        s = steps[i]
        name = f"op{len(ops)}_{_label(s, len(ops))}"
        out_q = chain.quant.get(s.out_tensor)
        if s.kind in ("dense", "conv2d"):
            relu = i + 1 < len(steps) and steps[i + 1].activation == "relu"
            if relu:
                i += 1
                out_q = chain.quant.get(steps[i].out_tensor, out_q)
            if out_q is None:
                raise FirmwareError(f"{where}: output of node {s.node!r} is not quantized")
            ops.append(_weighted(s, name, cur, out_q, "RELU" if relu else "NONE", where))
            cur = out_q
        elif s.kind in ("maxpool", "avgpool", "flatten"):
            if s.kind == "flatten":
                ops.append(Int8Op(name, "reshape", s.in_shape, s.out_shape, {}))
            else:
                act_min, act_max = quant.activation_range("NONE", cur[0], cur[1])
                ops.append(
                    Int8Op(
                        name,
                        s.kind,
                        s.in_shape,
                        s.out_shape,
                        {"act_min": act_min, "act_max": act_max},
                        geometry=s.geometry,
                    )
                )
        elif s.activation == "leaky_relu":
            if out_q is None:
                raise FirmwareError(f"{where}: output of node {s.node!r} is not quantized")
            params = quant.leaky_relu_params(cur[0], cur[1], out_q[0], out_q[1], s.alpha)
            ops.append(Int8Op(name, "leaky_relu", s.in_shape, s.out_shape, params))
            cur = out_q
        elif s.activation in _FIXED_OUTPUT:
            if s.activation == "softmax":
                params = quant.softmax_params(1.0, cur[0])
                params["depth"] = int(s.in_shape[-1])
                ops.append(Int8Op(name, "softmax", s.in_shape, s.out_shape, params))
            else:
                kind = "logistic" if s.activation == "sigmoid" else "tanh"
                params = quant.transcendental_params(cur[0], cur[1])
                ops.append(Int8Op(name, kind, s.in_shape, s.out_shape, params))
            cur = _FIXED_OUTPUT[s.activation]
        else:
            raise FirmwareError(
                f"{where}: node {s.node!r} ({s.op}) in int8 must follow a Conv, Gemm or MatMul",
                hint="the int8 runtime applies Relu as the clamp of the layer before it",
            )
        if out_q is not None and _differs(out_q, cur):
            shape = ops[-1].out_shape
            ops.append(
                Int8Op(
                    f"op{len(ops)}_requantize",
                    "requantize",
                    shape,
                    shape,
                    quant.requantize_params(cur[0], cur[1], out_q[0], out_q[1]),
                )
            )
            cur = out_q
        i += 1
    return Int8Model(
        name=chain.name,
        sha256=chain.sha256,
        source=chain.source,
        input_shape=chain.input_shape,
        input_scale=q_in[0],
        input_zero_point=q_in[1],
        output_scale=cur[0],
        output_zero_point=cur[1],
        ops=tuple(ops),
    )


def _differs(a: tuple[float, int], b: tuple[float, int]) -> bool:
    return a[1] != b[1] or float(np.float32(a[0])) != float(np.float32(b[0]))


def _weighted(
    s: Step, name: str, q_x: tuple[float, int], q_y: tuple[float, int], act: str, where: str
) -> Int8Op:
    if s.weights_q is None or s.weight_scale is None:
        raise FirmwareError(f"{where}: weights of node {s.node!r} are not int8-quantized")
    s_x, zp_x = q_x
    s_y, zp_y = q_y
    channels = int(s.weights_q.shape[0])
    acc_scale = np.float32(s_x) * s.weight_scale.astype(np.float32)
    b = s.bias_q
    if b is not None and len(b.scale) in (1, channels):
        ints = b.values.reshape(-1).astype(np.int64)
        scale = np.broadcast_to(b.scale, (channels,))
        same = np.allclose(scale, acc_scale, rtol=1e-6, atol=0) and not np.any(b.zero_point)
    else:
        same = False
    if not same:  # a float bias, or one at another scale: at the accumulator's scale
        assert s.bias is not None
        ints = np.round(s.bias.astype(np.float64) / acc_scale.astype(np.float64)).astype(np.int64)
    if np.any(np.abs(ints) > 2**31 - 1):
        raise FirmwareError(f"{where}: bias of node {s.node!r} overflows int32")
    act_min, act_max = quant.activation_range(act, s_y, zp_y)
    mults, shifts = quant.conv_multipliers(s_x, s.weight_scale, s_y, channels)
    return Int8Op(
        name,
        "fully_connected" if s.kind == "dense" else "conv2d",
        s.in_shape,
        s.out_shape,
        {"input_offset": -zp_x, "output_offset": zp_y, "act_min": act_min, "act_max": act_max},
        weights=np.ascontiguousarray(s.weights_q, dtype=np.int8),
        bias=ints.astype(np.int32),
        multiplier=np.asarray(mults, dtype=np.int32),
        shift=np.asarray(shifts, dtype=np.int32),
        geometry=s.geometry,
    )
