"""CI sharding: ``validate --shard I/N`` and ``report --merge``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_support import needs_toolchain

from simcore.baseline import Baseline
from simcore.cli import main
from simcore.errors import UsageError
from simcore.shard import Shard, ShardMergeError, assign, merge, parse_shard, select


def test_parse_shard() -> None:
    assert parse_shard("2/4") == Shard(2, 4)
    assert parse_shard(" 1 / 1 ") == Shard(1, 1)
    for bad in ("0/2", "3/2", "1/0", "a/b", "1", "-1/2", "1/2/3"):
        with pytest.raises(UsageError, match="is not I/N"):
            parse_shard(bad)


@settings(max_examples=60, deadline=None)
@given(
    costs=st.lists(st.floats(min_value=1.0, max_value=1e9), min_size=0, max_size=40),
    count=st.integers(min_value=1, max_value=8),
)
def test_assignment_covers_every_key_once_and_balances(costs: list[float], count: int) -> None:
    keys = [f"m{i}/int8/b" for i in range(len(costs))]
    owner = assign(keys, costs, count)
    assert len(owner) == len(keys) and all(1 <= s <= count for s in owner)
    assert owner == assign(keys, costs, count)  # deterministic: every runner agrees
    loads = [
        sum(c for c, s in zip(costs, owner, strict=True) if s == k) for k in range(1, count + 1)
    ]
    if costs:
        # Longest-first greedy: no shard exceeds the mean by more than the largest item.
        assert max(loads) <= sum(costs) / count + max(costs) + 1e-6 * sum(costs)


def test_select_uses_the_baseline_cost() -> None:
    keys = ["big/int8/b", "small1/int8/b", "small2/int8/b", "small3/int8/b"]
    baseline = Baseline(
        {k: {"cycles": (1e9 if k.startswith("big") else 1e3, 0.02)} for k in keys},
        {k: "test 100" for k in keys},
    )
    first, record = select(keys, Shard(1, 2), baseline, None)
    second, _ = select(keys, Shard(2, 2), baseline, None)
    assert sorted(first + second) == [0, 1, 2, 3]
    assert [keys[i] for i in first] == ["big/int8/b"]  # the expensive one alone
    assert record["keys"] == ["big/int8/b"] and record["positions"] == [0]
    assert record["total"] == 4 and record["expected_cost_share"] > 0.9


def _doc(index: int, count: int, keys: list[str], positions: list[int]) -> dict[str, object]:
    shard = {"index": index, "count": count, "plan": "p", "total": 3, "keys": keys,
             "positions": positions}  # fmt: skip
    rows = [{"key": k, "passed": True} for k in keys]
    return {"version": 1, "meta": {"split": "test", "limit": None, "shard": shard}, "results": rows}


def test_merge_refuses_incomplete_or_mixed_shards() -> None:
    a = (Path("a.json"), _doc(1, 2, ["x/f/b", "z/f/b"], [0, 2]))
    b = (Path("b.json"), _doc(2, 2, ["y/f/b"], [1]))
    merged = merge([b, a])
    assert [r["key"] for r in merged["results"]] == ["x/f/b", "y/f/b", "z/f/b"]
    assert not merged["meta"].get("partial")
    with pytest.raises(ShardMergeError, match="missing shard"):
        merge([a])
    with pytest.raises(ShardMergeError, match="given twice"):
        merge([a, a, b])
    other = _doc(2, 2, ["y/f/b"], [1])
    other["meta"]["shard"]["plan"] = "q"  # type: ignore[index]
    with pytest.raises(ShardMergeError, match="different runs"):
        merge([a, (Path("c.json"), other)])
    limited = _doc(2, 2, ["y/f/b"], [1])
    limited["meta"]["limit"] = 5  # type: ignore[index]
    with pytest.raises(ShardMergeError, match="different --limit"):
        merge([a, (Path("d.json"), limited)])
    lost = _doc(2, 2, ["y/f/b"], [1])
    lost["results"] = []
    merged = merge([a, (Path("e.json"), lost)])
    assert (
        merged["meta"]["partial"]
        and "1 of 3 combinations have no result" in (merged["meta"]["interrupted"])
    )
    with pytest.raises(ShardMergeError, match="not a shard"):
        merge([(Path("f.json"), {"version": 1, "meta": {}, "results": []})])


def _comparable(doc: dict[str, object]) -> list[dict[str, object]]:
    rows = doc["results"]
    assert isinstance(rows, list)
    return [{k: v for k, v in r.items() if k not in ("emulation_seconds", "built")} for r in rows]


@needs_toolchain
def test_shards_merged_equal_the_unsharded_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["validate", "--model", "iris3", "--board", "rp2040", "--limit", "4", "-q", "-j", "1"]
    assert main([*base, "--json", str(tmp_path / "all.json")]) == 0
    files = []
    for i in (1, 2):
        files.append(str(tmp_path / f"shard{i}.json"))
        assert main([*base, "--shard", f"{i}/2", "--json", files[-1]]) == 0
    shard_keys = [json.loads(Path(f).read_text())["meta"]["shard"]["keys"] for f in files]
    assert sorted(shard_keys[0] + shard_keys[1]) == sorted(
        ["iris3/f32/rp2040", "iris3/int8/rp2040", "iris3/q16/rp2040"]
    )
    assert all(shard_keys), "each of 2 shards of 3 combinations gets work"
    merged = tmp_path / "merged.json"
    capsys.readouterr()
    assert main(["report", "--merge", *reversed(files), "--json", str(merged)]) == 0
    assert "3 combinations: 3 passed" in capsys.readouterr().out
    whole = json.loads((tmp_path / "all.json").read_text())
    assert _comparable(json.loads(merged.read_text())) == _comparable(whole)
    # A missing shard is no verdict: exit 2, naming it.
    assert main(["report", "--merge", files[0]]) == 2
    assert "missing shard(s) 2/2" in capsys.readouterr().err
    # A failing combination in one shard fails the merged gate.
    doc = json.loads(Path(files[1]).read_text())
    doc["results"][0]["passed"] = False
    Path(files[1]).write_text(json.dumps(doc))
    assert main(["report", "--merge", *files]) == 1


def test_shard_refuses_update_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--model", "iris3", "--shard", "1/2", "--update-baseline"]) == 2
    assert "run it without --shard" in capsys.readouterr().err
