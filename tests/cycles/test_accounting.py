"""Accounting never changes execution; results are deterministic; cache, profile, DWT.

The program of the identity tests is kernel.c (compiled with arm-none-eabi-gcc -O2)
plus a tiny assembly start: int8 dot products over weights in flash, calls, early
returns, a table lookup and a byte copy.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cycles_support import CPU, FLASH, RAM, Program, Run, build, new_engine, run
from unicorn import UC_HOOK_BLOCK, UC_HOOK_MEM_READ, UC_PROT_ALL, Uc, UcError, arm_const

from simcore.boards import get_board
from simcore.cycles.native import BlockAccounting, StopReason
from simcore.cycles.profile import function_profile
from simcore.cycles.sysregs import SYST_CSR, SYST_CVR, SYST_RVR, cyccnt, systick_value
from simcore.cycles.tables import CacheConfig, Tag, cache_for, load_table

HERE = Path(__file__).parent
CORES = ["cortex-m0plus", "cortex-m33", "cortex-m7"]


def flash_cache(core: str, *, data_reads: bool) -> CacheConfig:
    """The rp2040 cache geometry over the test flash, on any core (to probe the read hook)."""
    base = cache_for(get_board("rp2040"))
    assert base is not None
    return CacheConfig(
        start=FLASH,
        end=FLASH + 0x100000,
        size_bytes=base.size_bytes,
        ways=base.ways,
        line_bytes=base.line_bytes,
        miss_cycles=base.miss_cycles,
        tag=Tag.APPROXIMATE,
        source="test",
        data_reads=data_reads,
        data_reads_note="test",
    )


@pytest.fixture
def kernel(tmp_path: Path) -> Callable[[str], Program]:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")

    def _build(core: str) -> Program:
        cpu, fpu, _ = CPU[core]
        obj = tmp_path / f"kernel-{core}.o"
        flags = [f"-mcpu={cpu}", "-mthumb", "-O2", "-ffreestanding", "-fno-builtin"]
        if fpu:
            flags += [f"-mfpu={fpu}", "-mfloat-abi=hard"]
        subprocess.run(
            ["arm-none-eabi-gcc", *flags, "-c", str(HERE / "kernel.c"), "-o", str(obj)],
            check=True,
        )
        prog = build(tmp_path, core, "bl kernel\n", name=f"start-{core}", objects=[obj])
        return prog

    return _build


def counted_run(prog: Program, core: str) -> tuple[tuple[int, ...], bytes, int]:
    """Run without the C hook; count instructions with a Python block hook and the
    classification's count prefix (slow, fine for a small program)."""
    classification = prog.classify(core)
    total = [0]

    def on_block(_uc: Uc, address: int, size: int, _ud: object) -> None:
        r = classification.range_at(address)
        assert r is not None
        total[0] += r.block_cost(address, address + size)[1]

    def add_hook(uc: Uc, _acc: object) -> None:
        uc.hook_add(UC_HOOK_BLOCK, on_block)

    result = run(prog, core, accounting=False, mmio=add_hook)
    return result.registers, result.ram, total[0]


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("model", ["plain", "fetch_cache", "fetch_and_data_cache"])
def test_accounting_never_changes_execution(
    kernel: Callable[[str], Program], core: str, model: str
) -> None:
    """Registers, RAM and instruction count are identical with and without the hooks.

    ``fetch_and_data_cache`` charges flash data reads through the virtual TLB and MMIO
    aliases on every core (loads inside IT blocks: test_flash_loads_in_it_blocks_are_charged).
    """
    prog = kernel(core)
    regs, ram, instructions = counted_run(prog, core)
    cache = None if model == "plain" else flash_cache(core, data_reads=model != "fetch_cache")
    result = run(prog, core, cache=cache)
    assert result.registers == regs
    assert result.ram == ram
    assert result.instructions == instructions
    out = [int.from_bytes(ram[i : i + 4], "little", signed=True) for i in range(0, 4, 4)]
    assert out != [0]
    if model == "fetch_and_data_cache":
        assert result.accounting is not None
        stats = result.accounting.cache_stats()
        assert stats is not None and stats.data_misses > 0 and stats.data_hits > 0


def _summary(prog: Program, core: str) -> dict[str, object]:
    result = run(prog, core, cache=flash_cache(core, data_reads=core == "cortex-m0plus"))
    assert result.accounting is not None
    stats = result.accounting.cache_stats()
    return {
        "cycles": result.cycles,
        "instructions": result.instructions,
        "blocks": sorted(result.accounting.block_counts().items()),
        "cache": None
        if stats is None
        else [stats.fetch_hits, stats.fetch_misses, stats.data_hits, stats.data_misses],
    }


@pytest.mark.parametrize("core", CORES)
def test_deterministic_across_runs_and_processes(
    kernel: Callable[[str], Program], core: str
) -> None:
    """Two runs in this process and one in a fresh interpreter give identical counters."""
    prog = kernel(core)
    first, second = _summary(prog, core), _summary(prog, core)
    assert first == second
    code = (
        "import json, sys, pickle\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "import test_accounting as t, cycles_support as s\n"
        f"prog = pickle.loads(bytes.fromhex({__import__('pickle').dumps(prog).hex()!r}))\n"
        f"print(json.dumps(t._summary(prog, {core!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=HERE
    )
    other = json.loads(out.stdout)
    assert other == json.loads(json.dumps(first))


