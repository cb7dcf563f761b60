"""Board and core data: every shipped table valid; malformed tables refused."""

from __future__ import annotations

import json
import re
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
    assert set(boards) == {
        "bbc-microbit",
        "nrf52840",
        "rp2040",
        "rp2350",
        "stm32f446",
        "stm32h743",
    }
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
    m0, m4f = cores["cortex-m0"], cores["cortex-m4f"]
    assert (m0.unicorn_model, m0.accepted_cpu_arch, m0.fpu) == ("CORTEX_M0", (11, 12), "none")
    assert not m0.ccr_writable and m0.cpuid == 0x410CC200  # Cortex-M0 r0p0
    assert (m4f.unicorn_model, m4f.fpu, m4f.dsp, m4f.divide) == ("CORTEX_M4", "single", True, True)
    assert 16 not in m4f.accepted_cpu_arch and 13 in m4f.accepted_cpu_arch  # v7E-M, not v8-M
    assert "-mfpu=fpv4-sp-d16" in m4f.compiler_flags and m4f.cpuid == 0x410FC241  # M4 r0p1


def test_new_boards_match_their_datasheets() -> None:
    """micro:bit (nRF51822), nRF52840 and STM32F446: core, clock, memory map, cache."""
    boards = load_boards()
    layout = {
        name: (
            b.core.name,
            b.clock_hz,
            b.vector_table,
            [(r.name, r.kind.value, r.start, r.size_bytes) for r in b.memory],
        )
        for name, b in boards.items()
        if name in ("bbc-microbit", "nrf52840", "stm32f446")
    }
    assert layout == {
        "bbc-microbit": (
            "cortex-m0",
            16_000_000,
            0,
            [("flash", "flash", 0, 256 << 10), ("ram", "ram", 0x20000000, 16 << 10)],
        ),
        "nrf52840": (
            "cortex-m4f",
            64_000_000,
            0,
            [("flash", "flash", 0, 1 << 20), ("ram", "ram", 0x20000000, 256 << 10)],
        ),
        "stm32f446": (
            "cortex-m4f",
            180_000_000,
            0x08000000,
            [("flash", "flash", 0x08000000, 512 << 10), ("sram", "ram", 0x20000000, 128 << 10)],
        ),
    }
    assert boards["bbc-microbit"].cache is None
    art = boards["stm32f446"].cache
    assert art is not None  # RM0390: 64 lines x 128 bits, 5 wait states at 180 MHz
    assert (art.size_bytes, art.ways, art.line_bytes, art.miss_cycles) == (1024, 64, 16, 5)


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
        ({"memory": [{"name": "a", "kind": "eeprom", "start": 0, "size": 4}]}, "kind"),
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
    with pytest.raises(BoardError, match="nrf52840, rp2040, rp2350, stm32f446, stm32h743"):
        get_board("esp32")


def test_boards_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = ["bbc-microbit", "nrf52840", "rp2040", "rp2350", "stm32f446", "stm32h743"]
    assert [b["name"] for b in data] == names
    assert [b["core_exactness"] for b in data] == [
        "exact",
        "exact",
        "exact",
        "approximate",  # the M33's own model (fitted to silicon), no longer the M4 proxy
        "exact",
        "approximate",
    ]
    assert data[0]["core_timing"] == {"multiply": 1} and data[1]["core_timing"] == {}
    assert data[5]["memory"][0] == {
        "name": "itcm",
        "kind": "ram",
        "start": "0x00000000",
        "size_bytes": 65536,
    }


@pytest.mark.parametrize(
    "board,old,new,key",
    [
        ("nrf52840", 'core = "cortex-m4f"', 'core = "cortex-m4"', "core"),
        ("stm32f446", "ways = 64", 'ways = "64"', "cache.ways"),
        ("stm32f446", "miss_cycles = 5", "miss_cycles = -5", "cache.miss_cycles"),
        ("bbc-microbit", "size = 0x4000 ", "size = 0x4001 ", "memory[1].size"),
    ],
)
def test_new_board_schema_errors_name_the_key(
    tmp_path: Path, board: str, old: str, new: str, key: str
) -> None:
    """A user's copy of a new board with one bad value: one line naming the key."""
    shipped = Path(__file__).resolve().parents[2] / "simcore" / "data" / "boards" / f"{board}.toml"
    text = shipped.read_text()
    assert old in text
    path = tmp_path / "my-board.toml"
    path.write_text(text.replace(old, new).replace(f'name = "{board}"', 'name = "my-board"'))
    with pytest.raises(BoardError) as info:
        get_board(str(path))
    message = str(info.value)
    assert "\n" not in message and f"my-board.toml: {key}" in message
    assert "expected" in message


