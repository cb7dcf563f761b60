"""The validate report: summary tables, the self-contained HTML page, headless Chromium.

The fixture is a real ``simcore validate --all --json`` output (12 combinations,
all passing); failing and regressed combinations are made from it by editing
copies, as ``validate`` would have written them.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from simcore.boards import get_board
from simcore.errors import UsageError
from simcore.report import load_results, register, render_html, summary_table, write_html

SAMPLE = Path(__file__).parent / "sample_results.json"
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base"}
SVG_LEAVES = {"rect", "line", "path", "circle"}  # self-closed inside SVG
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def results() -> list[dict[str, Any]]:
    return load_results(SAMPLE)


def _with_failures(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sample with iris3/int8/rp2040 not bit-exact and iris3/int8/rp2350 regressed."""
    out = copy.deepcopy(results)
    bad = out[0]
    bad.update(
        passed=False,
        exactness="3 of 30 samples differ",
        failures=["not bit-exact: 3 of 30 samples differ"],
        mismatches=[
            {"sample": 4, "got": [-128, 127, -128], "want": [-128, 126, -127]},
            {"sample": 17, "got": [127, -128, -128], "want": [126, -128, -128]},
        ],
    )
    slow = out[1]
    slow.update(passed=False, regressions=["cycles 8,238 > baseline 7,000 + 5% (+17.7%)"])
    return out


