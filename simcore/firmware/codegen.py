"""Emit the C source of one model in one format.

The generated file defines the harness I/O descriptor, every layer's
constants under ``layer<N>_*`` symbols (layouts in nn_common.h), the
activation arena ``nn_arena`` (two ping-pong buffers, sized here) and
``main``, which runs each sample between simcore_sample_begin/end. Layer
``N`` is also trace id ``N``. The output is a pure function of the model,
so builds are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from simcore.firmware import q16_ref
from simcore.firmware.consts import LayerConsts, encode
from simcore.firmware.ir import FirmwareError, FloatModel, Geometry, Int8Model, Int8Op, Layer, numel
from simcore.firmware.sparse import SparseMatrix, SparseMode, choose_sparse

#: Largest int8 input patch (int16 elements) the DSP path buffers; larger layers use the
#: unbuffered DSP dot product.
MAX_INT8_SCRATCH = 2048
ELEMENT_BYTES = {"f32": 4, "q16": 4, "int8": 1}
C_TYPES = {"f32": "float", "q16": "int32_t", "int8": "int8_t"}
_ACT_ENUM = {
    "linear": "NN_ACT_LINEAR",
    "relu": "NN_ACT_RELU",
    "sigmoid": "NN_ACT_SIGMOID",
    "tanh": "NN_ACT_TANH",
    "leaky_relu": "NN_ACT_LEAKY_RELU",
    "softmax": "NN_ACT_SOFTMAX",
}


@dataclass(frozen=True)
class LayerInfo:
    """What the manifest says about one generated layer (id = trace id)."""

    id: int
    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    activation: str
    buffer: str
    symbols: dict[str, int] = field(default_factory=dict)
    #: A sparse Dense layer's encoding figures (see :func:`sparse_figures`); {} when dense.
    sparse: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GeneratedSource:
    """A generated C file and the sizes the generator decided."""

    text: str
    input_bytes: int
    output_bytes: int
    arena_bytes: int
    weights_bytes: int
    layers: tuple[LayerInfo, ...]
    #: int16 elements of the int8 DSP path's input patch (0: none needed).
    int8_scratch: int = 0


@dataclass
class _Step:
    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    activation: str
    computes: bool
    consts: list[str]
    call: list[str]  # lines with {X} (input pointer) and {Y} (output pointer)
    symbols: dict[str, int]
    sparse: dict[str, int] = field(default_factory=dict)


def _float_literal(v: float) -> str:
    f = float(np.float32(v))
    if not math.isfinite(f):
        raise FirmwareError(f"the model holds a non-finite value ({f})", hint="retrain or fix it")
    return f"{f.hex()}f"


def c_array(ctype: str, name: str, values: Iterable[Any], *, per_line: int = 8) -> str:
    """Format a const C array; floats as exact hexadecimal literals."""
    vals = list(values)
    fmt_one = _float_literal if ctype == "float" else (lambda v: str(int(v)))
    items = [fmt_one(v) for v in vals]
    lines = [
        "    " + ", ".join(items[i : i + per_line]) + "," for i in range(0, len(items), per_line)
    ]
    body = "\n".join(lines) if lines else "    0,"
    return f"const {ctype} {name}[{max(len(vals), 1)}] = {{\n{body}\n}};\n"


def _geom(name: str, g: Geometry, in_shape: Sequence[int], out_shape: Sequence[int]) -> str:
    vals = (
        *in_shape,
        *out_shape,
        g.k_h,
        g.k_w,
        g.stride_h,
        g.stride_w,
        g.pad_top,
        g.pad_left,
    )
    return f"static const nn_geom_t {name}_geom = {{{', '.join(str(int(v)) for v in vals)}}};\n"


def _array_bytes(a: npt.NDArray[Any] | None, elem: int) -> int:
    return 0 if a is None else int(a.size) * elem


def _float_array(fmt: str, name: str, a: npt.NDArray[Any]) -> tuple[str, str]:
    """Return (definition, expression to pass) of a float-model constant array.

    f32 arrays holding non-finite values (an injected byte-order mistake) are
    emitted as their bit patterns and passed through a cast.
    """
    flat = a.reshape(-1)
    if fmt == "q16":
        return c_array("int32_t", name, flat), name
    if np.all(np.isfinite(flat)):
        return c_array("float", name, flat), name
    bits = np.asarray(flat, dtype="<f4").view("<u4")
    return c_array("uint32_t", name, bits), f"(const float *){name}"


def sparse_figures(matrix: SparseMatrix, element_bytes: int) -> dict[str, int]:
    """What a sparse layer's manifest entry records: sizes and what the encoding saved."""
    dense = matrix.shape[0] * matrix.shape[1] * element_bytes
    return {
        "nonzeros": matrix.nonzeros,
        "entries": matrix.entries,
        "weights": matrix.shape[0] * matrix.shape[1],
        "dense_bytes": dense,
        "sparse_bytes": matrix.nbytes(element_bytes),
        "saved_bytes": dense - matrix.nbytes(element_bytes),
    }


