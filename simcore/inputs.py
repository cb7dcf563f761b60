"""Check input samples against what a firmware takes, and split them into batches.

What a firmware takes per sample comes from two places:

- its ``simcore_io`` descriptor, read from the ELF's load image (the initial
  value ``SIMCORE_DEFINE_IO`` gives it): bytes per input and output sample and
  the capacity of its buffers in samples. Every harness-ABI firmware has it.
- the manifest ``<elf stem>.json`` that ``simcore build`` writes next to the
  ELF: the number format (f32, int8, q16) and the input shape. It is used only
  when it describes this very ELF (its ``elf_sha256``) and agrees with the
  descriptor; otherwise the inputs are checked against the descriptor alone
  and :attr:`FirmwareIO.notes` says why.

Accepted inputs (:func:`load_inputs`):

- a ``.npy`` array (recognised by its magic bytes, whatever its name) of shape
  ``(N, *input_shape)``, or ``input_shape`` for one sample. Axes of length 1
  may be left out or added (``(N, 28, 28)`` for ``28x28x1``): that never
  changes the order of the values. A flattened ``(N, 784)`` is refused, as is
  a channels-first array: their layout would be a guess. The dtype must be
  the firmware's: float32 for f32 (float64 is refused, not rounded), int8 for
  int8 (uint8 is refused: quantize with the manifest's scale and zero
  point). For q16, floats are encoded with the project's Q16.16 rounding
  (:func:`simcore.firmware.codec.encode_inputs`, saturating, NaN refused)
  and int32 arrays are taken as raw Q16.16 values. Without a manifest any
  bool/int/float array whose sample size in bytes matches ``input_bytes``
  is taken as little-endian bytes.
- any other file: raw bytes, already in the firmware's encoding, a whole
  number of ``input_bytes`` samples.

Pickled object arrays are never loaded. Every refusal is an
:class:`InputError` (exit 2) whose one-line message names both sides, e.g.
``x.npy holds 10 samples of 4 float64 values; mnist_cnn-int8.elf takes int8
inputs of 784 bytes (28x28x1)``, and ends with what to do.
"""

from __future__ import annotations

import io
import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simcore import lazylog as logging
from simcore.elf import ElfImage
from simcore.errors import UsageError

if TYPE_CHECKING:  # numpy is imported only for .npy inputs and arrays (a run without needs none)
    import numpy.typing as npt

log = logging.getLogger(__name__)

#: Bytes per value of each number format.
ELEMENT_BYTES = {"f32": 4, "int8": 1, "q16": 4}
#: What each format's inputs are, for messages.
FORMAT_INPUTS = {
    "f32": "float32",
    "int8": "int8",
    "q16": "Q16.16 (float, or raw int32)",
}
_IO_MAGIC = 0x434D4953
_IO_HEADER = "<5I"  # magic, abi_version, input_bytes, output_bytes, max_samples
_NPY_MAGIC = b"\x93NUMPY"


class InputError(UsageError):
    """Inputs that do not fit the firmware: wrong file, dtype, shape or size."""


@dataclass(frozen=True)
class FirmwareIO:
    """What one firmware takes and gives per sample, and how many samples it holds."""

    elf_name: str
    input_bytes: int
    output_bytes: int
    capacity: int
    #: "f32", "int8" or "q16" from the manifest; None without a usable manifest.
    fmt: str | None = None
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    #: The manifest's input quantization (int8): scale and zero point.
    input_quant: tuple[float, int] | None = None
    #: Why a manifest next to the ELF was not used, for the run's notes.
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """E.g. ``mnist_cnn-int8.elf takes int8 inputs of 784 bytes (28x28x1)``."""
        if self.fmt is None:
            return f"{self.elf_name} takes inputs of {self.input_bytes} bytes"
        shape = f" ({_dims(self.input_shape)})" if self.input_shape is not None else ""
        return (
            f"{self.elf_name} takes {FORMAT_INPUTS[self.fmt]} inputs of "
            f"{self.input_bytes} bytes{shape}"
        )


@dataclass(frozen=True)
class Inputs:
    """Samples encoded for one firmware: ``n_samples * input_bytes`` bytes."""

    data: bytes = field(repr=False)
    n_samples: int
    input_bytes: int
    #: The input file's name.
    name: str
    #: What it held, e.g. ``10 x 4 float32``.
    held: str
    #: How it became the firmware's bytes, e.g. ``float64 encoded to Q16.16 (...)``.
    encoding: str

    def sample_bytes(self, start: int, count: int) -> bytes:
        """The bytes of samples ``start .. start + count - 1``."""
        return self.data[start * self.input_bytes : (start + count) * self.input_bytes]

    def first(self, n: int) -> Inputs:
        """The first ``n`` samples (``--samples``); InputError when there are fewer."""
        if n > self.n_samples:
            raise InputError(
                f"--samples {n} asks for more samples than the {self.n_samples} in {self.name}",
                hint=f"give --samples {self.n_samples} or less, or more inputs",
            )
        if n == self.n_samples:
            return self
        return Inputs(
            self.sample_bytes(0, n), n, self.input_bytes, self.name, self.held, self.encoding
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "held": self.held,
            "encoding": self.encoding,
            "samples": self.n_samples,
            "bytes_per_sample": self.input_bytes,
        }


