"""One limit mechanism: the Limits dataclass and the argparse types every subcommand shares."""

from __future__ import annotations

import argparse
import math

import pytest

from simcore.cli import main
from simcore.limits import (
    DEFAULT_TIMEOUT_S,
    LimitError,
    Limits,
    add_limit_arguments,
    count_arg,
    limits_from_args,
    samples_arg,
    seconds_arg,
)


def test_defaults_and_good_values() -> None:
    assert Limits() == Limits(timeout_s=DEFAULT_TIMEOUT_S, max_instructions=None)
    limits = Limits(timeout_s=2, max_instructions=10**6)
    assert limits.timeout_s == 2.0 and isinstance(limits.timeout_s, float)
    assert Limits(timeout_s=None).timeout_s is None


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf, 0, 0.0, -1, 2e9, True])
def test_bad_timeout_refused_when_built(seconds: float) -> None:
    with pytest.raises(LimitError, match="is not a positive, finite number of seconds") as info:
        Limits(timeout_s=seconds)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("count", [0, -5, 10**19, True, 1.5])
def test_bad_budget_refused_when_built(count: int) -> None:
    with pytest.raises(LimitError, match="is not a whole number from 1 to 10\\^18"):
        Limits(max_instructions=count)


@pytest.mark.parametrize(
    ("text", "value"), [("60", 60.0), ("0.25", 0.25), ("1e3", 1000.0), (" 5 ", 5.0)]
)
def test_seconds_arg_accepts(text: str, value: float) -> None:
    assert seconds_arg(text) == value


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "0", "-1", "1e10", "abc", "", "0x10"])
def test_seconds_arg_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="positive, finite number of seconds"):
        seconds_arg(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("1000000", 10**6), ("1e9", 10**9), ("2.5e3", 2500), ("1_000", 1000)],
)
def test_count_arg_accepts(text: str, value: int) -> None:
    assert count_arg(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "nan", "inf", "1e19", "1e999999999", "x"])
def test_count_arg_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a whole number from 1"):
        count_arg(text)


def test_samples_arg() -> None:
    assert samples_arg("0") == 0 and samples_arg("12") == 12
    for text in ("-1", "1.5", "nan", "many"):
        with pytest.raises(argparse.ArgumentTypeError, match="whole number of samples, 0 or more"):
            samples_arg(text)


def test_parser_helpers_build_limits() -> None:
    parser = argparse.ArgumentParser()
    add_limit_arguments(parser, timeout_s=None)
    assert limits_from_args(parser.parse_args([])) == Limits(timeout_s=None)
    args = parser.parse_args(["--timeout", "7", "--max-instructions", "1e6"])
    assert limits_from_args(args) == Limits(timeout_s=7.0, max_instructions=10**6)


@pytest.mark.parametrize(
    "flag",
    [
        ["--timeout", "nan"],
        ["--timeout", "inf"],
        ["--timeout", "0"],
        ["--timeout", "-1"],
        ["--timeout=-inf"],
        ["--max-instructions", "-1"],
        ["--max-instructions", "0"],
        ["--max-instructions", "2.5"],
        ["--samples", "-1"],
        ["--samples", "1.5"],
    ],
    ids=lambda f: "=".join(f) if len(f) > 1 else f[0],
)
def test_run_refuses_bad_limits_at_parsing(
    flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything is loaded (the ELF does not even exist): exit 2, one line."""
    with pytest.raises(SystemExit) as info:
        main(["run", "missing.elf", "-b", "rp2040", *flag])
    assert info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    name = flag[0].split("=")[0]
    assert lines[0].startswith(f"simcore run: error: argument {name}: "), lines[0]
    assert lines[0].endswith("see simcore run --help")
    assert captured.out == ""


def test_every_argument_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "missing.elf"])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "simcore run: error: the following arguments are required: --board/-b; "
        "see simcore run --help"
    ]
