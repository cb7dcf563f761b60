"""Generated linker scripts: placement options move code, data, heap and stack.

Each test builds a small C program (no section attributes: an unmodified
program) with :func:`simcore.toolchain.build_elf` and runs it, so the placement
is checked where it matters: the linker accepts it, the program computes the
right answer, symbols sit in the region asked for, and the memory report and
the stack-overflow check follow them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from sim_support import needs_toolchain

from simcore.boards import get_board, parse_board
from simcore.cli import main
from simcore.elf import load_elf
from simcore.engine import run_firmware
from simcore.errors import StackOverflow, ToolchainError, UsageError
from simcore.linker import LinkOptions, resolve, script_text
from simcore.results import RunResult, StopReason
from simcore.toolchain import INCLUDE_DIR, LD_DIR, RUNTIME_DIR, build_elf, target_flags

pytestmark = needs_toolchain

SHIPPED_BOARDS = Path(__file__).resolve().parents[2] / "simcore" / "data" / "boards"
#: Words of the constant table: 224 KB, far more than the H7's 64 KB ITCM.
TABLE_WORDS = 56 * 1024
#: A static buffer larger than the H7's 128 KB DTCM.
BIG_BUFFER_BYTES = 160 * 1024
#: Recursion depth and frame: about 10.5 KB of stack, more than 8 KB, less than 16 KB.
DEPTH, FRAME_BYTES = 20, 512


def _word(i: int) -> int:
    return (i * 2654435761 + 12345) & 0xFFFFFFFF


@pytest.fixture(scope="module")
def big_table_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A program that sums a 224 KB const table and exits 0 when the sum is right."""
    expected = sum(_word(i) for i in range(TABLE_WORDS)) & 0xFFFFFFFF
    rows = ",\n".join(
        ", ".join(f"0x{_word(i):08x}u" for i in range(start, min(start + 8, TABLE_WORDS)))
        for start in range(0, TABLE_WORDS, 8)
    )
    src = tmp_path_factory.mktemp("bigtable") / "big_table.c"
    src.write_text(
        "#include <stdint.h>\n"
        f"const uint32_t table[{TABLE_WORDS}] = {{\n{rows}\n}};\n"
        "int main(void)\n{\n"
        "    uint32_t sum = 0;\n"
        f"    for (uint32_t i = 0; i < {TABLE_WORDS}u; ++i) sum += table[i];\n"
        f"    return sum == 0x{expected:08x}u ? 0 : 1;\n"
        "}\n"
    )
    return src


BIG_BUFFER_C = f"""
#include <stdint.h>
uint8_t big[{BIG_BUFFER_BYTES}];
int main(void)
{{
    for (uint32_t i = 0; i < sizeof big; ++i) big[i] = (uint8_t)(i * 7u);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < sizeof big; ++i) sum += big[i];
    return sum == {sum((i * 7) & 0xFF for i in range(BIG_BUFFER_BYTES))}u ? 0 : 1;
}}
"""

RECURSION_C = f"""
#include <stdint.h>
/* Each call keeps a {FRAME_BYTES}-byte frame live across the next call. */
__attribute__((noinline)) static uint32_t deep(uint32_t n)
{{
    volatile uint8_t frame[{FRAME_BYTES}];
    frame[0] = (uint8_t)n;
    frame[{FRAME_BYTES - 1}] = (uint8_t)(n >> 1);
    if (n == 0) return 0;
    return deep(n - 1) + frame[0] + frame[{FRAME_BYTES - 1}];
}}
int main(void)
{{
    return deep({DEPTH}) == {sum(k + k // 2 for k in range(1, DEPTH + 1))}u ? 0 : 1;
}}
"""