def test_xip_cache_counts(asm: Callable[..., Program]) -> None:
    """A 4-instruction loop in one 8-byte line runs 10 times from cold flash.

    The entry block (MOVS at the line start, then the first iteration) touches line 0
    and line 1 (2 misses); 9 more iterations of the loop block [0x10000002, 0x1000000a)
    touch both lines again (18 hits). Cycles: 2 misses x 50 + the core costs
    (MOVS 1 + 10 x (ADDS, SUBS, NOP, BNE) 4 + 9 refills) = 100 + 50 = 150.
    """
    prog = asm("cortex-m0plus", "movs r1, #10\nloop:\nadds r0, #1\nsubs r1, #1\nnop\nbne loop\n")
    result = run(prog, "cortex-m0plus", cache=flash_cache("cortex-m0plus", data_reads=True))
    assert result.accounting is not None
    stats = result.accounting.cache_stats()
    assert stats is not None
    assert (stats.fetch_misses, stats.fetch_hits) == (2, 18)
    assert result.cycles == 150


def test_profile_exclusive(asm: Callable[..., Program]) -> None:
    """Two functions: ``f`` runs 3 times (BX LR 1, MOVS 1 each: 6 static cycles),
    the caller ``_start`` runs 3 BLs (2 each) and a MOVS (1) = 7; refills are not
    attributed to functions (the profile uses static costs)."""
    prog = asm(
        "cortex-m0plus",
        "movs r0, #0\nbl f\nbl f\nbl f\nb done\n.thumb_func\nf:\nmovs r1, #1\nbx lr\n",
    )
    result = run(prog, "cortex-m0plus")
    assert result.accounting is not None
    profile = function_profile(
        result.accounting.classification,
        result.accounting.count_arrays(),
        [
            ("_start", prog.symbols["_start"], prog.symbols["f"] - prog.symbols["_start"]),
            ("f", prog.symbols["f"], 4),
        ],
    )
    by_name = {p.name: (p.cycles, p.instructions) for p in profile}
    assert by_name["f"] == (6, 6)
    assert by_name["_start"] == (1 + 3 * 2 + 1, 5)


def test_dwt_cyccnt_read_from_firmware(asm: Callable[..., Program]) -> None:
    """Firmware reads CYCCNT around a region; the difference is the region's cost.

    Region between the two LDRs: MULS 1 + MULS 1 + NOP 1 + the first read LDR itself 2
    = 5 (each read returns the cycles before the reading instruction). The second read
    equals the cycles reported up to that instruction: setup LDR literal 2 + MOVS 1 +
    MOVS 1 + LDR 2 + 3 + ... checked against ``cycles_at``.
    """
    body = (
        "ldr r2, =0xE0001004\nmovs r1, #3\nmovs r0, #5\nldr r4, [r2]\nmuls r0, r1, r0\n"
        "muls r0, r1, r0\nnop\nldr r5, [r2]\nsubs r6, r5, r4\n"
    )
    prog = asm("cortex-m0plus", body)
    seen: list[int] = []

    def scs(uc: Uc, acc: BlockAccounting | None) -> None:
        assert acc is not None

        def read(uc_: Uc, offset: int, size: int, _ud: object) -> int:
            value = cyccnt(acc.cycles_at_access(uc_, 0xE0000000 + offset))
            seen.append(value)
            return value

        uc.mmio_map(0xE0000000, 0x100000, read, None, None, None)

    result = run(prog, "cortex-m0plus", mmio=scs)
    assert result.registers[6] == 5
    assert seen == [2 + 1 + 1, 2 + 1 + 1 + 2 + 3]


def test_systick_counts_down() -> None:
    """SysTick->VAL with RVR=99 enabled at cycle 1000 from VAL 0: reads RVR one cycle
    later, 0 after 100 cycles, reloads on the next cycle (period RVR+1 = 100)."""
    assert systick_value(1001, reload=99, enabled_at=1000) == 99
    assert systick_value(1100, reload=99, enabled_at=1000) == 0
    assert systick_value(1101, reload=99, enabled_at=1000) == 99
    assert systick_value(1010, reload=99, enabled_at=1000, value_at_enable=20) == 10
    assert cyccnt(2**32 + 5) == 5


def test_unicorn_mmio_pc_is_block_start(asm: Callable[..., Program]) -> None:
    """Pins the unicorn fact ``cycles_at_access`` works around: inside an MMIO callback
    the PC register is not the reading instruction: it is the start of the block, or,
    once an access in the block filled the (virtual) TLB, the instruction that did (unicorn
    restores that instruction's state, cpu_restore_state, for the fill hook), also for
    later accesses of the block."""
    prog = asm("cortex-m0plus", "ldr r2, =0xE0001004\nnop\nfirst: ldr r3, [r2]\nldr r3, [r2]\n")
    pcs: list[int] = []

    def scs(uc: Uc, _acc: object) -> None:
        def read(uc_: Uc, offset: int, size: int, _ud: object) -> int:
            pcs.append(int(uc_.reg_read(arm_const.UC_ARM_REG_PC)))
            return 0

        uc.mmio_map(0xE0000000, 0x100000, read, None, None, None)

    run(prog, "cortex-m0plus", mmio=scs)
    assert pcs == [prog.symbols["first"], prog.symbols["first"]]


