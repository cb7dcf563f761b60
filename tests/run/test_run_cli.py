"""`simcore run` at the command line: refused inputs, batched runs, --json, closed pipes."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_support import AsmBuilder

from simcore.cli import main

Refusal = Callable[[Path, dict[str, Path], AsmBuilder], list[str]]


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    assert main(argv) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("simcore: error: ")
    return lines[0].removeprefix("simcore: error: ")


def _run(elf: Path, *args: str) -> list[str]:
    return ["run", str(elf), "-b", "rp2040", "-q", *args]


def test_issue_example_float64_for_int8(
    tmp_path: Path, model_elf: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", np.zeros((10, 4)))
    msg = _one_line_error(
        _run(model_elf["mnist_cnn-int8"], "--input", str(tmp_path / "x.npy")), capsys
    )
    assert msg.startswith(
        "x.npy holds 10 samples of 4 float64 values; mnist_cnn-int8.elf takes int8 inputs of "
        "784 bytes (28x28x1); give int8 values"
    )


def _case(tmp: Path, elfs: dict[str, Path], asm: AsmBuilder, name: str) -> tuple[list[str], str]:
    """(argv, words the one-line message must contain) for each refused input."""
    f32 = elfs["iris3-f32"]
    if name == "npy-shape-does-not-divide":
        np.save(tmp / "x.npy", np.zeros((10, 5), np.float32))
        return _run(f32, "--input", str(tmp / "x.npy")), "x.npy holds 10 samples of 5 float32"
    if name == "raw-does-not-divide":
        (tmp / "x.bin").write_bytes(bytes(29))
        return _run(f32, "--input", str(tmp / "x.bin")), "29 bytes, not a whole number of samples"
    if name == "no-simcore-io":
        np.save(tmp / "x.npy", np.zeros((1, 4), np.float32))
        elf = asm("rp2040", "movs r0, #0")
        return _run(elf, "--input", str(tmp / "x.npy")), "has no simcore_io descriptor"
    if name == "samples-without-simcore-io":
        return _run(asm("rp2040", "movs r0, #0"), "--samples", "3"), "cannot take --samples"
    if name == "directory":
        (tmp / "d.npy").mkdir()
        return _run(f32, "--input", str(tmp / "d.npy")), "d.npy is a directory"
    if name == "empty":
        (tmp / "e.npy").write_bytes(b"")
        return _run(f32, "--input", str(tmp / "e.npy")), "e.npy is empty"
    if name == "missing":
        return _run(f32, "--input", str(tmp / "nope.npy")), "nope.npy does not exist"
    if name == "garbage":
        (tmp / "g.npy").write_bytes(os.urandom(64).replace(b"\x93", b"\0"))
        return _run(f32, "--input", str(tmp / "g.npy")), "g.npy is not a NumPy .npy file"
    if name == "garbage-after-magic":
        (tmp / "g.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}")
        return _run(f32, "--input", str(tmp / "g.npy")), "g.npy is not a readable .npy file"
    if name == "pickled-objects":
        np.save(tmp / "o.npy", np.array([[1.0, "a", None, 2]], dtype=object), allow_pickle=True)
        return _run(f32, "--input", str(tmp / "o.npy")), "holds Python objects"
    if name == "too-few-for-samples":
        np.save(tmp / "x.npy", np.zeros((3, 4), np.float32))
        args = _run(f32, "--input", str(tmp / "x.npy"), "--samples", "5")
        return args, "--samples 5 asks for more samples than the 3 in x.npy"
    if name == "q16-nan":
        np.save(tmp / "x.npy", np.full((2, 4), np.nan))
        return _run(elfs["iris3-q16"], "--input", str(tmp / "x.npy")), "NaN has no Q16.16"
    if name == "uint8-for-int8":
        np.save(tmp / "x.npy", np.zeros((2, 4), np.uint8))
        return _run(elfs["iris3-int8"], "--input", str(tmp / "x.npy")), "2 samples of 4 uint8"
    raise AssertionError(name)


CASES = [
    "npy-shape-does-not-divide",
    "raw-does-not-divide",
    "no-simcore-io",
    "samples-without-simcore-io",
    "directory",
    "empty",
    "missing",
    "garbage",
    "garbage-after-magic",
    "pickled-objects",
    "too-few-for-samples",
    "q16-nan",
    "uint8-for-int8",
]


@pytest.fixture
def bad_case(
    tmp_path: Path, model_elf: dict[str, Path], asm_elf: AsmBuilder
) -> Callable[[str], tuple[list[str], str]]:
    """``bad_case(name)``: the argv of refused input ``name`` and words its error must hold."""
    return lambda name: _case(tmp_path, model_elf, asm_elf, name)


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_exit_2(
    name: str, bad_case: Callable[[str], tuple[list[str], str]], capsys: pytest.CaptureFixture[str]
) -> None:
    argv, words = bad_case(name)
    msg = _one_line_error(argv, capsys)
    assert words in msg, msg
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name", ["garbage", "no-simcore-io", "directory"])
def test_bad_input_with_json_is_a_document(
    name: str, bad_case: Callable[[str], tuple[list[str], str]], capsys: pytest.CaptureFixture[str]
) -> None:
    argv, words = bad_case(name)
    assert main([*argv, "--json"]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["error"]["kind"] == "InputError" and doc["error"]["exit_code"] == 2
    assert words in doc["error"]["message"]
    assert doc["stdout"] == "" and doc["batches"]["count"] == 0
    assert len(captured.err.strip().splitlines()) == 1


def test_unreadable_input(
    tmp_path: Path,
    model_elf: dict[str, Path],
    unreadable: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 4), np.float32))
    with unreadable(path):
        msg = _one_line_error(_run(model_elf["iris3-f32"], "--input", str(path)), capsys)
    assert msg == f"cannot read input file {path}: permission denied; check its permissions"


def test_batched_run_human_and_outputs(
    tmp_path: Path, batch_elf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.arange(10, dtype=np.int32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.bin"
    code = main(_run(batch_elf, "--input", str(tmp_path / "x.npy"), "--outputs", str(out)))
    text = capsys.readouterr().out
    assert code == 0
    assert "batches: 3 of 3 run, at most 4 samples each (one emulator start per batch)" in text
    assert "outputs: 10 sample(s), 40 bytes" in text
    assert np.frombuffer(out.read_bytes(), np.int32).tolist() == (2 * x).tolist()


def test_batched_run_json(
    tmp_path: Path, batch_elf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", np.arange(10, dtype=np.int32))
    assert main(_run(batch_elf, "--input", str(tmp_path / "x.npy"), "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"] is None and doc["n_samples"] == 10
    assert doc["batches"]["count"] == doc["batches"]["planned"] == 3
    assert doc["batches"]["capacity_samples"] == 4
    assert [r["samples"] for r in doc["batches"]["runs"]] == [4, 4, 2]
    assert doc["cycles"] == sum(r["cycles"] for r in doc["batches"]["runs"])
    assert doc["inputs"] == {
        "file": "x.npy",
        "held": "10 x 4 bytes of int32",
        "encoding": "little-endian bytes as given",
        "samples": 10,
        "bytes_per_sample": 4,
    }
    assert len(doc["sample_cycles"]) == 10 and doc["stdout"].count("\n") == 10


def test_fault_with_json_keeps_console_and_place(
    tmp_path: Path, batch_elf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", np.array([1, 2, 3, 4, 5, -1, 7], np.int32))
    assert main(_run(batch_elf, "--input", str(tmp_path / "x.npy"), "--json")) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    error = doc["error"]
    assert error["kind"] == "MemoryFault" and error["exit_code"] == 1
    assert error["address"] == "0xf0000000" and error["access"] == "read"
    assert error["pc"].startswith("0x1000") and error["location"].startswith("main+0x")
    assert error["message"].startswith("batch 2 of 2 (samples 4..6): unmapped read")
    assert doc["stdout"] == "x1\nx2\nx3\nx4\nx5\nx-1\n"
    assert doc["batches"]["planned"] == 2 and len(doc["batches"]["runs"]) == 1
    assert captured.err.strip().splitlines() == [f"simcore: error: {error['message']}"]


def test_nonzero_exit_with_json_names_it(
    tmp_path: Path, batch_elf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", np.array([1, -2], np.int32))
    assert main(_run(batch_elf, "--input", str(tmp_path / "x.npy"), "--json")) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 3
    assert doc["error"]["kind"] == "FirmwareStop" and doc["error"]["exit_code"] == 1
    assert "non-zero exit code (3)" in doc["error"]["message"]


def test_budget_at_the_cli(
    tmp_path: Path, batch_elf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", np.array([-3], np.int32))
    argv = _run(batch_elf, "--input", str(tmp_path / "x.npy"), "--max-instructions", "1e4")
    msg = _one_line_error(argv, capsys, code=1)
    assert msg.startswith("instruction budget of 10,000 exhausted at 0x")


# -- closed pipes: the run's exit code survives --------------------------------------------


def _simcore(*args: str) -> list[str]:
    return [sys.executable, "-m", "simcore", "run", *args, "-b", "rp2040"]


def _with_closed_reader(argv: list[str]) -> tuple[int, str]:
    """Run with stdout a pipe whose reader is gone before simcore writes (`| head -c0`)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    return proc.wait(timeout=60), err