def _sparse_arrays(
    sym: str, matrix: SparseMatrix, values_def: str
) -> tuple[list[str], dict[str, int]]:
    """C definitions of a sparse matrix's gaps, rows and nn_sparse_t (values given)."""
    defs = [
        values_def,
        c_array("uint8_t", f"{sym}_sparse_gaps", matrix.gaps, per_line=16),
        c_array("uint16_t", f"{sym}_sparse_rows", matrix.rows, per_line=12),
        f"static const nn_sparse_t {sym}_sparse = {{{sym}_sparse_rows, {sym}_sparse_gaps}};\n",
    ]
    symbols = {
        f"{sym}_sparse_gaps": int(matrix.gaps.size),
        f"{sym}_sparse_rows": 2 * int(matrix.rows.size),
    }
    return defs, symbols


def _float_steps(
    layers: Sequence[Layer], consts: Sequence[LayerConsts], fmt: str, sparse: SparseMode
) -> list[_Step]:
    prefix = f"nn_{fmt}"
    steps = []
    for i, (layer, lc) in enumerate(zip(layers, consts, strict=True)):
        sym = f"layer{i}"
        defs: list[str] = []
        symbols: dict[str, int] = {}
        w_arg = b_arg = ""
        matrix = None
        if layer.kind == "dense" and lc.weights is not None and lc.bias is not None:
            matrix = choose_sparse(lc.weights.reshape(numel(layer.out_shape), -1), fmt, sparse)
        if matrix is not None and lc.bias is not None:
            v_def, v_arg = _float_array(fmt, f"{sym}_sparse_values", matrix.values)
            b_def, b_arg = _float_array(fmt, f"{sym}_bias", lc.bias)
            s_defs, symbols = _sparse_arrays(sym, matrix, v_def)
            defs += [*s_defs, b_def]
            symbols |= {f"{sym}_sparse_values": matrix.entries * 4, f"{sym}_bias": lc.bias.size * 4}
        elif lc.weights is not None and lc.bias is not None:
            w_def, w_arg = _float_array(fmt, f"{sym}_weights", lc.weights)
            b_def, b_arg = _float_array(fmt, f"{sym}_bias", lc.bias)
            defs += [w_def, b_def]
            symbols = {f"{sym}_weights": lc.weights.size * 4, f"{sym}_bias": lc.bias.size * 4}
        act = _ACT_ENUM[layer.activation]
        alpha = (
            _float_literal(layer.alpha) if fmt == "f32" else str(int(q16_ref.to_q16(layer.alpha)))
        )
        n_out = numel(layer.out_shape)
        out_bytes = n_out * 4
        call: list[str]
        if matrix is not None:
            call = [
                f"{prefix}_dense_sparse({{X}}, {{Y}}, {v_arg}, &{sym}_sparse, {b_arg}, "
                f"{n_out}u, {act}, {alpha});"
            ]
        elif layer.kind == "dense":
            call = [
                f"{prefix}_dense({{X}}, {{Y}}, {w_arg}, {b_arg}, "
                f"{numel(layer.in_shape)}u, {n_out}u, {act}, {alpha});"
            ]
        elif layer.kind == "conv2d":
            assert layer.geometry is not None
            defs.append(_geom(sym, layer.geometry, layer.in_shape, layer.out_shape))
            call = [
                f"{prefix}_conv2d({{X}}, {{Y}}, {w_arg}, {b_arg}, &{sym}_geom, {act}, {alpha});"
            ]
        elif layer.kind in ("maxpool", "avgpool"):
            assert layer.geometry is not None
            defs.append(_geom(sym, layer.geometry, layer.in_shape, layer.out_shape))
            call = [f"{prefix}_{layer.kind}({{X}}, {{Y}}, &{sym}_geom);"]
            if layer.activation != "linear":
                call.append(
                    f"{prefix}_activation({{Y}}, {n_out}u, {layer.out_shape[-1]}u, {act}, {alpha});"
                )
        elif layer.kind == "activation":
            call = [
                f"memcpy({{Y}}, {{X}}, {out_bytes}u);",
                f"{prefix}_activation({{Y}}, {n_out}u, {layer.out_shape[-1]}u, {act}, {alpha});",
            ]
        else:  # flatten / reshape: same bytes, no work
            call = []
        steps.append(
            _Step(
                layer.name,
                layer.kind,
                layer.in_shape,
                layer.out_shape,
                layer.activation,
                bool(call),
                defs,
                call,
                symbols,
                sparse_figures(matrix, 4) if matrix is not None else {},
            )
        )
    return steps


