"""``simcore diagnose``: the layout doctor on the command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from simcore.errors import OutputError, SimError, UsageError
from simcore.firmware.ir import FORMATS
from simcore.limits import add_limit_arguments, count_arg, limits_from_args


def register(subparsers: Any) -> None:
    """Add the ``diagnose`` subcommand to the CLI's subparsers."""
    p = subparsers.add_parser(
        "diagnose",
        help="say why a firmware's outputs disagree with its model (first diverging layer, cause)",
        description="Run a --trace firmware on reference samples, find the first layer whose "
        "output leaves the model's, test known porting mistakes on that layer (transposed "
        "Dense, conv layout, NCHW flatten, scales, bias, activation, input scaling, byte "
        "order, Q format) and scan the ELF's weight arrays. Exit 0 when the firmware agrees, "
        "1 with a diagnosis, 2 on bad input.",
    )
    p.add_argument("firmware", type=Path, help="firmware ELF (a --trace build for layer checks)")
    p.add_argument(
        "--model",
        "-m",
        help="shipped model name, golden folder or model file (default: the ELF's manifest)",
    )
    p.add_argument("--format", "-f", choices=FORMATS, help="number format (default: manifest)")
    p.add_argument("--board", "-b", help="board name or .toml (default: manifest)")
    p.add_argument(
        "--samples",
        "-n",
        type=count_arg,
        help="samples to run (default 16: the golden per-layer samples, then more golden inputs)",
    )
    p.add_argument(
        "--inputs",
        type=Path,
        help=".npy of inputs (float for f32/q16, int8 for int8) instead of the golden samples",
    )
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the findings as JSON to FILE, or alone: print JSON instead of the report",
    )
    p.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write the diagnosis as an HTML page, with the error map drawn",
    )
    p.add_argument(
        "--static",
        action="store_true",
        help="only scan the ELF's weight arrays against the model (no board, nothing run)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    add_limit_arguments(p)
    p.set_defaults(func=run)


def _manifest_defaults(elf: Path) -> dict[str, Any]:
    path = elf.with_suffix(".json")
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or "simcore_firmware_manifest" not in data:
        return {}
    model = data.get("model")
    if not isinstance(model, dict):
        model = {}
    return {
        "model": _manifest_model(model),
        "format": data.get("format"),
        "board": data.get("board_file") or data.get("board"),
    }


def _manifest_model(model: dict[str, Any]) -> str | None:
    """The model a manifest names: its file if it is still there, else its golden, else its name."""
    from simcore.golden.locate import find_golden_for_model
    from simcore.validate import manifest_model_path

    if "path" in model:
        path = manifest_model_path(model)
        if path.is_file():
            return str(path)
        sha = model.get("sha256")
        folder = find_golden_for_model(path, sha if isinstance(sha, str) else None)
        if folder is not None:
            return str(folder)
    name = model.get("name")
    return name if isinstance(name, str) else None


def run(args: argparse.Namespace) -> int:
    """Handle ``simcore diagnose``; return 0 (agrees) or 1 (diagnosis).

    With ``--json``, a failure before any finding still gives a JSON document,
    carrying the error (on stdout for ``--json`` alone, else in the file).
    """
    try:
        return _run(args)
    except SimError as exc:
        if args.json is not None and not isinstance(exc, OutputError):
            from simcore.outputs import error_document, write_output

            doc = json.dumps(error_document(exc, firmware=str(args.firmware)), indent=2) + "\n"
            if args.json == "-":
                sys.stdout.write(doc)
            else:
                with contextlib.suppress(SimError):
                    write_output(Path(args.json), doc, what="diagnosis")
        raise


def _run(args: argparse.Namespace) -> int:
    from simcore.diagnose.doctor import diagnose, static_diagnose

    if not args.firmware.is_file():
        raise UsageError(f"firmware {args.firmware} does not exist")
    defaults = _manifest_defaults(args.firmware)
    model = args.model or defaults.get("model")
    fmt = args.format or defaults.get("format")
    board = args.board or defaults.get("board")
    if args.static:
        board = board or "-"
    missing = [
        flag for flag, v in (("--model", model), ("--format", fmt), ("--board", board)) if not v
    ]
    if missing or model is None or fmt is None or board is None:
        raise UsageError(
            f"diagnose needs {', '.join(missing)}",
            hint="pass them, or keep the manifest (.json) simcore build wrote next to the ELF",
        )
    if args.samples is not None and args.samples < 1:
        raise UsageError("--samples must be at least 1")
    if args.html is not None:
        from simcore.outputs import check_writable

        check_writable(args.html, what="diagnosis page")
    inputs = None
    if args.inputs is not None:
        try:
            inputs = np.load(args.inputs, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read inputs {args.inputs}: {exc}") from None
    to_stdout = args.json == "-"

    def progress(msg: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"simcore: {msg}\n")

    if args.static:
        result = static_diagnose(args.firmware, model, fmt)
    else:
        result = diagnose(
            args.firmware,
            model,
            fmt,
            board,
            samples=args.samples,
            inputs=inputs,
            progress=progress,
            limits=limits_from_args(args),
        )
    data = json.dumps(result.as_dict(), indent=2) + "\n"
    if to_stdout:
        sys.stdout.write(data)
    else:
        sys.stdout.write(result.render())
        if args.json:
            from simcore.outputs import write_output

            write_output(Path(args.json), data, what="diagnosis")
    if args.html is not None:
        from simcore.diagnose.page import render_page
        from simcore.outputs import write_output

        write_output(args.html, render_page(result), what="diagnosis page")
    return result.exit_code
