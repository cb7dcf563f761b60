"""Turn a parsed int8 ``.tflite`` model into an :class:`~simcore.firmware.ir.Int8Model`.

The flatbuffer is read by :mod:`simcore.golden.tflite_model` (no TensorFlow);
this module checks every operator against what the int8 runtime implements
and computes the kernels' integer parameters with :mod:`simcore.firmware.quant`
exactly as tflite-micro's Prepare functions do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simcore.errors import GoldenError
from simcore.firmware import quant
from simcore.firmware.ir import FirmwareError, Geometry, Int8Model, Int8Op, same_or_valid

SUPPORTED_OPS = (
    "FULLY_CONNECTED",
    "CONV_2D",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "RESHAPE",
    "LOGISTIC",
    "TANH",
    "LEAKY_RELU",
    "SOFTMAX",
    "QUANTIZE",
)
FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
#: Operators that compute a tensor's shape at run time. A Keras -> TFLite conversion
#: adds them (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE) when the batch size is left
#: dynamic: a Flatten or Reshape then builds its target shape from the input's.
DYNAMIC_SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "UNPACK", "GATHER", "SLICE", "REDUCE_PROD")


def read_int8_tflite(path: Path, name: str | None = None) -> Int8Model:
    """Read and convert an int8 ``.tflite`` file; FirmwareError on a corrupt or unsupported one."""
    from simcore.golden.tflite_model import read_tflite

    if not path.is_file():
        raise FirmwareError(f"model file {path} does not exist", hint="check the path")
    try:
        model = read_tflite(path)
    except GoldenError as exc:
        raise FirmwareError(exc.message, hint="pass the int8 .tflite of `nox -s golden`") from None
    return convert(model, name or path.stem, str(path))


def _qparams(t: Any, where: str) -> tuple[float, int]:
    if t.quant is None:
        raise FirmwareError(f"{where}: tensor {t.name!r} is not quantized")
    return float(t.quant.scale[0]), int(t.quant.zero_point[0])


def _hwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop the batch axis of a TFLite activation shape."""
    if len(shape) >= 2 and shape[0] == 1:
        return tuple(int(d) for d in shape[1:])
    return tuple(int(d) for d in shape)


def convert(model: Any, name: str, source: str) -> Int8Model:
    """Convert a :class:`simcore.golden.tflite_model.TfliteModel` (int8 in and out)."""
    inp, out = model.input_tensor, model.output_tensor
    for role, t in (("input", inp), ("output", out)):
        if t.dtype != "int8":
            raise FirmwareError(
                f"{source}: graph {role} {t.name!r} is {t.dtype}",
                hint="the int8 format needs a full-integer model with int8 input and output",
            )
    ops: list[Int8Op] = []
    current = model.inputs[0]
    for op in model.operators:
        where = f"{Path(source).name}: operator {op.index} ({op.opcode})"
        if op.opcode not in SUPPORTED_OPS:
            raise FirmwareError(f"{where} is not supported", hint=_unsupported_hint(model, op))
        x = model.op_input(op, 0)
        y = model.op_output(op)
        if x is None or x.index != current:
            raise FirmwareError(
                f"{where} does not take the previous operator's output",
                hint="only single-chain models are supported",
            )
        if x.dtype != "int8" or y.dtype != "int8":
            raise FirmwareError(
                f"{where}: {x.dtype} -> {y.dtype} is not supported", hint="int8 tensors only"
            )
        ops.append(_op(model, op, len(ops), x, y, where))
        current = y.index
    if current != model.outputs[0]:
        raise FirmwareError(f"{source}: the operator chain does not end at the graph output")
    s_in, zp_in = _qparams(inp, source)
    s_out, zp_out = _qparams(out, source)
    return Int8Model(
        name=name,
        sha256=model.sha256,
        source=source,
        input_shape=_hwc(inp.shape),
        input_scale=s_in,
        input_zero_point=zp_in,
        output_scale=s_out,
        output_zero_point=zp_out,
        ops=tuple(ops),
    )


def _unsupported_hint(model: Any, op: Any) -> str:
    """What to do about an unsupported operator; for a dynamic-batch artefact, how to convert."""
    dynamic = op.opcode in DYNAMIC_SHAPE_OPS or any(o.opcode == "SHAPE" for o in model.operators)
    if not dynamic:
        return f"supported operators: {', '.join(SUPPORTED_OPS)}"
    shape = ", ".join(str(d) for d in (1, *_hwc(model.input_tensor.shape)))
    return (
        "the model was converted with a dynamic batch size, so a Flatten/Reshape computes its "
        "shape at run time (SHAPE, STRIDED_SLICE, PACK); convert from a batch-1 concrete "
        "function: fn = tf.function(model).get_concrete_function(tf.TensorSpec("
        f"[{shape}], tf.float32)); tf.lite.TFLiteConverter.from_concrete_functions([fn], model), "
        "or rebuild the Keras model with batch_size=1"
    )


def _fused(options: Any, where: str) -> str:
    act = str(options.get("fused_activation", "NONE"))
    if act not in FUSED_ACTIVATIONS:
        raise FirmwareError(
            f"{where}: fused activation {act} is not supported",
            hint=f"supported: {', '.join(FUSED_ACTIVATIONS)}",
        )
    return act