def _int8_steps(
    ops: Sequence[Int8Op], consts: Sequence[LayerConsts], sparse: SparseMode
) -> list[_Step]:
    steps = []
    for i, (op, lc) in enumerate(zip(ops, consts, strict=True)):
        sym = f"layer{i}"
        defs: list[str] = []
        symbols: dict[str, int] = {}
        p = op.params
        n_out = numel(op.out_shape)
        matrix = None
        if op.kind in ("fully_connected", "conv2d"):
            assert lc.weights is not None and lc.multiplier is not None and lc.shift is not None
            if op.kind == "fully_connected":
                matrix = choose_sparse(lc.weights, "int8", sparse)
            if matrix is not None:
                v_def = c_array("int8_t", f"{sym}_sparse_values", matrix.values, per_line=16)
                s_defs, symbols = _sparse_arrays(sym, matrix, v_def)
                defs += s_defs
                symbols[f"{sym}_sparse_values"] = matrix.entries
            else:
                defs.append(
                    c_array("int8_t", f"{sym}_weights", lc.weights.reshape(-1), per_line=16)
                )
                symbols[f"{sym}_weights"] = _array_bytes(lc.weights, 1)
            bias = "0"
            if lc.bias is not None:
                defs.append(c_array("int32_t", f"{sym}_bias", lc.bias.reshape(-1)))
                symbols[f"{sym}_bias"] = _array_bytes(lc.bias, 4)
                bias = f"{sym}_bias"
            defs.append(c_array("int32_t", f"{sym}_multiplier", lc.multiplier.reshape(-1)))
            defs.append(c_array("int32_t", f"{sym}_shift", lc.shift.reshape(-1)))
            symbols[f"{sym}_multiplier"] = _array_bytes(lc.multiplier, 4)
            symbols[f"{sym}_shift"] = _array_bytes(lc.shift, 4)
            defs.append(
                f"static const nn_int8_quant_t {sym}_quant = {{{p['input_offset']}, "
                f"{p['output_offset']}, {p['act_min']}, {p['act_max']}, {sym}_multiplier, "
                f"{sym}_shift}};\n"
            )
            if matrix is not None:
                call = [
                    f"nn_int8_fully_connected_sparse({{X}}, {{Y}}, {sym}_sparse_values, "
                    f"&{sym}_sparse, {bias}, {n_out}u, &{sym}_quant);"
                ]
            elif op.kind == "fully_connected":
                n_in = lc.weights.shape[1]
                call = [
                    f"nn_int8_fully_connected({{X}}, {{Y}}, {sym}_weights, {bias}, {n_in}u, "
                    f"{n_out}u, &{sym}_quant);"
                ]
            else:
                assert op.geometry is not None
                defs.append(_geom(sym, op.geometry, op.in_shape, op.out_shape))
                call = [
                    f"nn_int8_conv2d({{X}}, {{Y}}, {sym}_weights, {bias}, &{sym}_geom, "
                    f"&{sym}_quant);"
                ]
        elif op.kind in ("maxpool", "avgpool"):
            assert op.geometry is not None
            defs.append(_geom(sym, op.geometry, op.in_shape, op.out_shape))
            call = [
                f"nn_int8_{op.kind}({{X}}, {{Y}}, &{sym}_geom, {p['act_min']}, {p['act_max']});"
            ]
        elif op.kind in _ELEMENTWISE_PARAMS:
            ctype, keys = _ELEMENTWISE_PARAMS[op.kind]
            defs.append(_struct(ctype, sym, p, keys))
            depth = f" {p['depth']}u," if op.kind == "softmax" else ""
            fn = "requantize" if op.kind == "requantize" else op.kind
            call = [f"nn_int8_{fn}({{X}}, {{Y}}, {n_out}u,{depth} &{sym}_params);"]
        elif op.kind == "identity":  # an activation left out (layout-doctor injection)
            call = [f"memcpy({{Y}}, {{X}}, {n_out}u);"]
        else:  # reshape
            call = []
        figures = sparse_figures(matrix, 1) if matrix is not None else {}
        steps.append(
            _Step(
                op.name,
                op.kind,
                op.in_shape,
                op.out_shape,
                "",
                bool(call),
                defs,
                call,
                symbols,
                figures,
            )
        )
    return steps


