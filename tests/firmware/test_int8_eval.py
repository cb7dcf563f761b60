"""simcore.firmware.int8_eval: the int8 firmware's arithmetic from the IR alone.

Checked three ways: against the shipped goldens (tflite-micro's per-op
outputs and final outputs, bit for bit), against the runtime's own C kernels
compiled for the host (``host_nn``, with and without the patch buffer) on
ops carrying values no converter would produce (the layout doctor's
hypotheses), and on properties a mutated op must have.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fw_support import Geom, P, Quant

from simcore.firmware.build import load_model, resolve_model, shipped_models
from simcore.firmware.int8_eval import KINDS, evaluate_op, forward
from simcore.firmware.ir import FirmwareError, Geometry, Int8Model, Int8Op, numel, same_or_valid
from simcore.golden.int8_ref import INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier
from simcore.golden.store import Golden, load_golden

MODELS = tuple(shipped_models())
#: MNIST rows whose final outputs are compared (the IRIS nets use their whole test split).
MNIST_ROWS = 64


@functools.cache
def _load(name: str) -> tuple[Int8Model, Golden]:
    resolved, path = resolve_model(name, "int8")
    model = load_model(resolved, path, "int8")
    assert isinstance(model, Int8Model)
    return model, load_golden(name)


def _op(name: str, kind: str) -> tuple[Int8Op, npt.NDArray[np.int64]]:
    """The first op of ``kind`` in a shipped model and its golden inputs (layer samples)."""
    model, g = _load(name)
    x: npt.NDArray[np.int64] = g.inputs_int8[g.layer_samples].astype(np.int64)
    for i, op in enumerate(model.ops):
        if op.kind == kind:
            if i:
                x = g.layer_outputs_int8[i - 1].values.astype(np.int64)
            return op, x
    raise AssertionError(f"{name} has no {kind}")


def _eval_all(op: Int8Op, xs: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    return np.stack([evaluate_op(op, x) for x in xs])


def test_shipped_models_are_there() -> None:
    assert set(MODELS) >= {"iris_anne8", "iris_anne6", "iris3", "mnist_cnn"}


# -- the goldens ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_every_op_equals_the_golden_layer_outputs(name: str) -> None:
    model, g = _load(name)
    assert len(g.layer_outputs_int8) == len(model.ops)
    outs = forward(model, g.inputs_int8[g.layer_samples], intermediates=True)
    assert len(outs) == len(model.ops)
    for op, got, want in zip(model.ops, outs, g.layer_outputs_int8, strict=True):
        assert got.dtype == np.int64
        assert got.shape == (len(g.layer_samples), *op.out_shape)
        np.testing.assert_array_equal(got, want.values.reshape(got.shape), err_msg=op.name)


@pytest.mark.parametrize("name", MODELS)
def test_op_by_op_on_one_sample_equals_the_goldens(name: str) -> None:
    model, g = _load(name)
    row = 0
    x: npt.NDArray[Any] = g.inputs_int8[g.layer_samples[row]]
    for op, want in zip(model.ops, g.layer_outputs_int8, strict=True):
        x = evaluate_op(op, x.reshape(-1))  # flat input is accepted too
        assert x.shape == op.out_shape
        np.testing.assert_array_equal(x, want.values[row], err_msg=op.name)


@pytest.mark.parametrize("name", MODELS)
def test_final_outputs_equal_the_goldens(name: str) -> None:
    model, g = _load(name)
    rows = g.split("test")
    if name.startswith("mnist"):
        rows = rows[:MNIST_ROWS]
    assert len(rows) > 0
    out = forward(model, g.inputs_int8[rows])
    assert out.shape == (len(rows), *model.output_shape)
    np.testing.assert_array_equal(out, g.outputs_int8_raw[rows].reshape(out.shape))


def test_forward_handles_empty_and_chunked_batches() -> None:
    model, g = _load("iris3")
    assert forward(model, g.inputs_int8[:0]).shape == (0, *model.output_shape)
    assert [a.shape for a in forward(model, g.inputs_int8[:0], intermediates=True)] == [
        (0, *op.out_shape) for op in model.ops
    ]
    # more rows than one internal batch: same as row by row
    x = np.concatenate([g.inputs_int8] * 2)
    np.testing.assert_array_equal(forward(model, x), np.concatenate([g.outputs_int8_raw] * 2))


def test_bad_inputs_are_refused() -> None:
    model, g = _load("iris3")
    with pytest.raises(ValueError, match=r"-128\.\.127"):
        forward(model, g.inputs_int8.astype(np.int64) + 200)
    with pytest.raises(ValueError, match="values"):
        evaluate_op(model.ops[0], np.zeros(5, np.int8))
    with pytest.raises(ValueError, match="integers"):
        evaluate_op(model.ops[0], np.zeros(4, np.float32))


# -- mutated ops: what the C would compute ---------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), [("iris3", "fully_connected"), ("mnist_cnn", "conv2d")])
def test_no_bias_equals_a_zero_bias(name: str, kind: str) -> None:
    op, x = _op(name, kind)
    assert op.bias is not None and np.any(op.bias != 0)
    none = _eval_all(replace(op, bias=None), x)
    zero = _eval_all(replace(op, bias=np.zeros_like(op.bias)), x)
    np.testing.assert_array_equal(none, zero)
    assert not np.array_equal(none, _eval_all(op, x))


def _fc_by_hand(op: Int8Op, x: npt.NDArray[Any]) -> list[int]:
    """One FULLY_CONNECTED sample with Python ints: exact sums, then C's int32 wrap."""
    assert op.weights is not None and op.multiplier is not None and op.shift is not None
    p = op.params
    out = []
    for o in range(op.weights.shape[0]):
        acc = sum(
            (int(v) + p["input_offset"]) * int(w) for v, w in zip(x, op.weights[o], strict=True)
        )
        acc += 0 if op.bias is None else int(op.bias[o])
        acc = (acc + 2**31) % 2**32 - 2**31
        y = int(multiply_by_quantized_multiplier(acc, int(op.multiplier[o]), int(op.shift[o])))
        out.append(min(max(y + p["output_offset"], p["act_min"]), p["act_max"]))
    return out


