"""The ``simcore`` command line.

Every error simcore raises on purpose is a SimError: the CLI prints it as one
line (``simcore: error: ...``) and exits with its code (2 usage/input, 1
fault/mismatch). ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simcore import __version__
from simcore.boards import BoardSpec, get_board, load_boards
from simcore.errors import SimError, UsageError
from simcore.results import RunResult

Handler = Callable[[argparse.Namespace], int]

#: The committed baseline of cycles and memory per combination.
BASELINE_PATH = Path(__file__).resolve().parent.parent / "firmware_builds" / "baseline.json"


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
            }
            for b in boards.values()
        ]
        _out(json.dumps(data, indent=2))
        return 0
    for b in boards.values():
        _out(
            f"{b.name:<10} {b.core.display_name:<11} {b.clock_hz / 1e6:>5.0f} MHz  {b.description}"
        )
        for r in b.memory:
            _out(f"{'':<10} {r.name:<11} 0x{r.start:08x}  {_size(r.size_bytes):>7}  {r.kind.value}")
    return 0


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MB"
    if n >= 1024:
        return f"{n / 1024:g} KB"
    return f"{n} B"


# -- simcore run --------------------------------------------------------------


def _read_inputs(path: Path | None) -> bytes | None:
    if path is None:
        return None
    if not path.exists():
        raise UsageError(f"input file {path} does not exist")
    if path.suffix == ".npy":
        try:
            return bytes(np.load(path, allow_pickle=False).tobytes())
        except ValueError as exc:
            raise UsageError(f"{path}: not a NumPy array file ({exc})") from None
    return path.read_bytes()


def print_run(result: RunResult, *, console_shown: bool, profile: int = 0) -> None:
    """Human summary of one run."""
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
            data = (
                f", data {cache['data_hits']:,} hits / {cache['data_misses']:,} misses"
                if cache["data_reads"] == "modeled"
                else ", data reads not modeled"
            )
            _out(
                f"cache:       fetch {cache['fetch_hits']:,} hits / {cache['fetch_misses']:,} "
                f"misses{data}, {cache['miss_cycles']:,} miss cycles"
            )
    mem = result.memory
    for name, usage in (
        ("flash", mem.flash),
        ("static RAM", mem.static_ram),
        ("stack peak", mem.stack_peak),
        ("heap peak", mem.heap_peak),
    ):
        cap = f" of {usage.capacity_bytes:,} ({usage.percent:.2f}%)" if usage.capacity_bytes else ""
        _out(f"{name + ':':<12} {usage.used_bytes:>9,} bytes{cap}")
    if result.n_samples:
        _out(f"outputs: {result.n_samples} sample(s), {len(result.outputs)} bytes")
    if profile and report.get("profile"):
        _out(f"{'function':<32} {'cycles':>10} {'instr':>10} {'share':>7}")
        for entry in report["profile"][:profile]:
            _out(
                f"{entry['function'][:32]:<32} {entry['cycles']:>10,} "
                f"{entry['instructions']:>10,} {entry['share']:>7.1%}"
            )
    for note in result.notes:
        _out(f"note: {note}")


def _cmd_run(args: argparse.Namespace) -> int:
    from simcore.engine import run_firmware

    board = get_board(args.board)
    stream = not args.json and not args.quiet

    def echo(fd: int, text: str) -> None:
        (sys.stderr if fd == 2 else sys.stdout).write(text)

    result = run_firmware(
        args.elf,
        board,
        inputs=_read_inputs(args.input),
        n_samples=args.samples,
        trace=args.trace,
        max_instructions=args.max_instructions,
        timeout_s=args.timeout,
        echo=echo if stream else None,
        memory_model=args.memory_model,
        profile_limit=None if args.profile == 0 else max(args.profile, 50),
    )
    if args.outputs:
        args.outputs.write_bytes(result.outputs)
    if args.json:
        _out(json.dumps(result.as_dict(), indent=2))
    else:
        print_run(result, console_shown=stream, profile=args.profile)
    return 0 if result.ok else 1


# -- simcore example ----------------------------------------------------------


def _cmd_example(args: argparse.Namespace) -> int:
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
    from simcore import validate as v
    from simcore.baseline import load_baseline, write_baseline

    if args.all:
        if args.firmware:
            raise UsageError(
                "--firmware validates one ELF: give --model/--format/--board, not --all"
            )
        combos = [
            c
            for c in v.all_combinations()
            if (not args.model or c.model == args.model)
            and (not args.format or c.fmt == args.format)
            and (not args.board or c.board == get_board(args.board).name)
        ]
    else:
        missing = [n for n in ("model", "format", "board") if not getattr(args, n)]
        if missing:
            raise UsageError(
                f"missing --{', --'.join(missing)}", hint="or use --all for every combination"
            )
        combos = [v.Combination(args.model, args.format, get_board(args.board).name)]
    if not combos:
        raise UsageError("no combination matches the filters")
    jobs = args.jobs or v.default_jobs()
    results = v.validate_many(
        combos,
        firmware=args.firmware,
        limit=args.limit,
        split=args.split,
        jobs=jobs,
        progress=not args.quiet,
    )
    baseline = load_baseline(args.baseline)
    for result in results:
        figures = result.figures()
        if args.update_baseline:
            if result.passed:
                baseline.update(result.key, figures)
            continue
        if baseline.missing(result.key):
            result.baseline_notes.append(f"no baseline for {result.key} in {args.baseline}")
            continue
        for finding in baseline.compare(result.key, figures):
            if finding.regressed:
                result.regressions.append(finding.describe())
            elif finding.improved:
                result.baseline_notes.append(finding.describe() + "; update the baseline")
    if args.update_baseline:
        write_baseline(args.baseline, baseline)
        _out(f"baseline updated: {args.baseline}")
    data = {
        "version": 1,
        "meta": {
            "simcore": __version__,
            "command": "simcore " + " ".join(sys.argv[1:]),
            "split": args.split,
            "limit": args.limit,
        },
        "results": [r.as_dict() for r in results],
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    _print_validation([r.as_dict() for r in results])
    if args.json:
        _out(f"results: {args.json}")
    if args.html:
        from simcore.report import write_html

        write_html([r.as_dict() for r in results], args.html)
        _out(f"report: {args.html}")
    failed = [r for r in results if not r.passed or r.regressions]
    return 1 if failed else 0


def _print_validation(results: list[dict[str, Any]]) -> None:
    from simcore.report import summary_table

    _out(summary_table(results))


# -- simcore golden -----------------------------------------------------------


def _cmd_golden(args: argparse.Namespace) -> int:
    from simcore.golden.store import list_models, load_golden

    if args.update:
        import importlib.util

        if importlib.util.find_spec("tensorflow") is None:
            raise UsageError(
                "regenerating goldens needs TensorFlow",
                hint="pip install 'simcore[golden]' (or run `nox -s golden`)",
            )
        from simcore.golden import generate

        return generate.main([f"--only={name}" for name in args.only])
    for name in args.only or list_models():
        golden = load_golden(name)  # raises GoldenError when stale or altered
        splits = ", ".join(f"{k} {len(v)}" for k, v in golden.splits.items())
        _out(f"{name:<12} ok  {golden.num_samples:>6} samples ({splits}); {golden.description}")
    return 0


# -- wiring -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simcore",
        description="Run Cortex-M0+/M33/M7 firmware without a board: results, cycles, memory.",
    )
    parser.add_argument("--version", action="version", version=f"simcore {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("boards", help="list the boards simcore knows (or check board files)")
    p.add_argument(
        "files", nargs="*", metavar="BOARD", help="board names or .toml files to check and show"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_boards)

    p = sub.add_parser("run", help="run a firmware ELF on a board")
    p.add_argument("elf", type=Path, help="the linked firmware .elf")
    p.add_argument("--board", "-b", required=True, help="board name or board .toml")
    p.add_argument("--input", type=Path, help="inputs for simcore_io: raw bytes or .npy")
    p.add_argument("--samples", type=int, help="number of samples (default: from --input)")
    p.add_argument("--outputs", type=Path, help="write the output buffer to this file")
    p.add_argument("--trace", action="store_true", help="record simcore_trace() calls")
    p.add_argument("--max-instructions", type=int, help="stop after this many instructions")
    p.add_argument(
        "--timeout", type=float, default=300.0, help="wall-clock limit in seconds (default 300)"
    )
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
        "--memory-model",
        choices=["modeled", "ideal"],
        default="modeled",
        help="'ideal' turns flash/cache wait states off, for comparison",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="do not stream console output")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("example", help="build and run the example firmware on every board")
    p.add_argument("--board", "-b", action="append", default=[], help="limit to these boards")
    p.add_argument("--samples", type=int, default=8, help="batch size (at most 16)")
    p.add_argument("--build-only", action="store_true", help="build, do not run")
    p.set_defaults(func=_cmd_example)

    p = sub.add_parser(
        "validate",
        help="compare firmware outputs with the golden predictions; gate cycles and memory",
    )
    p.add_argument("--model", help="shipped model name (iris_anne8, iris_anne6, iris3, mnist_cnn)")
    p.add_argument("--format", choices=["f32", "int8", "q16"], help="number format")
    p.add_argument("--board", "-b", help="board name or board .toml")
    p.add_argument("--all", action="store_true", help="every shipped model x format x board")
    p.add_argument("--firmware", type=Path, help="validate this ELF instead of building one")
    p.add_argument("--limit", type=int, help="only the first N test samples")
    p.add_argument(
        "--split", default="test", help="golden split: test (default) or all (IRIS: train too)"
    )
    p.add_argument("--jobs", "-j", type=int, help="worker processes (default: CPU count)")
    p.add_argument("--json", type=Path, help="write the results as JSON")
    p.add_argument("--html", type=Path, help="write an HTML report")
    p.add_argument(
        "--baseline",
        type=Path,
        default=BASELINE_PATH,
        help=f"baseline file (default {BASELINE_PATH.relative_to(BASELINE_PATH.parent.parent)})",
    )
    p.add_argument(
        "--update-baseline",
        action="store_true",
        help="record the passing combinations' figures as the new baseline",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("golden", help="check the golden files (or regenerate them with --update)")
    p.add_argument(
        "--update",
        action="store_true",
        help="retrain and regenerate (needs the golden extra; the only writer of golden/)",
    )
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="these models")
    p.set_defaults(func=_cmd_golden)

    _register_optional(sub)
    return parser


def _register_optional(sub: Any) -> None:
    """Subcommands owned by other modules (each has a ``register(subparsers)``)."""
    import importlib

    for module in ("simcore.firmware.command", "simcore.report", "simcore.diagnose.command"):
        importlib.import_module(module).register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
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
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