@pytest.mark.parametrize(
    "board,option,expected",
    [
        ("bbc-microbit", "multiply = 1", "core_timing: unknown key 'divide'"),
        ("stm32f446", "", "core_timing: cortex-m4f has no implementation options"),
        ("bbc-microbit", "multiply = 1", "core_timing.multiply is -1"),
    ],
)
def test_core_timing_options_are_checked(
    tmp_path: Path, board: str, option: str, expected: str
) -> None:
    """[core_timing] may only set the rows a core table marks as chip options."""
    shipped = Path(__file__).resolve().parents[2] / "simcore" / "data" / "boards" / f"{board}.toml"
    text = shipped.read_text().replace(f'name = "{board}"', 'name = "mine"')
    if "-1" in expected:
        text = text.replace(option, "multiply = -1")
    elif option:
        text = text.replace(option, "divide = 1")
    else:
        text += "\n[core_timing]\nmultiply = 32\n"
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(BoardError, match="mine.toml: " + re.escape(expected)) as info:
        get_board(str(path))
    assert "\n" not in str(info.value)


def test_io_region_peripheral_model_is_board_data() -> None:
    """The RP2040/RP2350 SIO model is declared by the board file, not keyed by a name."""
    boards = load_boards()
    timer = boards["rp2040"].timer
    assert timer is not None and timer.region == "timer"  # the [timer] table's model
    assert {
        r.name: r.peripheral for r in boards["rp2040"].regions(RegionKind.IO) if r.name != "timer"
    } == {"sio": "rp2040-sio"}
    io = {"name": "gpio", "kind": "io", "start": 0x40000000, "size": 0x1000}
    board = parse_board(_table(memory=[*_table()["memory"], io]), "mine.toml")  # type: ignore[list-item]
    assert board.region_at(0x40000000).peripheral == "registers"  # type: ignore[union-attr]
    bad = {
        "name": "ram2",
        "kind": "ram",
        "start": 0x4000,
        "size": 0x1000,
        "peripheral": "rp2040-sio",
    }
    with pytest.raises(BoardError, match=r"mine.toml: memory\[2\].peripheral .*kind io"):
        parse_board(_table(memory=[*_table()["memory"], bad]), "mine.toml")  # type: ignore[list-item]
    io["peripheral"] = "uart"
    with pytest.raises(BoardError, match=r"memory\[2\].peripheral: unknown peripheral model"):
        parse_board(_table(memory=[*_table()["memory"], io]), "mine.toml")  # type: ignore[list-item]


def test_one_board_is_loaded_without_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's board is parsed alone (with its cores, chip and timing files): a broken file
    beside it in data/boards does not stop it, while loading every board still reports it."""
    from hostile import data_dir_with

    import simcore.boards as boards_module

    shipped = load_boards()["rp2040"]
    read: list[str] = []
    real_read = boards_module._read_toml

    def spy(path: Path) -> dict[str, object]:
        read.append(f"{path.parent.name}/{path.name}")
        return real_read(path)

    monkeypatch.setattr(boards_module, "_read_toml", spy)
    with data_dir_with(tmp_path, board=b'name = "zz_hostile"\ncore = 7\n'):
        assert get_board("rp2040") == shipped
        assert sorted(read) == ["boards/rp2040.toml", "data/cores.toml", "peripherals/rp2040.toml"]
        assert "zz_hostile" in boards_module.board_names()
        with pytest.raises(BoardError, match="zz_hostile"):
            load_boards()
        assert get_board("rp2350").name == "rp2350"  # still loads after the failure
