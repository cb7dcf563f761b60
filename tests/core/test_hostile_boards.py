"""Issue 12, class 3: every board and core file goes through one schema.

A malformed file is a one-line BoardError (exit 2) naming the file, the key and
what is expected, whatever it holds: wrong types, out-of-range values, foreign
encodings or random bytes. Never a TypeError, OverflowError or a unicorn error.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hostile import (
    BoardCase,
    board_toml,
    check_board,
    check_cores,
    data_dir_with,
    hostile_board,
    hostile_cores,
    one_line,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_support import AsmBuilder

from simcore.boards import get_board, load_boards
from simcore.cli import main
from simcore.errors import BoardError


def _examples(n: int) -> settings:
    """The shared settings with ``n`` examples."""
    return settings(_SETTINGS, max_examples=n)


_SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _board(**override: object) -> dict[str, object]:
    table: dict[str, object] = {
        "name": "mine",
        "description": "a user's board",
        "core": "cortex-m33",
        "clock_hz": 100_000_000,
        "vector_table": 0x10000000,
        "memory": [
            {"name": "flash", "kind": "flash", "start": 0x10000000, "size": 0x10000},
            {"name": "ram", "kind": "ram", "start": 0x20000000, "size": 0x8000},
        ],
    }
    table.update(override)
    return table


def _region(index: int, **override: object) -> dict[str, object]:
    memory = [dict(r) for r in _board()["memory"]]  # type: ignore[attr-defined]
    memory[index].update(override)
    return _board(memory=memory)


def _write(tmp_path: Path, table: dict[str, object], encoding: str = "utf-8") -> Path:
    path = tmp_path / "mine.toml"
    path.write_bytes(board_toml(table).encode(encoding))
    return path


# One example of each defect the outside attack found, with the key the message names.
DEFECTS: list[tuple[str, dict[str, object], str, str]] = [
    ("string-size", _region(0, size="0x10000"), "memory[0].size", "whole number of bytes"),
    ("float-size", _region(1, size=32768.0), "memory[1].size", "a float"),
    ("inf-clock", _board(clock_hz=float("inf")), "clock_hz", "clock in Hz"),
    ("nan-clock", _board(clock_hz=float("nan")), "clock_hz", "nan"),
    ("zero-clock", _board(clock_hz=0), "clock_hz", "1-10,000,000,000"),
    ("ppb-overlap", _region(1, start=0xE0000000, kind="io"), "memory[1]", "Private Peripheral Bus"),
    ("start-not-1k", _region(1, start=0x20000100), "memory[1].start", "multiple of 1024"),
    ("size-not-1k", _region(0, size=0x10001), "memory[0].size", "multiple of 1024"),
    ("negative-start", _region(0, start=-4096), "memory[0].start", "-4096"),
    ("bool-size", _region(0, size=True), "memory[0].size", "a boolean"),
    ("bool-clock", _board(clock_hz=True), "clock_hz", "a boolean"),
    ("unknown-key", _board(colour="red"), "unknown key 'colour'", "only name"),
    ("unknown-region-key", _region(0, speed=3), "memory[0]: unknown key 'speed'", "only name"),
    ("missing-key", {k: v for k, v in _board().items() if k != "core"}, "missing key 'core'", ""),
    ("overlap", _region(1, start=0x10008000), "memory: regions", "overlap"),
    ("beyond-4g", _region(1, start=0xFFFFF000, size=0x2000), "memory[1]", "past 4 GB"),
    ("empty-map", _board(memory=[]), "memory is an array of 0", "1-64 [[memory]]"),
    ("no-ram", _board(memory=[_board()["memory"][0]]), "memory: no region of kind ram", "stack"),  # type: ignore[index]
    ("no-flash", _board(memory=[_board()["memory"][1]]), "no region of kind flash", "image"),  # type: ignore[index]
    ("unknown-core", _board(core="cortex-a53"), "core: unknown core 'cortex-a53'", "cortex-m0plus"),
    ("vector-misaligned", _board(vector_table=0x10000004), "vector_table", "multiple of 128"),
    ("vector-outside", _board(vector_table=0x30000000), "vector_table", "no flash or RAM region"),
    ("name-path", _board(name="../../etc"), "name", "letters, digits"),
    ("memory-not-tables", _board(memory=[1, 2]), "memory[0]", "a table of keys"),
]


@pytest.mark.parametrize(
    ("table", "key", "expected"), [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS]
)
def test_each_defect_is_one_line_board_error(
    tmp_path: Path, table: dict[str, object], key: str, expected: str
) -> None:
    path = _write(tmp_path, table)
    with pytest.raises(BoardError) as info:
        get_board(str(path))
    message = str(info.value)
    assert one_line(info.value)
    assert message.startswith(f"{path}: ") and key in message and expected in message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "latin-1"])
def test_foreign_encodings_are_named(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_bytes((board_toml(_board()) + "# caf\u00e9\n").encode(encoding))
    with pytest.raises(BoardError, match=r"(UTF-16|not UTF-8).*save the board file as UTF-8"):
        get_board(str(path))


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_bytes(b"\xef\xbb\xbf" + board_toml(_board()).encode())
    assert get_board(str(path)).clock_hz == 100_000_000


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="does not exist or is not a file"):
        get_board(str(tmp_path / "nope.toml"))
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(BoardError, match="does not exist or is not a file"):
        get_board(str(tmp_path / "dir.toml"))


def test_user_board_cannot_take_a_shipped_name(tmp_path: Path) -> None:
    path = _write(tmp_path, _board(name="rp2040"))
    with pytest.raises(BoardError, match="name 'rp2040' is the name of a shipped board"):
        get_board(str(path))


def test_shipped_file_by_path_is_the_shipped_board() -> None:
    shipped = load_boards()["rp2350"]
    path = Path(__file__).resolve().parents[2] / "simcore" / "data" / "boards" / "rp2350.toml"
    assert get_board(str(path)) is shipped


def test_xip_cache_needs_a_cache_table(tmp_path: Path) -> None:
    path = _write(tmp_path, _region(0, xip_cache=True))
    with pytest.raises(BoardError, match=r"xip_cache = true but no \[cache\] table covers it"):
        get_board(str(path))
    with pytest.raises(
        BoardError, match=r"memory\[1\].xip_cache .* only on a region of kind flash"
    ):
        get_board(str(_write(tmp_path, _region(1, xip_cache=True))))


def test_region_ending_at_4g_loads(tmp_path: Path) -> None:
    board = get_board(str(_write(tmp_path, _region(1, start=0xFFFFF000, size=0x1000))))
    assert board.memory[-1].end == 1 << 32


@_SETTINGS
@given(rng=st.randoms(use_true_random=False))
def test_hostile_board_files(tmp_path: Path, rng: random.Random) -> None:
    """Mutated tables, foreign encodings, truncations and random bytes."""
    case = hostile_board(rng)
    assert check_board(case, tmp_path) is None, case.what


@_SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    assert check_board(BoardCase("bytes", data), tmp_path) is None


@_SETTINGS
@given(rng=st.randoms(use_true_random=False))
def test_hostile_core_files(tmp_path: Path, rng: random.Random) -> None:
    """cores.toml goes through the same schema (types, unicorn model, FPU kind)."""
    case = hostile_cores(rng)
    assert check_cores(case, tmp_path) is None, case.what


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@_examples(40)
@given(rng=st.randoms(use_true_random=False))
def test_hostile_boards_through_the_cli(
    tmp_path: Path, asm_elf: AsmBuilder, capsys: pytest.CaptureFixture[str], rng: random.Random
) -> None:
    """`simcore run x.elf --board bad.toml` and `simcore boards bad.toml`: exit 2, one line."""
    case = hostile_board(rng)
    path = tmp_path / "bad.toml"
    path.write_bytes(case.data)
    elf = tmp_path / "rp2040.elf"
    if not elf.exists():
        elf = asm_elf("rp2040", "movs r0, #0")
    try:
        get_board(str(path))
        valid = True
    except BoardError:
        valid = False
    for argv in (["run", str(elf), "--board", str(path)], ["boards", str(path)]):
        code, err = _cli(argv, capsys)
        if valid:
            assert code in (0, 1, 2) and len(err) <= 1, (case.what, argv, err)
        else:
            assert code == 2, (case.what, argv, err)
            assert len(err) == 1 and err[0].startswith("simcore: error: "), (case.what, err)
            assert "Traceback" not in err[0]


@_examples(25)
@given(rng=st.randoms(use_true_random=False))
def test_hostile_board_dropped_next_to_the_shipped_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rng: random.Random
) -> None:
    """A user's file in data/boards is loaded by `simcore boards` through the same schema."""
    case = hostile_board(rng)
    with data_dir_with(tmp_path, board=case.data):
        try:
            load_boards()
            valid = True
        except BoardError:
            valid = False
        load_boards.cache_clear()
        code, err = _cli(["boards"], capsys)
    if valid:
        assert code == 0, (case.what, err)
    else:
        assert code == 2 and len(err) == 1 and err[0].startswith("simcore: error: "), err


