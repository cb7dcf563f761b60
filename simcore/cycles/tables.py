"""Per-core timing tables: TOML data (``data/timing/<core>.toml``) in frozen dataclasses.

A table is a list of rows tried in order; a row matches an instruction by capstone
instruction id (``ARM_INS_<name>``, resolved when the table is loaded, so a typo is a
load error rather than a silent miss) and optional operand predicates (``when``).
Every row carries a confidence tag and its source, so a report can say which part of
an estimate is exact. The loader refuses unknown keys, unknown ids and unknown tags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from simcore.boards import BoardSpec
from simcore.cache import parsed_toml
from simcore.cycles.arm_ids import arm_constants
from simcore.errors import CycleModelError

CORE_NAMES = ("cortex-m0", "cortex-m0plus", "cortex-m4f", "cortex-m33", "cortex-m7")


class Tag(Enum):
    """How far a figure can be trusted (shared/reference/cortex-m-timing.md)."""

    EXACT = "exact"
    PROXY = "proxy"
    MODEL = "model"
    MEASURED = "measured"
    APPROXIMATE = "approximate"


class Issue(Enum):
    """Which dual-issue slot a row may take (only meaningful for ``issue = "dual"`` models)."""

    DUAL = "dual"
    OLDER = "older"
    SINGLE = "single"


_MODEL_KEYS = {
    "core",
    "exactness",
    "summary",
    "issue",
    "refill_cycles",
    "refill_tag",
    "refill_source",
    "thumb32_ids",
    "unit_capacity",
    "pair_16bit_only",
    "store_data_latency",
    "fp_mac_shadow_cycles",
    "load_banks",
}
_MODEL_REQUIRED = _MODEL_KEYS - {
    "thumb32_ids",
    "unit_capacity",
    "pair_16bit_only",
    "store_data_latency",
    "fp_mac_shadow_cycles",
    "load_banks",
}
#: Operand roles a consumer reads a register in, each with its own producer latency
#: (``latency_<role>`` in a row; see classify.py for how operands get their role).
ROLES = ("early", "address", "mul", "acc", "store")
_ROW_KEYS = {
    "name",
    "ids",
    "when",
    "cycles",
    "taken_cycles",
    "per_register",
    "per_register_counts_pc",
    "per_register_divisor",
    "latency",
    "latency_early",
    "latency_address",
    "latency_mul",
    "latency_acc",
    "latency_store",
    "early_sources",
    "fp_mac",
    "after_fp_mac",
    "repeat_interval",
    "repeat_interval_same_bank",
    "pair_cycle",
    "pipeline_head",
    "pipelined_cycles",
    "issue",
    "unit",
    "shifted",
    "board_option",
    "tag",
    "source",
    "note",
}
_ROW_REQUIRED = {"name", "ids", "cycles", "tag", "source"}
_WHEN_KEYS = {
    "writes_pc",
    "conditional",
    "precision",
    "hint",
    "operand2",
    "sets_flags",
    "size_bytes",
    "double_regs",
    "core_regs_written",
    "core_regs_read",
}
#: Classes of a data-processing instruction's second operand (jnk0le's operand2 names):
#: "simple" 8/12-bit immediate, "pattern" 0x00XY00XY-style, "shifted_const" a rotated
#: 8-bit immediate (0x1fc0), "shifted_reg" an inline shifted register, "plain" otherwise.
OPERAND2_CLASSES = ("simple", "pattern", "shifted_const", "shifted_reg", "plain")


@dataclass(frozen=True)
class When:
    """Operand predicates of a row; ``None`` means "any"."""

    writes_pc: bool | None = None
    conditional: bool | None = None
    precision: str | None = None  # "f32" or "f64"
    hint: frozenset[int] | None = None
    operand2: frozenset[str] | None = None
    sets_flags: bool | None = None
    size_bytes: int | None = None
    double_regs: bool | None = None  # any D register operand
    core_regs_written: int | None = None  # at least this many r0-r12/sp/lr written
    core_regs_read: int | None = None  # at least this many read


@dataclass(frozen=True)
class TimingRow:
    """One instruction class of a timing table."""

    name: str
    ids: frozenset[int]
    id_names: tuple[str, ...]
    when: When
    cycles: int
    taken_cycles: int | None
    per_register: int
    per_register_counts_pc: bool
    per_register_divisor: int
    latency: int | None
    #: Latency to a consumer reading the result in a given role (ROLES); absent = latency.
    role_latency: dict[str, int] = field(hash=False, compare=False)
    early_sources: bool
    fp_mac: bool
    after_fp_mac: str | None  # "blocked" or "older_only"
    repeat_interval: int
    repeat_interval_same_bank: int
    #: For a multi-cycle row: the cycle of it a younger instruction may pair with
    #: ("first" or "last"); None: only 1-cycle instructions open a pair.
    pair_cycle: str | None
    pipeline_head: bool
    pipelined_cycles: int | None
    issue: Issue
    units: tuple[str, ...]
    shifted: bool
    tag: Tag
    source: str
    note: str | None
    #: An implementation option the chip vendor chooses (the M0/M0+ multiplier): a
    #: board file may set its ``cycles`` in its ``[core_timing]`` table.
    board_option: bool = False


@dataclass(frozen=True)
class TimingTable:
    """A core's timing model: global parameters and the ordered rows."""

    core: str
    exactness: Tag
    summary: str
    dual_issue: bool
    refill_cycles: int
    refill_tag: Tag
    refill_source: str
    thumb32_ids: frozenset[int] | None
    unit_capacity: dict[str, int] = field(hash=False)
    pair_16bit_only: bool
    store_data_latency: int | None
    fp_mac_shadow_cycles: int
    load_banks: int
    rows: tuple[TimingRow, ...]
    path: str
    by_id: dict[int, tuple[TimingRow, ...]] = field(hash=False, compare=False, repr=False)
    #: What the table was built from, when :func:`parse_table` (and the board options of
    #: :func:`table_for`) built it: the TOML data as canonical JSON, and the options.
    #: The same data always gives the same table (this module's code is part of every
    #: cache key), so it stands for the table in cache keys without walking its rows
    #: (simcore.cycles.classify.table_digest). Not an ``__init__`` argument: a table
    #: made another way, or changed with ``dataclasses.replace``, has None.
    origin: str | None = field(default=None, init=False, compare=False, repr=False)

    def rows_for(self, insn_id: int) -> tuple[TimingRow, ...]:
        """Rows whose id set holds ``insn_id``, in table order."""
        return self.by_id.get(insn_id, ())


