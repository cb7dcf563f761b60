"""The example firmware (firmware_builds/examples/dense_demo.c) and its host reference.

Used by ``simcore example`` (the demo until model validation lands) and by the
tests: the firmware's outputs must equal a NumPy float32 computation bit for
bit on every board (the build disables fused multiply-add).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from simcore import paths
from simcore.boards import BoardSpec
from simcore.toolchain import FIRMWARE_DIR, BuildResult, build_elf

SOURCE = FIRMWARE_DIR / "examples" / "dense_demo.c"

# Must match dense_demo.c.
WEIGHTS = np.array(
    [[0.25, -0.5, 0.125, 1.0], [-0.75, 0.3, 0.9, -0.2], [0.6, 0.1, -0.4, 0.05]], dtype=np.float32
)
BIAS = np.array([0.1, -0.2, 0.05], dtype=np.float32)
N_IN, N_OUT, CAPACITY = 4, 3, 16


def build_example(board: BoardSpec, out_dir: Path | None = None) -> BuildResult:
    """Build the example for ``board`` into ``out_dir`` (default ``paths.out_dir()/<board>/``)."""
    target = (out_dir or paths.out_dir() / board.name) / "example.elf"
    return build_elf([SOURCE], board, target)


def example_inputs(n_samples: int = 8, seed: int = 7) -> npt.NDArray[np.float32]:
    """Deterministic inputs in [-2, 2), shape (n_samples, 4)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-2.0, 2.0, size=(n_samples, N_IN)).astype(np.float32)


def host_reference(inputs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """What the firmware computes, in float32 with the same operation order."""
    out = np.empty((inputs.shape[0], N_OUT), dtype=np.float32)
    for s, x in enumerate(inputs):
        for o in range(N_OUT):
            acc = BIAS[o]
            for i in range(N_IN):
                acc = np.float32(acc + np.float32(WEIGHTS[o, i] * x[i]))
            out[s, o] = acc if acc > 0 else np.float32(0.0)
    return out


def checksum(outputs: npt.NDArray[np.float32]) -> int:
    """The checksum line the firmware prints, computed on the host."""
    value = 0
    for bits in outputs.reshape(-1).view(np.uint32):
        value = (value * 31 + int(bits)) & 0xFFFFFFFF
    return value
