"""Coprocessor instructions on the coprocessors a chip has (``[[coprocessor]]`` in its data).

A Cortex-M33 passes MCR/MRC/MCRR/MRRC/CDP (and their "2" forms) for p0-p7 to the
coprocessor interface. Unicorn's M33 has nothing there: it raises a NOCP UsageFault
(QEMU exception 17) for every such instruction, whatever CPACR says. The engine's
interrupt hook hands those to :meth:`Coprocessors.execute`, which

- faults NOCP, naming the coprocessor and the instruction, when the chip has no
  coprocessor with that number, or when CPACR does not grant access to it (as the
  core does: CPACR.CPn = 0b00 or 0b10);
- answers an MRC the chip data lists in the coprocessor's ``reads`` with its
  constant (pico-sdk's start-up RCMP, ``mrc p4, #0, Rt, c0, c0, #1``, reads 0; the
  run's notes say so);
- otherwise runs the instruction on the coprocessor's ``model`` and returns; the
  engine then goes on after it (every coprocessor instruction is 32 bits). What no
  model runs is :class:`~simcore.errors.NotModeled`, with the chip data's ``hint``.

Models (registers.COPROCESSOR_MODELS):

``rp2350-gpioc``
    The RP2350 GPIO coprocessor (p0): each instruction is a read or a write of an SIO
    GPIO register (pico-sdk ``hardware/gpio_coproc.h`` gives the mapping). It works on
    the SIO window's registers of the chip data (``GPIO_OUT``, ``GPIO_OE``,
    ``GPIO_IN``, their ``HI_`` halves), so a pin set through the coprocessor reads back
    through the SIO and the other way round.
``rp2350-dcp``
    The RP2350 double-precision coprocessor (p4), at function level: see
    :class:`DcpFunctions`. A DCP instruction outside a recognised function (other
    than the ``reads``) is an error naming it and its function.

Timing: the core's timing table costs each coprocessor instruction (cortex-m33.toml,
row ``coprocessor``: 1 cycle, approximate). Unicorn ends its translation block at an
instruction that raises NOCP, so the block hook has charged exactly the instructions
up to it and execution resumes with a new block after it: nothing is charged twice
(tests/run/test_coprocessors.py checks an ``mcr p0`` costs what an ``orr.w`` does).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simcore.elf import ElfImage
from simcore.errors import BoardError, NotModeled, UsageFault

if TYPE_CHECKING:
    from simcore.registers import CoprocessorSpec, PeripheralBus, Window

_DATA = Path(__file__).parent / "data" / "coprocessors"
_WORD = 0xFFFFFFFF


@dataclass(frozen=True)
class CoprocessorInsn:
    """A decoded Thumb-2 coprocessor instruction (ARMv8-M ARM, C2.4 encodings).

    ``kind`` is ``mcr``, ``mrc``, ``mcrr``, ``mrrc`` or ``cdp``; ``two`` marks the
    "2" forms (first halfword 0xFxxx). For MCR/MRC ``rt`` is the core register (15:
    APSR_nzcv for MRC); for MCRR/MRRC ``rt``/``rt2`` are the low/high words; for CDP
    ``crd`` is the destination coprocessor register.
    """

    kind: str
    two: bool
    coproc: int
    opc1: int
    opc2: int
    crn: int
    crm: int
    rt: int = 0
    rt2: int = 0
    crd: int = 0

    @property
    def mrc_key(self) -> tuple[int, int, int, int] | None:
        """``(opc1, CRn, CRm, opc2)`` of an MRC to a core register (the chip data's
        ``reads`` keys), else None."""
        if self.kind != "mrc" or self.two or self.rt == 15:
            return None
        return (self.opc1, self.crn, self.crm, self.opc2)

    def text(self) -> str:
        """The instruction as an assembler writes it."""
        name = self.kind + ("2" if self.two else "")
        p = f"p{self.coproc}"
        if self.kind in ("mcr", "mrc"):
            rt = "APSR_nzcv" if self.kind == "mrc" and self.rt == 15 else f"r{self.rt}"
            return f"{name} {p}, #{self.opc1}, {rt}, c{self.crn}, c{self.crm}, #{self.opc2}"
        if self.kind in ("mcrr", "mrrc"):
            return f"{name} {p}, #{self.opc1}, r{self.rt}, r{self.rt2}, c{self.crm}"
        return f"{name} {p}, #{self.opc1}, c{self.crd}, c{self.crn}, c{self.crm}, #{self.opc2}"


def decode(code: bytes) -> CoprocessorInsn | None:
    """Decode the 4 bytes at an instruction, or None if they are no MCR/MRC/MCRR/MRRC/CDP."""
    if len(code) < 4:
        return None
    hw1, hw2 = struct.unpack("<HH", code[:4])
    if hw1 & 0xEF00 not in (0xEE00, 0xEC00):
        return None
    two = bool(hw1 & 0x1000)
    coproc = (hw2 >> 8) & 0xF
    if hw1 & 0xEF00 == 0xEC00:
        if hw1 & 0x00E0 != 0x0040:  # LDC/STC and the other load/store forms
            return None
        return CoprocessorInsn(
            kind="mrrc" if hw1 & 0x10 else "mcrr",
            two=two,
            coproc=coproc,
            opc1=(hw2 >> 4) & 0xF,
            opc2=0,
            crn=0,
            crm=hw2 & 0xF,
            rt=hw2 >> 12,
            rt2=hw1 & 0xF,
        )
    if hw2 & 0x10:
        return CoprocessorInsn(
            kind="mrc" if hw1 & 0x10 else "mcr",
            two=two,
            coproc=coproc,
            opc1=(hw1 >> 5) & 7,
            opc2=(hw2 >> 5) & 7,
            crn=hw1 & 0xF,
            crm=hw2 & 0xF,
            rt=hw2 >> 12,
        )
    return CoprocessorInsn(
        kind="cdp",
        two=two,
        coproc=coproc,
        opc1=(hw1 >> 4) & 0xF,
        opc2=(hw2 >> 5) & 7,
        crn=hw1 & 0xF,
        crm=hw2 & 0xF,
        crd=hw2 >> 12,
    )


@cache
def _register_ids() -> tuple[tuple[int, ...], int, int]:
    """unicorn's ids of r0-r12, SP, LR, PC; APSR_nzcv; xPSR."""
    from unicorn import arm_const

    core = [getattr(arm_const, f"UC_ARM_REG_R{i}") for i in range(13)]
    core += [arm_const.UC_ARM_REG_SP, arm_const.UC_ARM_REG_LR, arm_const.UC_ARM_REG_PC]
    return tuple(core), arm_const.UC_ARM_REG_APSR_NZCV, arm_const.UC_ARM_REG_XPSR