@pytest.fixture(scope="module")
def inputs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pipe")
    np.save(d / "ok.npy", np.arange(10, dtype=np.int32))
    np.save(d / "fault.npy", np.array([1, 2, 3, 4, 5, -1], np.int32))
    np.save(d / "exit.npy", np.array([1, -2], np.int32))
    np.save(d / "bad.npy", np.zeros(3, np.float64))
    return d


@pytest.mark.parametrize(
    ("inputs", "extra", "code", "err_lines"),
    [
        ("ok.npy", [], 0, 0),
        ("ok.npy", ["--json"], 0, 0),
        ("fault.npy", [], 1, 1),
        ("fault.npy", ["--json"], 1, 1),
        ("exit.npy", ["--json", "--profile"], 1, 0),  # a firmware's exit code is no simcore error
        ("bad.npy", ["--json"], 2, 1),
    ],
    ids=["ok", "ok-json", "fault", "fault-json", "exit-json", "bad-input-json"],
)
def test_closed_pipe_keeps_exit_code(
    batch_elf: Path, inputs_dir: Path, inputs: str, extra: list[str], code: int, err_lines: int
) -> None:
    argv = _simcore(str(batch_elf), "--input", str(inputs_dir / inputs), *extra)
    rc, err = _with_closed_reader(argv)
    assert rc == code, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert len(err.strip().splitlines()) == err_lines, err