# -- what the firmware takes ------------------------------------------------------


def firmware_io(image: ElfImage) -> FirmwareIO | None:
    """Read the firmware's ``simcore_io`` and manifest; None when it has no ``simcore_io``."""
    name = image.path.name
    sym = image.symbol("simcore_io")
    if sym is None:
        return None
    raw = image.initial_bytes(sym.address, struct.calcsize(_IO_HEADER))
    if raw is None:
        raise InputError(
            f"{name}: simcore_io at 0x{sym.address:08x} has no initial value in the load image",
            hint="define it with SIMCORE_DEFINE_IO from simcore_abi.h",
        )
    magic, version, in_b, out_b, cap = struct.unpack(_IO_HEADER, raw)
    if magic != _IO_MAGIC or version != 1:
        raise InputError(
            f"{name}: simcore_io at 0x{sym.address:08x} is not a harness ABI v1 descriptor "
            f"(magic 0x{magic:08x}, version {version})",
            hint="define it with SIMCORE_DEFINE_IO from simcore_abi.h",
        )
    fw = FirmwareIO(name, in_b, out_b, cap)
    try:
        return _with_manifest(fw, image.path)
    except _Unused as why:
        note = f"{image.path.with_suffix('.json').name} next to {name} is not used: {why}"
        log.info("%s", note)
        return replace(fw, notes=(note,))


class _Unused(Exception):
    """Why the manifest next to an ELF does not describe it."""


def _with_manifest(fw: FirmwareIO, elf: Path) -> FirmwareIO:
    """``fw`` completed from the manifest next to ``elf``; _Unused when it does not fit.

    No file, or a ``.json`` that is not a simcore manifest at all, leaves ``fw``
    as it is: that is none of simcore's business.
    """
    path = elf.with_suffix(".json")
    if not path.is_file():
        return fw
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Unused(f"it is not readable JSON ({_one_line(exc)})") from None
    if not isinstance(data, dict) or "simcore_firmware_manifest" not in data:
        return fw
    try:
        fmt = str(data["format"])
        io_ = data["io"]
        in_shape = tuple(int(d) for d in io_["input_shape"])
        out_shape = tuple(int(d) for d in io_["output_shape"])
        elf_sha = data["files"]["elf_sha256"]
        quant = io_.get("quantization", {}).get("input")
        input_quant = (float(quant["scale"]), int(quant["zero_point"])) if quant else None
    except (AttributeError, KeyError, TypeError, ValueError):
        raise _Unused("it lacks format, io shapes, quantization or files.elf_sha256") from None
    if fmt not in ELEMENT_BYTES:
        raise _Unused(f"unknown format {fmt!r}")
    import hashlib  # here: importing it loads OpenSSL, which a run without a manifest skips

    try:
        actual = hashlib.sha256(elf.read_bytes()).hexdigest()
    except OSError:
        actual = ""
    if elf_sha != actual:
        raise _Unused(f"it describes another build of {elf.name} (elf_sha256 differs)")
    if (math.prod(in_shape) * ELEMENT_BYTES[fmt], math.prod(out_shape) * ELEMENT_BYTES[fmt]) != (
        fw.input_bytes,
        fw.output_bytes,
    ):
        raise _Unused("its input and output shapes disagree with the ELF's simcore_io")
    return replace(
        fw, fmt=fmt, input_shape=in_shape, output_shape=out_shape, input_quant=input_quant
    )


def require_io(image: ElfImage, what: str) -> FirmwareIO:
    """The firmware's FirmwareIO; InputError naming ``what`` when it has no ``simcore_io``."""
    fw = firmware_io(image)
    if fw is None:
        raise InputError(
            f"{image.path.name} has no simcore_io descriptor, so it cannot take {what}",
            hint="follow the harness ABI (firmware_builds/include/simcore_abi.h), or run "
            f"without {what}",
        )
    if fw.capacity == 0:
        raise InputError(
            f"{image.path.name}: simcore_io holds 0 samples (max_samples is 0)",
            hint="give SIMCORE_DEFINE_IO a capacity of at least 1",
        )
    return fw


# -- reading input files ----------------------------------------------------------


