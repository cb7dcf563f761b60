"""The ``simcore`` command line.

Every error simcore raises on purpose is a SimError: the CLI prints it as one
line (``simcore: error: ...``) and exits with its code (2 usage/input, 1
fault/mismatch). ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os

# Before anything imports NumPy: the command line does little linear algebra, and
# OpenBLAS's thread pool costs every process start-up time (about a fifth of a small
# `simcore run`) and keeps idle threads spinning beside the emulation in each
# validation worker. An explicit setting is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import dataclasses
import io
import json
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from simcore import codecache

# Before the modules that define dataclasses: their generated methods compile once per
# machine instead of once per process (about a quarter of a small warm `simcore run`).
codecache.install()

from simcore import __version__, paths  # noqa: E402
from simcore import lazylog as logging  # noqa: E402
from simcore.boards import BoardSpec, get_board, load_boards  # noqa: E402
from simcore.elf import load_elf  # noqa: E402
from simcore.errors import EmulationError, MemoryFault, OutputError, SimError, UsageError  # noqa: E402
from simcore.inputs import load_inputs, require_io  # noqa: E402
from simcore.limits import add_limit_arguments, count_arg, limits_from_args, samples_arg  # noqa: E402
from simcore.results import RunResult, StopReason  # noqa: E402

if TYPE_CHECKING:
    from simcore.batches import BatchRunner
    from simcore.cycles.callgraph import DetailedProfile

Handler = Callable[[argparse.Namespace], int]


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


# -- simcore boards -----------------------------------------------------------


def _cmd_boards(args: argparse.Namespace) -> int:
    boards = {b.name: b for b in map(get_board, args.files)} if args.files else load_boards()
    if args.json:
        data = [
            {
                "name": b.name,
                "description": b.description,
                "core": b.core.name,
                "core_exactness": _core_exactness(b),
                "clock_hz": b.clock_hz,
                "memory": [
                    {
                        "name": r.name,
                        "kind": r.kind.value,
                        "start": f"0x{r.start:08x}",
                        "size_bytes": r.size_bytes,
                    }
                    for r in b.memory
                ],
                "cache": dataclasses.asdict(b.cache) if b.cache else None,
                "link": dataclasses.asdict(b.link) if b.link else None,
                "timer": {
                    "region": b.timer.region,
                    "tick_hz": b.timer.tick_hz,
                    "registers": {name: offset for name, offset in b.timer.registers},
                }
                if b.timer
                else None,
                "core_timing": dict(b.core_timing),
                "peripherals": b.peripherals,
            }
            for b in boards.values()
        ]
        _out(json.dumps(data, indent=2))
        return 0
    width = max(12, *(len(b.name) for b in boards.values()))
    for b in boards.values():
        core = f"{b.core.display_name} ({_core_exactness(b)})"
        _out(f"{b.name:<{width}} {core:<24} {b.clock_hz / 1e6:>5.0f} MHz  {b.description}")
        for r in b.memory:
            _out(
                f"{'':<{width}} {r.name:<11} 0x{r.start:08x}  {_size(r.size_bytes):>7}  "
                f"{r.kind.value}"
            )
        if b.cache:
            c = b.cache
            _out(
                f"{'':<{width}} {'cache':<11} {_size(c.size_bytes)} {c.ways}-way, "
                f"{c.line_bytes}-byte "
                f"lines on {c.region}, miss +{c.miss_cycles} cycles ({c.tag})"
                + ("; data reads too" if c.data_reads and c.data_cache is None else "")
                + (
                    f"; data reads through a {_size(c.data_cache.size_bytes)} "
                    f"{c.data_cache.ways}-way D-cache, miss +{c.data_cache.miss_cycles}"
                    if c.data_reads and c.data_cache is not None
                    else ""
                )
            )
        if b.link:
            k = b.link
            _out(
                f"{'':<{width}} {'link':<11} code in {k.code_in}, data in {k.data_in}, "
                f"stack {_size(k.stack_bytes)} + heap {_size(k.heap_bytes)} in {k.stack_in}"
            )
        if b.timer:
            t = b.timer
            _out(f"{'':<{width}} {'timer':<11} {t.tick_hz / 1e6:g} MHz tick count in {t.region}")
        if b.peripherals:
            from simcore.registers import load_chip

            _out(f"{'':<{width}} {'peripherals':<11} {load_chip(b.peripherals).summary()}")
    return 0


def _core_exactness(board: BoardSpec) -> str:
    """How far the core's cycle figures can be trusted: its timing table's exactness tag."""
    from simcore.cycles.tables import load_table

    return load_table(board.core.name).exactness.value


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MB"
    if n >= 1024:
        return f"{n / 1024:g} KB"
    return f"{n} B"


# -- simcore run --------------------------------------------------------------


def _print_memory(result: RunResult) -> None:
    """Totals (each against the region it lives in), harness buffers, then each region."""
    mem = result.memory
    for name, usage in (
        ("flash", mem.flash),
        ("static RAM", mem.static_ram),
        ("stack peak", mem.stack_peak),
        ("heap peak", mem.heap_peak),
    ):
        cap = ""
        if usage.capacity_bytes:
            cap = f" of {usage.capacity_bytes:,} ({usage.percent:.2f}%)"
            if usage.region_used_bytes not in (None, usage.used_bytes):
                cap = (
                    f"; {usage.region} {usage.percent:.2f}% full with heap and stack "
                    f"({usage.region_used_bytes:,} of {usage.capacity_bytes:,})"
                )
            elif usage.region is not None:
                cap += f" in {usage.region}"
        _out(f"{name + ':':<12} {usage.used_bytes:>9,} bytes{cap}")
    if mem.harness:
        names = ", ".join(f"{b.name} {b.size_bytes:,}" for b in mem.harness)
        _out(f"{'harness I/O:':<12} {mem.harness_bytes:>9,} bytes, not counted above ({names})")
    for r in mem.regions:
        if not r.used_bytes:
            continue
        parts = [f"program {r.program_bytes:,}"]
        if r.harness_bytes:
            parts.append(f"harness I/O {r.harness_bytes:,}")
        if r.reserved_bytes:
            parts.append(f"heap/stack reserved {r.reserved_bytes:,}")
        _out(
            f"  {r.name:<10} {r.used_bytes:>9,} of {r.capacity_bytes:>9,} bytes "
            f"({r.percent:6.2f}%): {', '.join(parts)}"
        )


def print_run(
    result: RunResult, *, console_shown: bool, profile: int = 0, batches: str | None = None
) -> None:
    """Human summary of one run (``batches``: a line on how it was split, if it was)."""
    if not console_shown and result.stdout:
        sys.stdout.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
    _out(f"-- {Path(result.elf).name} on {result.board} ({result.core})")
    _out(
        f"stopped: {result.stop_reason.value} at {result.stop_location}, "
        f"exit code {result.exit_code}"
    )
    report = result.cycle_report
    if result.cycles is not None and report:
        model = report["cycle_model"]
        _out(
            f"cycles:      {result.cycles:>12,}  ({report['seconds_at_clock'] * 1e3:.3f} ms at "
            f"{report['clock_hz'] / 1e6:g} MHz; {model['core']} model, {model['exactness']}, "
            f"memory {model['memory_model']})"
        )
        _out(f"instructions: {result.instructions:>11,}")
        if result.sample_cycles:
            sc = result.sample_cycles
            _out(
                f"per sample:  {sum(sc) / len(sc):>12,.0f} cycles mean "
                f"(min {min(sc):,}, max {max(sc):,}, {len(sc)} samples)"
            )
        cache = report.get("cache")
        if cache:
            data = ""
            if cache["data_reads"] == "modeled":
                hits = cache["data_hits"]
                data = (
                    f", data {cache['data_misses']:,} misses (hits not counted: --count-data-hits)"
                    if hits is None
                    else f", data {hits:,} hits / {cache['data_misses']:,} misses"
                )
            elif cache["data_reads"] == "not modeled":
                data = ", data reads not modeled"
            _out(
                f"cache:       fetch {cache['fetch_hits']:,} hits / {cache['fetch_misses']:,} "
                f"misses{data}, {cache['miss_cycles']:,} miss cycles"
            )
    _print_memory(result)
    if result.n_samples:
        _out(f"outputs: {result.n_samples} sample(s), {len(result.outputs)} bytes")
    if batches:
        _out(f"batches: {batches}")
    layers = result.layers()
    if layers:
        from simcore.cycles.layers import format_layer_table

        _out(
            f"per layer (per inference, {len({s.sample_index for s in result.layer_spans})} "
            "sample(s); marks included):"
        )
        for line in format_layer_table(layers):
            _out(f"  {line}")
    detail = result.profile_detail
    if profile and detail is not None:
        _print_profile(detail, profile)
    elif profile and report.get("profile"):
        _out(f"{'function':<32} {'cycles':>10} {'instr':>10} {'share':>7}")
        for entry in report["profile"][:profile]:
            _out(
                f"{entry['function'][:32]:<32} {entry['cycles']:>10,} "
                f"{entry['instructions']:>10,} {entry['share']:>7.1%}"
            )
    for note in result.notes:
        _out(f"note: {note}")


def _print_profile(detail: DetailedProfile, limit: int) -> None:
    """Functions (exclusive, inclusive, calls), then the hottest lines and loops."""
    total = detail.total_cycles or 1
    _out(f"profile ({detail.scope}; {detail.total_cycles:,} cycles; inclusive cycles "
         "apportioned by call counts):")  # fmt: skip
    _out(f"  {'function':<30} {'self':>11} {'self%':>6} {'total':>11} {'total%':>6} "
         f"{'calls':>8} {'instr':>11}")  # fmt: skip
    for f in detail.functions[:limit]:
        _out(
            f"  {f.name[:30]:<30} {f.exclusive_cycles:>11,} {f.exclusive_cycles / total:>6.1%} "
            f"{f.inclusive_cycles:>11,.0f} {f.inclusive_cycles / total:>6.1%} {f.calls:>8,} "
            f"{f.instructions:>11,}"
        )
    if detail.indirect_calls:
        _out(f"  ({detail.indirect_calls:,} calls through a register: their callees' cycles "
             "are not in their callers' totals)")  # fmt: skip
    if detail.lines:
        _out(f"  hottest source lines:{'':<21} {'cycles':>11} {'share':>6}")
        for line in detail.lines[: min(limit, 10)]:
            where = f"{Path(line.file).name}:{line.line}"
            _out(f"    {where[:40]:<40} {line.cycles:>11,} {line.cycles / total:>6.1%}  "
                 f"{line.function}")  # fmt: skip
    if detail.loops:
        _out(f"  hottest loops (own cycles, without the calls in them):{'':<0} {'cycles':>11} "
             f"{'share':>6} {'iterations':>10}")  # fmt: skip
        for loop in detail.loops[: min(limit, 10)]:
            where = Path(loop.source.split(":")[0]).name + (
                ":" + loop.source.split(":")[1] if ":" in loop.source else ""
            )
            label = f"{loop.function} 0x{loop.start:08x} {where}"
            _out(f"    {label[:52]:<52} {loop.cycles:>11,} {loop.cycles / total:>6.1%} "
                 f"{loop.back_branches:>10,}")  # fmt: skip


def _cmd_run(args: argparse.Namespace) -> int:
    """``simcore run``: with ``--json``, a JSON document on stdout whatever happens."""
    import gc

    enabled = gc.isenabled()
    gc.disable()  # importing makes objects that live on: collecting meanwhile finds nothing
    try:
        from simcore import engine  # noqa: F401 (the run imports it: here, before the freeze)
    finally:
        if enabled:
            gc.enable()
    # What exists now (mostly the imported modules' objects) is moved out of the
    # collector's generations, so that neither the run's collections nor the one at
    # exit scan it again (5% of a small warm run's instructions). A caller that runs
    # main() in its own process gets its objects back into the generations afterwards.
    gc.freeze()
    try:
        return _run(args)
    finally:
        if not getattr(args, "own_process", False):
            gc.unfreeze()


def _run(args: argparse.Namespace) -> int:
    from simcore.batches import BatchRunner

    stream = not args.json and not args.quiet
    runner: BatchRunner | None = None
    try:
        board = get_board(args.board)
        image = load_elf(args.elf)
        fw = inputs = None
        if args.input is not None:
            fw = require_io(image, "--input")
            inputs = load_inputs(args.input, fw)
            if args.samples is not None:
                inputs = inputs.first(args.samples)
        elif args.samples is not None:
            fw = require_io(image, "--samples")
        if args.dump is not None:
            from simcore.outputs import check_writable

            check_writable(args.dump, what="trace dump")
        if args.profile_sample is not None and not args.profile:
            args.profile = 15
        if args.profile_out is not None:
            from simcore.outputs import check_writable

            check_writable(args.profile_out, what="profile")
        detail = bool(args.profile) or args.profile_out is not None
        runner = BatchRunner(
            image,
            board,
            limits=limits_from_args(args),
            trace=args.trace or args.dump is not None,
            memory_model=args.memory_model,
            # All functions for --json, the top ones for --profile, else none.
            profile_limit=max(args.profile, 50) if args.profile else None if args.json else 0,
            echo=_echo if stream else None,
            profile_detail=detail,
            profile_sample=args.profile_sample,
            data_hits=args.count_data_hits,
        )
        run = runner.run(fw, inputs, args.samples)
        if args.outputs:
            _write_outputs(args.outputs, run.result.outputs)
        if args.profile_out is not None and run.result.profile_detail is not None:
            from simcore.cycles.callgraph import chrome_trace, speedscope
            from simcore.outputs import write_output

            found, name = run.result.profile_detail, Path(args.elf).name
            doc = (
                speedscope(found, name, f"simcore {__version__}")
                if args.profile_format == "speedscope"
                else chrome_trace(found, name)
            )
            write_output(args.profile_out, json.dumps(doc) + "\n", what="profile")
            if not args.json:
                _out(f"profile: {args.profile_format} file written to {args.profile_out}")
        if args.dump is not None:
            from simcore.traces import dump_traces

            dumped = dump_traces(args.dump, Path(args.elf), run.result.traces)
            if not args.json:
                _out(f"traces: {len(dumped['layers'])} layer(s) written to {args.dump}")
    except SimError as exc:
        if args.json:
            _out(json.dumps(_run_error_document(args, exc, runner), indent=2))
        raise
    if args.json:
        _out(json.dumps({**run.as_dict(), "error": _stop_error(run.result)}, indent=2))
    else:
        split = None
        if run.planned > 1:
            split = (
                f"{len(run.batches)} of {run.planned} run, at most {run.capacity} samples each "
                "(one emulator start per batch)"
            )
        print_run(run.result, console_shown=stream, profile=args.profile, batches=split)
    return 0 if run.result.ok else 1


def _stop_error(result: RunResult) -> dict[str, Any] | None:
    """The ``error`` of a run that ended badly without a fault (exit code, breakpoint)."""
    if result.ok:
        return None
    how = "a breakpoint" if result.stop_reason is StopReason.BKPT else "a non-zero exit code"
    return {
        "kind": "FirmwareStop",
        "message": f"{Path(result.elf).name} stopped with {how} ({result.exit_code}) at "
        f"{result.stop_location}",
        "exit_code": 1,
        "pc": f"0x{result.stop_pc:08x}",
        "location": result.stop_location,
    }


def _echo(fd: int, text: str) -> None:
    (sys.stderr if fd == 2 else sys.stdout).write(text)


def _write_outputs(path: Path, data: bytes) -> None:
    from simcore.outputs import write_output

    write_output(path, data, what="--outputs")


def _run_error_document(
    args: argparse.Namespace, exc: SimError, runner: BatchRunner | None
) -> dict[str, Any]:
    """What ``run --json`` prints when the run failed or was refused.

    ``batches.runs`` lists the batches that finished before the failing one;
    ``stdout``/``stderr`` hold the console output up to the failure.
    """
    from simcore.batches import batches_dict

    error: dict[str, Any] = {
        "kind": type(exc).__name__,
        "message": " ".join(str(exc).split()),
        "exit_code": exc.exit_code,
    }
    if isinstance(exc, EmulationError):
        error["pc"] = None if exc.pc is None else f"0x{exc.pc:08x}"
        error["location"] = exc.location
    if isinstance(exc, MemoryFault):
        error["address"] = f"0x{exc.address:08x}"
        error["access"] = exc.access
    return {
        "elf": str(args.elf),
        "board": args.board,
        "error": error,
        "stdout": runner.stdout if runner else "",
        "stderr": runner.stderr if runner else "",
        "batches": runner.progress() if runner else batches_dict([], 0, None),
    }


# -- simcore example ----------------------------------------------------------


def _cmd_example(args: argparse.Namespace) -> int:
    import numpy as np

    from simcore import example
    from simcore.engine import run_firmware

    boards: list[BoardSpec] = [get_board(b) for b in args.board] or list(load_boards().values())
    inputs = example.example_inputs(args.samples)
    expected = example.host_reference(inputs)
    failures = 0
    rows = []
    for board in boards:
        built = example.build_example(board)
        _out(f"built {built.elf}")
        if args.build_only:
            continue
        result = run_firmware(built.elf, board, inputs=inputs.tobytes())
        got = np.frombuffer(result.outputs, dtype=np.float32).reshape(expected.shape)
        same = bool(np.array_equal(got.view(np.uint32), expected.view(np.uint32)))
        want_line = f"checksum {example.checksum(expected):08x}"
        same = same and want_line in result.stdout
        failures += not same
        rows.append((board, result, same))
    if rows:
        _out()
        _out(f"{'board':<10} {'core':<11} {'result':<24} {'flash':>8} {'RAM':>8} {'stack':>7}")
        for board, result, same in rows:
            verdict = "equal to host (bitwise)" if same else "DIFFERS from host"
            m = result.memory
            _out(
                f"{board.name:<10} {board.core.display_name:<11} {verdict:<24} "
                f"{m.flash.used_bytes:>8,} {m.static_ram.used_bytes:>8,} "
                f"{m.stack_peak.used_bytes:>7,}"
            )
    return 1 if failures else 0


# -- simcore validate ---------------------------------------------------------


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        return _validate(args)
    except SimError as exc:
        # --json asked for a document: it comes out, with the error in it, if it can.
        if args.json is not None and not isinstance(exc, OutputError):
            from simcore.outputs import error_document, write_output

            doc = error_document(exc, version=1, meta={"simcore": __version__}, results=[])
            with contextlib.suppress(SimError):
                write_output(args.json, json.dumps(doc, indent=1) + "\n", what="results")
        raise


def _validate(args: argparse.Namespace) -> int:
    from simcore import validate as v
    from simcore.baseline import load_baseline, write_baseline
    from simcore.outputs import check_writable

    for path, what in ((args.json, "results"), (args.html, "HTML report")):
        if path is not None:
            check_writable(path, what=what)  # before the run, not after it
    if args.shard is not None and args.update_baseline:
        raise UsageError(
            "--update-baseline records every combination's figures: run it without --shard"
        )
    args.scheduler = args.scheduler or os.environ.get("SIMCORE_SCHEDULER") or None
    if args.scheduler is not None:  # before any firmware is built
        from simcore.distributed import check_address, require_distributed

        require_distributed()
        check_address(args.scheduler)
    args.baseline = args.baseline or paths.baseline_path()
    baseline = load_baseline(args.baseline)
    combos = _validate_combinations(args)
    shard_meta: dict[str, Any] = {}
    if args.shard is not None:
        from simcore.shard import select

        positions, shard_meta = select([c.key for c in combos], args.shard, baseline, args.limit)
        combos = [combos[i] for i in positions]
        _out(
            f"shard {args.shard}: {len(combos)} of {shard_meta['total']} combinations "
            f"({shard_meta['expected_cost_share']:.0%} of the expected cost)"
        )
    jobs = args.jobs or v.default_jobs()
    interrupted: v.ValidationInterrupted | None = None
    try:
        results = v.validate_many(
            combos,
            firmware=args.firmware,
            limit=args.limit,
            split=args.split,
            jobs=jobs,
            progress=not args.quiet,
            limits=limits_from_args(args),
            scheduler=args.scheduler,
        )
    except v.ValidationInterrupted as exc:
        interrupted, results = exc, exc.results
    # A firmware too big for its board is listed and skipped, not failed (unless it is
    # all that was asked for: then it is the user's error, exit 2).
    unfit = [r for r in results if r.does_not_fit]
    if unfit and len(unfit) == len(results) and not interrupted:
        if len(unfit) == 1:
            raise UsageError(unfit[0].does_not_fit or "")
        for r in unfit:
            sys.stderr.write(f"simcore: {r.key}: {r.does_not_fit}\n")
        raise UsageError(f"none of the {len(unfit)} combinations fits its board")
    results = [r for r in results if not r.does_not_fit]
    errors = [r for r in results if r.error]
    if len(errors) == len(results) == 1 and errors[0].error_exit_code == 2 and not interrupted:
        raise UsageError(errors[0].error or "")  # one bad input: one line, exit 2
    for result in results:
        if result.error:
            continue
        variant = result.variant()
        if variant:
            result.baseline_notes.append(
                f"not gated: a {variant} build, whose costs differ from the release build's"
            )
            continue
        figures = result.figures()
        samples = f"{args.split} {result.n_samples}"
        if args.update_baseline:
            if result.passed:
                baseline.update(result.key, figures, samples)
            continue
        if baseline.missing(result.key):
            result.baseline_notes.append(
                f"no baseline in {args.baseline} (record one with --update-baseline)"
            )
            continue
        skipped = baseline.skipped(result.key, samples)
        if skipped:
            result.baseline_notes.append(
                f"{', '.join(sorted(skipped))} not compared: the baseline was measured on "
                f"{baseline.samples[result.key]} samples, this run on {samples}"
            )
        for finding in baseline.compare(result.key, figures, samples):
            if finding.regressed:
                result.regressions.append(finding.describe(with_key=False))
            elif finding.improved:
                result.baseline_notes.append(
                    finding.describe(with_key=False) + "; update the baseline"
                )
    if args.update_baseline and not interrupted:
        write_baseline(args.baseline, baseline)
        _out(f"baseline updated: {args.baseline}")
    meta: dict[str, Any] = {
        "simcore": __version__,
        "command": "simcore " + " ".join(sys.argv[1:]),
        "split": args.split,
        "limit": args.limit,
        **({"shard": shard_meta} if shard_meta else {}),
        **({"partial": True, "interrupted": str(interrupted)} if interrupted is not None else {}),
    }
    data: dict[str, Any] = {"version": 1, "meta": meta, "results": [r.as_dict() for r in results]}
    if unfit:
        data["does_not_fit"] = [{"key": r.key, "reason": r.does_not_fit} for r in unfit]
    # The table first: if a file cannot be written (a full disk), the results are not lost.
    _print_validation([r.as_dict() for r in results])
    for r in unfit:
        _out(f"{'skipped':<9} {r.key}: {r.does_not_fit}")
    unwritten: list[OutputError] = []
    if args.json:
        from simcore.outputs import write_output

        try:
            write_output(args.json, json.dumps(data, indent=1) + "\n", what="results")
            _out(f"results: {args.json}")
        except OutputError as exc:
            unwritten.append(exc)
    if args.html:
        from simcore.report import write_html

        try:
            write_html([r.as_dict() for r in results], args.html, meta=meta)
            _out(f"report: {args.html}")
        except OutputError as exc:
            unwritten.append(exc)
    if unwritten:
        raise unwritten[0]
    for r in errors:
        sys.stderr.write(f"simcore: error: {r.key}: {r.error}\n")
    if interrupted is not None:
        sys.stderr.write(
            f"simcore: interrupted: {len(results)} of {interrupted.total} combinations "
            "finished; the results written are marked partial\n"
        )
        return 130
    if any(r.error_exit_code == 2 for r in errors):
        return 2
    failed = [r for r in results if not r.passed or r.regressions]
    return 1 if failed else 0


def _shard_arg(text: str) -> Any:
    """``--shard I/N`` (argparse type)."""
    from simcore.shard import parse_shard

    try:
        return parse_shard(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _board_ref(ref: str) -> str:
    """A shipped board's name, or the path of a user's board file (checked either way)."""
    board = get_board(ref)
    return board.name if board.name in load_boards() else ref


def _validate_combinations(args: argparse.Namespace) -> list[Any]:
    """The combinations ``simcore validate``'s flags (or the firmware's manifest) select."""
    from simcore import validate as v

    formats = [args.format] if args.format else None
    # A board by name, or a user's board file (kept as its path: only shipped boards
    # can be found again by name).
    boards = [_board_ref(args.board)] if args.board else None
    if args.all:
        if args.firmware:
            raise UsageError("--firmware validates one ELF; leave out --all")
        if args.model:
            combos = v.combinations_for(args.model, formats, boards)
        else:
            combos = [c for c in v.all_combinations() if (not formats or c.fmt in formats)]
            if boards:
                combos = [v.Combination(c.model, c.fmt, boards[0], c.golden) for c in combos
                          if c.board == sorted(load_boards())[0]]  # fmt: skip
    elif args.firmware is not None:
        if not args.firmware.is_file():
            raise UsageError(f"firmware {args.firmware} does not exist")
        manifest = v.read_manifest(args.firmware)
        fmt = args.format or manifest.get("format")
        board = args.board or manifest.get("board_file") or manifest.get("board")
        missing = [f"--{n}" for n, val in (("format", fmt), ("board", board)) if not val]
        if missing or (not args.model and not manifest):
            raise UsageError(
                f"{args.firmware.name} has no simcore build manifest "
                f"({args.firmware.with_suffix('.json').name}) to read the model, format and "
                "board from",
                hint="pass --model, --format and --board",
            )
        board = _board_ref(str(board))
        if args.model:
            combos = v.combinations_for(args.model, [str(fmt)], [board])
        else:
            combo, _ = v.combination_for_firmware(args.firmware)
            combos = [v.Combination(combo.model, str(fmt), board, combo.golden)]
    elif args.model:
        combos = v.combinations_for(args.model, formats, boards)
    else:
        raise UsageError(
            "validate needs --model (a shipped name, golden folder or model file), --firmware, "
            "or --all"
        )
    if not combos:
        raise UsageError("no combination matches the filters")
    return combos


def _print_validation(results: list[dict[str, Any]]) -> None:
    from simcore.report import summary_table

    _out(summary_table(results))


# -- simcore golden -----------------------------------------------------------


def _cmd_golden(args: argparse.Namespace) -> int:
    from simcore.golden.locate import open_golden
    from simcore.golden.store import list_models

    if getattr(args, "golden_command", None) == "create":
        return _cmd_golden_create(args)
    if args.update:
        import importlib.util

        paths.require_checkout("regenerating goldens", hint="run `nox -s golden` in a clone")
        if importlib.util.find_spec("tensorflow") is None:
            raise UsageError(
                "regenerating goldens needs TensorFlow",
                hint="pip install 'simcore[golden]' (or run `nox -s golden`)",
            )
        from simcore.golden import generate

        return generate.main([f"--only={name}" for name in args.only])
    refs = [*args.only, *getattr(args, "refs", [])] or list_models()
    for ref in refs:
        golden = open_golden(ref)  # raises GoldenError when stale or altered
        splits = ", ".join(f"{k} {len(v)}" for k, v in golden.splits.items())
        _out(
            f"{golden.name:<12} ok  {golden.num_samples:>6} samples ({splits}); "
            f"formats {'/'.join(golden.formats)}; {golden.description}"
        )
    return 0


def _cmd_golden_create(args: argparse.Namespace) -> int:
    from simcore.golden.create import create_golden
    from simcore.golden.store import load_golden_dir

    def progress(msg: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"simcore: {msg}\n")

    folder = create_golden(
        args.model,
        args.data,
        labels_path=args.labels,
        out_dir=args.out,
        name=args.name,
        calibration_path=args.calibration,
        progress=progress,
    )
    golden = load_golden_dir(folder)
    _out(f"golden {golden.name}: {folder}")
    _out(
        f"  {golden.num_samples} samples, inputs {golden.inputs_float.shape[1:]}, "
        f"outputs {golden.outputs_float.shape[1:]}, formats {', '.join(golden.formats)}"
    )
    if golden.has_labels:
        import numpy as np

        from simcore import compare

        ref = compare.predictions(golden.outputs_float)
        q8 = compare.predictions(golden.outputs_int8_dequant)
        ref_acc = float(np.mean(ref == golden.labels))
        _out(
            f"  accuracy on the labels: {golden.float_reference} {ref_acc:.2%}, "
            f"int8 ({golden.header.get('int8_reference', 'tflite-micro')}) "
            f"{np.mean(q8 == golden.labels):.2%}"
        )
    else:
        _out("  no labels: validation reports agreement with the reference, not accuracy")
    _out(f"next: simcore validate --model {folder}")
    return 0


# -- wiring -------------------------------------------------------------------


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command`` (the subcommand about to run), the other
    subcommands are left out (their arguments cost a small run's start-up time, and the
    optional modules' their imports), unless it names none of them (``--help``, a typo)."""
    parser = _Parser(
        prog="simcore",
        description="Run Cortex-M0+/M33/M7 firmware without a board: results, cycles, memory.",
    )
    parser.add_argument("--version", action="version", version=f"simcore {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    owner = next((m for m, names in _OPTIONAL.items() if command in names), None)
    if command in _OWN:
        _OWN[command](sub)
    elif owner is not None:
        import_module(owner).register(sub)
    else:
        for add in _OWN.values():
            add(sub)
        for module in _OPTIONAL:
            import_module(module).register(sub)
    return parser


def _add_boards(sub: Any) -> None:
    """``simcore boards``."""
    p = sub.add_parser("boards", help="list the boards simcore knows (or check board files)")
    p.add_argument(
        "files", nargs="*", metavar="BOARD", help="board names or .toml files to check and show"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_boards)


def _add_run(sub: Any) -> None:
    """``simcore run``."""
    p = sub.add_parser("run", help="run a firmware ELF on a board")
    p.add_argument("elf", type=Path, help="the linked firmware .elf")
    p.add_argument("--board", "-b", required=True, help="board name or board .toml")
    p.add_argument(
        "--input",
        type=Path,
        help="inputs for simcore_io: a .npy array checked against the firmware, or raw bytes",
    )
    p.add_argument(
        "--samples",
        type=samples_arg,
        help="number of samples (default: all of --input; without it, what the buffer holds)",
    )
    p.add_argument("--outputs", type=Path, help="write the output buffer to this file")
    p.add_argument("--trace", action="store_true", help="record simcore_trace() calls")
    p.add_argument(
        "--dump",
        type=Path,
        metavar="TRACES.npz",
        help="write every traced layer per sample (shaped and typed from the build "
        "manifest) to this .npz; implies --trace",
    )
    add_limit_arguments(p)
    p.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=15,
        default=0,
        metavar="N",
        help="show the N functions with the most cycles (default 15)",
    )
    p.add_argument(
        "--profile-sample",
        type=int,
        metavar="I",
        help="profile only sample I (between its simcore_sample_begin/end); implies --profile",
    )
    p.add_argument(
        "--profile-out",
        type=Path,
        metavar="FILE",
        help="write the call-tree profile to FILE for a viewer (see --profile-format)",
    )
    p.add_argument(
        "--profile-format",
        choices=["speedscope", "chrome"],
        default="speedscope",
        help="speedscope's JSON file format (speedscope.app) or Chrome trace-event JSON "
        "(Perfetto, chrome://tracing); default speedscope",
    )
    p.add_argument(
        "--memory-model",
        choices=["modeled", "ideal"],
        default="modeled",
        help="'ideal' turns flash/cache wait states off, for comparison",
    )
    p.add_argument(
        "--count-data-hits",
        action="store_true",
        help="count the flash cache's data hits (RP2040/RP2350): every load from flash "
        "then takes unicorn's slow MMIO path; cycles and misses are the same without it",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="do not stream console output")
    p.set_defaults(func=_cmd_run)