def test_an_overflowing_bias_wraps_like_int32() -> None:
    op, x = _op("iris3", "fully_connected")
    assert op.bias is not None
    # A bias at the int32 edge: the accumulation overflows and wraps to negative.
    acc_plain = _eval_all(replace(op, bias=np.zeros_like(op.bias)), x)
    edge = np.full_like(op.bias, INT32_MAX - 5)
    wrapped = _eval_all(replace(op, bias=edge), x)
    for xs, got in zip(x, wrapped, strict=True):
        assert got.tolist() == _fc_by_hand(replace(op, bias=edge), xs)
    assert not np.array_equal(wrapped, acc_plain)
    # The layout doctor's byte-order hypothesis: byte-swapped biases (huge values).
    swapped = replace(op, bias=op.bias.byteswap())
    for xs, got in zip(x, _eval_all(swapped, x), strict=True):
        assert got.tolist() == _fc_by_hand(swapped, xs)


def test_act_min_and_act_max_clamp() -> None:
    op, x = _op("mnist_cnn", "conv2d")
    free = _eval_all(op, x)
    assert free.min() == -128 and free.max() > 40
    clamped = _eval_all(replace(op, params={**op.params, "act_min": -20, "act_max": 40}), x)
    np.testing.assert_array_equal(clamped, np.clip(free, -20, 40))
    # act_min > act_max: the C clamp tests act_min first, so everything below it is act_min.
    crossed = _eval_all(replace(op, params={**op.params, "act_min": 10, "act_max": -10}), x)
    np.testing.assert_array_equal(crossed, np.where(free < 10, 10, -10))
    # A range beyond int8: (int8_t) keeps the low byte, so values above 127 wrap.
    narrow = _eval_all(replace(op, params={**op.params, "output_offset": 100}), x)
    wide = _eval_all(replace(op, params={**op.params, "output_offset": 100, "act_max": 300}), x)
    inside = narrow < 127
    np.testing.assert_array_equal(wide[inside], narrow[inside])
    assert np.any(wide[~inside] < 0)