def load_inputs(path: Path, fw: FirmwareIO) -> Inputs:
    """Read ``path`` (.npy or raw bytes) and check it against ``fw``; InputError when it does
    not fit."""
    data = _read_file(path)
    if data.startswith(_NPY_MAGIC):
        return check_array(_load_npy(path, data), fw, path.name)
    if path.suffix.lower() == ".npy":
        raise InputError(
            f"{path.name} is not a NumPy .npy file (it does not start with \\x93NUMPY)",
            hint="save inputs with numpy.save, or give raw bytes under another suffix",
        )
    if path.suffix.lower() == ".npz":
        raise InputError(
            f"{path.name} is a NumPy .npz archive, not one array",
            hint="save the input array alone with numpy.save (.npy)",
        )
    return check_raw(data, fw, path.name)


def _read_file(path: Path) -> bytes:
    if path.is_dir():
        raise InputError(f"input {path} is a directory", hint="give a .npy or raw binary file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"input file {path} does not exist", hint="check the path") from None
    except PermissionError:
        raise InputError(
            f"cannot read input file {path}: permission denied", hint="check its permissions"
        ) from None
    except OSError as exc:
        raise InputError(
            f"cannot read input file {path}: {exc.strerror or exc}", hint="check the path"
        ) from None
    if not data:
        raise InputError(f"input file {path} is empty", hint="give at least one sample")
    return data


def _load_npy(path: Path, data: bytes) -> npt.NDArray[Any]:
    """Parse a .npy file, checking its header before NumPy allocates anything."""
    import numpy as np

    name = path.name
    fp = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise InputError(
                f"{name} is a .npy file of format version {version[0]}.{version[1]}, which "
                "simcore does not read",
                hint="save a plain numeric array with numpy.save",
            )
    except InputError:
        raise
    except Exception as exc:  # NumPy raises ValueError, SyntaxError, EOFError... on garbage
        raise InputError(
            f"{name} is not a readable .npy file: {_one_line(exc)}",
            hint="save inputs with numpy.save",
        ) from None
    if dtype.hasobject:
        raise InputError(
            f"{name} holds Python objects (a pickled object array); simcore does not load pickles",
            hint="save a numeric array (e.g. x.astype(numpy.float32))",
        )
    need = math.prod(shape) * dtype.itemsize
    have = len(data) - fp.tell()
    if have < need:
        raise InputError(
            f"{name} is truncated: its header promises {_dims(shape) or 'one'} {dtype} values "
            f"({need:,} bytes) but {have:,} bytes follow",
            hint="save the array again with numpy.save",
        )
    try:
        arr: npt.NDArray[Any] = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # the header was fine; be as careful with the data
        raise InputError(
            f"{name} is not a readable .npy file: {_one_line(exc)}",
            hint="save inputs with numpy.save",
        ) from None
    del fortran  # np.load honours it; tobytes() below is always in C order
    return arr


def check_raw(data: bytes, fw: FirmwareIO, name: str) -> Inputs:
    """Raw input bytes: a whole number of ``fw.input_bytes`` samples, taken as they are."""
    if not data:
        raise InputError(f"input file {name} is empty", hint="give at least one sample")
    if fw.input_bytes == 0 or len(data) % fw.input_bytes:
        raise InputError(
            f"{name} holds {len(data):,} bytes, not a whole number of samples; {fw.describe()}",
            hint=f"give N x {fw.input_bytes} bytes",
        )
    n = len(data) // fw.input_bytes
    return Inputs(data, n, fw.input_bytes, name, f"{n} x {fw.input_bytes} bytes", "raw, as given")


def check_array(x: npt.NDArray[Any], fw: FirmwareIO, name: str) -> Inputs:
    """Check an input array against ``fw`` and encode it; InputError when it does not fit."""
    what = _describe_array(name, x)
    if x.dtype.fields is not None or x.dtype.kind not in "biuf":
        raise InputError(
            f"{what}, not plain numbers; {fw.describe()}",
            hint="save a plain numeric array",
        )
    if fw.input_bytes == 0:
        raise InputError(
            f"{fw.elf_name} declares input_bytes 0 in simcore_io, so it takes no inputs",
            hint="run it without --input",
        )
    if x.size == 0:
        raise InputError(f"{what}: no samples; {fw.describe()}", hint="give at least one sample")
    if fw.fmt is None or fw.input_shape is None:
        return _check_untyped(x, fw, name, what)
    n = _samples(x.shape, fw.input_shape)
    encoded, encoding = _encode(x, fw)
    if encoded is None or n is None:
        dtype_hint = encoding if encoded is None else "an array"
        shape_hint = (
            f" of shape (N, {', '.join(str(d) for d in fw.input_shape)})" if n is None else ""
        )
        raise InputError(f"{what}; {fw.describe()}", hint=f"give {dtype_hint}{shape_hint}")
    held = f"{n} x {_dims(fw.input_shape)} {x.dtype}"
    return Inputs(encoded, n, fw.input_bytes, name, held, encoding)


def _check_untyped(x: npt.NDArray[Any], fw: FirmwareIO, name: str, what: str) -> Inputs:
    """No manifest: the array's bytes must split into samples of ``input_bytes``."""
    import numpy as np

    if x.nbytes == fw.input_bytes:
        n = 1
    elif x.ndim >= 1 and math.prod(x.shape[1:]) * x.dtype.itemsize == fw.input_bytes:
        n = x.shape[0]
    else:
        per = math.prod(x.shape[1:]) * x.dtype.itemsize if x.ndim >= 1 else x.nbytes
        raise InputError(
            f"{what} ({per:,} bytes per sample); {fw.describe()} (no manifest: dtype and shape "
            "unknown)",
            hint=f"give an array of shape (N, ...) with {fw.input_bytes} bytes per sample",
        )
    little = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<"))
    held = f"{n} x {fw.input_bytes} bytes of {x.dtype}"
    return Inputs(little.tobytes(), n, fw.input_bytes, name, held, "little-endian bytes as given")


def _samples(shape: tuple[int, ...], sample: tuple[int, ...]) -> int | None:
    """How many samples of ``sample`` an array of ``shape`` holds, or None if it does not fit.

    Axes of length 1 do not count: (28, 28) is one 28x28x1 sample, (5, 28, 28) five.
    """
    want = _squeezed(sample)
    if _squeezed(shape) == want and math.prod(shape) == math.prod(sample):
        return 1
    if len(shape) >= 1 and _squeezed(shape[1:]) == want:
        return shape[0]
    return None


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _encode(x: npt.NDArray[Any], fw: FirmwareIO) -> tuple[bytes | None, str]:
    """(bytes, how encoded) when the dtype fits the format, else (None, the dtype wanted)."""
    import numpy as np

    kind, size = x.dtype.kind, x.dtype.itemsize
    if fw.fmt == "f32":
        if kind == "f" and size == 4:
            return x.astype("<f4").tobytes(), "float32 as given"
        return None, "float32 values (x.astype(numpy.float32))"
    if fw.fmt == "int8":
        if kind == "i" and size == 1:
            return x.astype("i1").tobytes(), "int8 as given"
        if fw.input_quant is not None:
            s, zp = fw.input_quant
            offset = f"+ {zp}" if zp >= 0 else f"- {-zp}"
            how = f"numpy.clip(numpy.round(x / {s:.9g}) {offset}, -128, 127).astype(numpy.int8)"
        else:
            how = "x quantized with the model's input scale and zero point"
        return None, f"int8 values ({how})"
    if kind == "f":
        if np.isnan(x).any():
            return None, "finite float values (NaN has no Q16.16 value)"
        from simcore.firmware.codec import encode_inputs

        return encode_inputs("q16", x), f"{x.dtype} encoded to Q16.16 (floor(x * 65536 + 0.5))"
    if kind == "i" and size == 4:
        return x.astype("<i4").tobytes(), "int32 taken as raw Q16.16"
    return None, "float values (encoded to Q16.16 here) or int32 raw Q16.16 values"


def _describe_array(name: str, x: npt.NDArray[Any]) -> str:
    """E.g. ``x.npy holds 10 samples of 4 float64 values``."""
    if x.ndim == 0:
        return f"{name} holds a single {x.dtype} value"
    if x.ndim == 1:
        return f"{name} holds {x.shape[0]} {x.dtype} value{'s' * (x.shape[0] != 1)}"
    per = _dims(x.shape[1:])
    return f"{name} holds {x.shape[0]} sample{'s' * (x.shape[0] != 1)} of {per} {x.dtype} values"


def _dims(shape: tuple[int, ...] | None) -> str:
    return "x".join(str(d) for d in shape or ())


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- batches --------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One emulator start: samples ``start .. start + count - 1``."""

    index: int
    start: int
    count: int

    def describe(self, total: int) -> str:
        """E.g. ``batch 2 of 3 (samples 16..31)``."""
        span = f"samples {self.start}..{self.start + self.count - 1}" if self.count else "0 samples"
        return f"batch {self.index + 1} of {total} ({span})"


def batches(n_samples: int, capacity: int) -> list[Batch]:
    """Split ``n_samples`` into runs of at most ``capacity``; 0 samples is one empty run."""
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    if n_samples == 0:
        return [Batch(0, 0, 0)]
    return list(_split(n_samples, capacity))


def _split(n: int, capacity: int) -> Iterator[Batch]:
    for index, start in enumerate(range(0, n, capacity)):
        yield Batch(index, start, min(capacity, n - start))


__all__ = [
    "ELEMENT_BYTES",
    "Batch",
    "FirmwareIO",
    "InputError",
    "Inputs",
    "batches",
    "check_array",
    "check_raw",
    "firmware_io",
    "load_inputs",
    "require_io",
]
