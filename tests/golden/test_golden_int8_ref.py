"""The NumPy int8 reference: primitives against exact integer maths, models against goldens.

The goldens' int8 intermediates were recorded from tflite-micro, so equality
here is equality with tflite-micro without needing it installed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from golden_support import MODELS
from hypothesis import given
from hypothesis import strategies as st

from simcore.golden import int8_ref, load_golden
from simcore.golden.tflite_model import read_tflite

int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)


def _exact_srdhm(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    return abs(v) // (1 << 31) * (1 if v >= 0 else -1)  # C truncation


def _exact_rdbpot(x: int, e: int) -> int:
    # round half away from zero of x / 2**e, in exact rationals
    q, r = divmod(abs(x), 1 << e)
    if 2 * r >= (1 << e) and e > 0:
        q += 1
    return q if x >= 0 else -q


@given(int32s, int32s)
def test_srdhm_matches_exact_arithmetic(a: int, b: int) -> None:
    assert int(int8_ref.srdhm(np.int64(a), np.int64(b))) == _exact_srdhm(a, b)


@given(int32s, st.integers(min_value=0, max_value=31))
def test_rounding_divide_by_pot_rounds_half_away_from_zero(x: int, e: int) -> None:
    assert int(int8_ref.rounding_divide_by_pot(np.int64(x), e)) == _exact_rdbpot(x, e)


def test_srdhm_known_values() -> None:
    assert int(int8_ref.srdhm(np.int64(-(2**31)), np.int64(-(2**31)))) == 2**31 - 1
    assert int(int8_ref.srdhm(np.int64(1 << 30), np.int64(1 << 30))) == 1 << 29
    assert int(int8_ref.srdhm(np.int64(-3), np.int64(1 << 30))) == -1  # -1.5 rounds away


@given(st.floats(min_value=1e-9, max_value=1e3, allow_nan=False))
def test_quantize_multiplier_represents_the_real_multiplier(real: float) -> None:
    m, shift = int8_ref.quantize_multiplier(real)
    if shift == 0 and m == 0:
        assert real < 2.0**-31
        return
    assert 2**30 <= m < 2**31
    assert math.isclose(m * 2.0 ** (shift - 31), real, rel_tol=2.0**-30)


def test_quantize_multiplier_examples() -> None:
    assert int8_ref.quantize_multiplier(0.5) == (1 << 30, 0)
    assert int8_ref.quantize_multiplier(1.0) == (1 << 30, 1)
    assert int8_ref.quantize_multiplier(0.0) == (0, 0)
    assert int8_ref.quantize_multiplier(1e-12) == (0, 0)  # shift below -31


def test_fixed_point_functions_approximate_the_real_ones() -> None:
    # Q4.27 inputs over [-8, 8): gemmlowp's tanh/logistic within 1e-6 of the truth
    x = np.linspace(-7.9, 7.9, 1001)
    raw = np.round(x * 2**27).astype(np.int64)
    t = int8_ref.fx_tanh(raw, 4) / 2**31
    s = int8_ref.fx_logistic(raw, 4) / 2**31
    assert np.max(np.abs(t - np.tanh(raw / 2**27))) < 1e-6
    assert np.max(np.abs(s - 1 / (1 + np.exp(-raw / 2**27)))) < 1e-6
    e = int8_ref.exp_on_negative_values(-np.abs(raw), 4) / 2**31
    assert np.max(np.abs(e - np.exp(-np.abs(raw) / 2**27))) < 1e-6


@pytest.mark.parametrize("name", MODELS)
def test_reference_equals_tflm_on_every_layer_of_the_layer_samples(name: str) -> None:
    g = load_golden(name)
    model = read_tflite(g.tflite_int8_path)
    assert [lo.kind for lo in g.layer_outputs_int8] == [op.opcode for op in model.operators]
    for k, row in enumerate(g.layer_samples):
        results = int8_ref.run_model(model, g.inputs_int8[row])
        for res, expected in zip(results, g.layer_outputs_int8, strict=True):
            assert np.array_equal(res.values.reshape(expected.shape), expected.values[k]), (
                f"{name} sample {row} op {res.op_index} {res.opcode} differs from tflite-micro"
            )


@pytest.mark.parametrize("name", ["iris_anne8", "iris_anne6", "iris3"])
def test_reference_equals_int8_goldens_on_all_iris_samples(name: str) -> None:
    g = load_golden(name)
    out = int8_ref.run_outputs(read_tflite(g.tflite_int8_path), g.inputs_int8)
    assert np.array_equal(out, g.outputs_int8_raw.reshape(len(out), -1))


def _mnist_subset(count: int | None) -> None:
    g = load_golden("mnist_cnn")
    rows = np.arange(g.num_samples) if count is None else np.linspace(
        0, g.num_samples - 1, count).astype(np.int64)  # fmt: skip
    out = int8_ref.run_outputs(read_tflite(g.tflite_int8_path), g.inputs_int8[rows])
    bad = np.flatnonzero(np.any(out != g.outputs_int8_raw[rows], axis=1))
    assert bad.size == 0, f"int8 reference differs on MNIST rows {rows[bad][:10].tolist()}"


def test_reference_equals_int8_goldens_on_mnist_subset() -> None:
    _mnist_subset(100)


@pytest.mark.slow
def test_reference_equals_int8_goldens_on_all_mnist() -> None:
    _mnist_subset(None)


def test_layer_comparison_catches_a_wrong_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard against a tautology: per-tensor instead of per-channel conv scales must differ."""
    g = load_golden("mnist_cnn")
    model = read_tflite(g.tflite_int8_path)
    conv = next(op for op in model.operators if op.opcode == "CONV_2D")
    weights = model.tensors[conv.inputs[1]]
    assert weights.quant is not None and weights.quant.per_channel
    first = g.layer_outputs_int8[0].values[0]
    good = int8_ref.run_model(model, g.inputs_int8[g.layer_samples[0]])[0].values
    assert np.array_equal(good.reshape(first.shape), first)

    real = int8_ref._per_channel

    def per_tensor(in_scale: float, filter_t: object, out_scale: float, channels: int) -> object:
        m, s = real(in_scale, filter_t, out_scale, channels)  # type: ignore[arg-type]
        return np.full_like(m, m[0]), np.full_like(s, s[0])

    monkeypatch.setattr(int8_ref, "_per_channel", per_tensor)
    bad = int8_ref.run_model(model, g.inputs_int8[g.layer_samples[0]])[0].values
    assert not np.array_equal(bad.reshape(first.shape), first)