def _source(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _symbol(elf: Path, name: str) -> int:
    symbol = load_elf(elf).symbol(name)
    assert symbol is not None, name
    return symbol.address


def _region_of(board: str, address: int) -> str:
    region = get_board(board).region_at(address)
    assert region is not None
    return region.name


def _usage(result: RunResult, region: str) -> dict[str, int | None]:
    usage = next(r for r in result.memory.regions if r.name == region)
    return {
        "program": usage.program_bytes,
        "reserved": usage.reserved_bytes,
        "stack_peak": usage.stack_peak_bytes,
    }


def test_program_larger_than_the_itcm_runs_from_flash(
    big_table_source: Path, tmp_path: Path
) -> None:
    board = get_board("stm32h743")
    with pytest.raises(ToolchainError) as refused:
        build_elf([big_table_source], board, tmp_path / "itcm.elf")
    message = str(refused.value)
    assert re.search(r"itcm overflowed by \d+ bytes \(code and constants; 65536 bytes\)", message)
    assert "build with --code-in flash" in message

    built = build_elf(
        [big_table_source], board, tmp_path / "flash.elf", link=LinkOptions(code_in="flash")
    )
    assert _region_of("stm32h743", _symbol(built.elf, "table")) == "flash"
    assert _region_of("stm32h743", _symbol(built.elf, "main")) == "flash"
    result = run_firmware(built.elf, board)
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 0)
    # Nothing was copied into the ITCM; the table counts in flash.
    assert _usage(result, "itcm")["program"] == 0
    assert result.memory.flash.used_bytes > TABLE_WORDS * 4
    # The I-cache model charged the code running from flash.
    assert result.cycle_report["cache"]


def test_stack_and_heap_sizes_move_the_map(tmp_path: Path) -> None:
    src = _source(tmp_path, "recurse.c", RECURSION_C)
    board = get_board("rp2040")
    default = build_elf([src], board, tmp_path / "default.elf").elf
    bigger = build_elf(
        [src], board, tmp_path / "big.elf", link=LinkOptions(stack_bytes=16384, heap_bytes=0)
    ).elf
    sym = {e: {n: _symbol(e, n) for n in ("__heap_start", "__heap_end", "__stack_limit",
                                           "__stack_top")} for e in (default, bigger)}  # fmt: skip
    assert sym[default]["__heap_end"] - sym[default]["__heap_start"] == 16384
    assert sym[default]["__stack_top"] - sym[default]["__stack_limit"] == 8192
    assert sym[bigger]["__heap_end"] == sym[bigger]["__heap_start"]
    assert sym[bigger]["__stack_top"] - sym[bigger]["__stack_limit"] == 16384
    assert sym[bigger]["__stack_top"] != sym[default]["__stack_top"]
    # The overflow point moves with them: 8 KB overflows, 16 KB holds the recursion.
    with pytest.raises(StackOverflow, match=r"stack overflow in deep.*8192 bytes"):
        run_firmware(default, board)
    result = run_firmware(bigger, board)
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 0)
    assert 8192 < result.memory.stack_peak.used_bytes <= 16384
    assert result.memory.stack_peak.capacity_bytes == 16384
    assert result.memory.heap_peak.capacity_bytes == 0


@pytest.mark.parametrize("stack_in", ["dtcm", "axi_sram"])
def test_data_in_axi_sram_on_the_h7(tmp_path: Path, stack_in: str) -> None:
    src = _source(tmp_path, "big_buffer.c", BIG_BUFFER_C)
    board = get_board("stm32h743")
    with pytest.raises(ToolchainError, match=r"dtcm overflowed by \d+ bytes.*--data-in axi_sram"):
        build_elf([src], board, tmp_path / "dtcm.elf")
    elf = build_elf(
        [src],
        board,
        tmp_path / f"axi-{stack_in}.elf",
        link=LinkOptions(data_in="axi_sram", stack_in=stack_in),
    ).elf
    assert _region_of("stm32h743", _symbol(elf, "big")) == "axi_sram"
    assert _region_of("stm32h743", _symbol(elf, "__stack_top") - 4) == stack_in
    result = run_firmware(elf, board)
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 0)
    axi = _usage(result, "axi_sram")
    assert axi["program"] is not None and axi["program"] >= BIG_BUFFER_BYTES
    # Stack and heap are accounted where they were placed.
    assert result.memory.stack_peak.region == stack_in
    assert _usage(result, stack_in)["stack_peak"] == result.memory.stack_peak.used_bytes
    assert _usage(result, stack_in)["reserved"] == 8192 + 16384 + 1024