class Cpu:
    """The core registers a coprocessor instruction reads and writes (unicorn)."""

    def __init__(self, uc: Any) -> None:
        self.uc = uc
        # Looked up once per process: a Cpu is made per coprocessor call (pico-sdk's
        # double-precision functions on the RP2350: tens of thousands in a run).
        self._regs, self._apsr, self._xpsr = _register_ids()

    def get(self, n: int) -> int:
        return int(self.uc.reg_read(self._regs[n])) & _WORD

    def set(self, n: int, value: int) -> None:
        self.uc.reg_write(self._regs[n], value & _WORD)

    def set_flags(self, nzcv: int) -> None:
        """Set NZCV from bits 31-28 of ``nzcv``."""
        self.uc.reg_write(self._apsr, nzcv & 0xF0000000)

    def advance_it(self) -> None:
        """Step the IT state past an instruction simcore completed in place of the core
        (Armv7-M ARM ITAdvance()): otherwise the next instruction would take its slot.

        EPSR.IT[1:0] are xPSR bits 26:25, IT[7:2] bits 15:10.
        """
        xpsr = int(self.uc.reg_read(self._xpsr))
        it = ((xpsr >> 25) & 3) | ((xpsr >> 8) & 0xFC)
        if it & 0xF == 0:
            return  # not in an IT block
        it = 0 if it & 7 == 0 else (it & 0xE0) | ((it << 1) & 0x1F)
        xpsr = (xpsr & ~0x0600FC00) | ((it & 3) << 25) | ((it >> 2) << 10)
        self.uc.reg_write(self._xpsr, xpsr)


class _Unmodelled(Exception):
    """The model has no meaning for this instruction (the caller names it)."""


# -- the GPIO coprocessor ------------------------------------------------------------