@pytest.mark.parametrize(("name", "kind"), [("mnist_cnn", "conv2d"), ("iris3", "fully_connected")])
def test_reversed_multipliers_change_only_the_expected_channels(name: str, kind: str) -> None:
    op, x = _op(name, kind)
    assert op.multiplier is not None and op.shift is not None
    m, s = op.multiplier[::-1].copy(), op.shift[::-1].copy()
    got = _eval_all(replace(op, multiplier=m, shift=s), x)
    base = _eval_all(op, x)
    same = (m == op.multiplier) & (s == op.shift)
    np.testing.assert_array_equal(got[..., same], base[..., same])
    changed = 0
    for c in range(len(m)):
        # channel c is requantized with channel (n-1-c)'s multiplier and shift, nothing else
        alone = replace(op, multiplier=np.full_like(m, m[c]), shift=np.full_like(s, s[c]))
        np.testing.assert_array_equal(got[..., c], _eval_all(alone, x)[..., c])
        changed += int(not np.array_equal(got[..., c], base[..., c]))
    assert changed > 0


def test_wrong_activation_kinds() -> None:
    op, x = _op("iris_anne8", "tanh")
    # tanh <-> logistic share their parameters; "identity" copies
    as_logistic = _eval_all(replace(op, kind="logistic"), x)
    assert not np.array_equal(as_logistic, _eval_all(op, x))
    np.testing.assert_array_equal(_eval_all(replace(op, kind="identity"), x), x)


def test_unknown_kind_raises() -> None:
    op, x = _op("iris3", "fully_connected")
    assert "fully_connected" in KINDS
    with pytest.raises(FirmwareError, match="unknown kind 'gelu'"):
        evaluate_op(replace(op, kind="gelu"), x[0])
    model, g = _load("iris3")
    bad = replace(model, ops=(*model.ops[:-1], replace(model.ops[-1], kind="hard_swish")))
    with pytest.raises(FirmwareError):
        forward(bad, g.inputs_int8[:2])


def test_ops_without_a_defined_c_result_raise() -> None:
    op, x = _op("iris3", "fully_connected")
    assert op.bias is not None and op.shift is not None
    with pytest.raises(FirmwareError, match="bias"):
        evaluate_op(replace(op, bias=op.bias[:-1]), x[0])
    with pytest.raises(FirmwareError, match="shift"):
        evaluate_op(replace(op, shift=op.shift + 40), x[0])
    sm, y = _op("iris3", "softmax")
    with pytest.raises(FirmwareError, match="depth"):
        evaluate_op(replace(sm, params={**sm.params, "depth": 2}), y[0])
    tanh, z = _op("iris3", "tanh")
    with pytest.raises(FirmwareError, match="lacks parameter"):
        evaluate_op(replace(tanh, params={}), z[0])


# -- against the C kernels compiled for the host ------------------------------------------


def _struct(*names: str) -> type[ctypes.Structure]:
    return type("S", (ctypes.Structure,), {"_fields_": [(n, ctypes.c_int32) for n in names]})


_TRANSCENDENTAL = _struct(
    "input_zero_point", "input_range_radius", "input_multiplier", "input_left_shift"
)
_PARAM_STRUCTS: dict[str, type[ctypes.Structure]] = {
    "logistic": _TRANSCENDENTAL,
    "tanh": _TRANSCENDENTAL,
    "leaky_relu": _struct(
        "input_zero_point",
        "output_zero_point",
        "multiplier_identity",
        "shift_identity",
        "multiplier_alpha",
        "shift_alpha",
    ),
    "softmax": _struct("input_multiplier", "input_left_shift", "diff_min"),
    "requantize": _struct("input_zero_point", "output_zero_point", "multiplier", "shift"),
}


def _p(a: npt.NDArray[Any]) -> P:
    return P(int(a.ctypes.data))