def test_boards_command_checks_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, _board())
    assert main(["boards", str(path)]) == 0
    assert "mine" in capsys.readouterr().out
    bad = _write(tmp_path, _board(clock_hz=1.5e8))
    code, err = _cli(["boards", str(bad)], capsys)
    assert code == 2 and err == [
        f"simcore: error: {bad}: clock_hz is 150000000.0 (a float); expected the core clock "
        "in Hz, a whole number 1-10,000,000,000"
    ]


SHIPPED_RP2040 = Path(__file__).resolve().parents[2] / "simcore" / "data" / "boards" / "rp2040.toml"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("size_bytes = 16384", "size_bytes = 12288"), "make 768 sets"),
        (("line_bytes = 8", "line_bytes = 6"), "cache.line_bytes is 6"),
        (('region = "flash"', 'region = "sram"'), "no flash region named 'sram'"),
        (('tag = "approximate"', 'tag = "guess"'), "unknown tag 'guess'"),
        (("miss_cycles = 50", "miss_cycles = -5"), "cache.miss_cycles is -5"),
        (('fast_io_region = "sio"', 'fast_io_region = "flash"'), "no io region named 'flash'"),
        (('region = "timer"', 'region = "sram"'), "timer.region: no io region named 'sram'"),
        (("timelr = 0x0c", "timelr = 0x0e"), "timer.timelr is 14"),
        (("tick_hz = 1_000_000", "tick_hz = 0"), "timer.tick_hz is 0"),
    ],
    ids=["sets", "line", "region", "tag", "miss", "fast-io", "timer", "timer-reg", "tick"],
)
def test_bad_cache_tables_are_one_line_errors(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    _edited_board_fails(tmp_path, SHIPPED_RP2040, edit, message)


SHIPPED_H7 = SHIPPED_RP2040.with_name("stm32h743.toml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("ways = 4", "ways = 3"), "cache.data_cache.size_bytes: 16384 bytes in 3 ways"),
        (("[cache.data_cache]", "[cache.data_cache]\ncolour = 1"), "unknown key 'colour'"),
    ],
    ids=["geometry", "key"],
)
def test_bad_data_cache_tables_are_one_line_errors(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    _edited_board_fails(tmp_path, SHIPPED_H7, edit, message)


def _edited_board_fails(tmp_path: Path, shipped: Path, edit: tuple[str, str], message: str) -> None:
    """A shipped board file, renamed and with one edit, fails with ``message`` on one line."""
    text = shipped.read_text().replace(f'name = "{shipped.stem}"', 'name = "mine"')
    assert edit[0] in text
    path = tmp_path / "mine.toml"
    path.write_text(text.replace(edit[0], edit[1]))
    with pytest.raises(BoardError, match=re.escape(message)) as info:
        get_board(str(path))
    assert one_line(str(info.value))
