"""The silicon suite: instruction sequences measured on real chips, run under simcore.

Each sequence (``data/timing/silicon-<core>.toml``) carries the cycles per copy that a
public measurement on silicon gives (DWT->CYCCNT on an STM32H743 and an RP2350, see
the files' headers). The suite assembles the body 4 and 14 times in straight-line code
(or runs a loop body 4 and 14 times), runs both programs under unicorn with the C
accounting hooks, and reports ``(cycles(14) - cycles(4)) / 10`` next to the measured
figure: the N-copies method of the measurements themselves, which cancels the set-up
and the edges of the sequence.

``python -m simcore.cycles.silicon`` prints the table per core with the number of
exact sequences and the mean and worst absolute error.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from elftools.elf.elffile import ELFFile

from simcore.cycles.classify import CodeRange, MappingSymbol, classify
from simcore.cycles.native import BlockAccounting, bare_engine
from simcore.cycles.tables import TimingTable, load_table
from simcore.errors import CycleModelError, ToolchainError

CORES = ("cortex-m7", "cortex-m33")
CODE = 0x00000000
RAM = 0x20000000
RAM_SIZE = 0x10000
#: Every register and every RAM word starts as this address, so any register is a pointer.
POINTER = 0x20000100
COPIES = (4, 14)

_FPU = {"cortex-m7": "fpv5-d16", "cortex-m33": "fpv5-sp-d16"}
_REGISTERS = ("r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r10", "r11", "r12", "lr")


@dataclass(frozen=True)
class MeasuredSequence:
    """One measured sequence: ``body`` (one copy, or a loop body ending in ``b<cc> 1b``)."""

    name: str
    body: str
    measured: float
    quote: str
    loop: bool


@dataclass(frozen=True)
class SiliconSuite:
    """A core's measured sequences and where the figures come from."""

    core: str
    source: str
    sequences: tuple[MeasuredSequence, ...]


@dataclass(frozen=True)
class SequenceResult:
    """Measured and modeled cycles per copy of one sequence."""

    name: str
    measured: float
    modeled: float

    @property
    def error(self) -> float:
        return self.modeled - self.measured

    @property
    def exact(self) -> bool:
        return abs(self.error) < 1e-9


@dataclass(frozen=True)
class SuiteResult:
    """A core's suite run: per-sequence results, exact count and errors."""

    core: str
    results: tuple[SequenceResult, ...]

    @property
    def exact_count(self) -> int:
        return sum(r.exact for r in self.results)

    @property
    def mean_abs_error(self) -> float:
        return sum(abs(r.error) for r in self.results) / max(len(self.results), 1)

    @property
    def worst(self) -> SequenceResult:
        return max(self.results, key=lambda r: abs(r.error))

    def table(self) -> str:
        """A markdown table and its summary line."""
        lines = [
            f"{self.core}: sequence | measured | modeled | error",
            "|---|---:|---:|---:|",
        ]
        for r in self.results:
            lines.append(
                f"| {r.name} | {r.measured:g} | {r.modeled:g} | "
                f"{'exact' if r.exact else f'{r.error:+g}'} |"
            )
        lines.append(self.summary())
        return "\n".join(lines)

    def summary(self) -> str:
        n = len(self.results)
        worst = self.worst
        worst_text = "none off" if worst.exact else f"{worst.name} ({worst.error:+g})"
        return (
            f"{self.core}: {self.exact_count}/{n} exact ({self.exact_count / n:.0%}), "
            f"mean abs error {self.mean_abs_error:.2f} cycles, worst {worst_text}"
        )


def load_suite(core: str) -> SiliconSuite:
    """Read ``data/timing/silicon-<core>.toml``."""
    path = Path(str(resources.files("simcore") / "data" / "timing" / f"silicon-{core}.toml"))
    with path.open("rb") as f:
        raw = tomllib.load(f)
    if raw.get("core") != core:
        raise CycleModelError(f"{path}: core {raw.get('core')!r} is not {core!r}")
    seqs = tuple(
        MeasuredSequence(
            name=s["name"],
            body=s["body"],
            measured=float(s["measured"]),
            quote=s["quote"],
            loop=s.get("mode") == "loop",
        )
        for s in raw["sequence"]
    )
    return SiliconSuite(core, raw["source"], seqs)