def test_m0_model_rejects_udiv() -> None:
    """The Cortex-M0 model (used for the M0+) faults on UDIV, unlike MCLASS mode."""
    uc = new_engine("cortex-m0plus")
    uc.mem_map(FLASH, 0x1000, UC_PROT_ALL)
    uc.mem_map(RAM, 0x1000, UC_PROT_ALL)
    uc.mem_write(FLASH, bytes.fromhex("b1fbf2f0"))  # udiv r0, r1, r2
    with pytest.raises(UcError, match=r"INSN_INVALID"):
        uc.emu_start(FLASH | 1, FLASH + 4, timeout=1_000_000)


@pytest.mark.parametrize("data_reads", [True, False], ids=["io_hook", "no_io_hook"])
def test_rp2040_single_cycle_io(asm: Callable[..., Program], data_reads: bool) -> None:
    """Loads and stores to SIO (0xD0000000) cost 1 cycle instead of 2 with the IO hook.

    LDR literal 2 + LDR from SIO + STR to SIO: 2 + 1 + 1 = 4 with the hook (installed
    with the data-read hook), 2 + 2 + 2 = 6 without; code fits one cached line pair.
    """
    prog = asm("cortex-m0plus", "ldr r1, =0xD0000000\nldr r0, [r1]\nstr r0, [r1, #4]\n")
    cache = dataclasses.replace(
        flash_cache("cortex-m0plus", data_reads=True),
        miss_cycles=0,
        fast_io=(0xD0000000, 0xD0001000),
        fast_io_saving=1,
    )

    def sio(uc: Uc, _acc: object) -> None:
        uc.mmio_map(0xD0000000, 0x1000, lambda *a: 7, None, lambda *a: None, None)

    result = run(prog, "cortex-m0plus", cache=cache, data_reads=data_reads, mmio=sio)
    assert result.cycles == (4 if data_reads else 6)
    assert result.registers[0] == 7


class _SysTickPrototype:
    """What the engine's PPB does for SysTick, on top of the cycle model (prototype)."""

    def __init__(self, acc: BlockAccounting) -> None:
        self.acc = acc
        self.regs: dict[int, int] = {}
        self.enabled_at: int | None = None

    def read(self, uc: Uc, offset: int, size: int, _ud: object) -> int:
        address = 0xE0000000 + offset
        now = self.acc.cycles_at_access(uc, address)
        if address == SYST_CVR and self.enabled_at is not None:
            return systick_value(now, reload=self.regs.get(SYST_RVR, 0), enabled_at=self.enabled_at)
        return self.regs.get(address, 0)

    def write(self, uc: Uc, offset: int, size: int, value: int, _ud: object) -> None:
        address = 0xE0000000 + offset
        now = self.acc.cycles_at_access(uc, address, write=True)
        if address == SYST_CSR and value & 1:
            self.enabled_at = now
        self.regs[address] = value


def test_systick_read_from_firmware(asm: Callable[..., Program]) -> None:
    """Firmware starts SysTick (RVR=999, VAL cleared) and reads VAL a few instructions later.

    The counter is enabled at the cycles before the STR to CSR; the LDR of VAL sees
    the cycles before itself; with ``elapsed`` the static cost from the STR to the LDR
    (STR 2 + MOVS 1 + NOP 1 + NOP 1 = 5 on the M0+), VAL = 999 - (elapsed - 1) = 995.
    """
    body = (
        "ldr r2, =0xE000E010\nldr r1, =999\nstr r1, [r2, #4]\nmovs r1, #0\nstr r1, [r2, #8]\n"
        "movs r1, #5\nenable:\nstr r1, [r2]\nmovs r3, #1\nnop\nnop\nread:\nldr r0, [r2, #8]\n"
    )
    prog = asm("cortex-m0plus", body)

    def ppb(uc: Uc, acc: BlockAccounting | None) -> None:
        assert acc is not None
        systick = _SysTickPrototype(acc)
        uc.mmio_map(0xE0000000, 0x100000, systick.read, None, systick.write, None)

    result = run(prog, "cortex-m0plus", mmio=ppb)
    r = prog.classify("cortex-m0plus").ranges[0]
    elapsed, _ = r.block_cost(prog.symbols["enable"], prog.symbols["read"])
    assert elapsed == 5
    assert result.registers[0] == 999 - (elapsed - 1) == 995


IT_BLOCK_LOAD = """
    movs r7, #20
    movs r4, #5
    movs r6, #1
loop:
    cmp r7, #3
    itt ne
    ldrne r0, lit1
    cmpne r6, r0
    bne 1f
    adds r5, r5, #100
1:
    ldr r0, lit2
    cmp r6, r0
    beq 2f
    cmp r4, #3
    bcc 2f
    adds r5, r5, #1
2:
    subs r7, r7, #1
    bne loop
"""