def _c_run(lib: ctypes.CDLL, op: Int8Op, x: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Run ``op`` through nn_int8.c with the arguments codegen passes it."""
    xin = np.ascontiguousarray(x, dtype=np.int8).reshape(-1)
    out = np.zeros(numel(op.out_shape), np.int8)
    p = op.params
    n = ctypes.c_uint32(out.size)
    geom = Geom()
    if op.geometry is not None:
        g = op.geometry
        geom = Geom(*op.in_shape, *op.out_shape, g.k_h, g.k_w, g.stride_h, g.stride_w,
                     g.pad_top, g.pad_left)  # fmt: skip
    if op.kind in ("fully_connected", "conv2d"):
        assert op.weights is not None and op.multiplier is not None and op.shift is not None
        w = np.ascontiguousarray(op.weights, dtype=np.int8).reshape(-1)
        b = None if op.bias is None else np.ascontiguousarray(op.bias, dtype=np.int32)
        m = np.ascontiguousarray(op.multiplier, dtype=np.int32)
        s = np.ascontiguousarray(op.shift, dtype=np.int32)
        q = Quant(p["input_offset"], p["output_offset"], p["act_min"], p["act_max"], _p(m), _p(s))
        bias = None if b is None else _p(b)
        if op.kind == "fully_connected":
            n_in = ctypes.c_uint32(op.weights.shape[1])
            lib.nn_int8_fully_connected(_p(xin), _p(out), _p(w), bias, n_in, n, ctypes.byref(q))
        else:
            lib.nn_int8_conv2d(_p(xin), _p(out), _p(w), bias, ctypes.byref(geom), ctypes.byref(q))
    elif op.kind in ("maxpool", "avgpool"):
        getattr(lib, f"nn_int8_{op.kind}")(
            _p(xin), _p(out), ctypes.byref(geom), ctypes.c_int32(p["act_min"]),
            ctypes.c_int32(p["act_max"]),
        )  # fmt: skip
    else:
        cls = _PARAM_STRUCTS[op.kind]
        st = cls(*(p[field[0]] for field in cls._fields_))
        depth = [ctypes.c_uint32(p["depth"])] if op.kind == "softmax" else []
        getattr(lib, f"nn_int8_{op.kind}")(_p(xin), _p(out), n, *depth, ctypes.byref(st))
    return out.astype(np.int64).reshape(op.out_shape)


def _i32(rng: np.random.Generator, size: int | None = None) -> Any:
    """int32 values from everywhere: small, large and the edges."""
    pool = np.asarray([INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX])
    v = rng.integers(INT32_MIN, INT32_MAX, size=size, endpoint=True)
    small = rng.integers(-70000, 70000, size=size)
    edge = pool[rng.integers(0, len(pool), size=size)]
    pick = rng.integers(0, 3, size=size)
    return np.where(pick == 0, v, np.where(pick == 1, small, edge))


def _quant_params(rng: np.random.Generator) -> dict[str, int]:
    lo, hi = sorted(rng.integers(-200, 200, 2).tolist())
    if rng.random() < 0.25:
        lo, hi = hi, lo  # a crossed range
    return {
        "input_offset": int(rng.integers(-1000, 1000)),  # within int16 with x: every C path
        "output_offset": int(rng.integers(-300, 300)),
        "act_min": int(lo),
        "act_max": int(hi),
    }


def _random_op(rng: np.random.Generator, kind: str) -> Int8Op:
    params: dict[str, Any]
    if kind in ("fully_connected", "conv2d"):
        params = _quant_params(rng)
        c_out = int(rng.integers(1, 7))
        geometry = None
        if kind == "fully_connected":
            n_in = int(rng.integers(1, 40))
            in_shape: tuple[int, ...] = (n_in,)
            out_shape: tuple[int, ...] = (c_out,)
            w_shape: tuple[int, ...] = (c_out, n_in)
        else:
            h, w, c = (int(v) for v in rng.integers(1, 7, 3))
            k_h, k_w = (int(v) for v in rng.integers(1, 4, 2))
            s = int(rng.integers(1, 3))
            pad = "same" if rng.random() < 0.5 or k_h > h or k_w > w else "valid"
            oh, ow, pt, pl = same_or_valid(pad, h, w, k_h, k_w, s, s)
            geometry = Geometry(k_h, k_w, s, s, pt, pl)
            in_shape, out_shape, w_shape = (h, w, c), (oh, ow, c_out), (c_out, k_h, k_w, c)
        bias = None if rng.random() < 0.2 else _i32(rng, c_out).astype(np.int32)
        return Int8Op(
            f"random_{kind}",
            kind,
            in_shape,
            out_shape,
            params,
            weights=rng.integers(-128, 128, w_shape).astype(np.int8),
            bias=bias,
            multiplier=_i32(rng, c_out).astype(np.int32),
            shift=rng.integers(-31, 32, c_out).astype(np.int32),
            geometry=geometry,
        )
    if kind in ("maxpool", "avgpool"):
        h, w, c = (int(v) for v in rng.integers(1, 7, 3))
        k_h, k_w = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        s = int(rng.integers(1, 3))
        pad = "same" if rng.random() < 0.5 else "valid"
        oh, ow, pt, pl = same_or_valid(pad, h, w, k_h, k_w, s, s)
        lo, hi = sorted(rng.integers(-140, 140, 2).tolist())
        return Int8Op(
            f"random_{kind}",
            kind,
            (h, w, c),
            (oh, ow, c),
            {"act_min": lo, "act_max": hi},
            geometry=Geometry(k_h, k_w, s, s, pt, pl),
        )
    n = int(rng.integers(1, 30))
    shape: tuple[int, ...] = (n,)
    if kind in ("logistic", "tanh"):
        params = {
            "input_zero_point": int(rng.integers(-300, 300)),
            "input_range_radius": int(rng.integers(-10, 3000)),
            "input_multiplier": int(_i32(rng)),
            "input_left_shift": int(rng.integers(-31, 32)),
        }
    elif kind == "leaky_relu":
        params = {
            "input_zero_point": int(rng.integers(-300, 300)),
            "output_zero_point": int(rng.integers(-300, 300)),
            "multiplier_identity": int(_i32(rng)),
            "shift_identity": int(rng.integers(-31, 32)),
            "multiplier_alpha": int(_i32(rng)),
            "shift_alpha": int(rng.integers(-31, 32)),
        }
    elif kind == "softmax":
        depth = int(rng.integers(1, 8))
        shape = (int(rng.integers(1, 4)), depth)
        params = {
            "input_multiplier": int(rng.integers(1, INT32_MAX)),
            "input_left_shift": int(rng.integers(0, 24)),  # diff * 2**shift stays in int32
            "diff_min": int(rng.integers(-300, 1)),
            "depth": depth,
        }
    else:
        params = {
            "input_zero_point": int(rng.integers(-300, 300)),
            "output_zero_point": int(rng.integers(-300, 300)),
            "multiplier": int(_i32(rng)),
            "shift": int(rng.integers(-31, 32)),
        }
    return Int8Op(f"random_{kind}", kind, shape, shape, params)


C_KINDS = tuple(k for k in KINDS if k not in ("reshape", "identity"))


@pytest.mark.parametrize("kind", C_KINDS)
def test_random_ops_equal_the_host_c_kernels(host_nn: ctypes.CDLL, kind: str) -> None:
    rng = np.random.default_rng(C_KINDS.index(kind))
    for trial in range(60):
        op = _random_op(rng, kind)
        for _ in range(3):
            x = rng.integers(-128, 128, op.in_shape).astype(np.int8)
            np.testing.assert_array_equal(
                evaluate_op(op, x), _c_run(host_nn, op, x), err_msg=f"{kind} trial {trial}: {op}"
            )


@pytest.mark.parametrize("name", MODELS)
def test_mutated_model_ops_equal_the_host_c_kernels(host_nn: ctypes.CDLL, name: str) -> None:
    """Each op of a shipped model, and its layout-doctor variants, as the C computes them."""
    model, g = _load(name)
    xs = forward(model, g.inputs_int8[g.layer_samples[:2]], intermediates=True)
    inputs: list[npt.NDArray[Any]] = [g.inputs_int8[g.layer_samples[:2]], *xs[:-1]]
    for op, x in zip(model.ops, inputs, strict=True):
        variants = [op]
        if op.weights is not None:
            assert op.multiplier is not None and op.shift is not None
            variants += [
                replace(op, bias=None),
                replace(op, multiplier=op.multiplier[::-1].copy(), shift=op.shift[::-1].copy()),
                replace(op, multiplier=np.roll(op.multiplier, 1), shift=np.roll(op.shift, 1)),
                replace(op, params={**op.params, "act_min": -128, "act_max": 127}),
                replace(op, params={**op.params, "act_min": max(-128, op.params["output_offset"])}),
            ]
            if op.bias is not None:
                variants.append(replace(op, bias=op.bias.byteswap()))
                twice = (op.bias.astype(np.int64) * 2 + 2**31) % 2**32 - 2**31
                variants.append(replace(op, bias=twice.astype(np.int32)))
        if op.kind in ("logistic", "tanh"):
            variants.append(replace(op, kind="tanh" if op.kind == "logistic" else "logistic"))
        for v in variants:
            if v.kind == "reshape":
                continue
            for sample in x:
                np.testing.assert_array_equal(
                    evaluate_op(v, sample), _c_run(host_nn, v, sample), err_msg=v.name
                )