#: CRm -> the SIO register pair an instruction works on (lo, hi) (gpio_coproc.h).
_GPIOC_GROUPS = {0: "OUT", 1: "OUT", 4: "OE", 5: "OE", 8: "IN", 9: "IN"}


class GpioCoprocessor:
    """RP2350 GPIO coprocessor (p0) on the SIO window's GPIO registers (gpio_coproc.h).

    - ``mcr p0, #op, Rt, c0, cM``: op 0-3 put/xor/set/clr Rt on the register cM selects
      (c0 GPIO_OUT, c1 GPIO_HI_OUT, c4 GPIO_OE, c5 GPIO_HI_OE); op 5-7 xor/set/clr the
      single pin Rt (c0 OUT, c4 OE; pins 32-63 in the HI register);
    - ``mcrr p0, #op, Rt, Rt2, cM`` (c0 OUT, c4 OE): op 0-3 put/xor/set/clr the 64 bits
      Rt2:Rt; op 4 puts pin Rt to bit 0 of Rt2, op 5-7 xor/set/clr pin Rt if bit 0 of Rt2;
      op 8-11 put/xor/set/clr Rt on the half Rt2 selects (0 low, 1 high);
    - ``mrc p0, #0, Rt, c0, cM`` reads one register (also c8/c9: GPIO_IN/GPIO_HI_IN),
      ``mrrc p0, #0, Rt, Rt2, cM`` a pair (c0, c4, c8).
    """

    def __init__(self, sio: Window) -> None:
        self.sio = sio
        names = ("GPIO_OUT", "GPIO_HI_OUT", "GPIO_OE", "GPIO_HI_OE", "GPIO_IN", "GPIO_HI_IN")
        missing = [n for n in names if n not in sio.by_name]
        if missing:
            raise BoardError(
                f"the rp2350-gpioc coprocessor needs the SIO registers {', '.join(missing)} "
                f"in the chip data's window {sio.spec.name}",
                hint="declare them in data/peripherals/<chip>.toml",
            )
        self._offset = {n: sio.by_name[n].offset for n in names}

    def _name(self, group: str, hi: bool) -> str:
        return f"GPIO_{'HI_' if hi else ''}{group}"

    def _get(self, group: str, hi: bool) -> int:
        return self.sio.value(self._offset[self._name(group, hi)])

    def _apply(self, group: str, hi: bool, op: int, bits: int) -> None:
        if group == "IN":
            raise _Unmodelled("GPIO_IN is read-only")
        old = self._get(group, hi)
        new = (bits, old ^ bits, old | bits, old & ~bits)[op]
        self.sio.store(self._offset[self._name(group, hi)], new & _WORD)

    def execute(self, insn: CoprocessorInsn, cpu: Cpu) -> None:
        group = _GPIOC_GROUPS.get(insn.crm)
        if group is None or insn.two or insn.kind == "cdp":
            raise _Unmodelled("no GPIO coprocessor operation")
        hi = insn.crm in (1, 5, 9)
        if insn.kind == "mrc" and insn.opc1 == 0 and insn.crn == 0 and insn.rt != 15:
            cpu.set(insn.rt, self._get(group, hi))
        elif insn.kind == "mrrc" and insn.opc1 == 0 and not hi:
            cpu.set(insn.rt, self._get(group, False))
            cpu.set(insn.rt2, self._get(group, True))
        elif insn.kind == "mcr" and insn.crn == 0 and insn.opc1 <= 3:
            self._apply(group, hi, insn.opc1, cpu.get(insn.rt))
        elif insn.kind == "mcr" and insn.crn == 0 and 5 <= insn.opc1 <= 7 and not hi:
            self._pin(group, cpu.get(insn.rt), insn.opc1 - 4)
        elif insn.kind == "mcrr" and not hi and insn.opc1 <= 3:
            self._apply(group, False, insn.opc1, cpu.get(insn.rt))
            self._apply(group, True, insn.opc1, cpu.get(insn.rt2))
        elif insn.kind == "mcrr" and not hi and 4 <= insn.opc1 <= 7:
            pin, val = cpu.get(insn.rt), cpu.get(insn.rt2) & 1
            if insn.opc1 == 4:
                self._pin(group, pin, 2 if val else 3)
            elif val:
                self._pin(group, pin, insn.opc1 - 4)
        elif insn.kind == "mcrr" and not hi and 8 <= insn.opc1 <= 11:
            index = cpu.get(insn.rt2)
            if index > 1:
                raise _Unmodelled(f"register index {index} (0 and 1 are defined)")
            self._apply(group, index == 1, insn.opc1 - 8, cpu.get(insn.rt))
        else:
            raise _Unmodelled("no GPIO coprocessor operation")

    def _pin(self, group: str, pin: int, op: int) -> None:
        """Op 0-3 (put/xor/set/clr) on the bit of one pin, 0-31 low, 32-63 high."""
        if pin > 63:
            raise _Unmodelled(f"pin {pin} (gpio_coproc.h's single-pin forms take 0-63)")
        self._apply(group, pin >= 32, op, 1 << (pin & 31))


