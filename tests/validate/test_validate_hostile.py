"""validate under faults, dead workers, signals and unwritable outputs: no lost result.

Every case runs the real command (``simcore.cli.main`` in this process, or a
``python -m simcore`` child where a signal must reach it) and checks what a CI
job relies on: the exit code, one line per error, and results that were
computed being written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from sim_support import needs_toolchain

from simcore import validate as v
from simcore.cli import main
from simcore.errors import EmulationError
from simcore.firmware.build import build_model_firmware

pytestmark = needs_toolchain

UDF = b"\x00\xde"  # Thumb `udf #0`: a permanently undefined instruction


def _patch(elf: Path, symbol: str, code: bytes) -> None:
    """Overwrite the first instruction of ``symbol`` in the ELF file with ``code``."""
    with elf.open("rb") as f:
        e = ELFFile(f)
        sym = e.get_section_by_name(".symtab").get_symbol_by_name(symbol)[0]
        addr = sym["st_value"] & ~1
        offset = next(
            s["sh_offset"] + addr - s["sh_addr"]
            for s in e.iter_sections()
            if s["sh_addr"] <= addr < s["sh_addr"] + s["sh_size"] and s["sh_type"] == "SHT_PROGBITS"
        )
    data = bytearray(elf.read_bytes())
    data[offset : offset + len(code)] = code
    elf.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def faulting_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris3 int8 firmware whose inference starts with UDF, with 8-sample batches."""
    out = tmp_path_factory.mktemp("faulting")
    fw = build_model_firmware("iris3", "int8", "rp2040", out, capacity=8)
    _patch(fw.elf, "nn_int8_fully_connected", UDF)
    return fw.elf