def _add_example(sub: Any) -> None:
    """``simcore example``."""
    p = sub.add_parser("example", help="build and run the example firmware on every board")
    p.add_argument("--board", "-b", action="append", default=[], help="limit to these boards")
    p.add_argument("--samples", type=int, default=8, help="batch size (at most 16)")
    p.add_argument("--build-only", action="store_true", help="build, do not run")
    p.set_defaults(func=_cmd_example)


def _add_validate(sub: Any) -> None:
    """``simcore validate``."""
    p = sub.add_parser(
        "validate",
        help="compare firmware outputs with the golden predictions; gate cycles and memory",
    )
    p.add_argument(
        "--model",
        "-m",
        help="shipped model name, golden folder (simcore golden create) or model file "
        "(.keras/.tflite/.onnx with a golden); alone: every format it covers on every board",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=["f32", "int8", "q16"],
        help="number format (default: every one)",
    )
    p.add_argument("--board", "-b", help="board name or board .toml (default: every board)")
    p.add_argument(
        "--all",
        action="store_true",
        help="every shipped model x format x board (with --model: every combination of it)",
    )
    p.add_argument(
        "--firmware",
        type=Path,
        help="validate this ELF instead of building one (model, format, board from its manifest)",
    )
    p.add_argument("--limit", type=count_arg, help="only the first N test samples")
    p.add_argument(
        "--split", default="test", help="golden split: test (default) or all (IRIS: train too)"
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=count_arg,
        help="worker processes (default: CPU count; never more than there are batches)",
    )
    p.add_argument("--json", type=Path, help="write the results as JSON")
    p.add_argument("--html", type=Path, help="write an HTML report")
    add_limit_arguments(p)
    p.add_argument(
        "--baseline",
        type=Path,
        help="baseline file (default firmware_builds/baseline.json in a checkout, "
        f"./{paths.INSTALLED_BASELINE_NAME} when installed)",
    )
    p.add_argument(
        "--update-baseline",
        action="store_true",
        help="record the passing combinations' figures as the new baseline",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the batches on a Dask cluster: tcp://HOST:8786 (from 'dask scheduler'), or "
        "local[:N] for N worker processes here (default: $SIMCORE_SCHEDULER, else the local "
        "process pool; needs simcore[distributed])",
    )
    p.add_argument(
        "--shard",
        type=_shard_arg,
        metavar="I/N",
        help="run only the I-th of N parts of the selected combinations, balanced by the "
        "baseline's expected cost (CI sharding); join the JSON files with "
        "'simcore report --merge'",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_validate)