#: int8 operators whose kernel takes ``(x, y, n, [depth,] &params)``: the
#: parameter struct's C type and its fields in declaration order (nn_int8.h).
_ELEMENTWISE_PARAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "logistic": (
        "nn_int8_transcendental_t",
        ("input_zero_point", "input_range_radius", "input_multiplier", "input_left_shift"),
    ),
    "tanh": (
        "nn_int8_transcendental_t",
        ("input_zero_point", "input_range_radius", "input_multiplier", "input_left_shift"),
    ),
    "leaky_relu": (
        "nn_int8_leaky_t",
        (
            "input_zero_point",
            "output_zero_point",
            "multiplier_identity",
            "shift_identity",
            "multiplier_alpha",
            "shift_alpha",
        ),
    ),
    "softmax": ("nn_int8_softmax_t", ("input_multiplier", "input_left_shift", "diff_min")),
    "requantize": (
        "nn_int8_requant_t",
        ("input_zero_point", "output_zero_point", "multiplier", "shift"),
    ),
}


def _struct(ctype: str, sym: str, p: dict[str, Any], keys: Sequence[str]) -> str:
    return f"static const {ctype} {sym}_params = {{{', '.join(str(int(p[k])) for k in keys)}}};\n"


def _header(fmt: str) -> str:
    return {"f32": "nn_f32.h", "q16": "nn_q16.h", "int8": "nn_int8.h"}[fmt]


def q16_tables_source() -> str:
    """C definitions of the Q16.16 lookup tables (from q16_ref)."""
    table, end = q16_ref.sigmoid_table()
    return (
        "/* Q16.16 lookup tables (simcore/firmware/q16_ref.py). */\n"
        + c_array("int32_t", "nn_q16_sigmoid_table", table)
        + f"const int32_t nn_q16_sigmoid_end = {end};\n"
        + c_array("int32_t", "nn_q16_exp2_table", q16_ref.exp2_table())
    )


