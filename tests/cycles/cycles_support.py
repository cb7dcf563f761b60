"""Helpers of the cycle-model tests: build tiny Thumb programs, run them with accounting.

Programs start at ``_start`` in flash (0x10000000) and stop when the PC reaches the
``done`` label (``emu_start(until=done)``), so ``done`` itself is never charged.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile
from unicorn import (
    UC_ARCH_ARM,
    UC_HOOK_BLOCK,
    UC_HOOK_INTR,
    UC_MODE_THUMB,
    UC_PROT_ALL,
    Uc,
    arm_const,
)

from simcore.boards import BoardSpec
from simcore.cycles.classify import Classification, CodeRange, MappingSymbol, classify
from simcore.cycles.model import CycleModel
from simcore.cycles.native import BlockAccounting
from simcore.cycles.tables import CacheConfig, TimingTable
from simcore.elf import ElfImage

FLASH = 0x10000000
RAM = 0x20000000
RAM_SIZE = 0x40000
SCS = 0xE0000000

CPU = {
    "cortex-m0": ("cortex-m0", None, arm_const.UC_CPU_ARM_CORTEX_M0),
    "cortex-m4f": ("cortex-m4", "fpv4-sp-d16", arm_const.UC_CPU_ARM_CORTEX_M4),
    "cortex-m0plus": ("cortex-m0plus", None, arm_const.UC_CPU_ARM_CORTEX_M0),
    "cortex-m33": ("cortex-m33", "fpv5-sp-d16", arm_const.UC_CPU_ARM_CORTEX_M33),
    "cortex-m7": ("cortex-m7", "fpv5-d16", arm_const.UC_CPU_ARM_CORTEX_M7),
}

HAVE_AS = all(shutil.which(t) is not None for t in ("arm-none-eabi-as", "arm-none-eabi-ld"))


@dataclass
class Program:
    """An assembled and linked program: its code ranges, mapping symbols and symbols."""

    elf: Path
    ranges: list[CodeRange]
    mapping: list[MappingSymbol]
    symbols: dict[str, int]
    image: list[tuple[int, bytes]] = field(default_factory=list)

    def classify(self, core: str | TimingTable) -> Classification:
        return classify(core, self.ranges, self.mapping)


def build(
    tmp: Path,
    core: str,
    body: str,
    *,
    name: str = "prog",
    tail: str = "",
    objects: list[Path] | None = None,
) -> Program:
    """Assemble ``body`` after ``_start`` and link it (with ``objects``) at :data:`FLASH`."""
    cpu, fpu, _ = CPU[core]
    src = tmp / f"{name}.s"
    src.write_text(
        ".syntax unified\n.thumb\n"
        f".cpu {cpu}\n"
        + (f".fpu {fpu}\n" if fpu else "")
        + ".text\n.global _start\n.thumb_func\n_start:\n"
        + body
        + "\n.global done\ndone:\n    b done\n"
        + tail
        + "\n.ltorg\n"
    )
    obj, elf = tmp / f"{name}.o", tmp / f"{name}.elf"
    subprocess.run(["arm-none-eabi-as", str(src), "-o", str(obj)], check=True)
    subprocess.run(
        [
            "arm-none-eabi-ld",
            f"-Ttext=0x{FLASH:x}",
            f"-Tdata=0x{RAM:x}",
            "-e",
            "_start",
            str(obj),
            *[str(o) for o in objects or []],
            "-o",
            str(elf),
        ],
        check=True,
    )
    with elf.open("rb") as f:
        e = ELFFile(f)
        ranges, image, exec_idx = [], [], set()
        for i, sec in enumerate(e.iter_sections()):
            if sec["sh_type"] == "SHT_PROGBITS" and sec["sh_flags"] & 2:  # SHF_ALLOC
                image.append((sec["sh_addr"], sec.data()))
                if sec["sh_flags"] & 4:  # SHF_EXECINSTR
                    ranges.append(CodeRange(sec["sh_addr"], sec.data()))
                    exec_idx.add(i)
        symtab = e.get_section_by_name(".symtab")
        symbols, mapping = {}, []
        for s in symtab.iter_symbols():
            if s.name in ("$t", "$d") or s.name.startswith(("$t.", "$d.")):
                if s["st_shndx"] in exec_idx:
                    mapping.append(MappingSymbol(s["st_value"], s.name[1]))
            elif s.name:
                symbols[s.name] = s["st_value"] & ~1  # Thumb bit off
    return Program(elf, ranges, mapping, symbols, image)


@dataclass
class Run:
    uc: Uc
    accounting: BlockAccounting | None
    registers: tuple[int, ...]
    ram: bytes
    pc: int

    @property
    def cycles(self) -> int:
        assert self.accounting is not None
        return self.accounting.cycles

    @property
    def instructions(self) -> int:
        assert self.accounting is not None
        return self.accounting.instructions


def new_engine(core: str) -> Uc:
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
    uc.ctl_set_cpu_model(CPU[core][2])  # before anything else
    return uc


def run(
    prog: Program,
    core: str,
    *,
    accounting: bool = True,
    cache: CacheConfig | None = None,
    data_reads: bool = True,
    data_hits: bool = True,
    budget: int = 5_000_000,
    mmio: object | None = None,
    loaded: list[tuple[int, int]] | None = None,
) -> Run:
    """Run ``prog`` from ``_start`` to ``done``; ``mmio(uc, accounting)`` may add mappings
    or hooks before the run (called before the C hooks are installed)."""
    uc = new_engine(core)
    uc.mem_map(FLASH, 0x100000, UC_PROT_ALL)
    uc.mem_map(RAM, RAM_SIZE, UC_PROT_ALL)
    for addr, data in prog.image:
        uc.mem_write(addr, data)
    uc.reg_write(arm_const.UC_ARM_REG_SP, RAM + RAM_SIZE - 0x100)
    acc = None
    if accounting:
        acc = BlockAccounting(
            prog.classify(core),
            budget=budget,
            cache=cache,
            data_reads=data_reads,
            data_hits=data_hits,
            loaded=loaded,
        )
        if mmio is not None:
            mmio(uc, acc)  # type: ignore[operator]
        acc.install(uc)
    elif mmio is not None:
        mmio(uc, None)  # type: ignore[operator]
    # A timeout (not `count`, which adds a code hook) guards against a runaway program.
    uc.emu_start(prog.symbols["_start"] | 1, prog.symbols["done"], timeout=20_000_000)
    if acc is not None:
        acc.check()
    regs = tuple(uc.reg_read(getattr(arm_const, f"UC_ARM_REG_R{i}")) for i in range(13))
    return Run(uc, acc, regs, bytes(uc.mem_read(RAM, 0x1000)), uc.reg_read(arm_const.UC_ARM_REG_PC))


_SYS_OPEN, _SYS_WRITE, _SYS_EXIT, _SYS_EXIT_EXTENDED = 0x01, 0x05, 0x18, 0x20
PPB = 0xE0000000
DWT_CYCCNT = 0xE0001004


@dataclass
class ImageRun:
    """What a harness-ABI firmware did under :func:`run_image`."""

    stdout: str
    exit_code: int
    pc: int
    cyccnt_reads: list[int]
    counted_instructions: int | None = None


def run_image(
    image: ElfImage,
    board: BoardSpec,
    model: CycleModel | None = None,
    *,
    count_with: Classification | None = None,
) -> ImageRun:
    """Run a simcore-ABI ELF from its reset vector to ``done`` on a bare unicorn engine.

    Independent of simcore.engine on purpose: the cycle model is tested on its own.
    Semihosting: SYS_OPEN hands out handle 1, SYS_WRITE appends to stdout, SYS_EXIT*
    stops. The PPB page serves DWT->CYCCNT from ``model`` (0 without one); the rest of
    the PPB reads 0 and ignores writes. IO regions are mapped as plain memory.
    ``count_with`` counts instructions with a Python block hook and that
    classification's count prefix (slow; for runs without the C hook).
    """
    uc = new_engine(board.core.name)
    for region in board.memory:
        uc.mem_map(region.start, region.size_bytes, UC_PROT_ALL)
    for seg in image.segments:
        if seg.data:
            uc.mem_write(seg.load_address, seg.data)
    sp, reset = struct.unpack("<II", bytes(uc.mem_read(board.vector_table, 8)))
    uc.reg_write(arm_const.UC_ARM_REG_SP, sp)
    stdout: list[str] = []
    reads: list[int] = []

    def ppb_read(uc_: Uc, offset: int, size: int, _ud: object) -> int:
        if PPB + offset == DWT_CYCCNT and model is not None:
            reads.append(model.cycles_at_access(uc_, PPB + offset))
            return reads[-1] & 0xFFFFFFFF
        return 0

    uc.mmio_map(PPB, 0x100000, ppb_read, None, lambda *a: None, None)

    def on_intr(uc_: Uc, intno: int, _ud: object) -> None:
        pc = uc_.reg_read(arm_const.UC_ARM_REG_PC)
        if bytes(uc_.mem_read(pc, 2)) != b"\xab\xbe":  # not bkpt 0xab: a plain breakpoint
            uc_.emu_stop()
            return
        op, arg = uc_.reg_read(arm_const.UC_ARM_REG_R0), uc_.reg_read(arm_const.UC_ARM_REG_R1)
        result = 0
        if op == _SYS_OPEN:
            result = 1
        elif op == _SYS_WRITE:
            _handle, ptr, length = struct.unpack("<3I", bytes(uc_.mem_read(arg, 12)))
            stdout.append(bytes(uc_.mem_read(ptr, length)).decode("latin-1"))
        elif op in (_SYS_EXIT, _SYS_EXIT_EXTENDED):
            uc_.emu_stop()
            return
        uc_.reg_write(arm_const.UC_ARM_REG_R0, result)
        uc_.reg_write(arm_const.UC_ARM_REG_PC, (pc + 2) | 1)

    uc.hook_add(UC_HOOK_INTR, on_intr)
    counted = [0]
    if count_with is not None:
        classification = count_with

        def on_block(_uc: Uc, address: int, size: int, _ud: object) -> None:
            r = classification.range_at(address)
            assert r is not None, f"block 0x{address:08x} outside the code"
            counted[0] += r.block_cost(address, address + size)[1]

        uc.hook_add(UC_HOOK_BLOCK, on_block)
    if model is not None:
        model.install(uc)
    uc.emu_start(reset | 1, image.symbols["done"].address, timeout=60_000_000)
    if model is not None:
        model.check()
    r0 = uc.reg_read(arm_const.UC_ARM_REG_R0)
    return ImageRun(
        "".join(stdout),
        r0 - (1 << 32) if r0 & 0x80000000 else r0,
        uc.reg_read(arm_const.UC_ARM_REG_PC),
        reads,
        counted[0] if count_with is not None else None,
    )