@pytest.mark.parametrize("core", ["cortex-m33", "cortex-m7"])
def test_unicorn_read_hook_breaks_loads_in_it_blocks(
    asm: Callable[..., Program], core: str
) -> None:
    """Pins the unicorn 2.1.4 bug that rules out a UC_HOOK_MEM_READ on Thumb-2 cores.

    A read hook whose range covers a load inside an IT block (here LDRNE of a literal in
    flash) makes a later conditional branch decode as invalid (unicorn issue #2309:
    the hook restores the IT state in the middle of a translation block, see
    simcore_tlb_fill_hook in _native.c); without the hook the program runs (r5 = 120).
    If this test starts failing, unicorn fixed the bug.
    """
    prog = asm(core, IT_BLOCK_LOAD, "\n.align 2\nlit1: .word 7\nlit2: .word 9\n")
    assert run(prog, core, accounting=False).registers[5] == 120

    def read_hook(uc: Uc, _acc: object) -> None:
        uc.hook_add(UC_HOOK_MEM_READ, lambda *a: None, None, FLASH, FLASH + 0xFFFFF)

    with pytest.raises(UcError, match="INSN_INVALID"):
        run(prog, core, accounting=False, mmio=read_hook)


@pytest.mark.parametrize("core", CORES)
def test_flash_loads_in_it_blocks_are_charged(asm: Callable[..., Program], core: str) -> None:
    """Data reads from flash through the virtual TLB run loads inside IT blocks correctly.

    The loop runs 20 times; LDRNE lit1 executes in 19 of them (not when r7 = 3) and
    LDR lit2 in the 20: 39 loads from flash, all in the one 8-byte line of lit1/lit2
    (1 miss, 38 hits). Cycles = the same run with data reads off + one 50-cycle miss.
    On the M0+ (no IT) the body is the same without the IT instruction.
    """
    body = (
        IT_BLOCK_LOAD
        if core != "cortex-m0plus"
        else IT_BLOCK_LOAD.replace(
            "    itt ne\n    ldrne r0, lit1\n    cmpne r6, r0\n",
            "    beq 3f\n    ldr r0, lit1\n    cmp r6, r0\n3:\n",
        )
    )
    prog = asm(core, body, "\n.align 3\nlit1: .word 7\nlit2: .word 9\n")
    off = run(prog, core, cache=flash_cache(core, data_reads=False))
    on = run(prog, core, cache=flash_cache(core, data_reads=True))
    assert on.registers == off.registers and on.registers[5] == 120
    assert on.instructions == off.instructions
    assert on.accounting is not None
    stats = on.accounting.cache_stats()
    assert stats is not None and stats.data_reads_modeled
    assert (stats.data_misses, stats.data_hits) == (1, 38)
    assert on.cycles == off.cycles + 50


def test_a_board_file_of_your_own_brings_its_own_cache(tmp_path: Path) -> None:
    """A copy of rp2040.toml under another name, its cache 100 cycles a miss instead of 50:
    the same firmware runs with the same hits and misses, and each miss costs 50 more."""
    from simcore.boards import get_board
    from simcore.engine import run_firmware
    from simcore.example import build_example

    shipped = Path(__file__).resolve().parents[2] / "simcore" / "data" / "boards" / "rp2040.toml"
    text = shipped.read_text().replace('name = "rp2040"', 'name = "my_rp2040_board"')
    assert "miss_cycles = 50" in text
    mine = tmp_path / "my_rp2040_board.toml"
    mine.write_text(text.replace("miss_cycles = 50", "miss_cycles = 100"))
    board = get_board(str(mine))
    assert board.cache is not None and board.cache.miss_cycles == 100
    elf = build_example(get_board("rp2040"), tmp_path).elf
    base = run_firmware(elf, "rp2040")
    theirs = run_firmware(elf, board)
    cache = base.cycle_report["cache"]
    assert theirs.cycle_report["cache"]["fetch_misses"] == cache["fetch_misses"]
    misses = cache["fetch_misses"] + cache["data_misses"]
    assert misses > 0 and theirs.instructions == base.instructions
    assert theirs.cycles is not None and base.cycles is not None
    assert theirs.cycles - base.cycles == 50 * misses


@pytest.mark.parametrize("core", CORES)
def test_flash_load_keeps_the_flags(asm: Callable[..., Program], core: str) -> None:
    """The first load from a flash page (a TLB fill, which resets the IT state) between a
    compare and its branch leaves the flags alone: r5 counts the taken paths (2)."""
    body = """
    movs r5, #0
    movs r6, #1
    cmp r6, #1
    ldr r0, lit1
    bne 1f
    adds r5, r5, #1
1:
    cmp r6, #0
    ldr r1, lit2
    beq 2f
    adds r5, r5, #1
2:
"""
    prog = asm(core, body, "\n.align 3\nlit1: .word 7\nlit2: .word 9\n")
    result = run(prog, core, cache=flash_cache(core, data_reads=True))
    assert result.registers[5] == 2 and result.registers[0:2] == (7, 9)
    assert result.accounting is not None
    assert result.accounting.snapshot()["tlb_fills"] > 0


def _h7_caches_over_test_flash(*, ideal: bool = False) -> CacheConfig:
    """The stm32h743 board's I-cache and D-cache, placed over the test programs' flash."""
    base = cache_for(get_board("stm32h743"), ideal=ideal)
    assert base is not None and base.data_cache is not None
    return dataclasses.replace(base, start=FLASH, end=FLASH + 0x100000)