def _add_golden(sub: Any) -> None:
    """``simcore golden`` (and ``golden create``, ``golden check``)."""
    p = sub.add_parser(
        "golden",
        help="check goldens, or create one from your model and data (golden create)",
        description="Without a subcommand: check the shipped goldens (or regenerate them "
        "with --update). `golden create MODEL --data DATA` writes a golden for your own model.",
    )
    p.add_argument(
        "--update",
        action="store_true",
        help="retrain and regenerate the shipped goldens (needs the golden extra; the only "
        "writer of golden/)",
    )
    p.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="these models (or folders)"
    )
    p.set_defaults(func=_cmd_golden)
    gsub = p.add_subparsers(dest="golden_command", metavar="{create,check}")
    g = gsub.add_parser(
        "create",
        help="write a golden folder from your .keras, int8 .tflite or .onnx model and test data",
        description="Compute golden predictions for your model on your test data: Keras "
        "float outputs (a .keras), an int8 model by post-training quantization (a .keras) "
        "or yours (an int8 .tflite), tflite-micro int8 outputs, per-layer outputs of the "
        "first samples, all hashed. Needs the golden extra (TensorFlow, tflite-micro). "
        "An .onnx model (float, or QDQ int8) uses onnxruntime instead (the onnx extra).",
    )
    g.add_argument(
        "model", type=Path, help="a .keras model, a full-integer int8 .tflite or an .onnx model"
    )
    g.add_argument(
        "--data",
        type=Path,
        required=True,
        help="test inputs: .npy (N, *input_shape), or .npz with 'inputs' (and 'labels')",
    )
    g.add_argument("--labels", type=Path, help=".npy of class indices (N,) or one-hot (N, C)")
    g.add_argument("--out", type=Path, help="golden folder to write (default ./golden/NAME)")
    g.add_argument("--name", help="model name in reports and baselines (default: file stem)")
    g.add_argument(
        "--calibration",
        type=Path,
        help="inputs to calibrate the int8 quantization of a .keras or float .onnx "
        "(default: --data)",
    )
    g.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    c = gsub.add_parser("check", help="check goldens: shipped names, golden folders, model files")
    c.add_argument("refs", nargs="*", metavar="GOLDEN", help="default: every shipped golden")