# -- the double coprocessor, at function level -----------------------------------------

#: PCMP APSR_nzcv (``mrc2 p4, #0, APSR_nzcv, c0, c0, #1``): the first instruction of
#: pico-sdk's DCP functions (double_aeabi_dcp.S, saving_func).
_PCMP_NZCV = bytes.fromhex("10fe30f4")
_BX_LR = 0x4770


@dataclass(frozen=True)
class DcpFunction:
    """A recognised DCP function: ``op`` runs on the host at ``address``."""

    name: str
    op: str
    address: int
    #: The address after its ``bx lr`` (the straight path the cycles are charged for).
    end: int


@cache
def _dcp_table() -> dict[str, str]:
    """Symbol -> op, from data/coprocessors/rp2350-dcp.toml."""
    import tomllib  # here, not at import: most runs have no DCP

    with (_DATA / "rp2350-dcp.toml").open("rb") as f:
        data = tomllib.load(f)
    out: dict[str, str] = {}
    for entry in data["function"]:
        if entry["op"] not in _DCP_OPS:
            raise BoardError(
                f"data/coprocessors/rp2350-dcp.toml: unknown op {entry['op']!r}",
                hint=f"one of {', '.join(sorted(_DCP_OPS))}",
            )
        for name in entry["symbols"]:
            out[name] = entry["op"]
    return out


def _double(lo: int, hi: int) -> float:
    return float(struct.unpack("<d", struct.pack("<II", lo, hi))[0])


def _words(x: float) -> tuple[int, int]:
    lo, hi = struct.unpack("<II", struct.pack("<d", x))
    return int(lo), int(hi)


def _div(x: float, y: float) -> float:
    if y != 0.0 or math.isnan(y):
        return x / y if not math.isnan(y) else math.nan
    if x == 0.0 or math.isnan(x):
        return math.nan
    return math.copysign(math.inf, x) * math.copysign(1.0, y)


def _sqrt(x: float) -> float:
    """IEEE square root: NaN below zero, sqrt(-0) = -0 (math.sqrt keeps the sign)."""
    return math.nan if math.isnan(x) or x < 0.0 else math.sqrt(x)


def _to_int(x: float, lo: int, hi: int, op: str) -> int:
    if math.isnan(x):
        raise _Unmodelled(f"{op} of NaN: the DCP's result for NaN is not modelled")
    if math.isinf(x):
        return hi if x > 0 else lo
    return max(lo, min(hi, math.trunc(x)))


def _compare(x: float, y: float) -> int:
    """NZCV (bits 31-28) as CMP x, y sets them for doubles; unordered: C set, V set."""
    if math.isnan(x) or math.isnan(y):
        return 0x30000000
    if x == y:
        return 0x60000000
    return 0x20000000 if x > y else 0x80000000


def _f32_bits(x: float) -> int:
    try:
        return int(struct.unpack("<I", struct.pack("<f", x))[0])
    except OverflowError:  # beyond the float range: round to infinity
        return 0x7F800000 | (0x80000000 if x < 0 else 0)