def test_h7_code_and_data_in_flash_through_l1_caches(asm: Callable[..., Program]) -> None:
    """Code and data in flash on the M7: I-cache misses for fetch, D-cache misses for loads.

    The code executed (0x10000000-0x10000018: 8 narrow, 2 wide instructions) lies in
    one 32-byte line: 1 I-cache miss. The literal pool follows ``done: b done``
    (0x10000018) at 0x1000001c: the literal of ``ldr r3, =...`` is in that same line
    0, read as data: a D-cache miss (the two caches are separate); the literal of
    ``ldr r0, =table`` at
    0x10000020 is in line 1: another miss. The loop loads table+0, +32, +64, +96 (4
    lines: 4 misses), the last load table+0 again (a hit). Memory cycles: (1 + 6)
    misses x 16 = 112, the difference from the same run with every miss free
    (--memory-model ideal).
    """
    body = """
    ldr r3, =0x12345678
    movw r2, #:lower16:table
    movt r2, #:upper16:table
    movs r1, #4
loop:
    ldr r0, [r2]
    adds r2, #32
    subs r1, #1
    bne loop
    ldr r0, =table
    ldr r0, [r0]
"""
    tail = "\n.ltorg\n.balign 32\ntable: .word 1\n" + "".join(
        f".space 28\n.word {n}\n" for n in (2, 3, 4)
    )
    prog = asm("cortex-m7", body, tail)
    modeled = run(prog, "cortex-m7", cache=_h7_caches_over_test_flash())
    ideal = run(prog, "cortex-m7", cache=_h7_caches_over_test_flash(ideal=True))
    assert modeled.registers[0] == 1 and modeled.registers[3] == 0x12345678
    assert modeled.accounting is not None
    stats = modeled.accounting.cache_stats()
    assert stats is not None
    assert stats.fetch_misses == 1
    assert prog.symbols["done"] == FLASH + 0x18
    assert (stats.data_misses, stats.data_hits) == (2 + 4, 1)
    assert stats.miss_cycles == 112
    assert modeled.cycles - ideal.cycles == 112


@pytest.mark.parametrize("core", CORES)
def test_branch_to_the_next_instruction_costs_a_refill(
    asm: Callable[..., Program], core: str
) -> None:
    """``b 1f; 1:`` is a taken branch: it costs what a taken branch costs (the table's B
    plus the refill), though execution falls through to the very next address. On the
    M7 a predicted taken branch has no refill and pairs like a NOP (measured)."""
    plain = run(asm(core, "movs r0, #1\nnop\nmovs r1, #2\n"), core)
    branch = run(asm(core, "movs r0, #1\nb 1f\n1:\nmovs r1, #2\n"), core)
    far = run(asm(core, "movs r0, #1\nb 1f\nnop\n1:\nmovs r1, #2\n"), core)
    assert branch.accounting is not None and far.accounting is not None
    assert far.accounting.snapshot()["taken_branches"] == 1
    assert branch.accounting.snapshot()["taken_branches"] == 0
    assert branch.cycles == far.cycles
    if load_table(core).refill_cycles:
        assert branch.cycles > plain.cycles
    else:
        assert branch.cycles == plain.cycles


def test_flash_data_bytes_counts_only_data(asm: Callable[..., Program]) -> None:
    """Literal pools count as data in flash; a program without any has none to leave out."""
    from simcore.cycles.model import flash_data_bytes
    from simcore.elf import load_elf

    with_pool = load_elf(asm("cortex-m0plus", "ldr r0, =0x12345678\n").elf)
    without = load_elf(asm("cortex-m0plus", "movs r0, #1\n").elf)
    assert flash_data_bytes(with_pool, FLASH, FLASH + 0x100000) >= 4
    assert flash_data_bytes(without, FLASH, FLASH + 0x100000) == 0


#: Sums a 1 KB table in flash (one TLB page, 128 cache lines: one word of each) three
#: times into r4 (3 x 128 = 384), reading each line with one load.
_TABLE_PASSES = """
    ldr r2, =table
    ldr r5, =1024
    movs r4, #0
    movs r3, #3
1:
    movs r1, #0
2:
    ldr r0, [r2, r1]
    adds r4, r4, r0
    adds r1, r1, #8
    cmp r1, r5
    bne 2b
    subs r3, r3, #1
    bne 1b
"""
_TABLE = "\n.ltorg\n.balign 1024\ntable:\n.rept 256\n.word 1\n.endr\n"


