"""The runtime's C kernels compiled for the host, checked against NumPy (no emulator, fast).

The same C source runs on the boards; here it runs natively through ctypes.
The int8 DSP path is ARM-only and is checked against the portable path in
the emulated tests.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fw_support import Geom, P, Quant, ptr

from simcore.firmware import q16_ref
from simcore.firmware.ir import Geometry, Layer, same_or_valid
from simcore.firmware.quant import quantize_multiplier
from simcore.firmware.reference import layer_float
from simcore.golden.int8_ref import multiply_by_quantized_multiplier as mbqm

ACT = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "leaky_relu": 4, "softmax": 5}


def geom(layer: Layer) -> Geom:
    g = layer.geometry
    assert g is not None
    return Geom(
        *layer.in_shape,
        *layer.out_shape,
        g.k_h,
        g.k_w,
        g.stride_h,
        g.stride_w,
        g.pad_top,
        g.pad_left,
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# -- q16 ----------------------------------------------------------------------------------


def q16_act(lib: ctypes.CDLL, x: npt.NDArray[Any], act: str, depth: int, alpha: int = 0) -> Any:
    buf = np.ascontiguousarray(x, dtype=np.int32).copy()
    lib.nn_q16_activation(
        P(ptr(buf)),
        ctypes.c_uint32(buf.size),
        ctypes.c_uint32(depth),
        ctypes.c_int(ACT[act]),
        ctypes.c_int32(alpha),
    )
    return buf


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_q16_elementwise_matches_reference(host_nn: ctypes.CDLL, rng: Any, act: str) -> None:
    x = np.concatenate(
        [
            rng.integers(-(20 << 16), 20 << 16, 50_000),
            [0, 1, -1, 8 << 16, -(8 << 16), (8 << 16) - 1, -(1 << 31) + 1, (1 << 31) - 1],
        ]
    ).astype(np.int32)
    alpha = int(q16_ref.to_q16(0.2))
    got = q16_act(host_nn, x, act, x.size, alpha)
    np.testing.assert_array_equal(got, q16_ref.activation(x, act, alpha))


def test_q16_sigmoid_and_tanh_are_close_to_float() -> None:
    x = np.linspace(-12, 12, 20_001)
    q = q16_ref.to_q16(x)
    assert np.abs(q16_ref.from_q16(q16_ref.sigmoid(q)) - 1 / (1 + np.exp(-x))).max() < 4e-4
    assert np.abs(q16_ref.from_q16(q16_ref.tanh(q)) - np.tanh(x)).max() < 8e-4


def test_q16_softmax_matches_reference(host_nn: ctypes.CDLL, rng: Any) -> None:
    x = rng.integers(-(30 << 16), 30 << 16, (200, 7)).astype(np.int32)
    got = q16_act(host_nn, x.reshape(-1), "softmax", 7).reshape(x.shape)
    np.testing.assert_array_equal(got, q16_ref.softmax(x))
    ref = np.exp(x / 65536.0 - (x / 65536.0).max(1, keepdims=True))
    assert np.abs(got / 65536.0 - ref / ref.sum(1, keepdims=True)).max() < 1e-3


def _conv_layer(
    rng: Any, in_shape: tuple[int, int, int], c_out: int, k: int, s: int, padding: str, act: str
) -> Layer:
    oh, ow, pt, pl = same_or_valid(padding, in_shape[0], in_shape[1], k, k, s, s)
    w = (rng.normal(size=(c_out, k, k, in_shape[2])) * 0.5).astype(np.float32)
    b = (rng.normal(size=c_out) * 0.1).astype(np.float32)
    return Layer(
        "c", "conv2d", in_shape, (oh, ow, c_out), act, 0.1, w, b, Geometry(k, k, s, s, pt, pl)
    )


@pytest.mark.parametrize("padding,stride", [("valid", 1), ("same", 1), ("same", 2), ("valid", 2)])
def test_conv2d_f32_and_q16(host_nn: ctypes.CDLL, rng: Any, padding: str, stride: int) -> None:
    layer = _conv_layer(rng, (7, 6, 3), 4, 3, stride, padding, "relu")
    x = rng.normal(size=layer.in_shape).astype(np.float32)
    g = geom(layer)
    out = np.zeros(layer.out_shape, np.float32)
    assert layer.weights is not None and layer.bias is not None
    host_nn.nn_f32_conv2d(
        P(ptr(x)),
        P(ptr(out)),
        P(ptr(layer.weights)),
        P(ptr(layer.bias)),
        ctypes.byref(g),
        ACT["relu"],
        ctypes.c_float(0.0),
    )
    np.testing.assert_allclose(out, layer_float(layer, x.astype(np.float64)), atol=1e-5)

    xq = q16_ref.to_q16(x)
    wq, bq = q16_ref.to_q16(layer.weights), q16_ref.to_q16(layer.bias)
    outq = np.zeros(layer.out_shape, np.int32)
    host_nn.nn_q16_conv2d(
        P(ptr(xq)), P(ptr(outq)), P(ptr(wq)), P(ptr(bq)), ctypes.byref(g), ACT["relu"], 0
    )
    np.testing.assert_array_equal(outq, q16_ref.layer_q16(layer, xq.astype(np.int64)))


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling_f32_and_q16(host_nn: ctypes.CDLL, rng: Any, kind: str, padding: str) -> None:
    oh, ow, pt, pl = same_or_valid(padding, 5, 7, 2, 3, 2, 2)
    layer = Layer("p", kind, (5, 7, 3), (oh, ow, 3), geometry=Geometry(2, 3, 2, 2, pt, pl))
    x = rng.normal(size=layer.in_shape).astype(np.float32)
    g = geom(layer)
    out = np.zeros(layer.out_shape, np.float32)
    getattr(host_nn, f"nn_f32_{kind}")(P(ptr(x)), P(ptr(out)), ctypes.byref(g))
    np.testing.assert_allclose(out, layer_float(layer, x.astype(np.float64)), atol=1e-6)
    xq = q16_ref.to_q16(x)
    outq = np.zeros(layer.out_shape, np.int32)
    getattr(host_nn, f"nn_q16_{kind}")(P(ptr(xq)), P(ptr(outq)), ctypes.byref(g))
    np.testing.assert_array_equal(outq, q16_ref.layer_q16(layer, xq.astype(np.int64)))


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "softmax", "leaky_relu", "linear"])
def test_dense_f32_and_q16(host_nn: ctypes.CDLL, rng: Any, act: str) -> None:
    w = rng.normal(size=(5, 9)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    layer = Layer("d", "dense", (9,), (5,), act, 0.2, w, b)
    x = rng.normal(size=9).astype(np.float32)
    out = np.zeros(5, np.float32)
    host_nn.nn_f32_dense(
        P(ptr(x)), P(ptr(out)), P(ptr(w)), P(ptr(b)), 9, 5, ACT[act], ctypes.c_float(0.2)
    )
    np.testing.assert_allclose(out, layer_float(layer, x.astype(np.float64)), atol=1e-5)
    xq, wq, bq = q16_ref.to_q16(x), q16_ref.to_q16(w), q16_ref.to_q16(b)
    outq = np.zeros(5, np.int32)
    host_nn.nn_q16_dense(
        P(ptr(xq)), P(ptr(outq)), P(ptr(wq)), P(ptr(bq)), 9, 5, ACT[act], int(q16_ref.to_q16(0.2))
    )
    np.testing.assert_array_equal(outq, q16_ref.layer_q16(layer, xq.astype(np.int64)))


# -- int8 ---------------------------------------------------------------------------------


def test_int8_multiply_by_quantized_multiplier(host_nn: ctypes.CDLL, rng: Any) -> None:
    f = host_nn.nn_int8_multiply_by_quantized_multiplier
    f.restype = ctypes.c_int32
    xs = [*rng.integers(-(1 << 24), 1 << 24, 300), 0, 1, -1, (1 << 31) - 1, -(1 << 31)]
    for real in (0.0003, 0.07, 0.5, 0.9999999, 1.7, 3.2e-7):
        m, s = quantize_multiplier(real)
        for x in xs:
            x = int(x)
            if s > 0 and abs(x) >= 1 << (31 - s):
                continue
            assert f(ctypes.c_int32(x), ctypes.c_int32(m), ctypes.c_int32(s)) == int(
                mbqm(x, m, s)
            ), (x, real)


def test_quantize_multiplier_matches_tflite_examples() -> None:
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    m, s = quantize_multiplier(0.1)
    assert s == -3 and abs(m / (1 << 31) * 2.0**s - 0.1) < 1e-9


def _int8_quant(rng: Any, channels: int) -> tuple[Quant, Any, Any]:
    reals = rng.uniform(1e-4, 2e-2, channels)
    ms, ss = zip(*(quantize_multiplier(float(r)) for r in reals), strict=True)
    mult = np.asarray(ms, dtype=np.int32)
    shift = np.asarray(ss, dtype=np.int32)
    q = Quant(7, -5, -128, 127, P(ptr(mult)), P(ptr(shift)))
    return q, mult, shift


def test_int8_fully_connected_matches_numpy(host_nn: ctypes.CDLL, rng: Any) -> None:
    x = rng.integers(-128, 128, 37, dtype=np.int8)
    w = rng.integers(-127, 128, (6, 37), dtype=np.int8)
    b = rng.integers(-5000, 5000, 6, dtype=np.int32)
    q, mult, shift = _int8_quant(rng, 6)
    out = np.zeros(6, np.int8)
    host_nn.nn_int8_fully_connected(
        P(ptr(x)), P(ptr(out)), P(ptr(w)), P(ptr(b)), 37, 6, ctypes.byref(q)
    )
    acc = (w.astype(np.int64) @ (x.astype(np.int64) + 7)) + b
    np.testing.assert_array_equal(out, np.clip(mbqm(acc, mult, shift) - 5, -128, 127))


@pytest.mark.parametrize("padding,stride", [("valid", 1), ("same", 1), ("same", 2)])
def test_int8_conv2d_matches_numpy(
    host_nn: ctypes.CDLL, rng: Any, padding: str, stride: int
) -> None:
    from simcore.firmware.reference import windows

    oh, ow, pt, pl = same_or_valid(padding, 6, 5, 3, 3, stride, stride)
    gm = Geometry(3, 3, stride, stride, pt, pl)
    x = rng.integers(-128, 128, (6, 5, 3), dtype=np.int8)
    w = rng.integers(-127, 128, (4, 3, 3, 3), dtype=np.int8)
    b = rng.integers(-5000, 5000, 4, dtype=np.int32)
    q, mult, shift = _int8_quant(rng, 4)
    out = np.zeros((oh, ow, 4), np.int8)
    g = Geom(6, 5, 3, oh, ow, 4, 3, 3, stride, stride, pt, pl)
    host_nn.nn_int8_conv2d(
        P(ptr(x)), P(ptr(out)), P(ptr(w)), P(ptr(b)), ctypes.byref(g), ctypes.byref(q)
    )
    # Padding contributes (x + offset) = 0: pad with -offset.
    win, _ = windows(x.astype(np.int64), gm, oh, ow, fill=-7)
    acc = np.einsum("yxhwc,ohwc->yxo", win + 7, w.astype(np.int64)) + b
    np.testing.assert_array_equal(out, np.clip(mbqm(acc, mult, shift) - 5, -128, 127))


@pytest.mark.parametrize("op", ["logistic", "tanh"])
@pytest.mark.parametrize("scale", [0.02, 0.1, 0.0625])
def test_int8_logistic_tanh_close_to_float(host_nn: ctypes.CDLL, op: str, scale: float) -> None:
    from simcore.firmware.quant import transcendental_params

    class T(ctypes.Structure):
        _fields_ = [(n, ctypes.c_int32) for n in ("zp", "radius", "mult", "shift")]

    p = transcendental_params(scale, 3)
    t = T(
        p["input_zero_point"], p["input_range_radius"], p["input_multiplier"], p["input_left_shift"]
    )
    x = np.arange(-128, 128, dtype=np.int8)
    out = np.zeros(256, np.int8)
    getattr(host_nn, f"nn_int8_{op}")(P(ptr(x)), P(ptr(out)), 256, ctypes.byref(t))
    real = (x.astype(np.float64) - 3) * scale
    if op == "logistic":
        expect = np.clip(np.round(1 / (1 + np.exp(-real)) * 256) - 128, -128, 127)
    else:
        expect = np.clip(np.round(np.tanh(real) * 128), -128, 127)
    assert np.abs(out.astype(int) - expect).max() <= 1
