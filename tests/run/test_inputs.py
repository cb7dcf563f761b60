"""Inputs are checked, not guessed: simcore/inputs.py without an emulator."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sim_support import AsmBuilder

from simcore.elf import load_elf
from simcore.firmware.codec import encode_inputs
from simcore.inputs import (
    Batch,
    FirmwareIO,
    InputError,
    batches,
    check_array,
    firmware_io,
    load_inputs,
    require_io,
)

F32 = FirmwareIO("iris3-f32.elf", 16, 12, 64, fmt="f32", input_shape=(4,), output_shape=(3,))
Q16 = FirmwareIO("iris3-q16.elf", 16, 12, 64, fmt="q16", input_shape=(4,), output_shape=(3,))
INT8 = FirmwareIO(
    "mnist_cnn-int8.elf",
    784,
    10,
    64,
    fmt="int8",
    input_shape=(28, 28, 1),
    output_shape=(10,),
    input_quant=(0.00390625, -128),
)
RGB = FirmwareIO("rgb-f32.elf", 8 * 8 * 3 * 4, 4, 4, fmt="f32", input_shape=(8, 8, 3))
RAW = FirmwareIO("hand.elf", 16, 12, 16)


def _save(tmp_path: Path, x: object, name: str = "x.npy") -> Path:
    path = tmp_path / name
    np.save(path, x)
    return path


# -- the example and the accepted shapes ---------------------------------------


def test_message_names_both_sides(tmp_path: Path) -> None:
    path = _save(tmp_path, np.zeros((10, 4)))
    with pytest.raises(InputError) as info:
        load_inputs(path, INT8)
    msg = str(info.value)
    assert msg.startswith(
        "x.npy holds 10 samples of 4 float64 values; mnist_cnn-int8.elf takes int8 inputs "
        "of 784 bytes (28x28x1); give int8 values (numpy.clip(numpy.round(x / 0.00390625) - 128"
    ), msg
    assert msg.endswith("of shape (N, 28, 28, 1)")
    assert info.value.exit_code == 2 and "\n" not in msg


@pytest.mark.parametrize(
    ("shape", "n"),
    [((10, 28, 28, 1), 10), ((28, 28, 1), 1), ((5, 28, 28), 5), ((28, 28), 1), ((3, 1, 28, 28), 3)],
)
def test_int8_shapes_accepted(shape: tuple[int, ...], n: int) -> None:
    x = np.arange(np.prod(shape)).astype(np.int8).reshape(shape)
    got = check_array(x, INT8, "x.npy")
    assert got.n_samples == n and got.data == x.tobytes()
    assert got.encoding == "int8 as given"


@pytest.mark.parametrize("shape", [(10, 784), (784,), (10, 28, 27), (10, 14, 56, 1)])
def test_layout_guesses_refused(shape: tuple[int, ...]) -> None:
    """A flattened or differently shaped array has the right size but an unknown layout."""
    with pytest.raises(InputError, match=r"give an array of shape \(N, 28, 28, 1\)$"):
        check_array(np.zeros(shape, np.int8), INT8, "x.npy")


def test_channels_first_refused() -> None:
    with pytest.raises(
        InputError, match=r"rgb-f32.elf takes float32 inputs of 768 bytes \(8x8x3\)"
    ):
        check_array(np.zeros((2, 3, 8, 8), np.float32), RGB, "x.npy")
    assert check_array(np.zeros((2, 8, 8, 3), np.float32), RGB, "x.npy").n_samples == 2


# -- dtypes per format -----------------------------------------------------------------


def test_f32_takes_float32_only() -> None:
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    assert check_array(x, F32, "x.npy").data == x.tobytes()
    big = x.astype(">f4")
    assert check_array(big, F32, "x.npy").data == x.tobytes()  # byte order is not a guess
    for wrong in (np.float64, np.float16, np.int32, np.int8, np.bool_):
        with pytest.raises(
            InputError, match=r"give float32 values \(x\.astype\(numpy\.float32\)\)"
        ):
            check_array(x.astype(wrong), F32, "x.npy")


def test_int8_refuses_uint8_with_the_quantization() -> None:
    with pytest.raises(InputError) as info:
        check_array(np.zeros((2, 28, 28, 1), np.uint8), INT8, "img.npy")
    msg = str(info.value)
    assert msg.startswith("img.npy holds 2 samples of 28x28x1 uint8 values; mnist_cnn-int8.elf")
    assert "x / 0.00390625" in msg and "shape" not in msg


def test_q16_encodes_floats_and_takes_int32_raw() -> None:
    x = np.array([[0.5, -1.25, 3.0, 1e-6], [2.0, -0.0, 100.5, -7.75]])
    got = check_array(x, Q16, "x.npy")
    assert got.data == encode_inputs("q16", x) and got.n_samples == 2
    assert "encoded to Q16.16" in got.encoding
    assert check_array(x.astype(np.float32), Q16, "x.npy").data == encode_inputs(
        "q16", x.astype(np.float32)
    )
    raw = np.array([65536, -32768, 0, 7], dtype=np.int32)
    taken = check_array(raw, Q16, "x.npy")
    assert taken.data == raw.astype("<i4").tobytes() and taken.encoding.startswith("int32 taken")


@pytest.mark.parametrize(
    ("x", "why"),
    [
        (np.array([1.0, np.nan, 0.0, 0.0]), "NaN has no Q16.16 value"),
        (np.zeros(4, np.int64), "int32 raw Q16.16"),
        (np.zeros(4, np.uint8), "int32 raw Q16.16"),
    ],
)
def test_q16_refusals(x: np.ndarray, why: str) -> None:
    with pytest.raises(InputError, match=why):
        check_array(x, Q16, "x.npy")


def test_without_manifest_bytes_per_sample_decide() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = check_array(x, RAW, "x.npy")
    assert got.n_samples == 3 and got.data == x.tobytes()
    assert (
        check_array(np.arange(2, dtype=">f8"), RAW, "x.npy").data
        == np.arange(2, dtype="<f8").tobytes()
    )
    with pytest.raises(InputError) as info:
        check_array(np.zeros((10, 4)), RAW, "x.npy")
    assert str(info.value).startswith(
        "x.npy holds 10 samples of 4 float64 values (32 bytes per sample); hand.elf takes "
        "inputs of 16 bytes (no manifest: dtype and shape unknown)"
    )


@pytest.mark.parametrize(
    ("x", "words"),
    [
        (np.array(["ab", "cd"]), "<U2 values, not plain numbers"),
        (np.zeros(2, dtype=[("a", "<f4"), ("b", "<f4")]), "not plain numbers"),
        (np.zeros(4, np.complex64), "complex64 values, not plain numbers"),
        (np.zeros((0, 4), np.float32), "no samples"),
    ],
)
def test_non_numbers_and_empty_refused(x: np.ndarray, words: str) -> None:
    with pytest.raises(InputError, match=words):
        check_array(x, F32, "x.npy")


# -- files ---------------------------------------------------------------------


def _refused(path: Path, fw: FirmwareIO = F32) -> str:
    with pytest.raises(InputError) as info:
        load_inputs(path, fw)
    assert info.value.exit_code == 2
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_file_problems(tmp_path: Path) -> None:
    assert "is a directory" in _refused(tmp_path)
    folder = tmp_path / "dir.npy"
    folder.mkdir()
    assert "dir.npy is a directory" in _refused(folder)
    assert "does not exist" in _refused(tmp_path / "missing.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    assert _refused(tmp_path / "empty.npy").endswith("empty.npy is empty; give at least one sample")
    (tmp_path / "empty.bin").write_bytes(b"")
    assert "is empty" in _refused(tmp_path / "empty.bin")


def test_unreadable_file(tmp_path: Path, unreadable: Any) -> None:
    path = _save(tmp_path, np.zeros(4, np.float32))
    with unreadable(path):
        assert "permission denied; check its permissions" in _refused(path)


def test_garbage_and_pickles(tmp_path: Path) -> None:
    (tmp_path / "junk.npy").write_bytes(b"hello, I am not an array")
    assert "junk.npy is not a NumPy .npy file" in _refused(tmp_path / "junk.npy")
    (tmp_path / "junk2.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    assert "junk2.npy is not a readable .npy file" in _refused(tmp_path / "junk2.npy")
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert "holds Python objects (a pickled object array)" in _refused(obj)
    plain = tmp_path / "plain.npy"
    plain.write_bytes(pickle.dumps([1.0, 2.0, 3.0, 4.0]))
    assert "not a NumPy .npy file" in _refused(plain)
    np.savez(tmp_path / "both.npz", a=np.zeros(4, np.float32))
    assert "both.npz is a NumPy .npz archive" in _refused(tmp_path / "both.npz")


def test_truncated_npy_refused_before_allocating(tmp_path: Path) -> None:
    path = _save(tmp_path, np.zeros((8, 4), np.float32))
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    assert "is truncated: its header promises 8x4 float32 values (128 bytes)" in _refused(path)
    # A header that promises 16 TB is refused from its size alone, before NumPy allocates.
    header = data[: data.index(b"\n") + 1]
    header = header.replace(b"(8, 4), }" + b" " * 11, b"(999999999999, 4), }")
    big = tmp_path / "big.npy"
    big.write_bytes(header + b"\0" * 16)
    assert _refused(big).startswith(
        "big.npy is truncated: its header promises 999999999999x4 float32 values "
        "(15,999,999,999,984 bytes) but 16 bytes follow"
    )


def test_npy_recognised_by_content_raw_by_size(tmp_path: Path) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.save(tmp_path / "x.npy", x)
    renamed = tmp_path / "inputs.dat"
    renamed.write_bytes((tmp_path / "x.npy").read_bytes())
    got = load_inputs(renamed, F32)
    assert got.n_samples == 2 and got.data == x.tobytes()
    raw = tmp_path / "x.bin"
    raw.write_bytes(x.tobytes())
    assert load_inputs(raw, F32).data == x.tobytes()
    assert load_inputs(raw, F32).encoding == "raw, as given"
    raw.write_bytes(x.tobytes()[:-3])
    assert _refused(raw) == (
        "x.bin holds 29 bytes, not a whole number of samples; iris3-f32.elf takes float32 "
        "inputs of 16 bytes (4); give N x 16 bytes"
    )


def test_first_samples(tmp_path: Path) -> None:
    got = load_inputs(_save(tmp_path, np.ones((5, 4), np.float32)), F32)
    assert got.first(2).n_samples == 2 and len(got.first(2).data) == 32
    assert got.first(5) is got
    with pytest.raises(InputError, match=r"--samples 6 asks for more samples than the 5 in x\.npy"):
        got.first(6)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.binary(max_size=300), magic=st.booleans())
def test_garbage_bytes_are_refused_cleanly(tmp_path: Path, payload: bytes, magic: bool) -> None:
    """Whatever the bytes, the answer is Inputs or an InputError: never another exception."""
    path = tmp_path / "g.npy"
    path.write_bytes((b"\x93NUMPY" if magic else b"") + payload)
    try:
        got = load_inputs(path, RAW)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert len(got.data) == got.n_samples * 16


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    x=hnp.arrays(
        dtype=st.one_of(hnp.scalar_dtypes(), hnp.byte_string_dtypes(), hnp.unicode_string_dtypes()),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    ),
    fw=st.sampled_from([F32, Q16, RAW, FirmwareIO("one.elf", 4, 4, 2, "int8", (2, 2))]),
)
def test_any_saved_array_is_taken_or_refused(tmp_path: Path, x: np.ndarray, fw: FirmwareIO) -> None:
    path = tmp_path / "x.npy"
    np.save(path, x)
    try:
        got = load_inputs(path, fw)
    except InputError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg.startswith("x.npy")
    else:
        assert got.n_samples >= 1 and len(got.data) == got.n_samples * fw.input_bytes


# -- what the firmware takes -------------------------------------------------------


def test_firmware_io_from_elf_and_manifest(model_elf: dict[str, Path], tmp_path: Path) -> None:
    fw = firmware_io(load_elf(model_elf["mnist_cnn-int8"]))
    assert fw is not None
    assert (fw.input_bytes, fw.output_bytes, fw.capacity) == (784, 10, 64)
    assert (fw.fmt, fw.input_shape, fw.notes) == ("int8", (28, 28, 1), ())
    assert fw.input_quant is not None
    assert fw.describe() == "mnist_cnn-int8.elf takes int8 inputs of 784 bytes (28x28x1)"

    # A copy with a manifest of another build: checked against simcore_io alone, and said so.
    elf = tmp_path / "copy.elf"
    elf.write_bytes(model_elf["iris3-f32"].read_bytes())
    manifest = json.loads(model_elf["iris3-f32"].with_suffix(".json").read_text())
    manifest["files"]["elf_sha256"] = "0" * 64
    elf.with_suffix(".json").write_text(json.dumps(manifest))
    stale = firmware_io(load_elf(elf))
    assert stale is not None and stale.fmt is None and stale.input_bytes == 16
    assert stale.notes == (
        "copy.json next to copy.elf is not used: it describes another build of copy.elf "
        "(elf_sha256 differs)",
    )
    elf.with_suffix(".json").write_text('{"something": "else"}')
    other = firmware_io(load_elf(elf))
    assert other is not None and other.fmt is None and other.notes == ()
    elf.with_suffix(".json").write_text("{not json")
    broken = firmware_io(load_elf(elf))
    assert broken is not None and "not readable JSON" in broken.notes[0]


def test_firmware_without_simcore_io(asm_elf: AsmBuilder) -> None:
    image = load_elf(asm_elf("rp2040", "movs r0, #0"))
    assert firmware_io(image) is None
    with pytest.raises(InputError) as info:
        require_io(image, "--input")
    assert str(info.value).startswith(
        "rp2040.elf has no simcore_io descriptor, so it cannot take --input; follow the harness ABI"
    )


def test_batches_split() -> None:
    assert batches(10, 4) == [Batch(0, 0, 4), Batch(1, 4, 4), Batch(2, 8, 2)]
    assert batches(4, 4) == [Batch(0, 0, 4)]
    assert batches(0, 4) == [Batch(0, 0, 0)]
    assert Batch(1, 4, 4).describe(3) == "batch 2 of 3 (samples 4..7)"
    with pytest.raises(ValueError):
        batches(3, 0)