#: This module's own subcommands, in the order ``--help`` lists them.
_OWN: dict[str, Callable[[Any], None]] = {
    "boards": _add_boards,
    "run": _add_run,
    "example": _add_example,
    "validate": _add_validate,
    "golden": _add_golden,
}


#: Subcommands owned by other modules (each has a ``register(subparsers)``), by module.
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "simcore.firmware.command": ("build", "linker-script"),
    "simcore.report": ("report",),
    "simcore.diagnose.command": ("diagnose",),
    "simcore.tradeoff": ("compare",),
}


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the top-level options take no values); None
    after a top-level ``--help``, which lists them all."""
    for arg in argv:
        if arg in ("-h", "--help"):
            return None
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; ``argv`` None: the process's own (``sys.argv``), for the rest of
    its life (see :func:`_cmd_run`): ``simcore run`` then ends the process itself."""
    own_process = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    args.own_process = own_process
    code = _main(args)
    if own_process and args.func is _cmd_run:
        _exit_now(code)
    return code


def _exit_now(code: int) -> NoReturn:
    """End the process with ``code`` after what a normal exit does that matters here
    (exit handlers: the code cache's save, logging's flush, finalizers; the console
    streams' flush), without tearing the interpreter down: freeing every module's
    objects one by one is 2-3% of a small warm ``simcore run`` and changes nothing
    outside the process. Without CPython's ``atexit._run_exitfuncs``, a normal exit."""
    import atexit

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # None: closed before the process started
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code)