class _Checker(HTMLParser):
    """Checks that every element is closed in order and counts elements by tag and class."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: dict[str, int] = {}
        self.classes: dict[str, int] = {}
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs += attrs
        for name, value in attrs:
            if name == "class" and value:
                for cls in value.split():
                    self.classes[cls] = self.classes.get(cls, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs += attrs

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def _check(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [], checker.errors[:5]
    assert checker.stack == [], f"unclosed: {checker.stack}"
    return checker


# -- summary table --------------------------------------------------------------


def test_summary_table_has_every_combination(results: list[dict[str, Any]]) -> None:
    table = summary_table(results)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["combination", "status", "samples"]
    for r in results:
        row = next(line for line in lines if line.startswith(r["key"] + " "))
        assert "PASS" in row
    row = next(line for line in lines if line.startswith("mnist_cnn/int8/rp2040 "))
    # accuracy and the reference's, exactness, cycles, ms at 125 MHz, flash, RAM, stack
    for cell in ("97.50%", "bit-exact", "3,950,935", "exact", "31.6", "8.7 KB", "57.0 KB", "356 B"):
        assert cell in row
    assert "12 combinations: 12 passed, 0 failed, 0 regressed" in table


def test_summary_table_shows_failures_and_regressions(results: list[dict[str, Any]]) -> None:
    table = summary_table(_with_failures(results))
    lines = table.splitlines()
    assert re.match(r"iris3/int8/rp2040\s+FAIL\s", lines[2])
    assert re.match(r"iris3/int8/rp2350\s+REGRESSED\s", lines[3])
    assert "FAIL      iris3/int8/rp2040: not bit-exact: 3 of 30 samples differ" in lines
    assert "REGRESSED iris3/int8/rp2350: cycles 8,238 > baseline 7,000 + 5% (+17.7%)" in lines
    mismatch = next(line for line in lines if "first mismatching samples" in line)
    assert "4, 17" in mismatch and "got [-128, 127, -128], want [-128, 126, -127]" in mismatch
    assert "10 passed, 1 failed, 1 regressed" in table


def test_summary_table_markdown(results: list[dict[str, Any]]) -> None:
    table = summary_table(_with_failures(results), markdown=True)
    lines = table.splitlines()
    assert lines[0].startswith("| combination | status |")
    assert re.fullmatch(r"\|(-{3}:?\|)+", lines[1].replace("---:", "---"))
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) == len(results)
    assert all(row.count(" | ") == lines[0].count(" | ") for row in rows)
    assert "| iris3/int8/rp2040 | FAIL |" in rows[0]
    assert "- **FAIL** `iris3/int8/rp2040`: not bit-exact: 3 of 30 samples differ" in lines


# -- loading ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no results file"),
        ("{not json", "is not JSON"),
        ('{"version": 2, "results": []}', "has version 2; this simcore reads version 1"),
        ('{"results": []}', "neither simcore validate results nor a simcore run --json result"),
        ('{"version": 1}', "no 'results' list"),
        ('{"version": 1, "results": [{"model": "iris3"}]}', "result 0 in"),
    ],
    ids=["missing", "not-json", "wrong-version", "no-version", "no-results", "incomplete"],
)
def test_bad_results_file_is_refused(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        load_results(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2


# -- HTML --------------------------------------------------------------------------


def test_html_is_well_formed_with_every_chart(results: list[dict[str, Any]]) -> None:
    page = render_html(results, title="iris & mnist")
    checker = _check(page)
    assert checker.classes["chart-cycles"] == 1
    groups = {(r["model"], r["format"]) for r in results}
    assert checker.classes["chart-profile"] == len(groups)
    # confusion matrices are identical across boards here: one table per model/format
    assert checker.classes["confusion"] == len(groups)
    assert page.count("Identical on rp2040, rp2350, stm32h743, so shown once.") == len(groups)
    assert checker.classes["summary"] == 1
    assert checker.classes["membar"] == 2 * len(results)  # flash and static RAM
    assert page.count('<tr class="pass">') == len(results)
    # labelled with values and the cycle model's exactness tag
    assert "3,950,935 cycles · 31.6 ms · exact" in page
    assert "1,867,804 cycles · 12.5 ms · proxy" in page
    assert "1,161,225 cycles · 2.42 ms · approximate" in page
    assert "<title>iris &amp; mnist</title>" in page


def test_html_is_self_contained(results: list[dict[str, Any]]) -> None:
    page = render_html(_with_failures(results))
    checker = _check(page)
    assert "script" not in checker.tags and "link" not in checker.tags
    assert not [a for a in checker.attrs if a[0] in ("src", "href")]
    assert set(re.findall(r"https?://[^\s\"')]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "url(" not in page and "@import" not in page


def test_html_shows_failures(results: list[dict[str, Any]]) -> None:
    page = render_html(_with_failures(results))
    checker = _check(page)
    assert checker.classes["fail"] >= 2 and checker.classes["regressed"] >= 2  # row, issue line
    assert "not bit-exact: 3 of 30 samples differ" in page
    assert checker.classes["mismatch"] == 1
    assert "<code>[-128, 126, -127]</code>" in page


def test_html_escapes_text(results: list[dict[str, Any]]) -> None:
    evil = copy.deepcopy(results[:3])
    for r in evil:
        r["model"] = "<script>x</script>"
        r["key"] = f"{r['model']}/{r['format']}/{r['board']}"
        r["profile"][0]["function"] = 'f"<&>'
        r["classes"]["labels"][0] = "<u>"
    page = render_html(evil, title="<i>")
    _check(page)
    assert "<script>" not in page and "<u>" not in page and "<i>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "f&quot;&lt;&amp;&gt;" in page
    assert "&lt;u&gt;" in page and "&lt;i&gt;" in page


def test_confusion_per_board_when_boards_disagree(results: list[dict[str, Any]]) -> None:
    changed = copy.deepcopy(results[:3])  # iris3/int8 on three boards
    changed[2]["classes"]["confusion"] = [[10, 0, 0], [0, 9, 1], [0, 0, 10]]
    page = render_html(changed)
    checker = _check(page)
    assert checker.classes["confusion"] == 3
    assert "The boards disagree" in page


def test_html_without_optional_parts(results: list[dict[str, Any]]) -> None:
    bare = copy.deepcopy(results[:2])
    for r in bare:
        for key in ("profile", "classes", "memory", "mismatches", "cycle_model"):
            r.pop(key)
    checker = _check(render_html(bare))
    assert checker.classes["chart-cycles"] == 1
    assert "confusion" not in checker.classes
    _check(render_html([]))


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(SAMPLE.read_text())
    data["meta"] = {"simcore": "0.1.0", "command": "simcore validate --all", "limit": 40}
    source = tmp_path / "results.json"
    source.write_text(json.dumps(data))
    parser = argparse.ArgumentParser(prog="simcore")
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "out" / "report.html"
    args = parser.parse_args(["report", str(source), "--html", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "mnist_cnn/f32/stm32h743" in printed and f"report: {out}" in printed
    assert "<code>simcore validate --all</code>" in out.read_text()
    args = parser.parse_args(["report", str(source), "--markdown"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith("| combination |")


def test_report_joins_validate_results_and_a_run_of_your_own_firmware(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`simcore run --json` of a user's program becomes a row, judged by its exit code."""
    from simcore import cli
    from simcore.example import build_example

    elf = build_example(get_board("rp2040"), tmp_path).elf
    runs = []
    for name, extra in (("ok.json", []), ("budget.json", ["--max-instructions", "500"])):
        assert cli.main(["run", str(elf), "-b", "rp2040", "--json", *extra]) in (0, 1)
        runs.append(tmp_path / name)
        runs[-1].write_text(capsys.readouterr().out)
    parser = argparse.ArgumentParser(prog="simcore")
    register(parser.add_subparsers(dest="command"))
    html_out = tmp_path / "r.html"
    args = parser.parse_args(["report", str(SAMPLE), *map(str, runs), "--html", str(html_out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    ok_row = next(
        line for line in printed.splitlines() if re.match(r"example\.elf/rp2040\s+PASS", line)
    )
    assert "5,647" in ok_row  # the example's one inference, as `simcore run` reports it
    assert re.search(r"example\.elf/rp2040\s+FAIL", printed)
    assert "mnist_cnn/f32/stm32h743" in printed
    assert "example" in html_out.read_text()


# -- headless Chromium -------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing (nox -s tests installs it)")
def test_html_renders_in_headless_chromium(tmp_path: Path, results: list[dict[str, Any]]) -> None:
    """Chromium loads the page offline, keeps every SVG element and draws a screenshot."""
    page = tmp_path / "report.html"
    write_html(_with_failures(results), page)
    source = page.read_text()
    base = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,3000",
    ]
    png = tmp_path / "report.png"
    shot = subprocess.run(
        [*base, f"--screenshot={png}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    assert _png_size(png) == (1400, 3000)
    assert png.stat().st_size > 50_000  # a blank page compresses to a few KB
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    for tag in ("<svg", "<rect", "<table"):
        assert rendered.count(tag) == source.count(tag) > 0, tag
    assert rendered.count('class="chart chart-cycles"') == 1
    assert rendered.count('class="chart chart-profile"') == 4