def generate(
    model: FloatModel | Int8Model,
    fmt: str,
    *,
    capacity: int,
    layers: Sequence[Layer | Int8Op] | None = None,
    consts: Sequence[LayerConsts] | None = None,
    input_fixup: str | None = None,
    sparse: SparseMode = SparseMode.AUTO,
) -> GeneratedSource:
    """Return the C source of ``model`` in ``fmt`` with I/O room for ``capacity`` samples.

    ``layers`` and ``consts`` replace the model's own layers and their encoded
    arrays, and ``input_fixup`` is C run on the input buffer ``x`` (``n``
    elements) before the first layer: the layout doctor's bug injection
    (simcore.diagnose.mistakes) builds deliberately wrong firmware this way.
    ``sparse`` says which Dense layers use the sparse kernels
    (simcore.firmware.sparse).
    """
    own = model.ops if isinstance(model, Int8Model) else model.layers
    chain = list(own if layers is None else layers)
    arrays = list(encode(model, fmt) if consts is None else consts)
    if isinstance(model, Int8Model):
        steps = _int8_steps([op for op in chain if isinstance(op, Int8Op)], arrays, sparse)
    else:
        steps = _float_steps([la for la in chain if isinstance(la, Layer)], arrays, fmt, sparse)
    if len(steps) != len(own):
        raise FirmwareError("layer overrides must keep the model's layer types and count")
    elem = ELEMENT_BYTES[fmt]
    ctype = C_TYPES[fmt]
    in_bytes = numel(model.input_shape) * elem
    out_bytes = numel(model.output_shape) * elem

    # Ping-pong plan: each computing step writes to the buffer its input is not in.
    where = "in"
    sizes = {"a": 0, "b": 0}
    placed: list[str] = []
    for step in steps:
        if step.computes:
            where = "a" if where != "a" else "b"
            sizes[where] = max(sizes[where], numel(step.out_shape) * elem)
        placed.append(where)
    a_bytes = (sizes["a"] + 7) // 8 * 8
    arena_bytes = max(a_bytes + sizes["b"], 8)

    ptr = {"in": "in", "a": f"(({ctype} *)nn_arena)", "b": f"(({ctype} *)(nn_arena + {a_bytes}))"}
    body: list[str] = []
    if input_fixup:
        body += [
            "    /* injected mistake (layout doctor test build) */",
            f"    {{\n        {ctype} *x = ({ctype} *)in;",
            f"        for (uint32_t i = 0; i < {numel(model.input_shape)}u; ++i) {{",
            f"            {input_fixup}",
            "        }\n    }",
        ]
    prev = "in"
    infos = []
    weights_bytes = 0
    for i, (step, loc) in enumerate(zip(steps, placed, strict=True)):
        x, y = ptr[prev], ptr[loc]
        body.append(f"    /* layer {i}: {step.name} ({step.kind}) -> {step.out_shape} */")
        body.extend("    " + line.format(X=x, Y=y) for line in step.call)
        body.append(f"    NN_TRACE({i}u, {y}, {numel(step.out_shape) * elem}u);")
        prev = loc
        weights_bytes += sum(step.symbols.values())
        infos.append(
            LayerInfo(
                i,
                step.name,
                step.kind,
                step.in_shape,
                step.out_shape,
                step.activation,
                {"in": "input", "a": "arena_a", "b": "arena_b"}[loc],
                step.symbols,
                step.sparse,
            )
        )
    body.append(f"    memcpy(out, {ptr[prev]}, {out_bytes}u);")

    kind = "Int8Model" if isinstance(model, Int8Model) else "FloatModel"
    parts = [
        f"/* Generated by simcore.firmware: do not edit.\n"
        f" * model {model.name} ({kind}), format {fmt}\n"
        f" * model sha256 {model.sha256}\n"
        f" * input {model.input_shape} -> output {model.output_shape}\n */\n",
        '#include <stdint.h>\n#include <string.h>\n#include "simcore_abi.h"\n'
        f'#include "{_header(fmt)}"\n\n',
        f"#define MODEL_INPUT_BYTES {in_bytes}u\n#define MODEL_OUTPUT_BYTES {out_bytes}u\n"
        f"#define MODEL_CAPACITY {capacity}u\n\n",
        "SIMCORE_DEFINE_IO(MODEL_INPUT_BYTES, MODEL_OUTPUT_BYTES, MODEL_CAPACITY);\n\n",
        f"/* Activation arena: buffer A [0, {a_bytes}), buffer B [{a_bytes}, {arena_bytes}). */\n"
        f"__attribute__((aligned(8), used)) uint8_t nn_arena[{arena_bytes}];\n\n",
    ]
    if fmt == "q16":
        parts.append(q16_tables_source() + "\n")
    for i, step in enumerate(steps):
        if step.consts:
            parts.append(f"/* layer {i}: {step.name} */\n" + "".join(step.consts) + "\n")
    parts.append(
        f"static void infer(const {ctype} *in, {ctype} *out)\n{{\n" + "\n".join(body) + "\n}\n\n"
    )
    parts.append(
        "int main(void)\n{\n"
        "    uint32_t n = simcore_io.n_samples;\n"
        "    if (n > MODEL_CAPACITY) {\n        n = MODEL_CAPACITY;\n    }\n"
        "    for (uint32_t s = 0; s < n; ++s) {\n"
        "        simcore_sample_begin(s);\n"
        f"        infer((const {ctype} *)(simcore_io.input + s * MODEL_INPUT_BYTES),\n"
        f"              ({ctype} *)(simcore_io.output + s * MODEL_OUTPUT_BYTES));\n"
        "        simcore_sample_end(s);\n"
        "    }\n    return 0;\n}\n"
    )
    scratch = 0
    if isinstance(model, Int8Model):
        sizes_k = [
            numel(op.weights.shape[1:])
            for op in model.ops
            if op.weights is not None and numel(op.weights.shape[1:]) <= MAX_INT8_SCRATCH
        ]
        scratch = max(sizes_k, default=0)
    return GeneratedSource(
        int8_scratch=scratch,
        text="".join(parts),
        input_bytes=in_bytes,
        output_bytes=out_bytes,
        arena_bytes=arena_bytes,
        weights_bytes=weights_bytes,
        layers=tuple(infos),
    )