def _user_board(tmp_path: Path, *, keep_link: bool) -> Path:
    """A copy of the shipped rp2040 file under another name (with or without [link])."""
    text = (
        (SHIPPED_BOARDS / "rp2040.toml").read_text().replace('name = "rp2040"', 'name = "mypico"')
    )
    if not keep_link:
        text = text[: text.index("[link]")]
    path = tmp_path / "mypico.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("keep_link", [True, False], ids=["with-link", "without-link"])
def test_user_board_gets_a_generated_script(tmp_path: Path, keep_link: bool) -> None:
    board = get_board(_user_board(tmp_path, keep_link=keep_link))
    assert board.name == "mypico"
    src = _source(tmp_path, "recurse.c", RECURSION_C)
    built = build_elf([src], board, tmp_path / "user.elf", link=LinkOptions(stack_bytes=12288))
    assert built.script == tmp_path / "user.ld" and built.script.is_file()
    assert 'REGION_ALIAS("DATA", sram);' in built.script.read_text()
    result = run_firmware(built.elf, board)
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 0)
    assert result.memory.stack_peak.region == "sram"


def test_board_without_link_table_defaults_to_flash_and_the_largest_ram() -> None:
    text = (SHIPPED_BOARDS / "stm32h743.toml").read_text()
    table = tomllib.loads(
        text[: text.index("[link]")].replace('name = "stm32h743"', 'name = "myh7"')
    )
    layout = resolve(parse_board(table, "myh7.toml"))
    assert layout.options() == {
        "code_in": "flash",
        "data_in": "axi_sram",
        "stack_in": "axi_sram",
        "stack_bytes": 8192,
        "heap_bytes": 16384,
    }
    script = script_text(layout)
    assert 'REGION_ALIAS("CODE", flash);' in script and "STACK_SIZE = 8192;" in script


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            LinkOptions(code_in="sram4x"),
            "--code-in sram4x: board stm32h743 has no load or RAM region named sram4x",
        ),
        (
            LinkOptions(data_in="flash"),
            "--data-in flash: board stm32h743 has no RAM region named flash",
        ),
        (LinkOptions(stack_bytes=1000 * 1000), "do not fit region dtcm"),
        (LinkOptions(heap_bytes=12), "--heap-size 12: a size in bytes, a multiple of 8"),
    ],
    ids=["unknown-region", "data-in-flash", "stack-too-big", "heap-unaligned"],
)
def test_bad_options_name_the_switch(options: LinkOptions, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        resolve(get_board("stm32h743"), options)


def test_build_cli_switches_reach_the_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fw"
    argv = ["build", "-m", "iris3", "-f", "int8", "-b", "stm32h743", "--out", str(out)]
    assert main([*argv, "--stack-size", "16K", "--heap-size", "0", "--code-in", "flash",
                 "--data-in", "axi_sram"]) == 0  # fmt: skip
    manifest = json.loads((out / "iris3-int8.json").read_text())
    assert manifest["link"] == {
        "script": "iris3-int8.ld",
        "generated": True,
        "code_in": "flash",
        "data_in": "axi_sram",
        "stack_in": "dtcm",
        "stack_bytes": 16384,
        "heap_bytes": 0,
    }
    assert "-T<out>/iris3-int8.ld" in manifest["compiler"]["flags"]
    assert "STACK_SIZE = 16384;" in (out / "iris3-int8.ld").read_text()
    elf = out / "iris3-int8.elf"
    assert _region_of("stm32h743", _symbol(elf, "nn_arena")) == "axi_sram"
    capsys.readouterr()
    assert main(["validate", "--firmware", str(elf), "-q"]) == 0
    assert "iris3/int8/stm32h743  PASS" in capsys.readouterr().out

    assert main([*argv, "--stack-size", "12Q"]) == 2
    assert "--stack-size '12Q' is not a size" in capsys.readouterr().err
    assert main([*argv, "--ld", str(tmp_path / "x.ld"), "--heap-size", "1K"]) == 2
    assert "cannot be combined" in capsys.readouterr().err


def test_validate_rebuilds_a_firmware_placed_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build with other placement writes the default file name; validate does not trust it."""
    monkeypatch.setenv("SIMCORE_OUT_DIR", str(tmp_path))
    manifest = tmp_path / "rp2040" / "iris3-int8.json"
    assert main(["build", "-m", "iris3", "-f", "int8", "-b", "rp2040", "--stack-size", "16K"]) == 0
    assert json.loads(manifest.read_text())["link"]["stack_bytes"] == 16384
    argv = ["validate", "-m", "iris3", "-f", "int8", "-b", "rp2040", "--limit", "3", "-q"]
    assert main([*argv, "--baseline", str(tmp_path / "baseline.json")]) == 0
    assert json.loads(manifest.read_text())["link"]["stack_bytes"] == 8192


ARENA_C = f"""
#include <stdint.h>
uint8_t tensor_arena[{BIG_BUFFER_BYTES}];   /* too big for the DTCM */
uint32_t counter;                         /* stays in .bss in the DTCM */
uint32_t initialized[4] = {{1, 2, 3, 4}};   /* .data: cannot be placed */
int main(void)
{{
    for (uint32_t i = 0; i < sizeof tensor_arena; ++i) tensor_arena[i] = (uint8_t)i;
    for (uint32_t i = 0; i < sizeof tensor_arena; i += 4096) counter += tensor_arena[i + 1];
    return counter == {BIG_BUFFER_BYTES // 4096} && initialized[3] == 4 ? 0 : 1;
}}
"""
ARENA_CXX = ARENA_C.replace(
    f"uint8_t tensor_arena[{BIG_BUFFER_BYTES}];",
    f"namespace {{ alignas(16) uint8_t tensor_arena[{BIG_BUFFER_BYTES}]; }}",
)


@pytest.mark.parametrize("language", ["c", "cpp"])
def test_place_one_buffer_in_axi_sram(tmp_path: Path, language: str) -> None:
    """The arena goes to AXI SRAM by name; the rest of .data/.bss stays in the DTCM."""
    if language == "cpp" and shutil.which("arm-none-eabi-g++") is None:
        pytest.skip("arm-none-eabi-g++ missing")
    src = _source(tmp_path, f"arena.{language}", ARENA_C if language == "c" else ARENA_CXX)
    board = get_board("stm32h743")
    built = build_elf(
        [src],
        board,
        tmp_path / "arena.elf",
        link=LinkOptions(place=(("tensor_arena", "axi_sram"),)),
    )
    image = load_elf(built.elf)
    arena = next(
        s for n, s in image.symbols.items() if n.endswith("tensor_arena") or "12tensor_arena" in n
    )
    assert _region_of("stm32h743", arena.address) == "axi_sram"
    assert _region_of("stm32h743", _symbol(built.elf, "counter")) == "dtcm"
    assert _region_of("stm32h743", _symbol(built.elf, "initialized")) == "dtcm"
    result = run_firmware(built.elf, board)
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 0)
    assert _usage(result, "axi_sram")["program"] == BIG_BUFFER_BYTES


def test_place_refuses_what_it_cannot_move(tmp_path: Path) -> None:
    src = _source(tmp_path, "arena.c", ARENA_C)
    board = get_board("stm32h743")
    with pytest.raises(UsageError, match="--place initialized=axi_sram: no zero-initialized"):
        build_elf(
            [src],
            board,
            tmp_path / "bad.elf",
            link=LinkOptions(place=(("tensor_arena", "axi_sram"), ("initialized", "axi_sram"))),
        )
    assert not (tmp_path / "bad.elf").exists()
    with pytest.raises(
        UsageError,
        match="--place tensor_arena=flash: board stm32h743 has no RAM region named flash",
    ):
        resolve(board, LinkOptions(place=(("tensor_arena", "flash"),)))
    with pytest.raises(UsageError, match="C variable name"):
        resolve(board, LinkOptions(place=(("a b", "dtcm"),)))
    # Left in .bss, the arena overflows the DTCM, and the message offers the fix.
    with pytest.raises(ToolchainError, match="dtcm overflowed"):
        build_elf([src], board, tmp_path / "dtcm.elf")


def test_place_the_generated_arena(tmp_path: Path) -> None:
    out = tmp_path / "fw"
    argv = ["build", "-m", "iris3", "-f", "f32", "-b", "stm32h743", "--out", str(out)]
    assert main([*argv, "--place", "nn_arena=axi_sram"]) == 0
    manifest = json.loads((out / "iris3-f32.json").read_text())
    assert manifest["link"]["place"] == {"nn_arena": "axi_sram"}
    elf = out / "iris3-f32.elf"
    assert _region_of("stm32h743", _symbol(elf, "nn_arena")) == "axi_sram"
    assert _region_of("stm32h743", _symbol(elf, "simcore_io")) == "dtcm"
    assert main(["validate", "--firmware", str(elf), "-q"]) == 0
    assert main([*argv, "--place", "nn_arena"]) == 2


@pytest.mark.parametrize("heap_bytes", [0, 4096], ids=["stack-at-region-start", "after-heap"])
def test_stack_overflow_is_caught_where_the_stack_was_placed(
    tmp_path: Path, heap_bytes: int
) -> None:
    """The guard and the overflow check follow a stack moved to AXI SRAM on the H7."""
    src = _source(tmp_path, "recurse.c", RECURSION_C)
    board = get_board("stm32h743")
    options = LinkOptions(stack_in="axi_sram", heap_bytes=heap_bytes)
    elf = build_elf([src], board, tmp_path / "small.elf", link=options).elf
    limit = _symbol(elf, "__stack_limit")
    assert _region_of("stm32h743", limit) == "axi_sram"
    with pytest.raises(StackOverflow, match=rf"stack overflow in deep.*0x{limit:08x}"):
        run_firmware(elf, board)
    bigger = LinkOptions(stack_in="axi_sram", heap_bytes=heap_bytes, stack_bytes=16384)
    result = run_firmware(build_elf([src], board, tmp_path / "big.elf", link=bigger).elf, board)
    assert (result.exit_code, result.memory.stack_peak.region) == (0, "axi_sram")


def test_linker_script_command_for_your_own_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A program built by its own gcc command links with the script the CLI writes."""
    script = tmp_path / "h7.ld"
    argv = ["linker-script", "-b", "stm32h743", "--code-in", "flash", "-o", str(script)]
    assert main([*argv, "--stack-size", "16K"]) == 0
    assert "STACK_SIZE = 16384;" in script.read_text()
    board = get_board("stm32h743")
    elf = tmp_path / "own.elf"
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            *target_flags(board),
            "-mthumb",
            "-O2",
            f"-I{INCLUDE_DIR}",
            str(_source(tmp_path, "recurse.c", RECURSION_C)),
            *(str(RUNTIME_DIR / f) for f in ("startup.c", "syscalls.c", "simcore_abi.c")),
            f"-L{LD_DIR}",
            f"-T{script}",
            "--specs=nano.specs",
            "-nostartfiles",
            "-Wl,--gc-sections",
            "-o",
            str(elf),
        ],
        check=True,
        capture_output=True,
    )
    assert _region_of("stm32h743", _symbol(elf, "main")) == "flash"
    result = run_firmware(elf, board)
    assert (result.stop_reason, result.exit_code) == (StopReason.DONE, 0)
    capsys.readouterr()
    assert main(["linker-script", "-b", "rp2040", "--heap-size", "0"]) == 0
    assert "HEAP_SIZE = 0;" in capsys.readouterr().out
    assert main(["linker-script", "-b", "rp2040", "--data-in", "itcm"]) == 2
    assert "--data-in itcm: board rp2040 has no RAM region named itcm" in capsys.readouterr().err
