"""run --trace --dump: every traced layer per sample, shaped and typed, as the golden has it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sim_support import needs_toolchain

from simcore.cli import main
from simcore.firmware.build import build_model_firmware
from simcore.golden.store import load_golden

pytestmark = needs_toolchain


def test_dumped_layers_equal_the_golden_tflite_layers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    golden = load_golden("mnist_cnn")
    fw = build_model_firmware("mnist_cnn", "int8", "rp2350", tmp_path, trace=True)
    rows = golden.layer_samples[:3]
    np.save(tmp_path / "x.npy", golden.inputs_int8[rows])
    dump = tmp_path / "traces.npz"
    code = main(["run", str(fw.elf), "-b", "rp2350", "--input", str(tmp_path / "x.npy"),
                 "--dump", str(dump), "-q"])  # fmt: skip
    assert code == 0
    assert f"traces: 6 layer(s) written to {dump}" in capsys.readouterr().out
    with np.load(dump) as npz:
        meta = json.loads(str(npz["meta"]))
        assert meta["format"] == "int8" and len(meta["layers"]) == len(golden.layer_outputs_int8)
        for k, want in enumerate(golden.layer_outputs_int8):
            got = npz[f"layer{k}"]
            assert got.dtype == np.int8 and got.shape == (3, *want.shape)
            np.testing.assert_array_equal(got, want.values[:3])
            np.testing.assert_array_equal(npz[f"layer{k}_samples"], [0, 1, 2])


def test_dump_of_a_firmware_that_traces_nothing_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fw = build_model_firmware("iris3", "int8", "rp2040", tmp_path)  # a release build
    assert main(["run", str(fw.elf), "-b", "rp2040", "--dump", str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err
    assert "made no simcore_trace() calls" in err and err.count("\n") == 1
    assert not (tmp_path / "t.npz").exists()
