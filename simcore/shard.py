"""Split validation work into CI shards, and join the shards' results into one report.

``simcore validate ... --shard i/n`` runs the i-th of n parts of the combinations
the other flags select. Every shard computes the same plan from the same inputs
(the selected combinations, the baseline, ``--limit``), so n runners with the
same command line and baseline cover each combination exactly once, with no
coordination between them. The plan balances the shards by expected cost: the
baseline's cycles per inference times the samples it will run, plus a fixed
charge per combination for building and starting the firmware; combinations the
baseline does not know are charged the median of the known ones. Assignment is
longest-first onto the least-loaded shard (ties broken by key), which keeps
every shard within one combination's cost of the mean.

Each shard's JSON records, under ``meta.shard``, the plan's fingerprint (a hash
of every selected key in order), its own index, the number of shards, and the
keys it owns with their positions in the full list. ``simcore report --merge``
checks that the files are the n shards of one plan (same fingerprint, every
index once, every owned key present) and joins their rows in the plan's order,
so the merged document has the rows, order and verdict of the unsharded run.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simcore.baseline import Baseline
from simcore.errors import SimError, UsageError

#: Expected cost of building and starting one combination, in emulated cycles. About
#: a second of build and start-up, against ~50 M emulated cycles per second.
PER_COMBINATION_CYCLES = 50_000_000.0

#: Samples assumed when neither --limit nor the baseline says how many will run.
DEFAULT_SAMPLES = 100


class ShardMergeError(SimError):
    """The files given to ``report --merge`` are not the complete shards of one run."""

    exit_code = 2


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"i/n"`` with 1 <= i <= n, as ``--shard`` takes it."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"{text!r} is not I/N with 1 <= I <= N, e.g. 2/4 (the 2nd of 4 shards)")
    index, count = int(match[1]), int(match[2])
    return Shard(index, count)


def _samples(baseline: Baseline, key: str, limit: int | None) -> int:
    recorded = baseline.samples.get(key, "")
    match = re.search(r"(\d+)\s*$", recorded)
    known = int(match[1]) if match else None
    if limit is not None:
        return min(limit, known) if known is not None else limit
    return known if known is not None else DEFAULT_SAMPLES


def expected_costs(keys: Sequence[str], baseline: Baseline, limit: int | None) -> list[float]:
    """Expected cost of each combination key, in emulated cycles (see the module doc)."""
    per_inference = {
        key: baseline.entries[key]["cycles"][0]
        for key in keys
        if "cycles" in baseline.entries.get(key, {})
    }
    fallback = statistics.median(per_inference.values()) if per_inference else 1.0
    return [
        PER_COMBINATION_CYCLES + per_inference.get(key, fallback) * _samples(baseline, key, limit)
        for key in keys
    ]


def assign(keys: Sequence[str], costs: Sequence[float], count: int) -> list[int]:
    """The shard (1-based) of each key: longest first onto the least-loaded shard."""
    if len(set(keys)) != len(keys):
        raise ValueError("combination keys must be unique to shard them")
    load = [0.0] * count
    owner = [0] * len(keys)
    for i in sorted(range(len(keys)), key=lambda i: (-costs[i], keys[i])):
        target = min(range(count), key=lambda s: (load[s], s))
        load[target] += costs[i]
        owner[i] = target + 1
    return owner


def fingerprint(keys: Sequence[str]) -> str:
    """A hash of the full, ordered list of selected combinations."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def select(
    keys: Sequence[str], shard: Shard, baseline: Baseline, limit: int | None
) -> tuple[list[int], dict[str, Any]]:
    """Positions (in ``keys``) this shard runs, and the ``meta.shard`` record of the plan."""
    costs = expected_costs(keys, baseline, limit)
    owner = assign(keys, costs, shard.count)
    mine = [i for i, s in enumerate(owner) if s == shard.index]
    record = {
        "index": shard.index,
        "count": shard.count,
        "plan": fingerprint(keys),
        "total": len(keys),
        "keys": [keys[i] for i in mine],
        "positions": mine,
        "expected_cost_share": round(sum(costs[i] for i in mine) / sum(costs), 4) if keys else 0.0,
    }
    return mine, record


def _shard_record(path: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    record = meta.get("shard")
    fields = {"index": int, "count": int, "plan": str, "total": int, "keys": list}
    if not isinstance(record, dict) or any(
        not isinstance(record.get(k), t) for k, t in fields.items()
    ):
        raise ShardMergeError(
            f"{path}: not a shard's results (no meta.shard)",
            hint="merge the JSON files of 'simcore validate --shard I/N --json FILE'",
        )
    positions = record.get("positions")
    if not isinstance(positions, list) or len(positions) != len(record["keys"]):
        raise ShardMergeError(f"{path}: meta.shard.positions does not match meta.shard.keys")
    return record


def merge(documents: Sequence[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """One validate document from the documents of all shards of one plan.

    Raises :class:`ShardMergeError` naming what is wrong: files of different plans
    or sample sets, a shard given twice or missing, rows missing from a shard
    (an interrupted shard is merged but the result is marked partial).
    """
    if not documents:
        raise ShardMergeError("nothing to merge")
    records = [(path, _shard_record(path, doc.get("meta", {}))) for path, doc in documents]
    first_path, first = records[0]
    for path, rec in records[1:]:
        for field in ("plan", "count", "total"):
            if rec[field] != first[field]:
                raise ShardMergeError(
                    f"{path} and {first_path} are shards of different runs "
                    f"({field} {rec[field]} vs {first[field]})",
                    hint="run every shard with the same command line and baseline",
                )
    for field in ("split", "limit"):
        values = {repr(doc.get("meta", {}).get(field)) for _, doc in documents}
        if len(values) > 1:
            raise ShardMergeError(f"the shards ran with different --{field}: {sorted(values)}")
    seen: dict[int, Path] = {}
    for path, rec in records:
        if rec["index"] in seen:
            raise ShardMergeError(f"shard {rec['index']}/{rec['count']} given twice: "
                                  f"{seen[rec['index']]} and {path}")  # fmt: skip
        seen[rec["index"]] = path
    count = first["count"]
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        names = ", ".join(f"{i}/{count}" for i in missing)
        raise ShardMergeError(
            f"missing shard(s) {names} of {count}",
            hint="pass every shard's JSON file",
        )
    rows: dict[int, dict[str, Any]] = {}
    absent: list[str] = []
    interrupted: list[str] = []
    for (path, doc), (_, rec) in zip(documents, records, strict=True):
        by_key = {r.get("key"): r for r in doc.get("results", []) if isinstance(r, dict)}
        if doc.get("meta", {}).get("partial"):
            interrupted.append(str(path))
        for key, position in zip(rec["keys"], rec["positions"], strict=True):
            if key in by_key:
                rows[int(position)] = by_key[key]
            else:
                absent.append(key)
    meta = {
        key: value
        for key, value in documents[0][1].get("meta", {}).items()
        if key not in ("shard", "command", "partial", "interrupted")
    }
    meta["merged"] = {
        "plan": first["plan"],
        "shards": first["count"],
        "files": [str(path) for path, _ in documents],
        "commands": [doc.get("meta", {}).get("command") for _, doc in documents],
    }
    if absent or interrupted:
        meta["partial"] = True
        meta["interrupted"] = f"{len(absent)} of {first['total']} combinations have no result" + (
            f" (interrupted shards: {', '.join(interrupted)})" if interrupted else ""
        )
    return {
        "version": documents[0][1].get("version", 1),
        "meta": meta,
        "results": [rows[i] for i in sorted(rows)],
    }