def _main(args: argparse.Namespace) -> int:
    """Run the subcommand of ``args``: simcore's errors become a message and an exit code."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PipeSafe.wrap(sys.stdout), _PipeSafe.wrap(sys.stderr)
    logging.basicConfig(
        now=args.debug,  # every library's debug records too, not only simcore's
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="simcore: %(levelname)s: %(message)s",
    )
    handler: Handler = args.func
    try:
        return handler(args)
    except SimError as exc:
        if args.debug:
            raise
        sys.stdout.flush()
        sys.stderr.write(f"simcore: error: {' '.join(str(exc).split())}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("simcore: interrupted\n")
        return 130
    except BrokenPipeError:  # a pipe written to around _PipeSafe: the command did not finish
        return 1
    finally:
        sys.stdout.flush()
        sys.stdout, sys.stderr = saved


class _PipeSafe:
    """A console stream that outlives its reader (``simcore run ... | head -c0``).

    Once the reader is gone (or the stream was closed before simcore started)
    output is dropped and the command goes on, so its exit code is the run's
    own. The file descriptor is pointed at /dev/null so the interpreter's final
    flush does not fail either.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self.broken = stream is None
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @classmethod
    def wrap(cls, stream: TextIO | None) -> TextIO:
        safe = stream if isinstance(stream, _PipeSafe) else cls(stream)
        return cast(TextIO, safe)

    def write(self, text: str, /) -> int:
        if not self.broken and self._stream is not None:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.broken and self._stream is not None:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def isatty(self) -> bool:
        return not self.broken and self._stream is not None and self._stream.isatty()

    def fileno(self) -> int:
        if self._stream is None:
            raise io.UnsupportedOperation("no console stream")
        return self._stream.fileno()

    def _drop(self) -> None:
        self.broken = True
        try:
            fd = self.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
        except (OSError, ValueError):  # capture streams in tests have no descriptor
            return
        os.dup2(devnull, fd)
        os.close(devnull)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (DESIGN: the CLI prints one line per error), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; see {self.prog} --help\n")


if __name__ == "__main__":
    sys.exit(main())
