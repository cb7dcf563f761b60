"""Peripheral register windows as data: the chip files under ``data/peripherals``.

A board names its chip (``peripherals = "rp2040"``); the chip file declares what
firmware written for the vendor SDK needs to get through reset and clock bring-up:

- ``[[space]]``: address ranges the real chip answers in (APB, AHB, XIP control).
  Nothing there faults: an access that hits no declared window lands in a page of
  registers that read back what was written, and is listed in the run's report.
- ``[[window]]``: one peripheral, ``base`` and ``size``, its registers with reset
  values and rules. ``atomic_aliases = true`` on a space gives its windows the
  RP2040/RP2350 aliases: a write at +0x1000 XORs, +0x2000 sets, +0x3000 clears
  bits of the register at the base address.
- ``[[window.register]]``: ``name``, ``offset``, ``reset``; ``readonly`` and ``w1c``
  bit masks (writes leave read-only bits alone; writing 1 to a write-1-to-clear bit
  clears it); ``read``, a table of bit fields that read as an expression of the
  window's stored registers (``read = { "31" = "CTRL[23:12] == 0xfab" }``: STABLE
  follows ENABLE); ``console = true`` (a write's low byte is console output: UART
  TX); ``kind = "claim"`` (a spin lock: a read claims and returns nonzero if the
  lock was free, a write releases), ``claim_status = "SPINLOCK"`` (bit n: lock n
  is claimed); ``count`` and ``stride`` declare an array NAME0..NAMEn-1;
- ``[boot2]``: a second-stage boot loader the bootrom runs from the start of flash
  before the program's vector table (the RP2040's 256-byte boot2, recognised by its
  CRC as the bootrom does).

Rule expressions are Python-syntax integer expressions over register names, parsed
once with :mod:`ast` and restricted to names, integers, ``REG[hi:lo]`` / ``REG[bit]``
fields and the operators ``~ ! & | ^ << >> + - == !=`` (``not``, ``and``, ``or``).
They read the registers' stored values (what was written, after read-only and
write-1-to-clear bits), so rules never chain. Every malformed entry is a one-line
:class:`~simcore.errors.BoardError` naming the file and key.
"""

from __future__ import annotations

import ast
import itertools
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from simcore.errors import BoardError

_WORD = 0xFFFFFFFF
_PAGE = 0x1000
#: Routing granule: windows are at least this size and aligned to it (unicorn's page).
_GRAIN = 0x400
#: The RP2040/RP2350 atomic register aliases (RP2040 datasheet 2.1.2, RP2350 2.1.3):
#: address bits [13:12] of a peripheral access select the operation.
ALIAS_XOR, ALIAS_SET, ALIAS_CLR = 1, 2, 3
_ALIAS_SPAN = 0x4000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")
_FIELD = re.compile(r"(\d{1,2})(?::(\d{1,2}))?")
_CHIP_KEYS = ("name", "description", "source", "space", "window", "boot2", "coprocessor")
_COPROCESSOR_KEYS = ("number", "name", "source", "reads", "hint", "model")
#: Coprocessor models simcore.coprocessors implements (the chip data's ``model`` key).
COPROCESSOR_MODELS = ("rp2350-gpioc", "rp2350-dcp")
_MRC_KEY = re.compile(r"(\d) c(\d{1,2}) c(\d{1,2}) (\d)")
_SPACE_KEYS = ("name", "start", "size", "atomic_aliases")
_WINDOW_KEYS = ("name", "base", "size", "source", "register")
_REGISTER_KEYS = (
    "name",
    "offset",
    "reset",
    "readonly",
    "w1c",
    "read",
    "console",
    "kind",
    "claim_status",
    "count",
    "stride",
    "note",
    "write",
)
_WRITE_KEYS = ("target", "op", "bits")
#: What a ``[[window.register.write]]`` does to its target with the written field.
WRITE_OPS = ("set", "clr", "xor", "put")
_BOOT2_KEYS = ("size", "check", "vector_table", "stack", "source")
_BINOPS: dict[type, Callable[[int, int], int]] = {
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitXor: lambda a, b: a ^ b,
    ast.LShift: lambda a, b: a << b if 0 <= b < 64 else 0,
    ast.RShift: lambda a, b: a >> b if 0 <= b < 64 else 0,
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
}


