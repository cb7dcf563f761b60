"""Measure the sparse Dense kernels against the dense ones on every board.

``python -m simcore.firmware.sparse_figures [--sparsity 0.5 0.8 ...]`` builds one
magnitude-pruned Dense layer (400 inputs, 10 outputs: mnist_cnn's) in f32, q16
and int8, once with ``sparse="off"`` and once with ``"on"``, runs two samples
under the cycle model and prints the second sample's cycles sparse/dense and
both builds' flash. These are the measurements behind
:data:`simcore.firmware.sparse.AUTO_MAX_BYTES_RATIO` (README "Sparse Dense
layers").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from simcore.boards import load_boards
from simcore.firmware.build import build_model_firmware
from simcore.firmware.codec import encode_inputs
from simcore.firmware.ir import FloatModel, Int8Model, Layer

N_IN, N_OUT = 400, 10


def prune(w: npt.NDArray[np.float32], sparsity: float) -> npt.NDArray[np.float32]:
    """Zero the ``sparsity`` share of ``w`` with the smallest magnitudes."""
    flat = w.reshape(-1).copy()
    flat[np.argsort(np.abs(flat), kind="stable")[: round(sparsity * flat.size)]] = 0
    return flat.reshape(w.shape)


def float_layer(w: npt.NDArray[np.float32]) -> FloatModel:
    bias = np.zeros(N_OUT, np.float32)
    dense = Layer("dense", "dense", (N_IN,), (N_OUT,), "linear", 0.0, w, bias)
    return FloatModel(
        "sparse_probe", "0" * 64, "simcore.firmware.sparse_figures", (N_IN,), (dense,)
    )


def int8_layer(w: npt.NDArray[np.float32]) -> Int8Model:
    """The same layer quantized as TFLite would (symmetric per-channel int8 weights)."""
    from simcore.firmware.tflite_int8 import convert
    from simcore.golden import tflite_model as tm

    def quant(scale: list[float], zp: list[int]) -> tm.Quantization:
        return tm.Quantization(np.asarray(scale, np.float32), np.asarray(zp, np.int64), axis=0)

    w_scale = np.maximum(np.abs(w).max(axis=1), 1e-6) / 127.0
    w_q = np.round(w / w_scale[:, None]).astype(np.int8)
    tensors = (
        tm.Tensor(0, "x", (1, N_IN), "int8", quant([1 / 64], [0])),
        tm.Tensor(1, "w", (N_OUT, N_IN), "int8", quant(list(w_scale), [0] * N_OUT), w_q),
        tm.Tensor(2, "y", (1, N_OUT), "int8", quant([1 / 16], [0])),
    )
    op = tm.Operator(0, "FULLY_CONNECTED", (0, 1, -1), (2,), {"fused_activation": "NONE"})
    graph = tm.TfliteModel("0" * 64, 3, "sparse probe", tensors, (op,), (0,), (2,))
    return convert(graph, "sparse_probe", "simcore.firmware.sparse_figures")


def measure(model: FloatModel | Int8Model, fmt: str, board: str, out: Path) -> dict[str, int]:
    """Cycles of the second (warm) sample and flash, for the dense and the sparse build."""
    from simcore.engine import run_firmware

    figures = {}
    for mode in ("off", "on"):
        build = build_model_firmware(model, fmt, board, out, capacity=2, sparse=mode)
        x = np.zeros((2, N_IN), np.int8 if fmt == "int8" else np.float32)
        result = run_firmware(build.elf, board, inputs=encode_inputs(fmt, x), n_samples=2)
        figures[f"cycles_{mode}"] = result.sample_cycles[-1]
        figures[f"flash_{mode}"] = build.flash_bytes
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simcore.firmware.sparse_figures")
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9])
    parser.add_argument("--board", "-b", action="append", help="default: every board")
    args = parser.parse_args(argv)
    boards = args.board or sorted(load_boards())
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for sparsity in args.sparsity:
            w = prune(rng.normal(0, 0.05, (N_OUT, N_IN)).astype(np.float32), sparsity)
            models: dict[str, FloatModel | Int8Model] = {
                "f32": float_layer(w),
                "q16": float_layer(w),
                "int8": int8_layer(w),
            }
            for board in boards:
                cells = []
                for fmt, model in models.items():
                    f = measure(model, fmt, board, Path(tmp))
                    cells.append(
                        f"{fmt} {f['cycles_off']:,} -> {f['cycles_on']:,} cycles "
                        f"({f['cycles_on'] / f['cycles_off']:.2f}), flash "
                        f"{f['flash_off']:,} -> {f['flash_on']:,} B"
                    )
                sys.stdout.write(f"{sparsity:.0%} zeros, {board}: " + "; ".join(cells) + "\n")
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
