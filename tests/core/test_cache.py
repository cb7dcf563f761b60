"""The on-disk cache of classified code and DWARF line rows (simcore.cache).

Cached and uncached runs must agree byte for byte (cycles, profile, faults); an
entry is used only for exactly the inputs, simcore version, classifier source
and timing table it was computed from; an unreadable entry is ignored and
rewritten; line tables are only decoded when a message needs a source line.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_support import BOARD_NAMES, AsmBuilder

from simcore import cache
from simcore.boards import RegionKind, get_board, load_boards
from simcore.cycles import classify as cl
from simcore.cycles.classify import Classification, CodeRange, MappingSymbol
from simcore.cycles.model import classify_image
from simcore.cycles.tables import load_table
from simcore.elf import LineTable, load_elf
from simcore.engine import run_firmware
from simcore.errors import BudgetExhausted, SimError, UnsupportedInstruction

CORE = {name: board.core.name for name, board in load_boards().items()}


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache folder, with the per-process classification memo emptied around the test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(folder))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    cl._classify_cached.cache_clear()
    yield folder
    cl._classify_cached.cache_clear()


def _entries(folder: Path, kind: str) -> list[Path]:
    return sorted((folder / kind).glob("*.bin"))


def _fresh() -> None:
    """Forget what this process classified, so the next run reads the disk (or recomputes)."""
    cl._classify_cached.cache_clear()


def _same(a: Classification, b: Classification) -> bool:
    return len(a.ranges) == len(b.ranges) and all(
        x.start == y.start
        and x.nhalf == y.nhalf
        and x.prefix.tobytes() == y.prefix.tobytes()
        and (x.prefix.format, x.prefix.shape) == (y.prefix.format, y.prefix.shape)
        and (x.cost.format, x.row_index.format) == (y.cost.format, y.row_index.format)
        and x.cost.tobytes() == y.cost.tobytes()
        and x.row_index.tobytes() == y.row_index.tobytes()
        and x.unknown == y.unknown
        and list(x.insn_starts) == list(y.insn_starts)
        for x, y in zip(a.ranges, b.ranges, strict=True)
    )


def _result(elf: Path | Any, board: str, **kw: Any) -> dict[str, Any]:
    out = run_firmware(elf, board, **kw).as_dict()
    out.pop("wall_seconds")
    return out


def _outcome(elf: Path, board: str) -> str:
    try:
        return repr(_result(elf, board))
    except SimError as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_cached_and_uncached_runs_are_identical(
    example_elfs: dict[str, Path], cache_dir: Path, board: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cycles, instructions, per-sample figures and the profile do not depend on the cache."""
    elf = example_elfs[board]
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    uncached = _result(elf, board, profile_limit=50)
    assert not cache_dir.exists()  # turned off: nothing written
    monkeypatch.delenv(cache.NO_CACHE_ENV)
    _fresh()
    cold = _result(elf, board, profile_limit=50)
    # One classification of the firmware, one of the bootrom (classified on its own).
    assert len(_entries(cache_dir, "classify")) == 1 + len(get_board(board).regions(RegionKind.ROM))
    _fresh()
    warm = _result(elf, board, profile_limit=50)
    assert uncached == cold == warm
    assert uncached["cycles"] > 0 and uncached["profile"]