def _run_op(op: str, cpu: Cpu) -> None:
    # The operands: r0-r1 (x), and r2-r3 (y) unless the function takes one.
    r = [cpu.get(i) for i in range(2 if op in _ONE_OPERAND else 4)] + [0, 0]
    x, y = _double(r[0], r[1]), _double(r[2], r[3])
    binary: dict[str, Callable[[], float]] = {
        "dadd": lambda: x + y,
        "dsub": lambda: x - y,
        "drsub": lambda: y - x,
        "dmul": lambda: x * y,
        "ddiv": lambda: _div(x, y),
        "sqrt": lambda: _sqrt(x),
        "i2d": lambda: float(r[0] - (1 << 32) if r[0] >> 31 else r[0]),
        "ui2d": lambda: float(r[0]),
    }
    if op in binary:
        for i, word in enumerate(_words(binary[op]())):
            cpu.set(i, word)
    elif op == "d2f":
        cpu.set(0, _f32_bits(x))
    elif op == "d2iz":
        cpu.set(0, _to_int(x, -(1 << 31), (1 << 31) - 1, op))
    elif op == "d2uiz":
        cpu.set(0, _to_int(x, 0, _WORD, op))
    elif op.startswith("dcmp"):
        unordered = math.isnan(x) or math.isnan(y)
        result = {
            "dcmpeq": x == y,
            "dcmplt": x < y,
            "dcmple": x <= y,
            "dcmpge": x >= y,
            "dcmpgt": x > y,
            "dcmpun": unordered,
        }[op]
        cpu.set(0, int(result))
    elif op == "cdcmple":
        cpu.set_flags(_compare(x, y))
    elif op == "cdrcmple":
        cpu.set_flags(_compare(y, x))
    else:  # pragma: no cover - _dcp_table checks the ops
        raise _Unmodelled(op)


#: The functions of one operand (r0, or r0-r1): r2-r3 are not read.
_ONE_OPERAND = frozenset(["sqrt", "i2d", "ui2d", "d2f", "d2iz", "d2uiz"])
_DCP_OPS = frozenset(
    [
        "dadd",
        "dsub",
        "drsub",
        "dmul",
        "ddiv",
        "sqrt",
        "i2d",
        "ui2d",
        "d2f",
        "d2iz",
        "d2uiz",
        "dcmpeq",
        "dcmplt",
        "dcmple",
        "dcmpge",
        "dcmpgt",
        "dcmpun",
        "cdcmple",
        "cdrcmple",
    ]
)


@dataclass
class DcpFunctions:
    """pico-sdk's DCP functions in a program, run on the host (data/coprocessors/rp2350-dcp.toml).

    :meth:`find` lists the functions of the image whose symbol is in the table and whose
    code has the SDK's shape (PCMP APSR_nzcv, BMI, more p4 instructions, BX LR). The
    engine puts a code hook at each: :meth:`call` computes the result on the host (IEEE
    double, round to nearest even), writes r0/r1 (or r0, or the flags for the
    ``__aeabi_cd*`` comparisons) and returns to LR without running the body.
    """

    functions: dict[int, DcpFunction] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    @classmethod
    def find(cls, image: ElfImage) -> DcpFunctions:
        table = _dcp_table()
        found: dict[int, DcpFunction] = {}
        for name, op in table.items():
            sym = image.symbol(name)
            if sym is None or sym.kind != "func" or sym.address in found:
                continue
            end = _sdk_shape(image, sym.address)
            if end is not None:
                found[sym.address] = DcpFunction(name, op, sym.address, end)
        return cls(found)

    def call(self, function: DcpFunction, cpu: Cpu) -> None:
        try:
            _run_op(function.op, cpu)
        except _Unmodelled as exc:
            raise NotModeled(
                f"{function.name}: {exc}",
                hint="simcore runs pico-sdk's DCP functions on the host (see the README)",
            ) from None
        self.calls[function.name] = self.calls.get(function.name, 0) + 1
        cpu.set(15, cpu.get(14) | 1)


def _sdk_shape(image: ElfImage, address: int) -> int | None:
    """The end of the function's ``bx lr`` if its code is shaped like a pico-sdk DCP
    function (PCMP APSR_nzcv; BMI; ...p4 instructions...; BX LR), else None."""
    code = image.initial_bytes(address, 4)
    if code != _PCMP_NZCV:
        return None
    bmi = image.initial_bytes(address + 4, 2)
    if bmi is None or bmi[1] != 0xD4:  # BMI (T1, cond 0100)
        return None
    at, seen = address + 6, 0
    while at < address + 256:
        half = image.initial_bytes(at, 2)
        if half is None:
            return None
        hw = int.from_bytes(half, "little")
        if hw == _BX_LR:
            return at + 2 if seen else None
        if hw >> 11 in (0x1D, 0x1E, 0x1F):  # a 32-bit instruction
            word = image.initial_bytes(at, 4)
            insn = decode(word) if word is not None else None
            seen += insn is not None and insn.coproc == 4
            at += 4
        else:
            at += 2
    return None