def _err(where: str, message: str) -> CycleModelError:
    return CycleModelError(f"{where}: {message}", hint="fix the timing table")


def _check_keys(where: str, table: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise _err(where, f"unknown key(s) {', '.join(sorted(unknown))}")
    missing = required - set(table)
    if missing:
        raise _err(where, f"missing key(s) {', '.join(sorted(missing))}")


def _int(where: str, value: Any, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _err(where, f"must be an integer >= {minimum}, not {value!r}")
    return value


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _err(where, f"must be true or false, not {value!r}")
    return value


def _tag(where: str, value: Any) -> Tag:
    try:
        return Tag(value)
    except ValueError:
        allowed = ", ".join(t.value for t in Tag)
        raise _err(where, f"tag {value!r} is not one of {allowed}") from None


def _insn_ids(where: str, names: Any) -> tuple[frozenset[int], tuple[str, ...]]:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _err(where, "must be a non-empty list of capstone ARM_INS_* names")
    ids = []
    arm_const = arm_constants()
    for name in names:
        value = getattr(arm_const, f"ARM_INS_{name}", None)
        if not isinstance(value, int) or name in ("INVALID", "ENDING"):
            raise _err(where, f"{name!r} is not a capstone instruction (ARM_INS_{name})")
        ids.append(value)
    return frozenset(ids), tuple(names)


def _parse_when(where: str, raw: Any) -> When:
    if not isinstance(raw, dict):
        raise _err(where, "must be a table")
    _check_keys(where, raw, _WHEN_KEYS, set())
    precision = raw.get("precision")
    if precision is not None and precision not in ("f32", "f64"):
        raise _err(where, f"precision must be f32 or f64, not {precision!r}")
    hint = raw.get("hint")
    if hint is not None:
        if not isinstance(hint, list) or not all(isinstance(h, int) for h in hint):
            raise _err(where, "hint must be a list of integers")
        hint = frozenset(hint)
    operand2 = raw.get("operand2")
    if operand2 is not None:
        if not isinstance(operand2, list) or not set(operand2) <= set(OPERAND2_CLASSES):
            raise _err(where, f"operand2 must be a list of {', '.join(OPERAND2_CLASSES)}")
        operand2 = frozenset(operand2)
    size = raw.get("size_bytes")
    if size is not None and size not in (2, 4):
        raise _err(where, "size_bytes must be 2 or 4")

    def _count(key: str) -> int | None:
        return None if key not in raw else _int(f"{where}.{key}", raw[key], 1)

    return When(
        operand2=operand2,
        sets_flags=None if "sets_flags" not in raw else _bool(where, raw["sets_flags"]),
        size_bytes=size,
        double_regs=None if "double_regs" not in raw else _bool(where, raw["double_regs"]),
        core_regs_written=_count("core_regs_written"),
        core_regs_read=_count("core_regs_read"),
        writes_pc=None if "writes_pc" not in raw else _bool(where, raw["writes_pc"]),
        conditional=None if "conditional" not in raw else _bool(where, raw["conditional"]),
        precision=precision,
        hint=hint,
    )


def _parse_row(where: str, raw: dict[str, Any], model: dict[str, Any]) -> TimingRow:
    _check_keys(where, raw, _ROW_KEYS, _ROW_REQUIRED)
    ids, id_names = _insn_ids(f"{where}.ids", raw["ids"])
    cycles = _int(f"{where}.cycles", raw["cycles"])
    taken = raw.get("taken_cycles")
    if taken is not None:
        taken = _int(f"{where}.taken_cycles", taken)
        if taken != cycles + model["refill_cycles"]:
            raise _err(
                where,
                f"taken_cycles {taken} != cycles {cycles} + refill_cycles {model['refill_cycles']}",
            )
    pipelined = raw.get("pipelined_cycles")
    if pipelined is not None:
        pipelined = _int(f"{where}.pipelined_cycles", pipelined)
    latency = raw.get("latency")
    if latency is not None:
        latency = _int(f"{where}.latency", latency, 1)
    try:
        issue = Issue(raw.get("issue", "dual"))
    except ValueError:
        raise _err(where, "issue must be dual, older or single") from None
    unit = raw.get("unit", [])
    units = (unit,) if isinstance(unit, str) else tuple(unit)
    if not all(isinstance(u, str) for u in units):
        raise _err(where, "unit must be a name or a list of names")
    capacity = model.get("unit_capacity", {})
    if model["issue"] == "dual":
        missing_units = [u for u in units if u not in capacity]
        if missing_units:
            raise _err(where, f"unit(s) {missing_units} not in [model].unit_capacity")
    elif units or "issue" in raw or "shifted" in raw:
        raise _err(where, "issue/unit/shifted only apply to a dual-issue model")
    role_latency = {
        role: _int(f"{where}.latency_{role}", raw[f"latency_{role}"])
        for role in ROLES
        if f"latency_{role}" in raw
    }
    after = raw.get("after_fp_mac")
    if after not in (None, "blocked", "older_only"):
        raise _err(where, "after_fp_mac must be blocked or older_only")
    pair_cycle = raw.get("pair_cycle")
    if pair_cycle not in (None, "first", "last"):
        raise _err(where, "pair_cycle must be first or last")
    note = raw.get("note")
    if not isinstance(raw["source"], str) or not raw["source"]:
        raise _err(where, "source must be a non-empty string")
    return TimingRow(
        name=str(raw["name"]),
        ids=ids,
        id_names=id_names,
        when=_parse_when(f"{where}.when", raw.get("when", {})),
        cycles=cycles,
        taken_cycles=taken,
        per_register=_int(f"{where}.per_register", raw.get("per_register", 0)),
        per_register_counts_pc=_bool(where, raw.get("per_register_counts_pc", True)),
        per_register_divisor=_int(
            f"{where}.per_register_divisor", raw.get("per_register_divisor", 1), 1
        ),
        latency=latency,
        role_latency=role_latency,
        early_sources=_bool(where, raw.get("early_sources", False)),
        fp_mac=_bool(where, raw.get("fp_mac", False)),
        after_fp_mac=after,
        repeat_interval=_int(f"{where}.repeat_interval", raw.get("repeat_interval", 0)),
        repeat_interval_same_bank=_int(
            f"{where}.repeat_interval_same_bank", raw.get("repeat_interval_same_bank", 0)
        ),
        pair_cycle=pair_cycle,
        pipeline_head=_bool(where, raw.get("pipeline_head", False)),
        pipelined_cycles=pipelined,
        issue=issue,
        units=units,
        shifted=_bool(where, raw.get("shifted", False)),
        tag=_tag(f"{where}.tag", raw["tag"]),
        source=raw["source"],
        note=note if isinstance(note, str) else None,
        board_option=_bool(where, raw.get("board_option", False)),
    )


def parse_table(raw: dict[str, Any], where: str) -> TimingTable:
    """Validate one timing table (already parsed TOML) and build its :class:`TimingTable`."""
    _check_keys(where, raw, {"model", "row"}, {"model", "row"})
    model = raw["model"]
    mwhere = f"{where} [model]"
    _check_keys(mwhere, model, _MODEL_KEYS, _MODEL_REQUIRED)
    if model["core"] not in CORE_NAMES:
        raise _err(mwhere, f"unknown core {model['core']!r} (known: {', '.join(CORE_NAMES)})")
    if model["issue"] not in ("scalar", "dual"):
        raise _err(mwhere, "issue must be scalar or dual")
    _int(f"{mwhere}.refill_cycles", model["refill_cycles"])
    capacity = model.get("unit_capacity", {})
    if not isinstance(capacity, dict):
        raise _err(mwhere, "unit_capacity must be a table")
    for unit, n in capacity.items():
        _int(f"{mwhere}.unit_capacity.{unit}", n, 1)
    store_latency = model.get("store_data_latency")
    if store_latency is not None:
        _int(f"{mwhere}.store_data_latency", store_latency)
    thumb32 = None
    if "thumb32_ids" in model:
        thumb32 = _insn_ids(f"{mwhere}.thumb32_ids", model["thumb32_ids"])[0]
    rows_raw = raw["row"]
    if not isinstance(rows_raw, list) or not rows_raw:
        raise _err(where, "needs at least one [[row]]")
    rows = tuple(_parse_row(f"{where} row[{i}]", r, model) for i, r in enumerate(rows_raw))
    names = [r.name for r in rows]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise _err(where, f"duplicate row name(s) {', '.join(sorted(dup))}")
    if any(r.board_option and r.taken_cycles is not None for r in rows):
        raise _err(where, "a board_option row cannot have taken_cycles")
    table = TimingTable(
        core=model["core"],
        exactness=_tag(f"{mwhere}.exactness", model["exactness"]),
        summary=str(model["summary"]),
        dual_issue=model["issue"] == "dual",
        refill_cycles=model["refill_cycles"],
        refill_tag=_tag(f"{mwhere}.refill_tag", model["refill_tag"]),
        refill_source=str(model["refill_source"]),
        thumb32_ids=thumb32,
        unit_capacity=dict(capacity),
        pair_16bit_only=_bool(mwhere, model.get("pair_16bit_only", False)),
        store_data_latency=store_latency,
        fp_mac_shadow_cycles=_int(
            f"{mwhere}.fp_mac_shadow_cycles", model.get("fp_mac_shadow_cycles", 0)
        ),
        load_banks=_int(f"{mwhere}.load_banks", model.get("load_banks", 0)),
        rows=rows,
        path=where,
        by_id=_by_id(rows),
    )
    _set_origin(table, "toml " + json.dumps(raw, sort_keys=True, default=repr))
    return table


def _set_origin(table: TimingTable, origin: str) -> None:
    object.__setattr__(table, "origin", origin)  # frozen: set once, right after building


def _by_id(rows: tuple[TimingRow, ...]) -> dict[int, tuple[TimingRow, ...]]:
    by_id: dict[int, list[TimingRow]] = {}
    for row in rows:
        for i in row.ids:
            by_id.setdefault(i, []).append(row)
    return {k: tuple(v) for k, v in by_id.items()}


def read_table(path: Path) -> TimingTable:
    """Load and validate a timing table file."""
    try:
        with path.open("rb") as f:
            raw = parsed_toml(f.read().decode())
    except OSError as exc:
        raise CycleModelError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        import tomllib  # here: a run whose files are cached never parses TOML

        if not isinstance(exc, tomllib.TOMLDecodeError):
            raise
        raise CycleModelError(f"{path}: invalid TOML: {exc}") from exc
    return parse_table(raw, str(path))


def _timing_dir() -> Path:
    return Path(str(resources.files("simcore") / "data" / "timing"))


@cache
def load_table(core: str) -> TimingTable:
    """Return the shipped timing table of ``core`` (e.g. ``"cortex-m0plus"``)."""
    path = _timing_dir() / f"{core}.toml"
    if core not in CORE_NAMES or not path.exists():
        raise CycleModelError(
            f"no timing table for core {core!r}",
            hint=f"known cores: {', '.join(CORE_NAMES)}",
        )
    table = read_table(path)
    if table.core != core:
        raise _err(str(path), f"[model].core {table.core!r} differs from the file name")
    return table


def table_for(board: BoardSpec) -> TimingTable:
    """The timing table of ``board``'s core with the board's implementation options applied.

    A core table describes the core; what the chip vendor chose (the M0/M0+
    multiplier: 1 or 32 cycles) is the board file's ``[core_timing]`` (checked by
    the board schema against the rows marked ``board_option``).
    """
    return _with_options(board.core.name, board.core_timing)


@cache
def _with_options(core: str, options: tuple[tuple[str, int], ...]) -> TimingTable:
    table = load_table(core)
    if not options:
        return table
    cycles = dict(options)
    rows = tuple(
        replace(r, cycles=cycles[r.name]) if r.name in cycles and r.board_option else r
        for r in table.rows
    )
    with_options = replace(table, rows=rows, by_id=_by_id(rows))
    if table.origin is not None:
        _set_origin(with_options, f"{table.origin} options {sorted(options)!r}")
    return with_options


@dataclass(frozen=True)
class CacheConfig:
    """A cache in front of slow memory: the cached address range, geometry, miss penalty."""

    start: int
    end: int
    size_bytes: int
    ways: int
    line_bytes: int
    miss_cycles: int
    tag: Tag
    source: str
    data_reads: bool
    data_reads_note: str
    #: A single-cycle IO region ``(start, end)`` whose loads/stores cost ``fast_io_saving``
    #: cycles less than the table's figure (RP2040 SIO), if the board has one.
    fast_io: tuple[int, int] | None = None
    fast_io_saving: int = 0
    #: A separate data cache ``(size_bytes, ways, line_bytes, miss_cycles)`` for data
    #: reads of the range (Cortex-M7 L1 D-cache); None: data reads share this cache.
    data_cache: tuple[int, int, int, int] | None = None


def cache_for(board: BoardSpec, *, ideal: bool = False) -> CacheConfig | None:
    """Return the cache model in front of ``board``'s slow memory (its board file's ``[cache]``).

    ``None`` if the board has none. ``ideal`` keeps the cache (hit/miss counts) but
    charges no miss cycles, for ``--memory-model ideal``. The board schema has
    checked the table (simcore.boards), so this only resolves region names.
    """
    spec = board.cache
    if spec is None:
        return None
    region = next(r for r in board.memory if r.name == spec.region)
    fast_io = None
    if spec.fast_io_region is not None:
        io = next(r for r in board.memory if r.name == spec.fast_io_region)
        fast_io = (io.start, io.end)
    return CacheConfig(
        start=region.start,
        end=region.end,
        size_bytes=spec.size_bytes,
        ways=spec.ways,
        line_bytes=spec.line_bytes,
        miss_cycles=0 if ideal else spec.miss_cycles,
        tag=Tag(spec.tag),
        source=spec.source,
        data_reads=spec.data_reads,
        data_reads_note=spec.data_reads_note,
        fast_io=fast_io,
        fast_io_saving=spec.fast_io_saving,
        data_cache=None
        if spec.data_cache is None
        else (
            spec.data_cache.size_bytes,
            spec.data_cache.ways,
            spec.data_cache.line_bytes,
            0 if ideal else spec.data_cache.miss_cycles,
        ),
    )