# -- description (frozen, loaded from TOML) ------------------------------------


@dataclass(frozen=True)
class FieldRule:
    """Bits ``[hi:lo]`` of a register read as ``expression`` (truncated to the field)."""

    hi: int
    lo: int
    text: str
    expression: ast.expr = field(compare=False, repr=False)

    @property
    def mask(self) -> int:
        return ((1 << (self.hi - self.lo + 1)) - 1) << self.lo


@dataclass(frozen=True)
class WriteOp:
    """A write to the register also changes ``target``: bits ``[hi:lo]`` of the written
    value, moved down to bit 0, set/clear/toggle/replace the same bits of ``target``
    (SIO GPIO_OUT_SET -> GPIO_OUT; STM32 BSRR[15:0] sets ODR, BSRR[31:16] clears it)."""

    target: str
    op: str
    hi: int = 31
    lo: int = 0


@dataclass(frozen=True)
class RegisterSpec:
    """One declared register of a window."""

    name: str
    offset: int
    reset: int = 0
    readonly: int = 0
    w1c: int = 0
    rules: tuple[FieldRule, ...] = ()
    console: bool = False
    #: A spin lock (``kind = "claim"``): its index in its array, for the value a claim reads.
    claim_index: int | None = None
    #: The array name whose claim states this register reads, bit n for element n.
    claim_status: str | None = None
    #: The array this register belongs to (``count`` in the file), if any.
    array: str | None = None
    #: What a write to it does to other registers of the window.
    writes: tuple[WriteOp, ...] = ()


@dataclass(frozen=True)
class WindowSpec:
    """One peripheral: registers at ``[base, base + size)``."""

    name: str
    base: int
    size: int
    registers: tuple[RegisterSpec, ...]
    source: str = ""

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True)
class SpaceSpec:
    """An address range of peripherals the real chip answers in."""

    name: str
    start: int
    size: int
    atomic_aliases: bool = False

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class Boot2Spec:
    """A second-stage boot loader at the start of flash, run before the vector table.

    ``check = "crc32"``: the last word of the ``size`` bytes is the CRC-32 (polynomial
    0x04c11db7, initial 0xffffffff, not reflected, no final XOR) of the bytes before it,
    as the RP2040 bootrom checks (RP2040 datasheet 2.8.1.3). The bootrom enters boot2
    with SP = ``stack`` and LR = 0, which tells boot2 to continue through the vector
    table at ``vector_table``.
    """

    size: int
    check: str
    vector_table: int
    stack: int
    source: str = ""


@dataclass(frozen=True)
class CoprocessorSpec:
    """A coprocessor of the chip that the core emulator lacks (the RP2350's DCP, GPIOC).

    ``model`` names the simcore.coprocessors model that runs its instructions;
    ``reads``: MRC reads answered as constants, keyed ``(opc1, CRn, CRm, opc2)``; any
    other instruction for the coprocessor stops the run as not modeled, with ``hint``.
    """

    number: int
    name: str
    reads: tuple[tuple[tuple[int, int, int, int], int], ...] = ()
    hint: str = ""
    source: str = ""
    model: str | None = None


@dataclass(frozen=True)
class ChipSpec:
    """A chip's peripheral spaces, windows and boot stage (one ``data/peripherals`` file)."""

    name: str
    description: str
    spaces: tuple[SpaceSpec, ...]
    windows: tuple[WindowSpec, ...]
    boot2: Boot2Spec | None = None
    coprocessors: tuple[CoprocessorSpec, ...] = ()

    def summary(self) -> str:
        """One line for ``simcore boards``: what the chip data declares."""
        registers = sum(len(w.registers) for w in self.windows)
        rules = sum(len(r.rules) for w in self.windows for r in w.registers)
        boot = "; boot2 checked by CRC and run" if self.boot2 is not None else ""
        copro = "; coprocessors " + ", ".join(
            f"p{c.number} {c.name}" + (f" ({c.model})" if c.model else "")
            for c in sorted(self.coprocessors, key=lambda c: c.number)
        )
        return (
            f"{self.name}: {len(self.windows)} windows, {registers} registers, "
            f"{rules} read rules in {len(self.spaces)} space"
            f"{'' if len(self.spaces) == 1 else 's'}{boot}{copro if self.coprocessors else ''}"
        )