def test_closed_stdout_keeps_exit_code(batch_elf: Path, inputs_dir: Path) -> None:
    """stdout closed before simcore starts (`>&-`): Python has no sys.stdout at all."""
    argv = _simcore(str(batch_elf), "--input", str(inputs_dir / "fault.npy"))
    proc = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *argv], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("simcore: error: batch 2 of 2") and "Traceback" not in proc.stderr


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_the_parser_of_one_command_skips_the_other_modules() -> None:
    """``_OWN`` and ``_OPTIONAL`` name every subcommand (so the parser of one command can
    leave the others out), and the parser of a core command (``run``) imports none of
    the optional modules: a fresh interpreter shows which modules were loaded."""
    from simcore import cli

    everything = _commands(cli.build_parser())
    optional = {name for names in cli._OPTIONAL.values() for name in names}
    assert everything == set(cli._OWN) | optional
    assert _commands(cli.build_parser("run")) == {"run"}
    assert _commands(cli.build_parser("compare")) == {"compare"}
    assert _commands(cli.build_parser("linker-script")) == {"build", "linker-script"}
    assert _commands(cli.build_parser("no-such-command")) == everything
    assert cli._command_in(["--debug", "run", "x.elf"]) == "run"
    assert cli._command_in(["--help", "run"]) is None  # the top-level help lists them all
    code = (
        "import sys\nfrom simcore.cli import build_parser\nbuild_parser('run')\n"
        f"print(sorted(m for m in sys.modules if m in {sorted(cli._OPTIONAL)!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("board", ["nrf52840", "stm32f446", "rp2350"])
def test_run_prints_the_cache_line_on_every_cached_board(
    tmp_path: Path, board: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cache line of the text report, where data reads are not modeled (nrf52840,
    stm32f446: their hit count is None; this crashed the report) and where they are."""
    from simcore.boards import get_board
    from simcore.example import build_example

    if not shutil.which("arm-none-eabi-gcc"):
        pytest.skip("arm-none-eabi-gcc missing")
    elf = build_example(get_board(board), tmp_path).elf
    assert main(["run", str(elf), "-b", board]) == 0
    cache = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cache:")]
    assert len(cache) == 1
    expected = ", data reads not modeled, " if board != "rp2350" else " misses, "
    assert expected in cache[0] and "hits" in cache[0]


def test_run_leaves_data_hits_uncounted_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`simcore run` reads wholly cached XIP pages through plain memory by default (the
    data-hit count is then null); --count-data-hits counts them; every other figure is
    the same."""
    from simcore.boards import get_board
    from simcore.example import build_example

    if not shutil.which("arm-none-eabi-gcc"):
        pytest.skip("arm-none-eabi-gcc missing")
    elf = build_example(get_board("rp2350"), tmp_path).elf
    reports = []
    for extra in ([], ["--count-data-hits"]):
        assert main(["run", str(elf), "-b", "rp2350", "-q", "--json", *extra]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    fast, counted = reports
    assert fast["cache"]["data_hits"] is None and counted["cache"]["data_hits"] > 0
    for key in ("fetch_hits", "fetch_misses", "data_misses", "miss_cycles"):
        assert fast["cache"][key] == counted["cache"][key]
    assert fast["cycles"] == counted["cycles"] and fast["outputs_hex"] == counted["outputs_hex"]


def test_the_profile_is_computed_only_when_shown(
    example_elfs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``profile_limit=0`` (a human summary without --profile) computes no profile and
    changes nothing else; --json has every function, --profile N its top N."""
    from simcore.engine import run_firmware

    elf = example_elfs["rp2350"]
    none, every = (run_firmware(elf, "rp2350", profile_limit=n) for n in (0, None))
    assert none.cycle_report["profile"] == [] and len(every.cycle_report["profile"]) > 3
    assert {**none.cycle_report, "profile": []} == {**every.cycle_report, "profile": []}
    assert (none.cycles, none.instructions) == (every.cycles, every.instructions)

    assert main(["run", "-q", "--board", "rp2350", str(elf), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == (every.cycle_report["profile"])
    assert main(["run", "-q", "--board", "rp2350", str(elf), "--profile", "2"]) == 0
    shown = capsys.readouterr().out
    top = every.cycle_report["profile"][0]["function"]  # "a/b": one body with two names
    assert any(name in shown for name in top.split("/"))
