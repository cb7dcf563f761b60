"""Run validation batches on a Dask cluster (``validate --scheduler ADDRESS``).

The local process pool (:class:`simcore.validate._BatchRunner`) stays the default;
this module swaps its execution for a ``distributed.Client``'s while keeping
everything else of a validation run on the machine that started it: firmware is
built there, goldens are loaded and inputs encoded there, and the outputs are
judged there, so a distributed run's report is the local run's, figure for
figure (the tests check it).

What crosses the network:

- each firmware ELF once per worker that needs it: the client submits its bytes
  as one task keyed by their sha256 and every batch depends on that task, whose
  result the scheduler moves to a worker the first time a batch of that firmware
  runs there;
  the worker writes it to its own cache folder (``<tmp>/simcore-worker-<uid>/
  <sha256>/<name>``) once, so the engine's per-process ELF cache applies;
- with each ELF, the build manifest beside it (``<stem>.json``: layer names and
  MACs for the per-layer figures), written next to it in the worker's cache;
- a user's board file (``--board my.toml``) the same way, as its text;
- per batch, only that batch's encoded inputs and the limits; back, the
  :class:`simcore.validate.BatchResult` (outputs, per-sample cycles, memory).

A worker that dies mid-batch loses nothing finished: Dask reruns its tasks on
other workers (up to ``distributed.scheduler.allowed-failures`` times, 3 by
default; then the batch's combination fails with the cause, and the others go
on). Results stream back as they finish and drive the progress bar.

``ADDRESS`` is a scheduler's address (``tcp://host:8786``, from ``dask
scheduler``), or ``local`` / ``local:N`` for a ``LocalCluster`` of N worker
processes (default: the ``--jobs`` count) on this machine, started for the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simcore.errors import SimError, UsageError
from simcore.validate import BatchLimits, BatchResult, Progress, _BatchRunner

if TYPE_CHECKING:
    from distributed import Client

#: The environment variable that sets ``--scheduler``'s default.
SCHEDULER_ENV = "SIMCORE_SCHEDULER"

_LOCAL = re.compile(r"local(?::(\d+))?")


def require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(
            "--scheduler needs Dask distributed, which is not installed",
            hint="pip install 'simcore[distributed]'",
        ) from None


def check_address(address: str) -> str:
    """``address`` if it names a scheduler (``tcp://``, ``tls://``, ``local[:N]``)."""
    if _LOCAL.fullmatch(address) or re.fullmatch(r"(tcp|tls|ucx|inproc)://\S+", address):
        return address
    raise UsageError(
        f"scheduler {address!r}: expected tcp://HOST:PORT (from 'dask scheduler'), "
        "local or local:N (N worker processes on this machine)"
    )


@contextlib.contextmanager
def connect(address: str, jobs: int) -> Iterator[Client]:
    """A client of the scheduler at ``address`` (a LocalCluster for ``local[:N]``)."""
    require_distributed()
    import logging

    from distributed import Client, LocalCluster

    check_address(address)
    # Dask logs every connection at INFO; the run's progress and table are what matter.
    for name in ("distributed", "dask"):
        logging.getLogger(name).setLevel(logging.WARNING)
    local = _LOCAL.fullmatch(address)
    if local:
        workers = int(local[1]) if local[1] else jobs
        if workers < 1:
            raise UsageError(f"scheduler {address}: at least 1 worker")
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                scheduler_kwargs={"dashboard": False},  # no web server nobody asked for
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        _probe(address)  # a refused port fails now, not after the client's 20 s of retries
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise UsageError(
            f"cannot reach the Dask scheduler at {address}: {exc}",
            hint="start one with 'dask scheduler' and workers with 'dask worker ADDRESS'",
        ) from None
    with client:
        yield client


def _probe(address: str) -> None:
    """Open and close a TCP connection to a tcp:// scheduler address (OSError if refused)."""
    import socket

    match = re.fullmatch(r"tcp://\[?([^\]]+?)\]?:(\d+)/?", address)
    if match:
        socket.create_connection((match[1], int(match[2])), timeout=5).close()


def _worker_cache() -> Path:
    return Path(tempfile.gettempdir()) / f"simcore-worker-{os.getuid()}"


def _materialize(sha: str, name: str, data: bytes, sidecar: bytes | None = None) -> str:
    """The path of ``data`` in this worker's cache, written once (atomically).

    ``sidecar``: the build manifest beside an ELF (``<stem>.json``: layer names, MACs),
    written next to it so the worker's run reads it as a local run does.
    """
    path = _worker_cache() / sha / name
    if not path.is_file() or path.stat().st_size != len(data):
        path.parent.mkdir(parents=True, exist_ok=True)
        if sidecar is not None:
            _write_atomic(path.with_suffix(".json"), sidecar)
        _write_atomic(path, data)
    return str(path)


def _write_atomic(path: Path, data: bytes) -> None:
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_bytes(data)
    part.replace(path)


def _remote_batch(
    call: Callable[[tuple[str, str, bytes, int, int], BatchLimits], BatchResult | SimError],
    elf: tuple[str, str, bytes, bytes | None],
    board: str | tuple[str, str, bytes, bytes | None],
    inputs: bytes,
    n: int,
    start: int,
    limits: BatchLimits,
) -> BatchResult | SimError:
    """Worker side of one batch: the files from the cache, then the local pool's call."""
    elf_path = _materialize(*elf)
    board_ref = board if isinstance(board, str) else _materialize(*board)
    return call((elf_path, board_ref, inputs, n, start), limits)


def installation() -> tuple[str, str]:
    """This process's simcore version and a hash of its board, core and timing data.

    Two installations that agree on both compute the same cycles for the same
    ELF; a worker that disagrees with the client would silently change figures.
    """
    from simcore import __version__

    data = Path(__file__).parent / "data"
    digest = hashlib.sha256()
    for path in sorted(data.rglob("*.toml")):
        digest.update(path.relative_to(data).as_posix().encode() + b"\0" + path.read_bytes())
    return __version__, digest.hexdigest()[:16]


def check_workers(client: Client) -> None:
    """Refuse a cluster whose workers run another simcore (version or timing data)."""
    mine = installation()
    theirs = client.run(installation)
    wrong = {w: v for w, v in theirs.items() if tuple(v) != mine}
    if wrong:
        worker, (version, tables) = next(iter(sorted(wrong.items())))
        raise UsageError(
            f"{len(wrong)} of {len(theirs)} Dask workers run another simcore than this one "
            f"(e.g. {worker}: simcore {version}, data {tables}; here: simcore {mine[0]}, "
            f"data {mine[1]}): their cycle figures could differ",
            hint="install the same simcore on every worker machine",
        )
    if not theirs:
        raise UsageError("the Dask cluster has no workers", hint="start some with 'dask worker'")


def _identity(
    content: tuple[str, str, bytes, bytes | None],
) -> tuple[str, str, bytes, bytes | None]:
    return content


def _content(path: str) -> tuple[str, str, bytes, bytes | None]:
    """(sha256, file name, bytes, the manifest beside it or None) of a file to ship."""
    file = Path(path)
    data = file.read_bytes()
    manifest = file.with_suffix(".json")
    sidecar = manifest.read_bytes() if file.suffix == ".elf" and manifest.is_file() else None
    digest = hashlib.sha256(data)
    digest.update(sidecar or b"")
    return digest.hexdigest(), file.name, data, sidecar


class DaskBatchRunner(_BatchRunner):
    """:class:`_BatchRunner` whose batches run on a Dask cluster."""

    def __init__(
        self,
        address: str,
        jobs: int,
        limits: BatchLimits,
        bar: Progress | None,
        call: Callable[[tuple[str, str, bytes, int, int], BatchLimits], BatchResult | SimError]
        | None = None,
    ) -> None:
        super().__init__(jobs, limits, bar, call)
        self.address = check_address(address)

    def run(self, work: list[tuple[int, list[tuple[str, str, bytes, int, int]]]]) -> None:
        from distributed import as_completed

        pending: dict[tuple[int, int], tuple[str, str, bytes, int, int]] = {}
        for plan, batches in work:
            self.sizes[plan] = len(batches)
            pending.update({(plan, b): args for b, args in enumerate(batches)})
        if not pending:
            return
        with connect(self.address, self.jobs) as client:
            check_workers(client)
            shipped: dict[str, Any] = {}

            def ship(path: str) -> Any:
                # One task per file, keyed by its content hash, whose result the batches
                # share. Not client.scatter: scattered data dies with the worker holding
                # it, and every batch needing it is cancelled; a task's input stays on
                # the scheduler, so Dask recomputes it on another worker instead.
                if path not in shipped:
                    content = _content(path)
                    shipped[path] = client.submit(
                        _identity, content, key=f"simcore-file-{content[0]}", pure=False
                    )
                return shipped[path]

            futures = {}
            for key, (elf, board, inputs, n, start) in pending.items():
                board_arg: Any = ship(board) if Path(board).is_file() else board
                future = client.submit(
                    _remote_batch, self.call, ship(elf), board_arg, inputs, n, start, self.limits,
                    pure=False, key=f"simcore-batch-{key[0]}-{key[1]}-{os.getpid()}",
                )  # fmt: skip
                futures[future] = key
            try:
                for future in as_completed(futures):
                    key = futures[future]
                    if key[0] in self.errors:
                        continue
                    try:
                        outcome = future.result()
                    except Exception as exc:  # a lost worker beyond retries, a cancelled task
                        start, n = pending[key][4], pending[key][3]
                        outcome = f"samples {start}..{start + n - 1} could not run on the " + (
                            f"cluster: {type(exc).__name__}: {exc}"
                        )
                        self.errors.setdefault(key[0], outcome)
                        continue
                    self._finish(key, outcome)
            except BaseException:  # Ctrl-C: drop the queued work on the cluster too
                client.cancel(list(futures))
                raise
