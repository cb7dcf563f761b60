"""simcore validate: golden comparison end to end, failure reporting, gates, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sim_support import needs_toolchain

from simcore.cli import main
from simcore.elf import load_elf
from simcore.errors import DoesNotFit
from simcore.firmware.build import build_model_firmware
from simcore.golden.store import list_folders
from simcore.validate import Combination, all_combinations, validate

pytestmark = needs_toolchain

#: Few samples per combination in the default suite; the slow test runs whole sets.
DEFAULT_LIMIT = {"mnist_cnn": 3, "mnist_cnn_onnx": 3}
#: The mnist_cnn variants (pruned, distilled) validate in the slow session only.
VARIANTS = ("mnist_cnn_pruned50", "mnist_cnn_pruned80", "mnist_cnn_student")


def _default_or_slow(combos: list[Combination]) -> list[object]:
    return [pytest.param(c, marks=pytest.mark.slow) if c.model in VARIANTS else c for c in combos]


@pytest.mark.parametrize("combo", _default_or_slow(all_combinations()), ids=lambda c: c.key)
def test_every_combination_validates(combo: Combination) -> None:
    try:
        result = validate(
            combo, limit=DEFAULT_LIMIT.get(combo.model, 3 if combo.model in VARIANTS else 12)
        )
    except DoesNotFit as exc:  # mnist_cnn on the micro:bit's 16 KB: skipped, not failed
        pytest.skip(str(exc))
    assert result.passed, result.failures
    assert result.exactness == "bit-exact" or combo.fmt == "f32"
    assert result.accuracy == result.reference_accuracy
    assert result.cycles_min > 0 and result.cycles_max >= result.cycles_mean >= result.cycles_min
    assert result.memory["flash"]["used_bytes"] > 0
    assert result.profile and result.profile[0]["cycles_per_inference"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "combo", [c for c in all_combinations() if c.fmt == "int8"], ids=lambda c: c.key
)
def test_whole_test_sets_int8(combo: Combination) -> None:
    try:
        result = validate(combo, jobs=2)
    except DoesNotFit as exc:
        pytest.skip(str(exc))
    assert result.passed, result.failures
    assert result.exactness == "bit-exact"


def _corrupt_weight(src: Path, dst: Path, symbol: str) -> None:
    """Copy an ELF and change one byte of a weight array in its load image."""
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    image = load_elf(src)
    sym = image.symbol(symbol)
    assert sym is not None
    raw = bytearray(src.read_bytes())
    original = image.initial_bytes(sym.address, sym.size_bytes)
    assert original is not None
    offset = raw.find(original)
    assert offset > 0 and raw.count(original) == 1
    raw[offset + 1] = (raw[offset + 1] + 37) & 0xFF
    dst.write_bytes(bytes(raw))


def test_altered_weight_fails_and_names_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = validate(Combination("iris3", "int8", "rp2350"), limit=1)
    bad_elf = tmp_path / "iris3-int8.elf"
    _corrupt_weight(Path(good.elf), bad_elf, "layer0_weights")
    out_json = tmp_path / "r.json"
    code = main(
        [
            "validate",
            "--model",
            "iris3",
            "--format",
            "int8",
            "--board",
            "rp2350",
            "--firmware",
            str(bad_elf),
            "--json",
            str(out_json),
            "-q",
        ]
    )
    assert code == 1
    result = json.loads(out_json.read_text())["results"][0]
    assert not result["passed"]
    assert result["failures"][0].startswith("not bit-exact:")
    assert result["mismatches"] and isinstance(result["mismatches"][0]["sample"], int)
    assert "differ" in capsys.readouterr().out


def test_firmware_of_another_model_refused(capsys: pytest.CaptureFixture[str]) -> None:
    other = validate(Combination("iris_anne6", "int8", "rp2040"), limit=1)
    code = main(
        [
            "validate",
            "--model",
            "iris_anne8",
            "--format",
            "int8",
            "--board",
            "rp2040",
            "--firmware",
            other.elf,
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "was built from a model with sha256" in err and "iris_anne8" in err


def test_baseline_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    args = [
        "validate",
        "--model",
        "iris_anne6",
        "--format",
        "q16",
        "--board",
        "stm32h743",
        "--limit",
        "5",
        "--baseline",
        str(baseline),
        "-q",
    ]
    assert main([*args, "--update-baseline"]) == 0
    data = json.loads(baseline.read_text())
    entry = data["entries"]["iris_anne6/q16/stm32h743"]["figures"]
    assert set(entry) == {"cycles", "flash_bytes", "static_ram_bytes", "stack_peak_bytes"}
    assert data["entries"]["iris_anne6/q16/stm32h743"]["samples"] == "test 5"
    assert main(args) == 0  # unchanged firmware: within the band
    entry["cycles"]["value"] *= 0.9  # pretend the firmware used to be 10% faster
    baseline.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(args) == 1
    assert "cycles regressed" in capsys.readouterr().out
    entry["cycles"]["value"] /= 0.9 * 0.99  # 1% slower than now: within the 2% band
    baseline.write_text(json.dumps(data))
    assert main(args) == 0
    # The same firmware on 3 samples: cycles not compared (another sample set), memory gated.
    entry["cycles"]["value"] *= 0.5
    baseline.write_text(json.dumps(data))
    capsys.readouterr()
    assert main([("3" if a == "5" else a) for a in args]) == 0
    assert "cycles not compared: the baseline was measured on test 5 samples" in (
        capsys.readouterr().out
    )


def test_validate_never_imports_tensorflow(tmp_path: Path) -> None:
    """The run/validate path works from golden files alone (DESIGN.md: data flows one way)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from simcore.cli import main\n"
        "rc = main(['validate', '--model', 'iris_anne8', '--format', 'int8', '--board', "
        f"'rp2040', '--limit', '3', '-q', '--jobs', '1', '--baseline', r'{tmp_path / 'b.json'}'])\n"
        "assert rc == 0, rc\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tflite_micro', 'sklearn'))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout


