"""simcore.lazylog: loggers that import logging on first use, configured by the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import sys
from simcore import lazylog
log = lazylog.getLogger("simcore.probe")
lazylog.basicConfig(now=NOW, level=lazylog.WARNING, format="simcore: %(levelname)s: %(message)s")
print("logging" in sys.modules, flush=True)
log.info("not shown")
log.warning("shown %s", 1)
print(log.getEffectiveLevel(), log.name)
"""


@pytest.mark.parametrize("now", [False, True])
def test_a_lazy_logger_logs_with_the_command_lines_format(now: bool) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("NOW", str(now))],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.split() == [str(now), "30", "simcore.probe"]
    assert out.stderr == "simcore: WARNING: shown 1\n"
