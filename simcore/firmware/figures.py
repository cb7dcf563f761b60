"""Measure a model's firmware on every board: sizes, instructions and cycles per inference.

``python -m simcore.firmware.figures MODEL [--format int8]`` builds the
release firmware (and, on cores with DSP instructions, the portable int8
variant) and runs the first golden test sample twice under the engine's cycle
model (the board's memory model: XIP cache on RP2040/RP2350), reporting the
second (warm) inference and the first (cold) one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simcore.boards import get_board, load_boards
from simcore.firmware.build import FirmwareBuild, build_model_firmware
from simcore.firmware.codec import encode_inputs


@dataclass(frozen=True)
class Figures:
    """Costs of one inference of one firmware variant."""

    board: str
    variant: str
    weights_bytes: int
    code_bytes: int
    nn_code_bytes: int
    arena_bytes: int
    flash_bytes: int
    instructions: int
    cycles: int
    cycles_first: int


def _run_costs(build: FirmwareBuild, board: str) -> tuple[int, int, int]:
    """Run the same input twice; return (instructions, cycles, first-run cycles) per inference.

    The engine's per-sample figures span simcore_sample_begin/end; the first
    sample also pays the cold XIP cache, the second is the steady state.
    """
    from simcore.engine import run_firmware

    x = _inputs(build, 2)
    result = run_firmware(build.elf, board, inputs=encode_inputs(build.format, x), n_samples=2)
    return result.sample_instructions[1], result.sample_cycles[1], result.sample_cycles[0]


def _inputs(build: FirmwareBuild, n: int) -> np.ndarray:
    """``n`` copies of the first golden test input of a shipped model (else a constant)."""
    from simcore.errors import SimError
    from simcore.golden.store import load_golden

    try:
        g = load_golden(build.model)
        rows = np.repeat(g.split("test")[:1], n)
        return g.inputs_int8[rows] if build.format == "int8" else g.inputs_float[rows]
    except SimError:
        elem = 1 if build.format == "int8" else 4
        shape = (n, build.input_bytes // elem)
        if build.format == "int8":
            return np.zeros(shape, np.int8)
        return np.full(shape, 0.5, np.float32)


def _variant(fmt: str, board: str, portable: bool) -> str:
    """``dsp``/``portable`` for int8 (the only format with two paths), else ``c``."""
    if fmt != "int8":
        return "c"
    return "portable" if portable or not get_board(board).core.dsp else "dsp"


def measure(model: str, fmt: str, board: str, out_dir: Path, portable: bool) -> Figures:
    """Build one variant and measure one inference."""
    build = build_model_firmware(model, fmt, board, out_dir, portable=portable)
    instructions, cycles, cold = _run_costs(build, board)
    sizes = build.manifest["sizes"]
    return Figures(
        board=board,
        variant=_variant(fmt, board, portable),
        weights_bytes=build.weights_bytes,
        code_bytes=build.code_bytes,
        nn_code_bytes=int(sizes["nn_code_bytes"]),
        arena_bytes=build.arena_bytes,
        flash_bytes=build.flash_bytes,
        instructions=instructions,
        cycles=cycles,
        cycles_first=cold,
    )


def main(argv: list[str] | None = None) -> int:
    """Print the figures table of a model."""
    parser = argparse.ArgumentParser(prog="python -m simcore.firmware.figures")
    parser.add_argument("model")
    parser.add_argument("--format", default="int8", choices=("f32", "int8", "q16"))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for board in sorted(load_boards()):
            variants = [False]
            if args.format == "int8" and get_board(board).core.dsp:
                variants.append(True)
            for portable in variants:
                rows.append(measure(args.model, args.format, board, Path(tmp) / board, portable))
    head = (
        f"{'board':<10} {'path':<9} {'weights B':>9} {'code B':>7} {'nn code B':>9} "
        f"{'arena B':>8} {'flash B':>8} {'instr/inf':>10} {'cycles/inf':>11} {'1st (cold)':>11}"
    )
    sys.stdout.write(f"{args.model} {args.format}\n{head}\n")
    for r in rows:
        sys.stdout.write(
            f"{r.board:<10} {r.variant:<9} {r.weights_bytes:>9} {r.code_bytes:>7} "
            f"{r.nn_code_bytes:>9} {r.arena_bytes:>8} {r.flash_bytes:>8} {r.instructions:>10} "
            f"{r.cycles:>11} {r.cycles_first:>11}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