def test_validate_on_a_board_file_of_your_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's board .toml: a firmware built for its core validated on it, keyed by its name."""
    shipped = Path(load_elf.__code__.co_filename).parent / "data" / "boards" / "rp2040.toml"
    mine = tmp_path / "mypico.toml"
    mine.write_text(shipped.read_text().replace('name = "rp2040"', 'name = "mypico"'))
    fw = build_model_firmware("iris3", "int8", "rp2040", tmp_path)
    out = tmp_path / "r.json"
    args = ["validate", "--firmware", str(fw.elf), "--board", str(mine), "--json", str(out), "-q"]
    assert main(args) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["key"] == "iris3/int8/mypico" and result["board"] == "mypico"
    assert result["passed"] and result["n_samples"] == 30


def test_all_skips_what_does_not_fit_and_gates_the_rest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`validate --all` on the micro:bit: mnist_cnn (30 KB of arena and I/O) does not fit
    its 16 KB and is listed as skipped; the IRIS models still pass and gate the exit code."""
    out = tmp_path / "r.json"
    argv = ["validate", "--all", "-b", "bbc-microbit", "-f", "q16", "--limit", "3", "-q"]
    assert main([*argv, "--jobs", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped   mnist_cnn/q16/bbc-microbit: model mnist_cnn (q16) does not fit" in text
    assert "needs 29.5 KB RAM" in text and "board has 11.0 KB free" in text
    data = json.loads(out.read_text())
    assert sorted(r["key"] for r in data["results"]) == [
        f"{m}/q16/bbc-microbit" for m in ("iris3", "iris_anne6", "iris_anne8")
    ]
    assert all(r["passed"] for r in data["results"])
    mnist = sorted(m for m in list_folders() if m.startswith("mnist_cnn"))  # and its variants
    assert sorted(d["key"] for d in data["does_not_fit"]) == [
        f"{m}/q16/bbc-microbit" for m in mnist
    ]


def test_only_combinations_that_do_not_fit_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["validate", "-m", "mnist_cnn", "-f", "int8", "-b", "bbc-microbit", "--limit", "1"]
    assert main([*argv, "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not fit board bbc-microbit" in err
    assert "ram overflowed by" in err and "16384 bytes" in err  # the linker's region, named