# -- loading ---------------------------------------------------------------------


def _schema(where: str, table: object, path: str = "") -> Any:
    from simcore.boards import _Schema  # the board files' schema helper

    return _Schema(where, table, path)


def _mask(s: Any, key: str) -> int:
    return int(s.integer(key, 0, _WORD, "a 32-bit mask (a whole number 0-0xffffffff)"))


def _check_expression(node: ast.AST, names: set[str], fail: Callable[[str], None]) -> None:
    """Refuse anything but the small integer language of the module docstring."""
    if isinstance(node, ast.Expression):
        _check_expression(node.body, names, fail)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, int) or isinstance(node.value, bool):
            fail(f"constant {node.value!r} is not an integer")
    elif isinstance(node, ast.Name):
        if node.id not in names:
            fail(f"{node.id!r} is not a register of this window")
    elif isinstance(node, ast.Subscript):
        if not isinstance(node.value, ast.Name):
            fail("only a register name can take a [hi:lo] field")
        _check_expression(node.value, names, fail)
        bounds = node.slice
        parts = [bounds.upper, bounds.lower] if isinstance(bounds, ast.Slice) else [bounds]
        if isinstance(bounds, ast.Slice) and bounds.step is not None:
            fail("a field is [hi:lo] without a step")
        for part in parts:
            if not (
                isinstance(part, ast.Constant)
                and isinstance(part.value, int)
                and 0 <= part.value < 32
            ):
                fail("field bounds are bit numbers 0-31")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            fail(f"operator {type(node.op).__name__} is not allowed")
        _check_expression(node.left, names, fail)
        _check_expression(node.right, names, fail)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.Invert | ast.Not | ast.USub):
            fail(f"operator {type(node.op).__name__} is not allowed")
        _check_expression(node.operand, names, fail)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check_expression(value, names, fail)
    elif isinstance(node, ast.Compare):
        if not all(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            fail("only == and != compare")
        for value in (node.left, *node.comparators):
            _check_expression(value, names, fail)
    else:
        fail(f"{type(node).__name__} is not allowed")


def _constant(node: ast.expr | None) -> int:
    assert isinstance(node, ast.Constant) and isinstance(node.value, int)  # checked on load
    return node.value


def _evaluate(node: ast.expr, values: Callable[[str], int]) -> int:
    """The value of a checked rule expression (see :func:`_check_expression`)."""
    if isinstance(node, ast.Constant):
        return _constant(node)
    if isinstance(node, ast.Name):
        return values(node.id)
    if isinstance(node, ast.Subscript):
        assert isinstance(node.value, ast.Name)
        word = values(node.value.id)
        bounds = node.slice
        if isinstance(bounds, ast.Slice):
            hi, lo = _constant(bounds.upper), _constant(bounds.lower)
        else:
            hi = lo = _constant(bounds)
        hi, lo = max(hi, lo), min(hi, lo)
        return (word >> lo) & ((1 << (hi - lo + 1)) - 1)
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        if isinstance(node.op, ast.Not):
            return int(not operand)
        return ~operand if isinstance(node.op, ast.Invert) else -operand
    if isinstance(node, ast.BoolOp):
        results = [_evaluate(v, values) for v in node.values]
        return int(all(results) if isinstance(node.op, ast.And) else any(results))
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, values)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, values)
            if (left == right) != isinstance(op, ast.Eq):
                return 0
            left = right
        return 1
    raise AssertionError(f"unchecked rule node {type(node).__name__}")


