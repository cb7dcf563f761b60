"""Benchmark: raw unicorn against unicorn with full C accounting, in one process.

The kernel is an int8 multiply-accumulate loop in XIP flash on the rp2040 layout, so
the cache model runs on every block. ``unroll=1`` is the worst case for a block hook
(LDRSB, LDRSB, MULS, ADDS, SUBS, BNE: six instructions per block); ``unroll=4`` is the
shape compiled NN kernels have (CMSIS-NN unrolls by 4: 18 instructions per block).
Both runs execute the same instructions; the ratio is accounting throughput over raw
throughput (target: at least 0.75 and 300 M instructions/s on the project's 2-core
machine). Times are the emulating thread's CPU time, which keeps other processes on
a shared machine out of the figures as far as possible.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from simcore.boards import get_board
from simcore.cycles.classify import CodeRange, classify
from simcore.cycles.native import BlockAccounting, bare_engine
from simcore.cycles.tables import cache_for
from simcore.errors import ToolchainError

FLASH = 0x10000000
RAM = 0x20000000

_KERNEL = """
.syntax unified
.thumb
.cpu cortex-m0plus
.text
.global _start
.thumb_func
_start:
    ldr r5, ={outer}
outer:
    ldr r0, =0x20000000
    ldr r1, =0x20000100
    movs r3, #{count}
inner:
{body}
    subs r3, r3, #{unroll}
    bne inner
    subs r5, r5, #1
    bne outer
.global done
done:
    b done
.ltorg
"""


@dataclass(frozen=True)
class BenchResult:
    """Throughputs of one benchmark run (best of ``repeats`` for each mode)."""

    instructions: int
    raw_seconds: float
    accounted_seconds: float
    cycles: int

    @property
    def raw_ips(self) -> float:
        return self.instructions / self.raw_seconds

    @property
    def accounted_ips(self) -> float:
        return self.instructions / self.accounted_seconds

    @property
    def ratio(self) -> float:
        return self.accounted_ips / self.raw_ips

    def summary(self) -> str:
        return (
            f"{self.instructions / 1e6:.0f} M instructions: raw {self.raw_ips / 1e6:.0f} M/s, "
            f"with accounting {self.accounted_ips / 1e6:.0f} M/s, ratio {self.ratio:.2f} "
            f"({self.cycles / 1e6:.0f} M modeled cycles)"
        )


_MAC = """    ldrsb r4, [r0, r3]
    ldrsb r6, [r1, r3]
    muls r4, r6, r4
    adds r2, r2, r4
"""


def _assemble(outer: int, unroll: int = 1) -> tuple[bytes, int]:
    if shutil.which("arm-none-eabi-as") is None or shutil.which("arm-none-eabi-ld") is None:
        raise ToolchainError("arm-none-eabi-as/ld not found", hint="install gcc-arm-none-eabi")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        count = 255 if unroll == 1 else 252  # a multiple of the unroll factor
        (d / "k.s").write_text(
            _KERNEL.format(outer=outer, body=_MAC * unroll, unroll=unroll, count=count)
        )
        subprocess.run(["arm-none-eabi-as", str(d / "k.s"), "-o", str(d / "k.o")], check=True)
        subprocess.run(
            [
                "arm-none-eabi-ld",
                f"-Ttext=0x{FLASH:x}",
                "-e",
                "_start",
                str(d / "k.o"),
                "-o",
                str(d / "k.elf"),
            ],
            check=True,
        )
        subprocess.run(
            ["arm-none-eabi-objcopy", "-O", "binary", str(d / "k.elf"), str(d / "k.bin")],
            check=True,
        )
        nm = subprocess.run(
            ["arm-none-eabi-nm", str(d / "k.elf")], check=True, capture_output=True, text=True
        ).stdout
        done = next(
            int(line.split()[0], 16) for line in nm.splitlines() if line.split()[-1] == "done"
        )
        return (d / "k.bin").read_bytes(), done


def _run_once(code: bytes, done: int, accounting: BlockAccounting | None) -> float:
    uc = bare_engine("cortex-m0plus", [(FLASH, 0x10000), (RAM, 0x10000)])
    uc.mem_write(FLASH, code)
    uc.mem_write(RAM, bytes((i * 37) & 0xFF for i in range(512)))
    if accounting is not None:
        accounting.install(uc)
    start = time.thread_time()
    uc.emu_start(FLASH | 1, done)
    return time.thread_time() - start


def run_bench(
    outer_iterations: int = 200_000,
    repeats: int = 5,
    *,
    unroll: int = 1,
    data_reads: bool = False,
) -> BenchResult:
    """Run the MAC kernel raw and with accounting (cache model on); best of ``repeats``.

    ``outer_iterations`` x about 255 x (4 x ``unroll`` + 2) instructions: the default
    is about 306 M for ``unroll=1``. Raw and accounted runs alternate so that load
    from other processes hits both alike.
    ``data_reads`` charges flash data reads too (virtual TLB + MMIO alias: only the
    loads from flash leave unicorn's fast path; this kernel's data is in RAM).
    """
    if unroll not in (1, 2, 4):
        raise ValueError("unroll must be 1, 2 or 4")
    code, done = _assemble(outer_iterations, unroll)
    classification = classify("cortex-m0plus", [CodeRange(FLASH, code)])
    cache = cache_for(get_board("rp2040"))
    raw, accounted = [], []
    instructions = cycles = 0
    for _ in range(repeats):
        raw.append(_run_once(code, done, None))
        acc = BlockAccounting(classification, cache=cache, data_reads=data_reads)
        accounted.append(_run_once(code, done, acc))
        instructions, cycles = acc.instructions, acc.cycles
    return BenchResult(instructions, min(raw), min(accounted), cycles)


def main() -> None:
    """Print the three figures of the bench session."""
    print("6-instruction blocks, fetch cache: ", run_bench().summary())
    print("18-instruction blocks, fetch cache:", run_bench(200_000, unroll=4).summary())
    print("6-instruction blocks, + data reads:", run_bench(50_000, 3, data_reads=True).summary())


if __name__ == "__main__":
    main()
