"""validate on a Dask cluster: the local run's results, and a lost worker costs nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sim_support import needs_toolchain

from simcore.cli import main
from simcore.errors import SimError, UsageError
from simcore.validate import BatchLimits, BatchResult, Combination, _BatchRunner, _call, _plan

pytest.importorskip("distributed")

from simcore.distributed import DaskBatchRunner, check_address, check_workers, installation

#: Set in the test process before the cluster starts, so its workers inherit it.
DIE_MARKER = "SIMCORE_TEST_DIE_MARKER"


def die_once(args: tuple[str, str, bytes, int, int], limits: BatchLimits) -> BatchResult | SimError:
    """A batch call whose first run (the one that creates the marker) kills its worker."""
    marker = Path(os.environ[DIE_MARKER])
    if args[4] == 0 and "int8" in args[0]:
        try:
            marker.touch(exist_ok=False)
        except FileExistsError:
            pass
        else:
            os._exit(1)  # the worker process dies mid-batch, as if killed
    return _call(args, limits)


def _rows(path: Path) -> list[dict[str, object]]:
    rows = json.loads(path.read_text())["results"]
    return [{k: v for k, v in r.items() if k not in ("emulation_seconds", "built")} for r in rows]


@needs_toolchain
def test_local_cluster_gives_the_local_runs_results(tmp_path: Path) -> None:
    sweep = ["validate", "--model", "iris3", "--board", "rp2040", "--limit", "6", "-q"]
    assert main([*sweep, "-j", "1", "--json", str(tmp_path / "local.json")]) == 0
    dask_args = [*sweep, "--scheduler", "local:2", "--json", str(tmp_path / "dask.json")]
    assert main(dask_args) == 0
    assert _rows(tmp_path / "dask.json") == _rows(tmp_path / "local.json")
    assert len(_rows(tmp_path / "local.json")) == 3


@needs_toolchain
def test_a_worker_killed_mid_batch_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DIE_MARKER, str(tmp_path / "died"))
    plans = [_plan(Combination("iris3", fmt, "rp2350"), None, 5, "test") for fmt in ("f32", "int8")]
    work = [(i, p.batches) for i, p in enumerate(plans)]
    local = _BatchRunner(1, BatchLimits(), None)
    local.run(work)
    runner = DaskBatchRunner("local:2", 2, BatchLimits(), None, call=die_once)
    runner.run(work)
    assert (tmp_path / "died").exists(), "the int8 batch's first attempt killed its worker"
    assert not runner.errors
    for i in range(len(plans)):
        assert runner.complete(i)
        got, want = runner.done_for(i), local.done_for(i)
        assert [(b.outputs, b.sample_cycles, b.memory) for b in got] == [
            (b.outputs, b.sample_cycles, b.memory) for b in want
        ]


def test_workers_with_another_simcore_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Cluster:  # stands in for a Client: two workers, one with other timing data
        def run(self, fn: object) -> dict[str, tuple[str, str]]:
            return {"tcp://a:1": installation(), "tcp://b:1": (installation()[0], "0" * 16)}

    with pytest.raises(UsageError, match="1 of 2 Dask workers run another simcore"):
        check_workers(Cluster())  # type: ignore[arg-type]
    version, tables = installation()
    assert len(tables) == 16 and version


def test_scheduler_addresses_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_address("tcp://10.0.0.2:8786") == "tcp://10.0.0.2:8786"
    assert check_address("local:3") == "local:3"
    with pytest.raises(UsageError, match="expected tcp://HOST:PORT"):
        check_address("10.0.0.2")
    assert main(["validate", "--model", "iris3", "--board", "rp2040", "--limit", "1",
                 "--scheduler", "tcp://127.0.0.1:1", "-q"]) == 2  # fmt: skip
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in capsys.readouterr().err