def test_faults_are_identical_with_and_without_the_cache(
    asm_elf: AsmBuilder, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A foreign instruction (flagged from the classification) reads the same from a cache hit."""
    elf = asm_elf("rp2040", "movs r0, #7\nmovs r1, #2\nudiv r0, r0, r1", as_cpu="cortex-m7")
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    uncached = _outcome(elf, "rp2040")
    monkeypatch.delenv(cache.NO_CACHE_ENV)
    _fresh()
    cold = _outcome(elf, "rp2040")
    _fresh()
    warm = _outcome(elf, "rp2040")
    assert uncached == cold == warm
    assert uncached.startswith(UnsupportedInstruction.__name__) and "udiv" in uncached


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_classification_from_the_cache_is_byte_identical(
    example_elfs: dict[str, Path], cache_dir: Path, board: str
) -> None:
    image = load_elf(example_elfs[board])
    computed = classify_image(image, CORE[board])
    _fresh()
    loaded = classify_image(image, CORE[board])
    assert loaded is not computed and _same(computed, loaded)
    assert any(r.unknown for r in computed.ranges)  # the data runs' reasons round-trip too


def _ranges(image_path: Path) -> tuple[list[CodeRange], list[MappingSymbol]]:
    image = load_elf(image_path)
    ranges = [CodeRange(s.address, s.data) for s in image.code_sections]
    mapping = [MappingSymbol(a, k) for s in image.code_sections for a, k in s.mapping]
    return ranges, mapping


def _poison(key: str, like: Classification) -> None:
    """Store a classification under ``key`` whose costs are all one more than ``like``'s."""
    arrays: dict[str, Any] = {}
    for i, r in enumerate(like.ranges):
        prefix = np.array(r.prefix)
        prefix[:, 0] += np.arange(len(prefix), dtype=np.uint64)
        arrays[f"prefix{i}"], arrays[f"cost{i}"] = prefix, np.asarray(r.cost) + 1
        arrays[f"row_index{i}"] = r.row_index
        arrays[f"insn{i}"] = np.asarray(r.insn_starts, dtype=np.uint32)
    unknown = [[[a, t] for a, t in sorted(r.unknown.items())] for r in like.ranges]
    cache.store("classify", key, arrays, {"unknown": unknown})


def test_stale_entries_are_never_used(
    example_elfs: dict[str, Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poisoned entry is read for its own key, and for nothing that differs in any input."""
    table = load_table("cortex-m33")
    ranges, mapping = _ranges(example_elfs["rp2350"])
    truth = cl.classify(table, ranges, mapping)
    key = cl.cache_key(table, ranges, mapping)
    _poison(key, truth)
    _fresh()
    assert not _same(cl.classify(table, ranges, mapping), truth)  # the entry is used...

    # ...but not when the ELF's code changed,
    first = ranges[0]
    changed = [CodeRange(first.start, first.data[:-2] + b"\x00\xbf"), *ranges[1:]]
    _fresh()
    assert _same(
        cl.classify(table, changed, mapping),
        Classification(table, tuple(cl.classify_range(table, r, mapping) for r in changed)),
    )
    # ...nor when the timing table, simcore's version or the classifier's source changed.
    row = dataclasses.replace(table.rows[0], cycles=table.rows[0].cycles + 1)
    other_table = dataclasses.replace(table, rows=(row, *table.rows[1:]))
    assert cl.cache_key(other_table, ranges, mapping) != key
    monkeypatch.setattr(cache, "__version__", "0.0.0-other")
    assert cl.cache_key(table, ranges, mapping) != key
    _fresh()
    assert _same(cl.classify(table, ranges, mapping), truth)
    monkeypatch.undo()
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(cache_dir))
    monkeypatch.setattr(cl, "_code_digest", lambda: "edited classifier")
    assert cl.cache_key(table, ranges, mapping) != key
    _fresh()
    assert _same(cl.classify(table, ranges, mapping), truth)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"not a zip file"), id="garbage"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:200]), id="truncated"),
        pytest.param(lambda p: p.write_bytes(b""), id="empty"),
    ],
)
def test_a_corrupt_entry_is_ignored_and_rewritten(
    example_elfs: dict[str, Path], cache_dir: Path, damage: Any
) -> None:
    image = load_elf(example_elfs["rp2040"])
    truth = classify_image(image, CORE["rp2040"])
    (entry,) = _entries(cache_dir, "classify")
    damage(entry)
    _fresh()
    assert _same(classify_image(image, CORE["rp2040"]), truth)
    assert cache.load("classify", entry.stem) is not None  # rebuilt in place


def test_an_entry_of_the_wrong_shape_or_key_is_ignored(
    example_elfs: dict[str, Path], cache_dir: Path
) -> None:
    table = load_table("cortex-m0plus")
    ranges, mapping = _ranges(example_elfs["rp2040"])
    truth = cl.classify(table, ranges, mapping)
    key = cl.cache_key(table, ranges, mapping)
    cache.store("classify", key, {"prefix0": np.zeros(3, dtype=np.uint64)}, {"unknown": [[]]})
    _fresh()
    assert _same(cl.classify(table, ranges, mapping), truth)
    # An entry copied under another name carries its own key: refused.
    other = "0" * 64
    (cache_dir / "classify" / f"{key}.bin").rename(cache_dir / "classify" / f"{other}.bin")
    assert cache.load("classify", other) is None


def test_line_rows_are_decoded_only_when_needed(asm_elf: AsmBuilder, cache_dir: Path) -> None:
    """A clean run reads no DWARF; a fault message still names file:line, cached or not."""
    done = asm_elf("rp2040", "movs r0, #0")
    image = load_elf(done)
    result = run_firmware(image, "rp2040")
    assert result.exit_code == 0 and image._lines is None
    assert not _entries(cache_dir, "lines")

    spin = asm_elf("rp2040", "movs r0, #0\nspin:\nadds r0, #1\nb spin")
    messages = []
    for _ in range(2):  # decoded (and stored), then read from the cache
        with pytest.raises(BudgetExhausted) as info:
            run_firmware(load_elf(spin), "rp2040", max_instructions=10_000)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "(rp2040.s:1" in messages[0]
    assert len(_entries(cache_dir, "lines")) == 1


def test_cached_line_rows_equal_decoded_ones(
    example_elfs: dict[str, Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = example_elfs["stm32h743"]
    image = load_elf(path)
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    decoded = LineTable.of(image.raw, image.symbols)
    monkeypatch.delenv(cache.NO_CACHE_ENV)
    stored = LineTable.of(image.raw, image.symbols)
    loaded = LineTable.of(image.raw, image.symbols)
    assert decoded == stored == loaded and decoded.addresses
    code = image.code_sections[0]
    addresses = range(code.address, code.address + len(code.data), 2)
    fresh = load_elf(path)
    assert [image.describe(a) for a in addresses] == [fresh.describe(a) for a in addresses]
    (entry,) = _entries(cache_dir, "lines")
    entry.write_bytes(b"PK\x03\x04 broken")
    assert LineTable.of(image.raw, image.symbols) == decoded


def test_an_unusable_cache_folder_only_costs_time(
    example_elfs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache 'folder' that is a file: nothing is stored, results are unchanged."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(blocker))
    monkeypatch.setenv(cache.NO_CACHE_ENV, "0")  # "0" leaves the cache on
    _fresh()
    elf = example_elfs["rp2350"]
    first = _result(elf, "rp2350")
    _fresh()
    assert _result(elf, "rp2350") == first and blocker.read_text() == "x"
    _fresh()


def test_the_default_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(cache.CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "simcore"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "simcore"
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    assert cache.cache_dir() is None


def test_validation_is_identical_with_and_without_the_cache(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through validate's worker pool: outputs, per-sample cycles, profile and memory agree."""
    from simcore.validate import Combination, validate_many

    combos = [Combination("iris_anne8", "int8", "rp2040"), Combination("iris3", "f32", "rp2350")]

    def rows() -> list[dict[str, Any]]:
        out = []
        for r in validate_many(combos, limit=8, jobs=2):
            row = r.as_dict()
            row.pop("emulation_seconds")
            row.pop("built")
            out.append(row)
        return out

    validate_many(combos, limit=1, jobs=1)  # build the firmware outside the comparison
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    uncached = rows()
    monkeypatch.delenv(cache.NO_CACHE_ENV)
    shutil.rmtree(cache_dir, ignore_errors=True)
    _fresh()
    cold = rows()
    warm = rows()
    assert uncached == cold == warm
    assert all(r["passed"] and r["cycles"]["mean"] for r in uncached)
    # One per firmware, one per bootrom (rp2040's and rp2350's).
    roms = {r.image for c in combos for r in get_board(c.board).regions(RegionKind.ROM)}
    assert len(_entries(cache_dir, "classify")) == len(combos) + len(roms) == 4


def test_the_key_is_the_same_in_every_process(example_elfs: dict[str, Path]) -> None:
    """Keys must not depend on hash randomisation, or processes would never share entries."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys; from simcore.elf import load_elf; from simcore.cycles import classify as cl;"
        "from simcore.cycles.model import classify_image; from simcore.cycles.tables import "
        "load_table; i = load_elf(sys.argv[1]); r = [cl.CodeRange(s.address, s.data) for s in "
        "i.code_sections]; m = [cl.MappingSymbol(a, k) for s in i.code_sections for a, k in "
        "s.mapping]; print(cl.cache_key(load_table(sys.argv[2]), r, m))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", probe, str(example_elfs[board]), CORE[board]],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=Path(__file__).resolve().parents[2],
        ).stdout.strip()
        for seed in ("1", "2")
        for board in ("stm32h743",)
    }
    assert len(keys) == 1 and len(next(iter(keys))) == 64


def test_the_capstone_fingerprint_follows_its_files(tmp_path: Path) -> None:
    """The classification key names capstone by its files: any change to them changes it."""
    from simcore.cycles import arm_ids

    installed = arm_ids.capstone_fingerprint()
    assert len(installed) == 64 and installed in cl._code_digest()
    package = tmp_path / "capstone"
    (package / "lib").mkdir(parents=True)
    for name in ("__init__.py", "arm.py", "arm_const.py"):
        (package / name).write_text(f"# {name}\n")
    (package / "lib" / "libcapstone.so").write_bytes(b"\0" * 10)
    first = arm_ids.fingerprint_of(package)
    assert arm_ids.fingerprint_of(package) == first
    (package / "arm_const.py").write_text("# arm_const.py\nARM_INS_B = 2\n")
    second = arm_ids.fingerprint_of(package)
    (package / "lib" / "libcapstone.so").write_bytes(b"\0" * 11)
    third = arm_ids.fingerprint_of(package)
    assert len({first, second, third}) == 3


def test_cached_arm_constants_equal_capstones(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ARM ids read from the cache are capstone's own, and a damaged entry is refused."""
    from capstone import arm_const

    from simcore.cycles import arm_ids

    expected = {k: v for k, v in vars(arm_const).items() if k.startswith("ARM_")}
    arm_ids.arm_constants.cache_clear()
    try:
        computed = vars(arm_ids.arm_constants())  # stored
        (entry,) = _entries(cache_dir, "capstone")
        arm_ids.arm_constants.cache_clear()
        monkeypatch.setattr(arm_ids, "_from_capstone", lambda: pytest.fail("not read"))
        loaded = vars(arm_ids.arm_constants())
        assert computed == loaded == expected
        assert loaded["ARM_INS_B"] == arm_const.ARM_INS_B
        key = entry.stem
        cache.store("capstone", key, {}, {"ARM_INS_B": "one"})
        arm_ids.arm_constants.cache_clear()
        with pytest.raises(pytest.fail.Exception, match="not read"):
            arm_ids.arm_constants()
    finally:
        arm_ids.arm_constants.cache_clear()


@pytest.mark.parametrize("board", BOARD_NAMES)
def test_an_elf_from_the_cache_equals_the_parsed_one(
    example_elfs: dict[str, Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch, board: str
) -> None:
    """Segments, symbols (in file order), code sections, attributes and sections round-trip."""
    path = example_elfs[board]
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    parsed = load_elf(path)
    monkeypatch.delenv(cache.NO_CACHE_ENV)
    stored = load_elf(path)
    (entry,) = _entries(cache_dir, "elf")
    loaded = load_elf(path)
    for image in (stored, loaded):
        assert image == parsed and image.raw == parsed.raw
        assert list(image.symbols) == list(parsed.symbols)
        assert [s.data for s in image.segments] == [s.data for s in parsed.segments]
    assert parsed.code_sections and any(c.mapping for c in parsed.code_sections)
    # A damaged entry is ignored (and rewritten); one of another file's key is refused.
    entry.write_bytes(entry.read_bytes()[:100])
    assert load_elf(path) == parsed and cache.load("elf", entry.stem) is not None


def test_a_malformed_elf_entry_is_parsed_again(
    example_elfs: dict[str, Path], cache_dir: Path
) -> None:
    """An entry of the right key but the wrong content falls back to pyelftools."""
    from simcore import elf as elf_module

    path = example_elfs["rp2040"]
    truth = load_elf(path)
    (entry,) = _entries(cache_dir, "elf")
    arrays, data = elf_module._image_to_arrays(truth)
    for damage in (
        lambda d: d.update(attributes=["x", None, None, None]),
        lambda d: d.update(symbols=[["main", 1]]),
        lambda d: d.update(segments=[]),
    ):
        broken = json.loads(json.dumps(data))
        damage(broken)
        cache.store("elf", entry.stem, arrays, broken)
        assert load_elf(path) == truth


def test_parsed_toml_equals_tomllib(cache_dir: Path) -> None:
    """Every shipped TOML file reads back from the cache exactly as tomllib parses it."""
    import tomllib

    data = Path(cache.__file__).resolve().parent / "data"
    files = sorted(data.rglob("*.toml"))
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        expected = tomllib.loads(text)
        assert cache.parsed_toml(text) == expected  # parsed, stored
        assert cache.parsed_toml(text) == expected, path  # read back
    assert len(_entries(cache_dir, "toml")) == len({p.read_bytes() for p in files})
    special = 'a = nan\nb = -0.0\nc = 18446744073709551616\nd = [1, "x", true, {e = 1.5}]\n'
    cache.parsed_toml(special)
    loaded = cache.parsed_toml(special)
    assert str(loaded["a"]) == "nan" and str(loaded["b"]) == "-0.0"
    assert loaded["c"] == 1 << 64 and loaded["d"] == [1, "x", True, {"e": 1.5}]


def test_parsed_toml_keeps_what_json_cannot_hold_out(cache_dir: Path) -> None:
    """Dates are parsed each time (JSON has none); invalid TOML raises as tomllib does."""
    import datetime
    import tomllib

    text = "when = 2026-12-01\n"
    assert cache.parsed_toml(text) == {"when": datetime.date(2026, 12, 1)}
    assert cache.parsed_toml(text) == {"when": datetime.date(2026, 12, 1)}
    assert not _entries(cache_dir, "toml")
    with pytest.raises(tomllib.TOMLDecodeError):
        cache.parsed_toml("a = \n")


def test_a_table_stands_in_keys_for_the_data_it_was_built_from() -> None:
    """A parsed table's digest is its TOML data (with the board options): equal data,
    equal keys; other data or other options, other keys. A table made another way
    (``dataclasses.replace``) has its contents walked instead, so no change is missed."""
    from simcore.cache import parsed_toml
    from simcore.cycles.tables import _timing_dir, _with_options, parse_table

    table = load_table("cortex-m0plus")
    assert table.origin is not None and cl.table_digest(table) == table.origin
    raw = parsed_toml((_timing_dir() / "cortex-m0plus.toml").read_text())
    again = parse_table(json.loads(json.dumps(raw)), "elsewhere.toml")
    assert dataclasses.replace(again, path=table.path) == table
    assert cl.table_digest(again) == cl.table_digest(table)
    edited = json.loads(json.dumps(raw))
    edited["row"][-1]["cycles"] += 1
    assert cl.table_digest(parse_table(edited, "edited.toml")) != cl.table_digest(table)

    slow, fast = (_with_options("cortex-m0plus", (("multiply", n),)) for n in (32, 1))
    digests = {cl.table_digest(t) for t in (table, slow, fast)}
    assert len(digests) == 3  # 1 is the table's own figure: still another key, never a stale one

    replaced = dataclasses.replace(table)
    assert replaced.origin is None
    assert cl.table_digest(replaced) == cl._contents_digest(table)
    row = dataclasses.replace(table.rows[0], cycles=table.rows[0].cycles + 1)
    changed = dataclasses.replace(table, rows=(row, *table.rows[1:]))
    assert cl.table_digest(changed) not in (cl.table_digest(replaced), *digests)


def _no_capstone(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("capstone was needed")

    monkeypatch.setattr(cl, "disassembler", refuse)


@pytest.mark.parametrize("board", ["rp2040", "rp2350", "stm32h743"])
def test_known_encodings_classify_without_capstone_and_the_same(
    example_elfs: dict[str, Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch, board: str
) -> None:
    """Once an ELF was classified, another program made of the same encodings (here the
    same code, its classification entry deleted) is classified from the stored analyses
    of its encodings, without capstone, byte for byte as without them."""
    table = load_table(CORE[board])
    ranges, mapping = _ranges(example_elfs[board])
    truth = cl.classify(table, ranges, mapping)
    (encodings,) = _entries(cache_dir, "encodings")
    for entry in _entries(cache_dir, "classify"):
        entry.unlink()
    _fresh()
    with monkeypatch.context() as m:
        _no_capstone(m)
        assert _same(cl.classify(table, ranges, mapping), truth)
    # A damaged store is ignored (everything decoded again), never trusted.
    encodings.write_bytes(encodings.read_bytes().replace(b'"insns"', b'"insnz"'))
    for entry in _entries(cache_dir, "classify"):
        entry.unlink()
    _fresh()
    assert _same(cl.classify(table, ranges, mapping), truth)


def test_stored_encodings_match_a_fresh_analysis(
    example_elfs: dict[str, Path], cache_dir: Path
) -> None:
    """Every stored analysis reads back as the analysis capstone gives now, field by field,
    for another table too (each table has its own store)."""
    for board in ("rp2040", "stm32h743"):
        table = load_table(CORE[board])
        ranges, mapping = _ranges(example_elfs[board])
        memo = cl._Encodings(table, {})
        for r in ranges:
            cl.classify_range(table, r, mapping, memo)
        cl._save_encodings(table, memo)
        known = cl._known_encodings(table)
        stored = {enc: known.get(enc) for enc in list(known.stored)}
        fresh = {k: v for k, v in memo.items() if not isinstance(v, str)}
        assert stored == fresh and len(stored) > 100
        assert any(v.target is not None for v in stored.values())  # branches, relative
    assert len(_entries(cache_dir, "encodings")) == 2


def test_the_encodings_store_is_bounded_and_lazy(
    example_elfs: dict[str, Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full store is not written again; a stored entry is built only when looked up,
    and a malformed one is decoded afresh, the result unchanged."""
    table = load_table(CORE["rp2350"])
    ranges, mapping = _ranges(example_elfs["rp2350"])
    truth = cl.classify(table, ranges, mapping)
    known = cl._known_encodings(table)
    assert len(known) == 0 and len(known.stored) > 100  # nothing built yet
    first = next(iter(known.stored))
    assert known.get(first) is not None and first in known and first not in known.stored
    (entry,) = _entries(cache_dir, "encodings")
    monkeypatch.setattr(cl, "MAX_ENCODINGS", 10)
    for e in _entries(cache_dir, "classify"):
        e.unlink()
    before = entry.stat().st_mtime_ns
    _fresh()
    assert _same(cl.classify(table, ranges, mapping), truth)
    assert entry.stat().st_mtime_ns == before  # full: not rewritten
    bad = cl._Encodings(table, {first: [4, 10_000, 1, [], [], [], False, False, None, None, 0]})
    assert bad.get(first) is None and first not in bad.stored  # row 10000: decoded afresh


def test_encodings_and_capstone_agree_on_lengths_and_it_blocks(asm_elf: AsmBuilder) -> None:
    """Code with IT blocks (CBZ and a nested IT inside one, which capstone decodes),
    32-bit instructions, a literal pool and an undecodable halfword: classified with
    every encoding known and with none, the same."""
    elf = asm_elf(
        "stm32h743",
        """
        cmp r0, #0
        .inst.n 0xbf08, 0xb111  @ it eq; cbz r1 inside it (encoded: gas refuses it)
        nop
        .inst.n 0xbf18, 0xbf18, 0xbf00  @ it ne; it ne inside it; nop
        ldr.w r2, [r3, #4]
        bl 1f
        .inst.n 0xb600  @ undecodable
        .inst.w 0xffffffff  @ undecodable, 32-bit
        1:
        movs r0, #0
        """,
    )
    table = load_table(CORE["stm32h743"])
    ranges, mapping = _ranges(elf)
    memo: dict[bytes, Any] = {}
    first = [cl.classify_range(table, r, mapping, memo) for r in ranges]
    again = [cl.classify_range(table, r, mapping, dict(memo)) for r in ranges]
    fresh = [cl.classify_range(table, r, mapping) for r in ranges]
    for a, b, c in zip(first, again, fresh, strict=True):
        assert _same(Classification(table, (a,)), Classification(table, (b,)))
        assert _same(Classification(table, (a,)), Classification(table, (c,)))
    assert any("undecodable" in text for r in first for text in r.unknown.values())
