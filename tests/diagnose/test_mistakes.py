"""Mistake transformations and the per-layer reference, without a toolchain."""

from __future__ import annotations

import numpy as np
import pytest

from simcore.diagnose import mistakes as mk
from simcore.diagnose.findings import agreement
from simcore.diagnose.reference import forward, reference_for
from simcore.errors import UsageError
from simcore.firmware import q16_ref
from simcore.firmware.build import load_model, resolve_model, shipped_models
from simcore.firmware.consts import encode, from_bytes, to_bytes
from simcore.firmware.ir import FloatModel, Int8Model
from simcore.golden.store import load_golden


def _load(model: str, fmt: str) -> tuple[list[mk.AnyLayer], list]:  # type: ignore[type-arg]
    name, path = resolve_model(model, fmt)
    ir = load_model(name, path, fmt)
    chain: list[mk.AnyLayer] = list(ir.ops if isinstance(ir, Int8Model) else ir.layers)
    return chain, encode(ir, fmt)


def test_every_variant_has_a_description() -> None:
    for model in shipped_models():
        for fmt in ("f32", "q16", "int8"):
            chain, _ = _load(model, fmt)
            for i in range(len(chain)):
                for m in mk.candidates(fmt, chain, i):
                    assert m.describe() and m.kind in mk.KINDS


def test_transposed_dense_is_the_keras_kernel_order() -> None:
    chain, consts = _load("iris3", "f32")
    _, lc = mk.apply(mk.Mistake("transpose-dense", "transposed", 0), "f32", chain, consts)
    w = consts[0].weights
    assert w is not None and lc.weights is not None
    # The firmware reads [out][in]; the stored bytes are the Keras kernel [in][out].
    assert lc.weights.shape == w.shape
    assert np.array_equal(lc.weights.reshape(-1), w.T.reshape(-1))


def test_conv_layouts_are_the_named_storage_orders() -> None:
    chain, consts = _load("mnist_cnn", "f32")
    w = consts[2].weights  # conv2: OHWI (16, 3, 3, 8)
    assert w is not None
    for variant, order in (("hwio", (1, 2, 3, 0)), ("oihw", (0, 3, 1, 2))):
        _, lc = mk.apply(mk.Mistake("conv-layout", variant, 2), "f32", chain, consts)
        assert lc.weights is not None
        assert np.array_equal(lc.weights.reshape(-1), w.transpose(order).reshape(-1))
    # conv1 has one input channel: OIHW and OHWI are the same bytes, so no change.
    assert not mk.changes_layer(mk.Mistake("conv-layout", "oihw", 0), "f32", chain, consts)


def test_flatten_variants_are_inverse_permutations() -> None:
    chain, consts = _load("mnist_cnn", "int8")
    w = consts[5].weights
    assert w is not None
    a = mk.apply(mk.Mistake("flatten-nchw", "weights-chw", 5), "int8", chain, consts)[1]
    assert a.weights is not None
    # Column c*H*W + h*W + w (C,H,W order) holds the model's column for (h, w, c).
    h, wd, c = 5, 5, 16
    hwc = np.arange(h * wd * c).reshape(h, wd, c)
    assert np.array_equal(a.weights[:, 3 * h * wd + 1 * wd + 2], w[:, hwc[1, 2, 3]])
    consts2 = list(consts)
    consts2[5] = a
    back = mk.apply(mk.Mistake("flatten-nchw", "activations-chw", 5), "int8", chain, consts2)[1]
    assert back.weights is not None and np.array_equal(back.weights, w)


def test_single_channel_scales_cannot_be_reversed() -> None:
    chain, consts = _load("iris_anne8", "int8")
    assert mk.variants("scales-reversed", "int8", chain, 5) == []  # one output unit
    m = mk.injection("scales-reversed", "int8", chain, consts)
    assert m.layer == 0 and m.variant == "reversed"


def test_input_fixups_match_their_recomputation() -> None:
    x = np.array([-128, -1, 0, 1, 127], dtype=np.int64)
    got = mk.apply_input(mk.Mistake("input-scale", "uint8", 0), "int8", x)
    assert got.tolist() == ((x.astype(np.int8).view(np.uint8) ^ 0x80).view(np.int8)).tolist()
    q = np.array([-70000, -1, 0, 65536, 100000], dtype=np.int64)
    assert mk.apply_input(mk.Mistake("input-scale", "div255", 0), "q16", q).tolist() == [
        -275,
        -1,
        0,
        257,
        392,
    ]
    assert mk.input_fixup(None, "f32") is None
    assert mk.input_fixup(mk.Mistake("input-scale", "x255", 0), "f32") == "x[i] *= 255.0f;"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bogus", "cannot read injection"),
        ("no-bias:x", "is not a number"),
        ("no-bias:9", "layers 0..1"),
        ("conv-layout", "needs a Conv2D layer"),
        ("no-bias:0:thrice", "variants there: missing, twice"),
    ],
)
def test_injection_refusals(spec: str, message: str) -> None:
    chain, consts = _load("iris3", "f32")
    with pytest.raises(UsageError) as err:
        mk.injection(spec, "f32", chain, consts)
    assert message in str(err.value)


def test_byte_order_round_trips_through_the_elf_encoding() -> None:
    chain, consts = _load("iris3", "q16")
    _, lc = mk.apply(mk.Mistake("byte-order", "all", 0), "q16", chain, consts)
    w = consts[0].weights
    assert w is not None and lc.weights is not None
    stored = to_bytes("q16", "weights", lc.weights)
    assert stored == np.asarray(w, dtype=">i4").tobytes()
    assert np.array_equal(from_bytes("q16", "weights", stored), lc.weights.reshape(-1))


@pytest.mark.parametrize("model", ["iris_anne8", "iris3", "mnist_cnn"])
def test_reference_chain_equals_the_golden_per_layer_outputs(model: str) -> None:
    golden = load_golden(model)
    for fmt in ("f32", "int8"):
        name, path = resolve_model(model, fmt)
        ir = load_model(name, path, fmt)
        ref = reference_for(ir, fmt)
        chain = list(ir.ops if isinstance(ir, Int8Model) else ir.layers)
        mine = forward(fmt, chain, encode(ir, fmt), ref.inputs)
        assert ref.description.startswith("golden")
        for got, want in zip(mine, ref.layers, strict=True):
            assert agreement(fmt, got, want).mismatched == 0
    name, path = resolve_model(model, "q16")
    ir = load_model(name, path, "q16")
    assert isinstance(ir, FloatModel)
    x = q16_ref.to_q16(golden.inputs_float[golden.layer_samples]).astype(np.int64)
    x = x.reshape((len(x), *ir.input_shape))
    mine = forward("q16", list(ir.layers), encode(ir, "q16"), x)
    for got, want in zip(mine, q16_ref.forward(ir, x, intermediates=True), strict=True):
        assert np.array_equal(got, want)


def test_agreement_counts_f32_within_tolerance_and_nan() -> None:
    want = np.array([1.0, 2.0, np.nan, 1e30], dtype=np.float32)
    got = np.array([1.0 + 1e-6, 2.5, np.nan, 1e30 * (1 + 1e-6)], dtype=np.float32)
    a = agreement("f32", got, want)
    assert a.mismatched == 1 and a.total == 4
    assert a.max_abs_error == pytest.approx(1e24, rel=0.1)  # largest raw difference
    exact = agreement("int8", np.array([1, 2, 3]), np.array([1, 2, 4]))
    assert (exact.mismatched, exact.max_abs_error) == (1, 1.0)