@pytest.mark.parametrize("core", CORES)
def test_resident_pages_keep_every_figure_but_the_data_hits(
    asm: Callable[..., Program], core: str
) -> None:
    """``data_hits=False``: once the first pass has brought all 128 lines of the table's
    page into the cache, passes 2 and 3 read it through plain memory. Cycles, misses and
    fetch counts are those of the run that sees every load; the data hits are not
    reported, and the loads the C model saw are fewer by the 256 of passes 2 and 3."""
    prog = asm(core, _TABLE_PASSES, _TABLE)
    cache = flash_cache(core, data_reads=True)
    exact = run(prog, core, cache=cache)
    fast = run(prog, core, cache=cache, data_hits=False)
    assert exact.registers[4] == fast.registers[4] == 384
    assert exact.accounting is not None and fast.accounting is not None
    assert (fast.cycles, fast.instructions) == (exact.cycles, exact.instructions)
    e, f = exact.accounting.cache_stats(), fast.accounting.cache_stats()
    assert e is not None and f is not None and f.data_hits is None
    assert (f.fetch_hits, f.fetch_misses, f.data_misses, f.miss_cycles) == (
        e.fetch_hits,
        e.fetch_misses,
        e.data_misses,
        e.miss_cycles,
    )
    assert e.data_misses >= 128 and e.data_hits is not None and e.data_hits >= 256
    snap = fast.accounting.snapshot()
    assert snap["fast_pages"] >= 1 and not fast.accounting.lru_unknown
    assert snap["data_hits"] == e.data_hits - 256


@pytest.mark.parametrize("data_reads", [True, False], ids=["data_reads", "fetch_only"])
def test_a_many_way_cache_looked_up_by_line_gives_the_scans_figures(
    asm: Callable[..., Program], data_reads: bool
) -> None:
    """Caches of more than 8 ways (the STM32F4 ART accelerator: 64 ways, fully associative)
    find a line through a per-line map instead of scanning every way: the same hits,
    misses, victims and cycles as the scan, here with the 1 KB table and the loop's code
    evicting each other on every pass."""
    core = "cortex-m4f"
    long_loop = "movs r3, #3\n4:\n.rept 600\nadds r0, r0, #1\n.endr\nsubs r3, r3, #1\nbne 4b\n"
    prog = asm(core, _TABLE_PASSES + long_loop, _TABLE)
    cache = dataclasses.replace(
        flash_cache(core, data_reads=data_reads), size_bytes=1024, ways=64, line_bytes=16
    )

    def scan(uc: Uc, acc: BlockAccounting) -> None:
        assert acc._native.set_way_map(False) is False

    def mapped(uc: Uc, acc: BlockAccounting) -> None:
        assert acc._native.set_way_map(True) is True

    a = run(prog, core, cache=cache, mmio=scan)
    b = run(prog, core, cache=cache, mmio=mapped)
    assert a.accounting is not None and b.accounting is not None
    assert (a.cycles, a.instructions) == (b.cycles, b.instructions)
    sa, sb = a.accounting.cache_stats(), b.accounting.cache_stats()
    assert sa == sb and sa is not None
    # Evictions happened: the 1,200-byte loop (75 lines) misses on every pass.
    assert sa.fetch_misses > 3 * 75


@pytest.mark.parametrize("core", CORES)
def test_lines_the_image_does_not_fill_do_not_keep_a_page_from_going_resident(
    asm: Callable[..., Program], core: str
) -> None:
    """A table filling only the first half of its page (the image's last page, say): with
    the loaded ranges given, the half the image does not fill stays out of the residency
    test, so passes 2 and 3 read through plain memory; the figures stay those of the run
    that sees every load. Without them the page never goes resident."""
    half = "\n.ltorg\n.balign 1024\ntable:\n.rept 128\n.word 1\n.endr\n"
    body = _TABLE_PASSES.replace("ldr r5, =1024", "ldr r5, =512")
    prog = asm(core, body, half)
    cache = flash_cache(core, data_reads=True)
    loaded = [(a, a + len(data)) for a, data in prog.image if FLASH <= a < FLASH + 0x100000]
    end = max(hi for _, hi in loaded)
    assert end == prog.symbols["table"] + 512  # the table ends the image, mid-page
    exact = run(prog, core, cache=cache)
    fast = run(prog, core, cache=cache, data_hits=False, loaded=loaded)
    whole = run(prog, core, cache=cache, data_hits=False)
    assert exact.accounting is not None and fast.accounting is not None
    assert whole.accounting is not None
    assert (fast.cycles, fast.instructions) == (exact.cycles, exact.instructions)
    e, f = exact.accounting.cache_stats(), fast.accounting.cache_stats()
    assert e is not None and f is not None
    assert (f.fetch_misses, f.data_misses, f.miss_cycles) == (
        e.fetch_misses,
        e.data_misses,
        e.miss_cycles,
    )
    fast_snap, whole_snap = fast.accounting.snapshot(), whole.accounting.snapshot()
    # Passes 2 and 3 (2 x 64 loads) skipped the model only where the page went resident.
    assert fast_snap["data_hits"] == e.data_hits - 128
    assert whole_snap["data_hits"] == e.data_hits
    assert not fast.accounting.lru_unknown


