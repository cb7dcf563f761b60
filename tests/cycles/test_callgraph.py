"""The detailed profile: calls, inclusive cycles, lines, loops, one sample, speedscope.

The assembly test's arithmetic: ``_start`` calls ``f`` 3 times in a loop; ``f``
calls ``g`` twice. So f has 3 calls, g 6; f's inclusive cycles are its own plus
all of g's (g has no other caller), and _start's loop runs its back branch 3 times.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sim_support import build_asm, needs_toolchain

from simcore.cli import main
from simcore.cycles.callgraph import _back_branch, _bl_target, chrome_trace, speedscope
from simcore.engine import run_firmware
from simcore.firmware.build import build_model_firmware
from simcore.golden.store import load_golden

CALLS = """
    movs r4, #3
1:  bl f
    subs r4, #1
    bne 1b
"""
FUNCTIONS = """
    .type f, %function
    .thumb_func
f:  push {lr}
    bl g
    bl g
    pop {pc}
    .size f, .-f
    .type g, %function
    .thumb_func
g:  movs r0, #1
    movs r1, #2
    bx lr
    .size g, .-g
"""

#: The parts of speedscope's published schema (https://www.speedscope.app/file-format-schema.json,
#: draft-06) that a sampled profile must meet, written out for this test.
SPEEDSCOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["$schema", "profiles", "shared"],
    "properties": {
        "$schema": {"enum": ["https://www.speedscope.app/file-format-schema.json"]},
        "shared": {
            "type": "object",
            "required": ["frames"],
            "properties": {
                "frames": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "file": {"type": "string"},
                                       "line": {"type": "number"}, "col": {"type": "number"}},
                    },
                }
            },
        },
        "profiles": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "name", "unit", "startValue", "endValue", "samples",
                             "weights"],
                "properties": {
                    "type": {"enum": ["sampled"]},
                    "name": {"type": "string"},
                    "unit": {"enum": ["bytes", "microseconds", "milliseconds", "nanoseconds",
                                      "none", "seconds"]},
                    "startValue": {"type": "number"},
                    "endValue": {"type": "number"},
                    "samples": {"type": "array",
                                "items": {"type": "array", "items": {"type": "number"}}},
                    "weights": {"type": "array", "items": {"type": "number"}},
                },
            },
        },
        "name": {"type": "string"},
        "activeProfileIndex": {"type": "number"},
        "exporter": {"type": "string"},
    },
}  # fmt: skip


def test_branch_decoding() -> None:
    # bl from 0x1000 to 0x2000: offset 0xffc; and back to 0x0800.
    assert _bl_target(0x1000, 0xF000, 0xFFFE) == 0x2000
    assert _bl_target(0x1000, 0xF7FF, 0xFBFE) == 0x0800
    assert _bl_target(0x1000, 0x4770, 0) is None
    assert _back_branch(0x1010, 0xD1FC, 0) == 0x100C  # bne .-4
    assert _back_branch(0x1010, 0xE7FE, 0) == 0x1010  # b .
    assert _back_branch(0x1010, 0xD104, 0) is None  # forward
    assert _back_branch(0x1010, 0xDF00, 0) is None  # svc, not a branch


@needs_toolchain
@pytest.mark.parametrize("board", ["rp2040", "rp2350"])
def test_calls_and_inclusive_cycles_of_a_call_tree(tmp_path: Path, board: str) -> None:
    elf = build_asm(tmp_path, board, CALLS, extra=FUNCTIONS)
    result = run_firmware(elf, board, profile_detail=True)
    detail = result.profile_detail
    assert detail is not None and detail.scope == "whole run"
    by_name = {f.name: f for f in detail.functions}
    f, g = by_name["f"], by_name["g"]
    assert (f.calls, g.calls) == (3, 6)
    assert f.instructions == 3 * 4 and g.instructions == 6 * 3
    assert f.inclusive_cycles == f.exclusive_cycles + g.exclusive_cycles
    assert sum(x.exclusive_cycles for x in detail.functions) == detail.total_cycles
    loops = [loop for loop in detail.loops if loop.back_branches == 3]
    assert loops, detail.loops
    stacks = {tuple(path): c for path, c in detail.stacks()}
    assert stacks[("[unknown]", "f", "g")] == g.exclusive_cycles
    doc = speedscope(detail, "asm", "simcore test")
    assert sum(doc["profiles"][0]["weights"]) == pytest.approx(detail.total_cycles)
    trace = chrome_trace(detail, "asm")
    top = [e for e in trace["traceEvents"] if e["name"] == "[unknown]"]
    assert top and top[0]["dur"] == pytest.approx(detail.total_cycles)


@needs_toolchain
def test_one_sample_profile_and_a_speedscope_file_that_meets_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    golden = load_golden("iris3")
    fw = build_model_firmware("iris3", "int8", "rp2350", tmp_path)
    whole = run_firmware(fw.elf, "rp2350", inputs=golden.inputs_int8[:3].tobytes(), n_samples=3,
                         profile_detail=True)  # fmt: skip
    one = run_firmware(fw.elf, "rp2350", inputs=golden.inputs_int8[:3].tobytes(), n_samples=3,
                       profile_detail=True, profile_sample=1)  # fmt: skip
    assert whole.profile_detail is not None and one.profile_detail is not None
    assert one.profile_detail.scope == "sample 1"
    # The profiles hold refills and wait states too: one sample's adds up to its cycles
    # (simcore_sample_begin(1) to simcore_sample_end(1)), the whole run's to the run's.
    assert one.profile_detail.total_cycles == one.sample_cycles[1]
    assert whole.profile_detail.total_cycles == whole.cycles
    main_fn = {f.name: f for f in one.profile_detail.functions}["main"]
    assert main_fn.inclusive_cycles == pytest.approx(one.profile_detail.total_cycles, rel=1e-3)
    assert one.profile_detail.lines and one.profile_detail.lines[0].file.endswith(".c")
    out = tmp_path / "p.speedscope.json"
    code = main(["run", str(fw.elf), "-b", "rp2350", "--samples", "2", "-q",
                 "--profile-out", str(out)])  # fmt: skip
    assert code == 0
    assert f"profile: speedscope file written to {out}" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SPEEDSCOPE_SCHEMA)
    frames = len(doc["shared"]["frames"])
    profile = doc["profiles"][0]
    assert len(profile["samples"]) == len(profile["weights"]) > 0
    assert all(0 <= i < frames for stack in profile["samples"] for i in stack)


@needs_toolchain
def test_run_profile_text_shows_inclusive_cycles_calls_lines_and_loops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fw = build_model_firmware("iris3", "f32", "rp2040", tmp_path)
    assert main(["run", str(fw.elf), "-b", "rp2040", "--samples", "2", "-q", "--profile", "8",
                 "--profile-sample", "0"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "profile (sample 0; " in out and " cycles; inclusive cycles apportioned" in out
    assert "self%" in out and "total%" in out and "calls" in out
    assert "hottest source lines:" in out and "hottest loops" in out
    assert (
        main(["run", str(fw.elf), "-b", "rp2040", "--samples", "2", "--profile-sample", "5"]) == 2
    )


TAIL_CALL = """
    .type h, %function
    .thumb_func
h:  movs r2, #0
    b g
    .size h, .-h
"""


@needs_toolchain
@pytest.mark.parametrize("board", ["rp2040", "rp2350"])
def test_a_tail_call_is_a_call_site(tmp_path: Path, board: str) -> None:
    """``h`` ends in ``b g``: g runs for h, so h's inclusive cycles hold g's."""
    elf = build_asm(tmp_path, board, "    bl h\n    bl h\n", extra=FUNCTIONS + TAIL_CALL)
    detail = run_firmware(elf, board, profile_detail=True).profile_detail
    assert detail is not None
    by_name = {f.name: f for f in detail.functions}
    h, g = by_name["h"], by_name["g"]
    assert (h.calls, g.calls) == (2, 2)
    assert h.inclusive_cycles == h.exclusive_cycles + g.exclusive_cycles