def test_fault_inside_a_worker_fails_its_combination_in_one_line(
    faulting_elf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    args = ["validate", "--firmware", str(faulting_elf), "-m", "iris3", "-f", "int8",
            "-b", "rp2040", "-j", "2", "--json", str(out), "-q"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("simcore: error: iris3/int8/rp2040:")
    assert "samples" in lines[0] and "Traceback" not in err
    (result,) = json.loads(out.read_text())["results"]
    assert result["passed"] is False and result["error"] and result["exactness"] == "error"


def test_one_bad_combination_keeps_the_others(tmp_path: Path) -> None:
    """A missing golden and a good model in one run: the good one is judged and kept."""
    bad = tmp_path / "not_a_golden"
    bad.mkdir()
    (bad / "model.keras").write_bytes(b"")
    combos = [
        v.Combination("iris3", "int8", "rp2350"),
        v.Combination("x", "int8", "rp2350", str(bad)),
    ]
    first, second = v.validate_many(combos, limit=4, jobs=2)
    assert first.passed and first.n_samples == 4
    assert second.error and "not a golden folder" in second.error and second.error_exit_code == 2


def _die_on_first_attempt(
    args: tuple[str, str, bytes, int, int], limits: v.BatchLimits
) -> v.BatchResult | EmulationError:
    marker = Path(os.environ["SIMCORE_TEST_MARKER"]) / f"{args[4]}"
    if not marker.exists():
        marker.touch()
        os._exit(9)  # as if killed
    return v._call(args, limits)


def _always_die(args: tuple[str, str, bytes, int, int], limits: v.BatchLimits) -> v.BatchResult:
    os._exit(9)


def _batches(n: int, out: Path) -> list[tuple[str, str, bytes, int, int]]:
    fw = build_model_firmware("iris3", "int8", "rp2350", out, capacity=4)
    golden = v.Combination("iris3", "int8", "rp2350").load_golden()
    x = golden.inputs_int8[:n].tobytes()
    size = fw.input_bytes
    return [
        (str(fw.elf), "rp2350", x[i * size : (i + 4) * size], min(4, n - i), i)
        for i in range(0, n, 4)
    ]


def test_killed_worker_is_replaced_and_its_batch_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMCORE_TEST_MARKER", str(tmp_path))
    runner = v._BatchRunner(2, v.BatchLimits(), None, call=_die_on_first_attempt)
    runner.run([(0, _batches(12, tmp_path))])
    assert not runner.errors and runner.complete(0)
    assert [b.start for b in runner.done_for(0)] == [0, 4, 8]


def test_a_batch_that_always_kills_its_worker_fails_its_plan_only(tmp_path: Path) -> None:
    runner = v._BatchRunner(2, v.BatchLimits(), None, call=_always_die)
    runner.run([(0, _batches(8, tmp_path))])
    assert "a worker process died while running samples 0..3 on its own" in str(runner.errors[0])


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _start_long_validate(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "simcore", "validate", "-m", "mnist_cnn", "-f", "f32",
           "-b", "rp2040", "--limit", "400", "-j", "2", *extra]  # fmt: skip
    env = {**os.environ, "CI": "true"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path, start_new_session=True)  # fmt: skip


def _wait_for_workers(proc: subprocess.Popen[str]) -> set[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = {k for k in _children(proc.pid) if _children(k) == set()}
        if len(kids) >= 2:
            return kids
        time.sleep(0.2)
    pytest.fail("validate started no worker processes")


def test_workers_end_when_the_main_process_is_killed(tmp_path: Path) -> None:
    proc = _start_long_validate(tmp_path)
    workers = _wait_for_workers(proc)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)


def test_ctrl_c_writes_the_finished_combinations_marked_partial(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it."""
    out = tmp_path / "partial.json"
    # Three IRIS combinations finish in a second; MNIST f32 on the M0+ takes minutes.
    cmd = [sys.executable, "-m", "simcore", "validate", "--all", "-f", "f32", "-b", "rp2040",
           "--limit", "300", "-j", "2", "--json", str(out)]  # fmt: skip
    env = {**os.environ, "CI": "true"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path, start_new_session=True)  # fmt: skip
    assert proc.stderr is not None
    # Wait until the progress line shows work done (the IRIS combinations finish first).
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "samples" in line or not line:
            break
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    stderr = seen + stderr
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "results written are marked partial" in stderr
    data = json.loads(out.read_text())
    assert data["meta"]["partial"] is True
    assert all(r["passed"] for r in data["results"])
    assert len(data["results"]) < 4


@pytest.mark.parametrize("target", ["dir", "/dev/full", "readonly"])
def test_unwritable_results_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    if target == "readonly" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    if target == "dir":
        path = tmp_path
    elif target == "readonly":
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        path = folder / "r.json"
    else:
        path = Path(target)
    code = main(["validate", "-m", "iris3", "-f", "int8", "-b", "rp2040", "--limit", "3",
                 "--json", str(path), "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot write results" in err
    assert not list(tmp_path.glob(".*.tmp"))


def test_hanging_firmware_fails_at_its_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fw = build_model_firmware("iris3", "int8", "rp2350", tmp_path, capacity=8)
    _patch(fw.elf, "nn_int8_fully_connected", b"\xfe\xe7")  # `b .`: spins forever
    args = ["validate", "--firmware", str(fw.elf), "-m", "iris3", "-f", "int8", "-b", "rp2350",
            "--limit", "8", "--max-instructions", "200000", "-q"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budget of 200,000" in err.replace("200000", "200,000")
    assert main([*args[:-3], "--timeout", "0.5", "-q"]) == 1
    assert "0.5" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag",
    [["--limit", "0"], ["--limit", "-1"], ["--jobs", "0"], ["--timeout", "inf"],
     ["--timeout", "-1"], ["--max-instructions", "-5"]],
    ids=lambda f: " ".join(f),
)  # fmt: skip
def test_bad_validate_flags_refused_in_one_line(
    flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "-m", "iris3", "-f", "int8", "-b", "rp2040", *flag])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_json_comes_out_with_the_error_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    assert main(["validate", "-m", "no_such_model", "--json", str(out)]) == 2
    doc = json.loads(out.read_text())
    assert doc["results"] == [] and doc["error"]["exit_code"] == 2
    assert "unknown model 'no_such_model'" in doc["error"]["message"]
    assert main(["diagnose", str(tmp_path / "missing.elf"), "--json"]) == 2
    printed = json.loads(capsys.readouterr().out)
    assert (
        printed["error"]["kind"] == "UsageError" and "does not exist" in printed["error"]["message"]
    )


def test_concurrent_validates_into_an_empty_build_folder(tmp_path: Path) -> None:
    """Each build lands whole (renamed into place): no reader sees a half-written ELF."""
    env = {**os.environ, "SIMCORE_OUT_DIR": str(tmp_path / "out"), "CI": "true"}
    cmd = [sys.executable, "-m", "simcore", "validate", "-m", "iris3", "-f", "int8",
           "-b", "rp2350", "-q"]  # fmt: skip
    procs = [
        subprocess.Popen(
            cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "1 passed" in out
    assert not [p for p in (tmp_path / "out").rglob(".*")]  # no temporaries left