@pytest.mark.parametrize("core", CORES)
def test_an_eviction_beside_a_resident_page_says_the_order_is_lost(
    asm: Callable[..., Program], core: str
) -> None:
    """After the table's page went to plain memory, loads 8 KB and 16 KB past its start
    fall in the set of its first line (2 ways of 8 KB each): the first fills the free
    way, the second must evict, and which line is least recent is no longer known (the
    table's reads were not seen). The run says so; with data hits counted it does not."""
    far = """
    ldr r6, =table + 8192
    ldr r0, [r6]
    ldr r6, =table + 16384
    ldr r0, [r6]
"""
    tail = "\n    movs r3, #50\n3:\n    subs r3, r3, #1\n    bne 3b\n"
    prog = asm(core, _TABLE_PASSES + far + tail, _TABLE)
    cache = flash_cache(core, data_reads=True)
    fast = run(prog, core, cache=cache, data_hits=False)
    exact = run(prog, core, cache=cache)
    assert fast.accounting is not None and exact.accounting is not None
    assert fast.accounting.lru_unknown and not exact.accounting.lru_unknown
    # It stopped at once: the loop after the evicting load did not run.
    assert fast.accounting.stop_reason is StopReason.ORDER_LOST
    assert exact.accounting.stop_reason is StopReason.NONE
    assert exact.instructions - fast.instructions >= 2 * 49  # the loop: subs, bne
    near = run(asm(core, _TABLE_PASSES + far.split("ldr r6, =table + 16384")[0], _TABLE),
               core, cache=cache, data_hits=False)  # fmt: skip
    assert near.accounting is not None and not near.accounting.lru_unknown


def test_run_firmware_gives_exact_figures_when_resident_pages_lose_the_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A real firmware on the RP2350 whose resident table page loses the LRU order: the
    first run (``data_hits=False``) stops there and the second, with every load seen,
    gives exactly the figures of a run with the hits counted from the start."""
    from sim_support import HAVE_TOOLCHAIN, build_asm

    from simcore import engine

    if not HAVE_TOOLCHAIN:
        pytest.skip("arm-none-eabi-gcc missing")
    far = "ldr r6, =table + 8192\nldr r0, [r6]\nldr r6, =table + 16384\nldr r0, [r6]\n"
    loop = "movs r3, #50\n3:\nsubs r3, r3, #1\nbne 3b\nmovs r0, #0\n"
    hello = "movs r0, #4\nldr r1, =hello\nbkpt 0xab\n"  # semihosting SYS_WRITE0
    elf = build_asm(
        tmp_path,
        "rp2350",
        hello + _TABLE_PASSES + far + hello + loop,
        extra=_TABLE + 'hello:\n.asciz "hello\\n"\n',
    )
    exact = engine.run_firmware(elf, "rp2350")
    assert exact.stdout == "hello\nhello\n"
    outcomes: list[tuple[bool, bool]] = []
    real_run = engine.Machine.run

    def spy(self: engine.Machine, options: engine.RunOptions | None = None) -> object:
        assert options is not None
        try:
            result = real_run(self, options)
        except engine._CacheOrderLost:
            outcomes.append((options.data_hits, True))
            raise
        outcomes.append((options.data_hits, False))
        return result

    monkeypatch.setattr(engine.Machine, "run", spy)
    echoed: list[tuple[int, str]] = []
    again = engine.run_firmware(
        elf, "rp2350", data_hits=False, echo=lambda fd, text: echoed.append((fd, text))
    )
    assert outcomes == [(False, True), (True, False)]
    # The first run printed one line before it stopped; the second printed both, and
    # the console saw each once.
    assert "".join(text for _, text in echoed) == "hello\nhello\n"
    assert again.stdout == exact.stdout
    assert (again.cycles, again.instructions, again.exit_code) == (
        exact.cycles,
        exact.instructions,
        exact.exit_code,
    )
    assert again.cycle_report["cache"] == exact.cycle_report["cache"]


def test_run_firmware_runs_again_when_resident_pages_lose_the_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A run with ``data_hits=False`` whose cache order was lost is run again with the hits
    counted: the figures are those of an exact run."""
    from simcore import engine
    from simcore.example import build_example

    elf = build_example(get_board("rp2350"), tmp_path).elf
    exact = engine.run_firmware(elf, "rp2350")
    runs: list[bool] = []
    real_run = engine.Machine.run

    def spy(self: engine.Machine, options: engine.RunOptions | None = None) -> object:
        assert options is not None
        runs.append(options.data_hits)
        result = real_run(self, options)
        if not options.data_hits:  # as if an eviction had lost the order
            raise engine._CacheOrderLost
        return result

    monkeypatch.setattr(engine.Machine, "run", spy)
    again = engine.run_firmware(elf, "rp2350", data_hits=False)
    assert runs == [False, True]
    assert (again.cycles, again.sample_cycles, again.outputs) == (
        exact.cycles,
        exact.sample_cycles,
        exact.outputs,
    )
    assert again.cycle_report["cache"] == exact.cycle_report["cache"]


def _every_figure(result: Run) -> dict[str, object]:
    """What a run's accounting reports, from counters to per-halfword arrays."""
    acc = result.accounting
    assert acc is not None
    snap = acc.snapshot()
    for internal in ("block_records", "line_registrations"):
        snap.pop(internal)
    return {
        "snapshot": snap,
        "counts": [(base, c.tolist(), e.tolist()) for base, c, e in acc.count_arrays()],
        "extra": [x.tolist() for x in acc.extra_arrays()],
        "registers": result.registers,
    }


#: (size_bytes, ways, line_bytes): caches far smaller than the kernel's code and weights,
#: so lines evict each other (direct-mapped, 2-way as the RP2040's, 4-way), and the
#: RP2040's own 16 KB geometry (None), which holds everything after the first misses.
_GEOMETRIES = {"direct": (256, 1, 8), "2way": (256, 2, 8), "4way": (128, 4, 16), "rp2040": None}


