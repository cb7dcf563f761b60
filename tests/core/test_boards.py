"""Board and core data: every shipped table valid; malformed tables refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simcore.boards import (
    LinkSpec,
    RegionKind,
    get_board,
    load_boards,
    load_cores,
    parse_board,
    parse_size,
)
from simcore.cli import main
from simcore.errors import BoardError


def test_shipped_boards_match_design() -> None:
    boards = load_boards()
    assert set(boards) == {"rp2040", "rp2350", "stm32h743"}
    rp2040, rp2350, h7 = boards["rp2040"], boards["rp2350"], boards["stm32h743"]
    assert (rp2040.core.name, rp2040.clock_hz) == ("cortex-m0plus", 125_000_000)
    assert (rp2350.core.name, rp2350.clock_hz) == ("cortex-m33", 150_000_000)
    assert (h7.core.name, h7.clock_hz) == ("cortex-m7", 480_000_000)
    assert rp2040.region_at(0x10000000) is not None
    assert rp2040.region_at(0x10000000).size_bytes == 2 << 20  # type: ignore[union-attr]
    assert rp2040.region_at(0x20000000).size_bytes == 264 * 1024  # type: ignore[union-attr]
    assert rp2350.region_at(0x20000000).size_bytes == 520 * 1024  # type: ignore[union-attr]
    assert {r.name: (r.start, r.size_bytes) for r in h7.memory}["itcm"] == (0, 64 * 1024)
    assert {r.name: (r.start, r.size_bytes) for r in h7.memory}["dtcm"] == (
        0x20000000,
        128 * 1024,
    )


@pytest.mark.parametrize("name", sorted(load_boards()))
def test_regions_sorted_and_disjoint(name: str) -> None:
    board = load_boards()[name]
    starts = [r.start for r in board.memory]
    assert starts == sorted(starts)
    for a, b in zip(board.memory, board.memory[1:], strict=False):
        assert a.end <= b.start
    assert board.regions(RegionKind.FLASH) and board.regions(RegionKind.RAM)
    assert board.region_at(board.vector_table, 8) is not None


def test_cores_know_their_isa() -> None:
    cores = load_cores()
    assert cores["cortex-m0plus"].unicorn_model == "CORTEX_M0"
    assert not cores["cortex-m0plus"].divide and cores["cortex-m0plus"].fpu == "none"
    assert cores["cortex-m33"].fpu == "single" and cores["cortex-m7"].fpu == "double"


def _table(**override: object) -> dict[str, object]:
    table: dict[str, object] = {
        "name": "x",
        "description": "test board",
        "core": "cortex-m0plus",
        "clock_hz": 1,
        "vector_table": 0,
        "memory": [
            {"name": "flash", "kind": "flash", "start": 0, "size": 0x1000},
            {"name": "ram", "kind": "ram", "start": 0x2000, "size": 0x1000},
        ],
    }
    table.update(override)
    return table


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"colour": "red"}, "unknown key"),
        ({"core": "cortex-a53"}, "unknown core"),
        ({"clock_hz": 0}, "clock_hz"),
        ({"vector_table": 0x9000}, "vector_table"),
        (
            {
                "memory": [
                    {"name": "a", "kind": "flash", "start": 0, "size": 0x2000},
                    {"name": "b", "kind": "ram", "start": 0x1000, "size": 0x1000},
                ]
            },
            "overlap",
        ),
        ({"memory": [{"name": "a", "kind": "rom", "start": 0, "size": 4}]}, "kind"),
    ],
    ids=["unknown-key", "unknown-core", "zero-clock", "vector-outside", "overlap", "bad-kind"],
)
def test_malformed_board_refused(override: dict[str, object], message: str) -> None:
    with pytest.raises(BoardError, match=message):
        parse_board(_table(**override), "test.toml")


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ({"code": "flash"}, r"test.toml: link: unknown key 'code'; expected only code_in"),
        (
            {"code_in": "nowhere"},
            r"link.code_in: 'nowhere' is not the load region or a RAM region of this board",
        ),
        (
            {"data_in": "flash"},
            r"link.data_in: 'flash' is not a RAM region of this board; expected one of ram",
        ),
        ({"stack_in": 3}, r"link.stack_in is 3 \(0x3\); expected the name of a RAM region"),
        ({"stack_size": "8Q"}, r"link.stack_size is the string '8Q'; expected a size in bytes"),
        ({"stack_size": 100}, r"link.stack_size is 100 .*at least 256"),
        ({"heap_size": 12}, r"link.heap_size is 12 .*a multiple of 8"),
        ({"stack_size": "4K"}, r"link.stack_size: stack_size 4096 \+ heap_size 512 .* exceed"),
    ],
    ids=[
        "unknown",
        "code-nowhere",
        "data-in-flash",
        "not-a-name",
        "bad-size",
        "tiny-stack",
        "odd-heap",
        "too-big",
    ],
)
def test_malformed_link_table_refused(link: dict[str, object], message: str) -> None:
    with pytest.raises(BoardError, match=message) as refused:
        parse_board(_table(link=link), "test.toml")
    assert "\n" not in str(refused.value)


def test_link_table_and_its_defaults() -> None:
    # A 4 KB RAM: a quarter for the stack, an eighth for the heap.
    assert parse_board(_table(), "test.toml").link == LinkSpec("flash", "ram", "ram", 1024, 512)
    big = _table()
    big["memory"] = [
        {"name": "flash", "kind": "flash", "start": 0, "size": 0x1000},
        {"name": "small", "kind": "ram", "start": 0x2000, "size": 0x1000},
        {"name": "large", "kind": "ram", "start": 0x10000, "size": 0x40000},
    ]
    board = parse_board(big, "test.toml")
    assert board.link == LinkSpec("flash", "large", "large", 8192, 16384)
    table = _table(link={"stack_size": "1K", "heap_size": 0x400}, vector_table=0)
    board = parse_board(table, "test.toml")
    assert board.link == LinkSpec("flash", "ram", "ram", 1024, 1024)
    assert get_board("stm32h743").link == LinkSpec("itcm", "dtcm", "dtcm", 8192, 16384)


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("0x1000", 4096), ("4K", 4096), ("4k", 4096), ("1M", 1 << 20)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_user_board_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\ndescription = "d"\ncore = "cortex-m33"\nclock_hz = 100\n'
        "vector_table = 0\n"
        '[[memory]]\nname = "flash"\nkind = "flash"\nstart = 0\nsize = 4096\n'
        '[[memory]]\nname = "ram"\nkind = "ram"\nstart = 0x20000000\nsize = 4096\n'
    )
    assert get_board(str(path)).core.name == "cortex-m33"


def test_unknown_board_names_the_choices() -> None:
    with pytest.raises(BoardError, match="rp2040, rp2350, stm32h743"):
        get_board("esp32")


def test_boards_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in data] == ["rp2040", "rp2350", "stm32h743"]
    assert data[2]["memory"][0] == {
        "name": "itcm",
        "kind": "ram",
        "start": "0x00000000",
        "size_bytes": 65536,
    }
