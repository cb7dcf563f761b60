"""``simcore build``: generate and compile model firmware from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from simcore.boards import load_boards
from simcore.diagnose.mistakes import KINDS
from simcore.errors import SimError, UsageError
from simcore.firmware.build import FirmwareBuild, build_model_firmware, shipped_models
from simcore.firmware.ir import FORMATS


def register(subparsers: Any) -> None:
    """Add the ``build`` subcommand to the CLI's subparsers."""
    p = subparsers.add_parser(
        "build",
        help="generate firmware for a model (f32, int8 or q16.16) and compile it for a board",
        description="Generate C for a trained model, compile it for a board, and write "
        "<model>-<format>.elf, .map, .c and a .json manifest.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", "-m", help="shipped model name, golden folder or model file")
    what.add_argument(
        "--all", action="store_true", help="every shipped model x format x board (or the given)"
    )
    p.add_argument("--format", "-f", choices=FORMATS, help="number format (required with --model)")
    p.add_argument("--board", "-b", help="board name or board .toml (required with --model)")
    p.add_argument("--trace", action="store_true", help="call simcore_trace() after each layer")
    p.add_argument(
        "--portable", action="store_true", help="int8: use the plain C path even with DSP"
    )
    p.add_argument(
        "--sparse",
        choices=["auto", "on", "off"],
        default="auto",
        help="sparse kernels for pruned Dense layers: auto (default: when they save flash and "
        "are not estimated slower; int8 from about 70%% zeros, f32/q16 from about 20%%), on "
        "(every Dense layer) or off",
    )
    p.add_argument(
        "--inject",
        action="append",
        metavar="KIND[:LAYER[:VARIANT]]",
        help="build with a deliberate porting mistake, to test `simcore diagnose` "
        "(repeatable; kinds: " + ", ".join(KINDS) + ")",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="output folder (default: one per board in $SIMCORE_OUT_DIR if set, else in "
        "firmware_builds/out in a checkout, else in ./simcore-out)",
    )
    p.add_argument(
        "--ld",
        type=Path,
        metavar="SCRIPT.ld",
        help="link with this linker script instead of the board's (for a board of your own; "
        "see firmware_builds/ld/rp2040.ld for the regions and sizes it must define)",
    )
    p.add_argument(
        "--cflags",
        default="",
        metavar="FLAGS",
        help='extra compiler flags in one string: --cflags="-O3 -DOPT" (absolute paths)',
    )
    p.add_argument(
        "--jobs", "-j", type=int, default=os.cpu_count() or 1, help="parallel builds for --all"
    )
    p.set_defaults(func=run)


def _cflags(text: str) -> list[str]:
    """``--cflags`` split as a shell would; an unbalanced quote is a usage error."""
    import shlex

    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--cflags {text!r}: {exc}") from None


def _line(b: FirmwareBuild) -> str:
    return (
        f"{b.elf}  flash {b.flash_bytes} B  ram {b.static_ram_bytes} B (+ harness I/O "
        f"{b.manifest['sizes']['harness_io_bytes']} B)  "
        f"weights {b.weights_bytes} B  arena {b.arena_bytes} B"
    )


def run(args: argparse.Namespace) -> int:
    """Handle ``simcore build``; return the exit code."""
    if not args.all:
        if args.format is None or args.board is None:
            raise UsageError("build --model needs --format and --board")
        b = build_model_firmware(
            args.model,
            args.format,
            args.board,
            args.out,
            args.trace,
            portable=args.portable,
            inject=args.inject,
            script=args.ld,
            cflags=_cflags(args.cflags),
            sparse=args.sparse,
        )
        sys.stdout.write(f"built {_line(b)}\n")
        for layer in b.manifest["layers"]:
            if layer.get("sparse"):
                sp = layer["sparse"]
                sys.stdout.write(
                    f"sparse layer {layer['id']} ({layer['name']}): {sp['nonzeros']} of "
                    f"{sp['weights']} weights non-zero, {sp['sparse_bytes']} B instead of "
                    f"{sp['dense_bytes']} B (saved {sp['saved_bytes']} B)\n"
                )
        for injected in b.manifest["variant"].get("injected_mistakes", []):
            sys.stdout.write(
                f"injected {injected['kind']}:{injected['layer']}:{injected['variant']}: "
                f"{injected['description']}\n"
            )
        return 0
    if args.inject:
        raise UsageError("--inject builds one firmware: use it with --model, not --all")
    models = shipped_models()
    if not models:
        raise UsageError("no shipped models under golden/", hint="run `nox -s golden` first")
    boards = [args.board] if args.board else list(load_boards())
    formats = [args.format] if args.format else list(FORMATS)
    jobs = [(m, f, b) for m in models for f in formats for b in boards]

    def one(job: tuple[str, str, str]) -> tuple[str, FirmwareBuild | SimError]:
        m, f, b = job
        try:
            out = args.out / b if args.out else None
            return f"{m} {f} {b}", build_model_firmware(
                m,
                f,
                b,
                out,
                args.trace,
                portable=args.portable,
                script=args.ld,
                cflags=_cflags(args.cflags),
                sparse=args.sparse,
            )
        except SimError as exc:
            return f"{m} {f} {b}", exc

    failed = 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for what, result in pool.map(one, jobs):
            if isinstance(result, SimError):
                failed += 1
                sys.stderr.write(f"simcore: error: {what}: {' '.join(str(result).split())}\n")
            else:
                sys.stdout.write(f"built {_line(result)}\n")
    sys.stdout.write(f"{len(jobs) - failed} built, {failed} failed\n")
    return 2 if failed else 0