def _op(model: Any, op: Any, index: int, x: Any, y: Any, where: str) -> Int8Op:
    s_x, zp_x = _qparams(x, where)
    s_y, zp_y = _qparams(y, where)
    in_shape, out_shape = _hwc(x.shape), _hwc(y.shape)
    name = f"op{op.index}_{op.opcode.lower()}"
    opts = op.options
    if op.opcode in ("FULLY_CONNECTED", "CONV_2D"):
        w = model.op_input(op, 1)
        b = model.op_input(op, 2)
        if w is None or w.data is None or w.dtype != "int8" or w.quant is None:
            raise FirmwareError(f"{where}: weights must be constant int8")
        if np.any(w.quant.zero_point != 0):
            raise FirmwareError(
                f"{where}: asymmetric int8 weights are not supported",
                hint="quantize weights symmetrically (TFLite's default)",
            )
        if b is not None and (b.data is None or b.dtype != "int32"):
            raise FirmwareError(f"{where}: bias must be constant int32")
        channels = int(w.shape[0])
        act_min, act_max = quant.activation_range(_fused(opts, where), s_y, zp_y)
        mults, shifts = quant.conv_multipliers(s_x, w.quant.scale, s_y, channels)
        params: dict[str, Any] = {
            "input_offset": -zp_x,
            "output_offset": zp_y,
            "act_min": act_min,
            "act_max": act_max,
        }
        geometry = None
        if op.opcode == "FULLY_CONNECTED":
            n_in = int(w.shape[1])
            if int(np.prod(in_shape)) != n_in:
                raise FirmwareError(
                    f"{where}: input has {int(np.prod(in_shape))} values, weights expect {n_in}"
                )
            out_shape = (channels,)
        else:
            if (opts.get("dilation_h", 1), opts.get("dilation_w", 1)) != (1, 1):
                raise FirmwareError(f"{where}: dilation is not supported", hint="use dilation 1")
            _, k_h, k_w, c_in = (int(d) for d in w.shape)
            if len(in_shape) != 3 or c_in != in_shape[2]:
                raise FirmwareError(f"{where}: input shape {in_shape} does not match weights")
            geometry = _geometry(opts, in_shape, out_shape, k_h, k_w, where)
        return Int8Op(
            name,
            "fully_connected" if op.opcode == "FULLY_CONNECTED" else "conv2d",
            in_shape,
            out_shape,
            params,
            weights=np.ascontiguousarray(w.data, dtype=np.int8),
            bias=None if b is None else np.asarray(b.data, dtype=np.int32),
            multiplier=np.asarray(mults, dtype=np.int32),
            shift=np.asarray(shifts, dtype=np.int32),
            geometry=geometry,
        )
    if op.opcode in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        if (s_x, zp_x) != (s_y, zp_y):
            raise FirmwareError(f"{where}: input and output quantization differ")
        k_h, k_w = int(opts["filter_h"]), int(opts["filter_w"])
        act_min, act_max = quant.activation_range(_fused(opts, where), s_y, zp_y)
        return Int8Op(
            name,
            "maxpool" if op.opcode == "MAX_POOL_2D" else "avgpool",
            in_shape,
            out_shape,
            {"act_min": act_min, "act_max": act_max},
            geometry=_geometry(opts, in_shape, out_shape, k_h, k_w, where),
        )
    if op.opcode == "RESHAPE":
        return Int8Op(name, "reshape", in_shape, out_shape, {})
    if op.opcode in ("LOGISTIC", "TANH"):
        want = (1.0 / 256, -128) if op.opcode == "LOGISTIC" else (1.0 / 128, 0)
        if (float(np.float32(s_y)), zp_y) != (float(np.float32(want[0])), want[1]):
            raise FirmwareError(
                f"{where}: output quantization must be scale {want[0]}, zero point {want[1]}"
            )
        return Int8Op(
            name, op.opcode.lower(), in_shape, out_shape, quant.transcendental_params(s_x, zp_x)
        )
    if op.opcode == "LEAKY_RELU":
        return Int8Op(
            name,
            "leaky_relu",
            in_shape,
            out_shape,
            quant.leaky_relu_params(s_x, zp_x, s_y, zp_y, float(opts.get("alpha", 0.2))),
        )
    if op.opcode == "SOFTMAX":
        if (float(np.float32(s_y)), zp_y) != (float(np.float32(1.0 / 256)), -128):
            raise FirmwareError(
                f"{where}: output quantization must be scale 1/256, zero point -128"
            )
        p = quant.softmax_params(float(opts.get("beta", 1.0)), s_x)
        p["depth"] = int(in_shape[-1])
        return Int8Op(name, "softmax", in_shape, out_shape, p)
    # QUANTIZE int8 -> int8
    return Int8Op(
        name, "requantize", in_shape, out_shape, quant.requantize_params(s_x, zp_x, s_y, zp_y)
    )


def _geometry(
    opts: Any,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    k_h: int,
    k_w: int,
    where: str,
) -> Geometry:
    padding = str(opts.get("padding", "VALID")).lower()
    s_h, s_w = int(opts.get("stride_h", 1)), int(opts.get("stride_w", 1))
    if padding not in ("valid", "same"):
        raise FirmwareError(f"{where}: padding {padding} is not supported")
    out_h, out_w, pt, pl = same_or_valid(padding, in_shape[0], in_shape[1], k_h, k_w, s_h, s_w)
    if (out_h, out_w) != tuple(out_shape[:2]):
        raise FirmwareError(
            f"{where}: output shape {out_shape} does not follow from {padding} padding"
        )
    return Geometry(k_h, k_w, s_h, s_w, pt, pl)
