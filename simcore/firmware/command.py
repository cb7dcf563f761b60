"""``simcore build`` (model firmware from the command line) and ``simcore linker-script``."""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simcore.boards import get_board, load_boards, parse_size
from simcore.diagnose.mistakes import KINDS
from simcore.errors import DoesNotFit, SimError, UsageError
from simcore.firmware.ir import FORMATS
from simcore.linker import LinkOptions, resolve, script_text, write_script

if TYPE_CHECKING:  # the builder (codegen, toolchain) is imported by `simcore build` only
    from simcore.firmware.build import FirmwareBuild


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
        "are not estimated slower: f32 from about 40%% zeros, q16 60%%, int8 73%%), on "
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
        help="link with this linker script instead of the one simcore generates from the "
        "board file (it defines FLASH, RAM, CODE, HEAP_SIZE, STACK_SIZE and INCLUDEs "
        "common.ld; see firmware_builds/ld/common.ld)",
    )
    _add_placement(p)
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

    ls = subparsers.add_parser(
        "linker-script",
        help="write the linker script simcore generates for a board (for your own build)",
        description="Write the linker script `simcore build` would use for a board and "
        "placement, to link a program with your own build system (with simcore's runtime: "
        "-T SCRIPT -L <firmware_builds>/ld).",
    )
    ls.add_argument("--board", "-b", required=True, help="board name or board .toml")
    ls.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")
    _add_placement(ls)
    ls.set_defaults(func=run_linker_script, ld=None)


def _add_placement(p: argparse.ArgumentParser) -> None:
    """The switches of :class:`~simcore.linker.LinkOptions`."""
    link = p.add_argument_group(
        "placement (generated linker script; defaults from the board file's [link] table)"
    )
    link.add_argument(
        "--stack-size", metavar="BYTES", help="stack size: 8192, 0x2000, 8K, 1M (multiple of 8)"
    )
    link.add_argument(
        "--heap-size", metavar="BYTES", help="heap size (0 for none), like --stack-size"
    )
    link.add_argument(
        "--code-in",
        metavar="REGION",
        help="memory region code and constants run from: the flash region (in place) or a "
        "RAM region they are copied to at reset (e.g. itcm)",
    )
    link.add_argument("--data-in", metavar="REGION", help="RAM region of .data and .bss")
    link.add_argument("--stack-in", metavar="REGION", help="RAM region of the heap and stack")
    link.add_argument(
        "--place",
        action="append",
        default=[],
        metavar="NAME=REGION",
        help="move one zero-initialized variable to a RAM region, not zeroed at reset "
        "(repeatable; the generated firmware's activation arena is nn_arena)",
    )


def _cflags(text: str) -> list[str]:
    """``--cflags`` split as a shell would; an unbalanced quote is a usage error."""
    import shlex

    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--cflags {text!r}: {exc}") from None


def _size_option(switch: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError:
        raise UsageError(
            f"{switch} {text!r} is not a size", hint="expected bytes: 8192, 0x2000, 8K or 1M"
        ) from None


def _place_option(text: str) -> tuple[str, str]:
    name, sep, region = text.partition("=")
    if not sep or not name.strip() or not region.strip():
        raise UsageError(f"--place {text!r}", hint="expected NAME=REGION, e.g. nn_arena=axi_sram")
    return name.strip(), region.strip()


def link_options(args: argparse.Namespace) -> LinkOptions:
    """The placement switches of ``build`` as :class:`~simcore.linker.LinkOptions`."""
    options = LinkOptions(
        code_in=args.code_in,
        data_in=args.data_in,
        stack_in=args.stack_in,
        stack_bytes=_size_option("--stack-size", args.stack_size),
        heap_bytes=_size_option("--heap-size", args.heap_size),
        place=tuple(_place_option(text) for text in args.place),
    )
    if args.ld is not None and options.given():
        raise UsageError(
            "--ld and the placement switches (--stack-size, --heap-size, --code-in, --data-in, "
            "--stack-in, --place) cannot be combined",
            hint="set sizes and regions in your linker script, or drop --ld",
        )
    return options


def _line(b: FirmwareBuild) -> str:
    return (
        f"{b.elf}  flash {b.flash_bytes} B  ram {b.static_ram_bytes} B (+ harness I/O "
        f"{b.manifest['sizes']['harness_io_bytes']} B)  "
        f"weights {b.weights_bytes} B  arena {b.arena_bytes} B"
    )


def run_linker_script(args: argparse.Namespace) -> int:
    """Handle ``simcore linker-script``; return the exit code."""
    layout = resolve(get_board(args.board), link_options(args))
    if args.output is None:
        sys.stdout.write(script_text(layout))
    else:
        write_script(layout, args.output)
        sys.stdout.write(f"wrote {args.output}\n")
    return 0


def run(args: argparse.Namespace) -> int:
    """Handle ``simcore build``; return the exit code."""
    from simcore.firmware.build import build_model_firmware, shipped_models

    link = link_options(args)
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
            link=link,
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
                link=link,
                sparse=args.sparse,
            )
        except SimError as exc:
            return f"{m} {f} {b}", exc

    failed = unfit = 0
    if args.jobs > 1 and len(jobs) > 1:
        from simcore.validate import preload_planning_modules

        preload_planning_modules()  # no two threads compiling simcore modules at once
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for what, result in pool.map(one, jobs):
            if isinstance(result, DoesNotFit):  # listed and skipped, as validate does
                unfit += 1
                sys.stdout.write(f"skipped {what}: {' '.join(str(result).split())}\n")
            elif isinstance(result, SimError):
                failed += 1
                sys.stderr.write(f"simcore: error: {what}: {' '.join(str(result).split())}\n")
            else:
                sys.stdout.write(f"built {_line(result)}\n")
    skipped = f", {unfit} skipped (do not fit the board)" if unfit else ""
    sys.stdout.write(f"{len(jobs) - failed - unfit} built, {failed} failed{skipped}\n")
    return 2 if failed or unfit == len(jobs) else 0