def _register_names(s: Any) -> list[str]:
    """Every register name a window declares (arrays expanded), for rule checks."""
    names: list[str] = []
    for item in s.table.get("register", []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        count = item.get("count")
        if isinstance(count, int) and not isinstance(count, bool) and 0 < count <= 256:
            names.extend(f"{item['name']}{i}" for i in range(count))
        else:
            names.append(item["name"])
    return names


def _parse_rules(s: Any, names: set[str]) -> tuple[FieldRule, ...]:
    table = s.get("read")
    if not isinstance(table, dict):
        s.fail(table, 'a table of bit fields and expressions, e.g. { "31" = "CTRL[0]" }', "read")
    rules = []
    for bits, text in table.items():
        where = f"read.{bits}"
        match = _FIELD.fullmatch(bits)
        if match is None:
            s.error(f"field {bits!r}", 'a bit "n" or a field "hi:lo" (0-31)', where)
        assert match is not None  # s.error raises
        hi = int(match.group(1))
        lo = int(match.group(2)) if match.group(2) is not None else hi
        if not 0 <= lo <= hi <= 31:
            s.error(f"field {bits!r}", 'a bit "n" or a field "hi:lo", hi >= lo, 0-31', where)
        if not isinstance(text, str) or not text.strip() or len(text) > 200:
            s.fail(text, "an expression string of at most 200 characters", where)
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            s.error(f"expression {text!r}: {exc.msg}", "a rule expression", where)

        def fail(problem: str, text: str = text, where: str = where) -> None:
            s.error(
                f"expression {text!r}: {problem}",
                "registers of this window, integers, REG[hi:lo], ~ ! & | ^ << >> + - == !=",
                where,
            )

        _check_expression(tree, names, fail)
        rules.append(FieldRule(hi, lo, text.strip(), tree.body))
    return tuple(rules)


def _parse_register(s: Any, names: set[str], size: int) -> list[RegisterSpec]:
    s.keys(_REGISTER_KEYS, ("name", "offset"))
    name = s.text("name", _NAME, "a register name: letters, digits, '_' (at most 48)")
    offset = s.integer(
        "offset", 0, size - 4, f"an offset inside the window (0-{size - 4:#x}), a multiple of 4", 4
    )
    count = s.integer("count", 1, 256, "an array length 1-256") if "count" in s.table else None
    stride = (
        s.integer("stride", 4, size, "an array stride in bytes, a multiple of 4", 4)
        if "stride" in s.table
        else 4
    )
    kind = (
        s.choice("kind", ("register", "claim"), "register kind")
        if "kind" in s.table
        else "register"
    )
    claim_status = None
    if "claim_status" in s.table:
        claim_status = s.text("claim_status", _NAME, "the name of an array of kind claim")
    writes = []
    if "write" in s.table:
        for w in s.tables("write", 1, 4, "1-4 [[window.register.write]] tables"):
            w.keys(_WRITE_KEYS, ("target", "op"))
            target = w.text("target", _NAME, "a register of this window")
            if target not in names:
                w.error(f"{target!r} is not a register of this window", "a declared register")
            hi, lo = 31, 0
            if "bits" in w.table:
                bits = w.text("bits", _FIELD, 'a bit "n" or a field "hi:lo"')
                match = _FIELD.fullmatch(bits)
                assert match is not None
                hi = int(match.group(1))
                lo = int(match.group(2)) if match.group(2) is not None else hi
                if not 0 <= lo <= hi <= 31:
                    w.error(f"field {bits!r}", 'a field "hi:lo", hi >= lo, 0-31', "bits")
            writes.append(WriteOp(target, w.choice("op", WRITE_OPS, "write op"), hi, lo))
    spec = RegisterSpec(
        writes=tuple(writes),
        name=name,
        offset=offset,
        reset=_mask(s, "reset") if "reset" in s.table else 0,
        readonly=_mask(s, "readonly") if "readonly" in s.table else 0,
        w1c=_mask(s, "w1c") if "w1c" in s.table else 0,
        rules=_parse_rules(s, names) if "read" in s.table else (),
        console=s.flag("console"),
        claim_status=claim_status,
    )
    if "note" in s.table:
        s.text("note", max_len=1000)
    if count is None:
        return [replace(spec, claim_index=0, array=name) if kind == "claim" else spec]
    last = offset + (count - 1) * stride
    if last > size - 4:
        s.error(
            f"{count} registers of stride {stride:#x} from {offset:#x} end past the window",
            f"an array inside the window (size {size:#x})",
            "count",
        )
    return [
        replace(
            spec,
            name=f"{name}{i}",
            offset=offset + i * stride,
            claim_index=i if kind == "claim" else None,
            array=name,
        )
        for i in range(count)
    ]


def _parse_window(s: Any) -> WindowSpec:
    s.keys(_WINDOW_KEYS, ("name", "base", "size"))
    name = s.text("name", _NAME, "a window name: letters, digits, '_'")
    base = s.integer("base", 0, _WORD, "a base address, a multiple of 0x400", 0x400)
    size = s.integer(
        "size", 0x400, 0x100000, "a window size 0x400-0x100000, a multiple of 0x400", 0x400
    )
    names = set(_register_names(s))
    registers: list[RegisterSpec] = []
    if "register" in s.table:
        for r in s.tables("register", 1, 512, "1-512 [[window.register]] tables"):
            registers.extend(_parse_register(r, names, size))
    seen: dict[int, str] = {}
    for reg in registers:
        if reg.offset in seen:
            s.error(
                f"registers {seen[reg.offset]} and {reg.name} share offset {reg.offset:#x}",
                "one register per offset",
                "register",
            )
        seen[reg.offset] = reg.name
    claims = {r.array for r in registers if r.claim_index is not None}
    for reg in registers:
        if reg.claim_status is not None and reg.claim_status not in claims:
            s.error(
                f"claim_status {reg.claim_status!r} names no array of kind claim",
                'the name of a kind = "claim" array',
                "register",
            )
    return WindowSpec(name, base, size, tuple(registers), s.get("source", ""))


def _parse_space(s: Any) -> SpaceSpec:
    s.keys(_SPACE_KEYS, ("name", "start", "size"))
    name = s.text("name", _NAME, "a space name")
    start = s.integer("start", 0, _WORD, "an address, a multiple of 0x1000", _PAGE)
    size = s.integer(
        "size", _PAGE, 1 << 31, "a size 0x1000-0x80000000, a multiple of 0x1000", _PAGE
    )
    if start + size > 1 << 32:
        s.error(f"space {name} ends past 0xffffffff", "a space inside the 32-bit address space")
    return SpaceSpec(name, start, size, s.flag("atomic_aliases"))


def parse_chip(table: object, where: str) -> ChipSpec:
    """Validate one chip file against the schema of the module docstring."""
    s = _schema(where, table)
    s.keys(_CHIP_KEYS, ("name", "description"))
    name = s.text("name", _NAME, "a chip name")
    spaces = (
        [_parse_space(t) for t in s.tables("space", 1, 16, "1-16 [[space]] tables")]
        if "space" in s.table
        else []
    )
    windows = (
        [_parse_window(t) for t in s.tables("window", 1, 256, "1-256 [[window]] tables")]
        if "window" in s.table
        else []
    )
    windows.sort(key=lambda w: w.base)
    for a, b in itertools.pairwise(windows):
        if a.end > b.base:
            s.error(f"windows {a.name} and {b.name} overlap", "disjoint windows", "window")
    for w in windows:
        if not any(sp.start <= w.base and w.end <= sp.end for sp in spaces):
            s.error(
                f"window {w.name} (0x{w.base:08x}) is in no [[space]]",
                "every window inside a declared space",
                "window",
            )
    boot2 = None
    if "boot2" in s.table:
        b = _schema(where, s.get("boot2"), "boot2")
        b.keys(_BOOT2_KEYS, ("size", "check", "vector_table", "stack"))
        boot2 = Boot2Spec(
            size=b.integer(
                "size", 8, 0x10000, "the boot stage's size in bytes, a multiple of 4", 4
            ),
            check=b.choice("check", ("crc32",), "boot stage check"),
            vector_table=b.integer(
                "vector_table",
                0,
                _WORD,
                "the program's vector table address (128-byte aligned)",
                128,
            ),
            stack=b.integer(
                "stack", 0, 1 << 32, "the SP the bootrom enters the boot stage with", 4
            ),
            source=b.get("source", ""),
        )
    coprocessors = (
        [_parse_coprocessor(t) for t in s.tables("coprocessor", 1, 8, "1-8 [[coprocessor]] tables")]
        if "coprocessor" in s.table
        else []
    )
    numbers = [c.number for c in coprocessors]
    if len(set(numbers)) != len(numbers):
        s.error("two [[coprocessor]] tables have one number", "one table per coprocessor")
    return ChipSpec(
        name, s.text("description"), tuple(spaces), tuple(windows), boot2, tuple(coprocessors)
    )


def _parse_coprocessor(s: Any) -> CoprocessorSpec:
    s.keys(_COPROCESSOR_KEYS, ("number", "name"))
    number = s.integer("number", 0, 7, "a coprocessor number 0-7 (8-15 are the FPU's and Arm's)")
    reads: list[tuple[tuple[int, int, int, int], int]] = []
    table = s.get("reads", {})
    if not isinstance(table, dict):
        s.fail(table, 'a table of MRC operands and values, e.g. { "0 c0 c0 1" = 0 }', "reads")
    for key, value in table.items():
        match = _MRC_KEY.fullmatch(key)
        fields = tuple(int(g) for g in match.groups()) if match else ()
        if len(fields) != 4 or fields[1] > 15 or fields[2] > 15:
            s.error(f"operands {key!r}", '"opc1 cN cM opc2", e.g. "0 c0 c0 1"', f"reads.{key}")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _WORD:
            s.fail(value, "a 32-bit value", f"reads.{key}")
        reads.append(((fields[0], fields[1], fields[2], fields[3]), value))
    return CoprocessorSpec(
        number=number,
        name=s.text("name", _NAME, "a coprocessor name"),
        reads=tuple(reads),
        hint=s.text("hint", max_len=1000) if "hint" in s.table else "",
        source=s.get("source", ""),
        model=(
            s.choice("model", COPROCESSOR_MODELS, "coprocessor model")
            if "model" in s.table
            else None
        ),
    )


def chip_dir() -> Path:
    from simcore.boards import _data_dir

    return _data_dir() / "peripherals"


@cache
def load_chip(name: str) -> ChipSpec:
    """The shipped chip file ``data/peripherals/<name>.toml``."""
    from simcore.boards import _read_toml

    path = chip_dir() / f"{name}.toml"
    if not _NAME.fullmatch(name) or not path.is_file():
        known = ", ".join(sorted(p.stem for p in chip_dir().glob("*.toml")))
        raise BoardError(f"unknown peripherals {name!r}", hint=f"expected one of {known}")
    chip = parse_chip(_read_toml(path), str(path))
    if chip.name != name:
        raise BoardError(
            f"{path}: name {chip.name!r} differs from the file name",
            hint=f"expected name = {name!r}",
        )
    return chip


def boot2_valid(spec: Boot2Spec, image: bytes) -> bool:
    """Whether ``image`` (the first bytes of flash) starts with a boot stage the bootrom accepts."""
    if len(image) < spec.size:
        return False
    body, stored = (
        image[: spec.size - 4],
        int.from_bytes(image[spec.size - 4 : spec.size], "little"),
    )
    return _crc32_mpeg2(body) == stored


def _crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2: zlib's CRC-32 runs reflected, so reflect in and out around it."""
    reflected = bytes(int(f"{b:08b}"[::-1], 2) for b in data)
    # zlib.crc32 = reflected CRC with init/final XOR 0xffffffff; undo the final XOR
    # and reflect the 32-bit result to get the non-reflected register.
    crc = zlib.crc32(reflected) ^ _WORD
    return int(f"{crc:032b}"[::-1], 2)


# -- live state ------------------------------------------------------------------


class Target(Protocol):
    """A peripheral model the bus routes to (a window, the SIO, the TIMER)."""

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


@dataclass
class Access:
    """How often firmware read and wrote one register."""

    reads: int = 0
    writes: int = 0


class Window:
    """The registers of one window (or of an undeclared page) during a run."""

    def __init__(self, spec: WindowSpec, console: Callable[[int], None] | None = None) -> None:
        self.spec = spec
        self.console = console
        self.by_offset = {r.offset: r for r in spec.registers}
        self.by_name = {r.name: r for r in spec.registers}
        self.values = {r.offset: r.reset for r in spec.registers}
        self.claimed: set[int] = set()
        self.access: dict[int, Access] = {}

    def _stored(self, name: str) -> int:
        return self.values.get(self.by_name[name].offset, 0)

    def value(self, offset: int) -> int:
        """The word at ``offset`` as firmware reads it (rules applied)."""
        word = offset & ~3
        reg = self.by_offset.get(word)
        value = self.values.get(word, 0)
        if reg is None:
            return value
        if reg.claim_status is not None:
            prefix = reg.claim_status
            return (
                sum(
                    1 << r.claim_index
                    for r in self.spec.registers
                    if r.claim_index is not None and r.array == prefix and r.offset in self.claimed
                )
                & _WORD
            )
        for rule in reg.rules:
            value = (value & ~rule.mask) | (
                (_evaluate(rule.expression, self._stored) << rule.lo) & rule.mask
            )
        return value & _WORD

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        self.access.setdefault(word, Access()).reads += 1
        reg = self.by_offset.get(word)
        if reg is not None and reg.claim_index is not None:
            if word in self.claimed:
                return 0
            self.claimed.add(word)
            return 1 << reg.claim_index
        return (self.value(word) >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        self.access.setdefault(word, Access()).writes += 1
        shift = 8 * (offset & 3)
        lanes = (((1 << (8 * size)) - 1) << shift) & _WORD
        self.store(word, (value << shift) & lanes, lanes)

    def store(self, word: int, value: int, lanes: int = _WORD) -> None:
        """Write ``value`` to the bits ``lanes`` of the register at ``word``."""
        reg = self.by_offset.get(word)
        old = self.values.get(word, 0)
        if reg is None:
            self.values[word] = (old & ~lanes) | (value & lanes)
            return
        if reg.claim_index is not None:
            self.claimed.discard(word)  # any write releases the lock
            return
        if reg.console and self.console is not None and lanes & 0xFF:
            self.console(value & 0xFF)
        for w in reg.writes:
            target = self.by_name[w.target].offset
            field = (value >> w.lo) & ((1 << (w.hi - w.lo + 1)) - 1)
            current = self.values.get(target, 0)
            self.values[target] = {
                "set": current | field,
                "clr": current & ~field,
                "xor": current ^ field,
                "put": field,
            }[w.op] & _WORD
        keep = reg.readonly | reg.w1c | ~lanes
        new = (old & keep) | (value & ~keep)
        new &= ~(value & reg.w1c & lanes)
        self.values[word] = new & _WORD

    def atomic(self, offset: int, op: int, value: int) -> None:
        """An RP2040/RP2350 atomic alias write: XOR, SET or CLR bits of the stored value."""
        word = offset & ~3
        self.access.setdefault(word, Access()).writes += 1
        old = self.values.get(word, 0)
        new = {ALIAS_XOR: old ^ value, ALIAS_SET: old | value, ALIAS_CLR: old & ~value}[op]
        reg = self.by_offset.get(word)
        if reg is not None and reg.claim_index is not None:
            return
        self.store(word, new & _WORD)


@dataclass
class _Route:
    base: int
    target: Target
    window: Window | None
    alias: int


class PeripheralBus:
    """Routes accesses in a chip's spaces to its windows, the engine's models and readback pages.

    The engine maps each of :meth:`spaces` as MMIO with :meth:`read` and :meth:`write`;
    ``models`` are the engine's own register models (SIO, TIMER) at their base
    addresses, reached through the spaces too. An atomic-alias write to a model is a
    read-modify-write of the register at the base address, unless the model has a
    true ``decodes_aliases`` attribute: then it gets the offset with the alias bits
    (+0x1000/+0x2000/+0x3000) and applies the operation itself.
    """

    def __init__(
        self,
        chip: ChipSpec,
        models: dict[int, tuple[int, Target, str]] | None = None,
        console: Callable[[int], None] | None = None,
    ) -> None:
        self.chip = chip
        self.console = console
        self.windows = [Window(w, self._emit) for w in chip.windows]
        self.unknown: dict[int, Window] = {}
        self.models = models or {}
        self._routes: dict[int, _Route] = {}

    def add_model(self, start: int, size: int, target: Target) -> bool:
        """Route ``[start, start + size)`` to an engine model if a space holds it.

        A model with an ``extra`` attribute (the SIO) gets the window declared at the
        same base for the registers it does not implement itself.
        """
        space = self._space(start)
        if space is None or start + size > space.end:
            return False
        self.models[start] = (size, target, "")
        for window in self.windows:
            if window.spec.base == start and hasattr(target, "extra"):
                target.extra = window
        return True

    def spaces(self) -> list[tuple[int, int]]:
        """The address ranges to map: the chip's spaces."""
        return [(space.start, space.size) for space in self.chip.spaces]

    def _emit(self, byte: int) -> None:
        if self.console is not None:
            self.console(byte)

    def _space(self, address: int) -> SpaceSpec | None:
        for space in self.chip.spaces:
            if space.start <= address < space.end:
                return space
        return None

    def _route(self, address: int) -> _Route | None:
        page = address & ~(_GRAIN - 1)
        route = self._routes.get(page)
        if route is not None:
            return route
        space = self._space(address)
        if space is None:
            return None
        alias = (page >> 12) & 3 if space.atomic_aliases else 0
        base_page = page - alias * _PAGE
        for start, (size, target, _name) in self.models.items():
            if start <= base_page < start + size:
                route = _Route(start, target, None, alias)
                break
        else:
            for window in self.windows:
                if window.spec.base <= base_page < window.spec.end:
                    route = _Route(window.spec.base, window, window, alias)
                    break
            else:
                anonymous = self.unknown.get(base_page)
                if anonymous is None:
                    anonymous = Window(
                        WindowSpec(f"{space.name}@{base_page:08x}", base_page, _GRAIN, ())
                    )
                    self.unknown[base_page] = anonymous
                route = _Route(base_page, anonymous, anonymous, alias)
        self._routes[page] = route
        return route

    def read(self, address: int, size: int) -> int:
        route = self._route(address)
        if route is None:
            return 0
        offset = address - route.alias * _PAGE - route.base
        return route.target.read(offset, size)

    def write(self, address: int, size: int, value: int) -> None:
        route = self._route(address)
        if route is None:
            return
        offset = address - route.alias * _PAGE - route.base
        if not route.alias:
            route.target.write(offset, size, value)
        elif route.window is not None:
            shift = 8 * (offset & 3)
            route.window.atomic(offset, route.alias, (value << shift) & _WORD)
        elif getattr(route.target, "decodes_aliases", False):
            # The model knows its write-1-to-clear registers: it gets the alias offset.
            route.target.write(offset + route.alias * _PAGE, size, value)
        else:
            word = offset & ~3
            old = route.target.read(word, 4)
            v = (value << (8 * (offset & 3))) & _WORD
            new = {ALIAS_XOR: old ^ v, ALIAS_SET: old | v, ALIAS_CLR: old & ~v}[route.alias]
            route.target.write(word, 4, new & _WORD)

    def touched(self) -> list[dict[str, Any]]:
        """Every register the firmware touched in a window or an undeclared page, by address.

        ``modeled`` is false for registers the chip file does not declare: they
        read back what was written, which may not be what the chip does.
        """
        rows: list[dict[str, Any]] = []
        for window in [*self.windows, *self.unknown.values()]:
            for offset, access in sorted(window.access.items()):
                reg = window.by_offset.get(offset)
                declared = window.spec.registers != ()
                rows.append(
                    {
                        "address": f"0x{window.spec.base + offset:08x}",
                        "peripheral": window.spec.name if declared else "(undeclared)",
                        "register": reg.name if reg is not None else f"+0x{offset:03x}",
                        "reads": access.reads,
                        "writes": access.writes,
                        "modeled": reg is not None,
                    }
                )
        rows.sort(key=lambda r: str(r["address"]))
        return rows

    def note(self, limit: int = 8) -> str | None:
        """One line naming the touched registers without a declaration, if any."""
        unmodeled = [r for r in self.touched() if not r["modeled"]]
        if not unmodeled:
            return None
        shown = ", ".join(
            f"{r['address']} ({r['peripheral']} {r['register']})"
            if r["peripheral"] != "(undeclared)"
            else r["address"]
            for r in unmodeled[:limit]
        )
        more = f" and {len(unmodeled) - limit} more" if len(unmodeled) > limit else ""
        return (
            f"firmware touched {len(unmodeled)} peripheral register(s) simcore does not "
            f"model; they read back what was written: {shown}{more} (run --json lists them)"
        )