@pytest.mark.parametrize("geometry", list(_GEOMETRIES))
@pytest.mark.parametrize("core", CORES)
def test_block_records_and_lazy_fetch_stamps_give_the_plain_paths_figures(
    kernel: Callable[[str], Program], core: str, geometry: str
) -> None:
    """The block hook's records (one lookup per block, counts folded later) and lazy fetch
    stamps (a block whose lines are all still cached hits without stamping each line)
    give every figure of the plain path: cycles, instructions, taken branches, cache hits
    and misses, per-halfword block counts and extra cycles. On the small caches lines are
    evicted all the time, so victims chosen from lazy stamps are exercised."""
    prog = kernel(core)
    cache = flash_cache(core, data_reads=True)
    if _GEOMETRIES[geometry] is not None:
        size, ways, line = _GEOMETRIES[geometry]  # type: ignore[misc]
        cache = dataclasses.replace(cache, size_bytes=size, ways=ways, line_bytes=line)

    def plain(uc: Uc, acc: BlockAccounting) -> None:
        acc._native.set_block_records(False, False)

    reference = run(prog, core, cache=cache, mmio=plain)
    fast = run(prog, core, cache=cache)
    assert _every_figure(fast) == _every_figure(reference)
    assert fast.accounting is not None and reference.accounting is not None
    ref_snap, fast_snap = reference.accounting.snapshot(), fast.accounting.snapshot()
    assert ref_snap["block_records"] == 0 and ref_snap["line_registrations"] == 0
    assert fast_snap["block_records"] > 10 and fast_snap["line_registrations"] > 10
    if geometry != "rp2040":  # misses well beyond the cold ones: lines were evicted
        roomy = dataclasses.replace(cache, size_bytes=64 * 1024)
        big = run(prog, core, cache=roomy).accounting
        assert big is not None
        misses = fast_snap["fetch_misses"] + fast_snap["data_misses"]
        assert misses > 2 * (big.snapshot()["fetch_misses"] + big.snapshot()["data_misses"])


@pytest.mark.parametrize("core", CORES)
def test_block_records_keep_the_figures_with_resident_pages(
    asm: Callable[..., Program], core: str
) -> None:
    """With resident pages (data hits uncounted) the records and lazy stamps give the
    plain path's figures too, including pages going resident."""
    prog = asm(core, _TABLE_PASSES, _TABLE)
    cache = flash_cache(core, data_reads=True)

    def plain(uc: Uc, acc: BlockAccounting) -> None:
        acc._native.set_block_records(False, False)

    reference = run(prog, core, cache=cache, data_hits=False, mmio=plain)
    fast = run(prog, core, cache=cache, data_hits=False)
    assert _every_figure(fast) == _every_figure(reference)
    assert fast.accounting is not None and fast.accounting.snapshot()["fast_pages"] >= 1


@pytest.mark.parametrize("core", CORES)
def test_flash_loads_past_the_loaded_image_read_the_flash(
    asm: Callable[..., Program], core: str
) -> None:
    """The engine keeps a copy of the flash only up to the end of the loaded image; a load
    past it (here from a word the host wrote there) still reads what the flash holds."""
    short_table = "\n.ltorg\n.balign 1024\ntable:\n.rept 4\n.word 1\n.endr\n"
    prog = asm(core, "ldr r2, =table\nldr r0, [r2, #0]\nldr r1, [r2, #64]\n", short_table)
    loaded = [(a, a + len(data)) for a, data in prog.image if FLASH <= a < FLASH + 0x100000]
    past = max(hi for _, hi in loaded)
    assert prog.symbols["table"] + 64 >= past  # the second load is past the image

    def poke(uc: Uc, acc: BlockAccounting) -> None:
        uc.mem_write(prog.symbols["table"] + 64, (0x12345678).to_bytes(4, "little"))

    result = run(prog, core, cache=flash_cache(core, data_reads=True), loaded=loaded, mmio=poke)
    assert result.registers[0] == 1 and result.registers[1] == 0x12345678


def test_the_hook_stops_a_spinning_program_at_the_wall_clock_timeout(
    asm: Callable[..., Program],
) -> None:
    """``set_timeout`` stops the emulator from the block hook once the clock passed (the
    engine's timeouts use it instead of unicorn's timer thread); unicorn's own timeout
    here is only a backstop, which would leave the stop reason NONE."""
    import time

    prog = asm("cortex-m33", "spin:\nb spin\n")
    uc = new_engine("cortex-m33")
    uc.mem_map(FLASH, 0x100000, UC_PROT_ALL)
    uc.mem_map(RAM, 0x10000, UC_PROT_ALL)
    for addr, data in prog.image:
        uc.mem_write(addr, data)
    acc = BlockAccounting(prog.classify("cortex-m33"))
    acc.install(uc)
    acc.set_timeout(time.monotonic_ns() + 50_000_000)
    uc.emu_start(prog.symbols["_start"] | 1, prog.symbols["done"], timeout=10_000_000)
    assert acc.stop_reason is StopReason.TIMEOUT
    assert acc.instructions > 1000
    acc.set_timeout(None)
    assert acc.stop_reason is StopReason.NONE