def _source(core: str, seqs: Sequence[MeasuredSequence], n: int) -> str:
    """One program holding every sequence: ``s<i>`` sets up and runs it, ``d<i>`` ends it."""
    setup = "".join(f"    ldr {r}, ={POINTER:#x}\n" for r in _REGISTERS)
    parts = [f".syntax unified\n.thumb\n.cpu {core}\n.fpu {_FPU[core]}\n.text\n"]
    for i, seq in enumerate(seqs):
        copies = seq.body + "\n" if seq.loop else f".rept {n}\n{seq.body}\n.endr\n"
        count = f"    movw r9, #{n}\n" if seq.loop else ""
        parts.append(
            f".balign 4\n.global s{i}\n.thumb_func\ns{i}:\n{setup}{count}    b.w b{i}\n"
            f".ltorg\n.balign 8\nb{i}:\n{copies}.global d{i}\nd{i}:\n    b d{i}\n"
        )
    return "".join(parts)


@dataclass(frozen=True)
class _Program:
    """The assembled suite program of one copy count."""

    code: bytes
    symbols: dict[str, int]
    mapping: tuple[MappingSymbol, ...]


def _build(tmp: Path, core: str, seqs: Sequence[MeasuredSequence], n: int) -> _Program:
    src, obj, elf = tmp / f"s{n}.s", tmp / f"s{n}.o", tmp / f"s{n}.elf"
    src.write_text(_source(core, seqs, n))
    for cmd in (
        ["arm-none-eabi-as", str(src), "-o", str(obj)],
        ["arm-none-eabi-ld", f"-Ttext=0x{CODE:x}", "-e", "s0", str(obj), "-o", str(elf)],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise ToolchainError(f"silicon suite ({core}): {cmd[0]} failed: {done.stderr.strip()}")
    with elf.open("rb") as f:
        e = ELFFile(f)
        code = e.get_section_by_name(".text").data()
        symtab = e.get_section_by_name(".symtab")
        symbols = {s.name: s["st_value"] & ~1 for s in symtab.iter_symbols() if s.name}
        mapping = tuple(
            MappingSymbol(s["st_value"], s.name[1])
            for s in symtab.iter_symbols()
            if s.name[:2] in ("$t", "$d")
        )
    return _Program(code, symbols, mapping)


def _run(core: str, table: TimingTable, prog: _Program, i: int) -> int:
    """Cycles of sequence ``i`` of ``prog`` from ``s<i>`` to ``d<i>`` under the C hooks."""
    from unicorn import arm_const

    classification = classify(table, [CodeRange(CODE, prog.code)], prog.mapping)
    uc = bare_engine(core, [(CODE, 0x10000), (RAM, RAM_SIZE)])
    uc.mem_write(CODE, prog.code)
    uc.mem_write(RAM, POINTER.to_bytes(4, "little") * (RAM_SIZE // 4))
    uc.reg_write(arm_const.UC_ARM_REG_SP, RAM + RAM_SIZE - 0x100)
    acc = BlockAccounting(classification)
    acc.install(uc)
    done = prog.symbols[f"d{i}"]
    uc.emu_start(prog.symbols[f"s{i}"] | 1, done, count=1_000_000)
    acc.check()
    pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
    if pc != done:
        raise CycleModelError(f"silicon sequence {i} stopped at 0x{pc:08x}, not at d{i}")
    return acc.cycles


def run_suite(core: str, table: TimingTable | None = None) -> SuiteResult:
    """Run every sequence of ``core``'s suite under ``table`` (default: the shipped one)."""
    if shutil.which("arm-none-eabi-as") is None or shutil.which("arm-none-eabi-ld") is None:
        raise ToolchainError("arm-none-eabi-as/ld not found", hint="install gcc-arm-none-eabi")
    table = table or load_table(core)
    suite = load_suite(core)
    with tempfile.TemporaryDirectory() as tmp:
        lo_prog, hi_prog = (_build(Path(tmp), core, suite.sequences, n) for n in COPIES)
    results = []
    for i, seq in enumerate(suite.sequences):
        lo, hi = _run(core, table, lo_prog, i), _run(core, table, hi_prog, i)
        modeled = (hi - lo) / (COPIES[1] - COPIES[0])
        results.append(SequenceResult(seq.name, seq.measured, modeled))
    return SuiteResult(core, tuple(results))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simcore.cycles.silicon", description=__doc__)
    parser.add_argument("cores", nargs="*", help=f"cores (default: {', '.join(CORES)})")
    parser.add_argument("--summary", action="store_true", help="only the summary lines")
    args = parser.parse_args(argv)
    for core in args.cores or CORES:
        result = run_suite(core)
        print(result.summary() if args.summary else result.table() + "\n")


if __name__ == "__main__":
    main()