# -- the set of a board -----------------------------------------------------------------


class Coprocessors:
    """The chip's coprocessors for one run; the engine calls :meth:`execute` on NOCP."""

    def __init__(
        self,
        specs: Sequence[CoprocessorSpec],
        bus: PeripheralBus | None,
        image: ElfImage,
        board_name: str,
    ) -> None:
        self.specs = {c.number: c for c in specs}
        self.board_name = board_name
        self.gpioc: GpioCoprocessor | None = None
        self.dcp: DcpFunctions | None = None
        self.notes: list[str] = []
        for spec in specs:
            if spec.model == "rp2350-gpioc":
                windows = bus.windows if bus is not None else []
                sio = next((w for w in windows if w.spec.name == "sio"), None)
                if sio is None:
                    raise BoardError(
                        f"{board_name}: coprocessor p{spec.number} (rp2350-gpioc) needs the "
                        "chip data's sio window",
                        hint="declare a [[window]] named sio in the chip file",
                    )
                self.gpioc = GpioCoprocessor(sio)
            elif spec.model == "rp2350-dcp":
                self.dcp = DcpFunctions.find(image)

    def describe(self) -> str:
        if not self.specs:
            return f"the {self.board_name} chip has no coprocessor on p0-p7"
        return f"the {self.board_name} chip has " + ", ".join(
            f"p{n} ({c.name})" for n, c in sorted(self.specs.items())
        )

    def execute(self, insn: CoprocessorInsn, cpu: Cpu, cpacr: int, where: str) -> None:
        """Run ``insn`` or raise the fault (UsageFault NOCP) or error a core would give."""
        spec = self.specs.get(insn.coproc)
        if spec is None:
            raise UsageFault(
                f"NOCP: '{insn.text()}' at {where}: coprocessor p{insn.coproc} is not "
                f"there ({self.describe()})",
                kind="NOCP",
                hint="on hardware this is a NOCP UsageFault; check that the program was "
                "built for this board",
            )
        what = f"the {self.board_name} {spec.name} coprocessor (p{spec.number})"
        if (cpacr >> (2 * insn.coproc)) & 1 == 0:
            raise UsageFault(
                f"NOCP: '{insn.text()}' at {where}: {what} is not enabled in CPACR (0x{cpacr:08x})",
                kind="NOCP",
                hint=f"enable it first (SCB->CPACR |= 3 << {2 * insn.coproc}), as pico-sdk's "
                "runtime_init_per_core_enable_coprocessors does",
            )
        value = dict(spec.reads).get(insn.mrc_key) if insn.mrc_key is not None else None
        if value is not None:
            cpu.set(insn.rt, value)
            note = (
                f"{spec.name} (p{spec.number}): '{insn.text()}' at {where} read "
                f"0x{value:x}, a constant of the chip data"
            )
            if note not in self.notes:
                self.notes.append(note)
            return
        try:
            if spec.model == "rp2350-gpioc" and self.gpioc is not None:
                self.gpioc.execute(insn, cpu)
                return
            if spec.model == "rp2350-dcp":
                raise _Unmodelled(
                    "simcore runs the DCP at function level (pico-sdk's DCP functions, "
                    "recognised by name and code shape, on the host); this instruction is "
                    "outside any recognised function"
                )
            raise _Unmodelled("not modeled beyond the reads the chip data lists")
        except _Unmodelled as exc:
            raise NotModeled(
                f"'{insn.text()}' at {where}: {what}: {exc}",
                hint=spec.hint or "see the RP2350 coprocessors section of the README",
            ) from None

    def report_notes(self) -> list[str]:
        """What the run's report says about the coprocessors."""
        notes = list(self.notes)
        if self.dcp is not None and self.dcp.calls:
            calls = ", ".join(f"{name} x{n}" for name, n in sorted(self.dcp.calls.items()))
            notes.append(
                f"DCP functions run on the host (IEEE-754 double, round to nearest even): "
                f"{calls}; their cycles are their own instructions' as the core table costs "
                "them, coprocessor instructions 1 cycle each [approximate]"
            )
        return notes
