"""Timing-table loader: every shipped table is valid; malformed tables are refused."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from simcore.boards import load_boards
from simcore.cycles.classify import CodeRange, MappingSymbol, classify
from simcore.cycles.tables import CORE_NAMES, Tag, cache_for, load_table, parse_table
from simcore.errors import CycleModelError

TIMING = Path(__file__).parents[2] / "simcore" / "data" / "timing"


def raw(core: str) -> dict[str, Any]:
    with (TIMING / f"{core}.toml").open("rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize("core", CORE_NAMES)
def test_shipped_table_is_valid(core: str) -> None:
    table = load_table(core)
    assert table.core == core
    assert table.rows
    assert all(row.source for row in table.rows)
    for row in table.rows:
        if row.taken_cycles is not None:
            assert row.taken_cycles == row.cycles + table.refill_cycles


def test_m0plus_is_exact_except_the_chosen_readings() -> None:
    """The M0+ model is exact; only POP-with-PC's N reading and traps are approximate."""
    table = load_table("cortex-m0plus")
    assert table.exactness is Tag.EXACT
    approximate = {r.name for r in table.rows if r.tag is not Tag.EXACT}
    assert approximate == {"pop_pc", "breakpoint", "exception_trap"}


def test_every_board_core_has_a_table() -> None:
    for board in load_boards().values():
        assert load_table(board.core.name).core == board.core.name
        assert (cache_for(board) is not None) == (board.cache is not None)
    cached = {b.name for b in load_boards().values() if b.cache}
    assert cached == {"nrf52840", "rp2040", "rp2350", "stm32f446", "stm32h743"}


def _mutate(core: str, fn: Any) -> dict[str, Any]:
    t = copy.deepcopy(raw(core))
    fn(t)
    return t


BAD = {
    "unknown_key": lambda t: t["row"][0].update(cyles=1),
    "unknown_capstone_id": lambda t: t["row"][0].update(ids=["MOVZ"]),
    "bad_tag": lambda t: t["row"][0].update(tag="guess"),
    "taken_mismatch": lambda t: t["row"][0].update(taken_cycles=9),
    "negative_cycles": lambda t: t["row"][0].update(cycles=-1),
    "unknown_core": lambda t: t["model"].update(core="cortex-m85"),
    "bad_when": lambda t: t["row"][0].update(when={"writes_lr": True}),
    "bad_precision": lambda t: t["row"][0].update(when={"precision": "f16"}),
    "missing_source": lambda t: t["row"][0].pop("source"),
    "duplicate_row": lambda t: t["row"].append(dict(t["row"][0])),
}


@pytest.mark.parametrize("mutation", list(BAD), ids=list(BAD))
def test_bad_table_refused(mutation: str) -> None:
    with pytest.raises(CycleModelError):
        parse_table(_mutate("cortex-m0plus", BAD[mutation]), "test.toml")


def test_m7_unit_must_exist() -> None:
    t = _mutate("cortex-m7", lambda t: t["row"][0].update(unit="warp"))
    with pytest.raises(CycleModelError, match="unit"):
        parse_table(t, "test.toml")


BAD_DUAL = {
    "unit_list_with_unknown": lambda t: t["row"][0].update(unit=["alu", "warp"]),
    "bad_after_fp_mac": lambda t: t["row"][0].update(after_fp_mac="sometimes"),
    "bad_operand2": lambda t: t["row"][0].update(when={"operand2": ["rotated"]}),
    "zero_divisor": lambda t: t["row"][0].update(per_register_divisor=0),
    "negative_role_latency": lambda t: t["row"][0].update(latency_acc=-1),
    "bad_size": lambda t: t["row"][0].update(when={"size_bytes": 3}),
    "unknown_role_latency": lambda t: t["row"][0].update(latency_branch=1),
    "bad_pair_cycle": lambda t: t["row"][0].update(pair_cycle="middle"),
}


@pytest.mark.parametrize("mutation", list(BAD_DUAL), ids=list(BAD_DUAL))
def test_bad_dual_issue_rows_refused(mutation: str) -> None:
    """The rows' scheduling data (units, roles, predicates) is checked on load."""
    with pytest.raises(CycleModelError):
        parse_table(_mutate("cortex-m7", BAD_DUAL[mutation]), "test.toml")


def test_role_latencies_and_units_load() -> None:
    """Row data reaches the table: per-role latencies, unit lists, list divisor."""
    m7 = {r.name: r for r in load_table("cortex-m7").rows}
    assert m7["load_word"].role_latency == {"early": 2, "address": 3, "mul": 2, "acc": 1}
    assert m7["fp_fma"].units == ("fpu", "fmac_ls", "fmac_ls")
    assert m7["load_store_multiple"].per_register_divisor == 2
    m33 = load_table("cortex-m33")
    assert m33.pair_16bit_only and m33.fp_mac_shadow_cycles == 2


def test_data_mapping_symbols_are_not_decoded() -> None:
    """Halfwords after a ``$d`` symbol are forbidden; code after ``$t`` is decoded."""
    code = bytes.fromhex("0120") + bytes.fromhex("ffffffff") + bytes.fromhex("0220")
    c = classify(
        "cortex-m0plus",
        [CodeRange(0x100, code)],
        [MappingSymbol(0x100, "t"), MappingSymbol(0x102, "d"), MappingSymbol(0x106, "t")],
    )
    r = c.ranges[0]
    assert r.block_cost(0x100, 0x102) == (1, 1)
    assert r.block_cost(0x106, 0x108) == (1, 1)
    assert r.block_cost(0x100, 0x108)[0] >= 1 << 40
    assert "data" in c.explain(0x102, 0x104)


def test_block_starting_inside_a_32bit_instruction_is_flagged() -> None:
    """A start between the halves of BL is a decode disagreement, not a silent count."""
    code = bytes.fromhex("00f000f8") + bytes.fromhex("0120")  # bl (to the movs); movs
    r = classify("cortex-m0plus", [CodeRange(0, code)]).ranges[0]
    # BL 2 + the refill 1 of a taken branch that lands on the next instruction (the TRM's 3)
    assert r.block_cost(0, 4) == (3, 1)
    assert r.block_cost(2, 6)[0] >= 1 << 40
