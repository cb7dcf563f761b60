"""pytest plugin: regression tests for your own firmware, without hardware.

Registered through the ``pytest11`` entry point, so installing simcore makes
it available. Write tests like::

    def test_inference(simcore_run, simcore_board, simcore_baseline):
        result = simcore_run("build/app.elf", simcore_board, inputs=x.tobytes())
        assert result.exit_code == 0
        simcore_baseline.check(f"app/{simcore_board.name}", {
            "flash_bytes": result.memory.flash.used_bytes,
            "stack_peak_bytes": result.memory.stack_peak.used_bytes,
        })

To validate a model's firmware against its golden in one call (a shipped
model name, a golden folder from ``simcore golden create``, or a model file;
or only the ELF, whose manifest names the rest)::

    def test_my_model(simcore_validate, simcore_board):
        result = simcore_validate("golden/digits_mlp", "int8", simcore_board)
        assert result.accuracy >= 0.95

It fails the test, naming the samples, when the outputs leave the golden's
tolerance, and gates cycles and memory through ``simcore_baseline``.

Options: ``--simcore-board NAME`` (repeatable; default every shipped board)
selects the boards ``simcore_board`` is parametrized over;
``--simcore-baseline FILE`` (default ``simcore-baseline.json`` in the rootdir)
and ``--simcore-update-baseline`` (the only way the file is written). JUnit
XML comes from pytest's own ``--junitxml``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from simcore.baseline import Finding, load_baseline, write_baseline
from simcore.boards import BoardSpec, get_board, load_boards
from simcore.results import RunResult

if TYPE_CHECKING:
    from simcore.validate import Validation


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simcore", "simcore firmware emulation")
    group.addoption(
        "--simcore-board",
        action="append",
        default=[],
        metavar="NAME",
        help="board(s) to run simcore_board tests on (default: all shipped boards)",
    )
    group.addoption(
        "--simcore-baseline",
        default=None,
        metavar="FILE",
        help="baseline file for simcore_baseline (default: simcore-baseline.json in rootdir)",
    )
    group.addoption(
        "--simcore-update-baseline",
        action="store_true",
        help="record current figures as the new baseline instead of checking them",
    )


def _selected_boards(config: pytest.Config) -> list[BoardSpec]:
    names: list[str] = config.getoption("--simcore-board") or sorted(load_boards())
    return [get_board(n) for n in names]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "simcore_board" in metafunc.fixturenames:
        boards = _selected_boards(metafunc.config)
        metafunc.parametrize("simcore_board", boards, ids=[b.name for b in boards])


class BaselineGate:
    """Checks figures against the baseline file, or records them in update mode."""

    def __init__(self, path: Path, update: bool) -> None:
        self.path = path
        self.update_mode = update
        self.baseline = load_baseline(path)
        self.dirty = False

    def check(
        self, key: str, figures: dict[str, float], samples: str | None = None
    ) -> list[Finding]:
        """Fail the calling test if a figure regressed beyond its band.

        ``samples`` names the sample set the figures were measured on (e.g.
        ``"test 50"``); figures that depend on it are compared only with a
        baseline measured on the same set.
        """
        if self.update_mode or self.baseline.missing(key):
            if not self.update_mode:
                pytest.fail(
                    f"no baseline for {key} in {self.path}; run with --simcore-update-baseline",
                    pytrace=False,
                )
            self.baseline.update(key, figures, samples)
            self.dirty = True
            return []
        findings = self.baseline.compare(key, figures, samples)
        regressions = [f for f in findings if f.regressed]
        if regressions:
            pytest.fail("\n".join(f.describe() for f in regressions), pytrace=False)
        return findings

    def save(self) -> None:
        if self.dirty:
            write_baseline(self.path, self.baseline)


@pytest.fixture(scope="session")
def simcore_baseline(request: pytest.FixtureRequest) -> Any:
    """The session's baseline gate (written at the end in update mode)."""
    config = request.config
    option = config.getoption("--simcore-baseline")
    path = Path(option) if option else Path(config.rootpath) / "simcore-baseline.json"
    gate = BaselineGate(path, bool(config.getoption("--simcore-update-baseline")))
    yield gate
    gate.save()


@pytest.fixture
def simcore_run() -> Callable[..., RunResult]:
    """``simcore_run(elf, board, inputs=None, **options) -> RunResult`` (see run_firmware)."""

    from simcore.engine import run_firmware  # unicorn loads only when a test needs it

    def run(elf: str | Path, board: BoardSpec | str, **options: Any) -> RunResult:
        return run_firmware(elf, board, **options)

    return run


@pytest.fixture
def simcore_validate(simcore_baseline: BaselineGate) -> Callable[..., Validation]:
    """``simcore_validate(model, fmt, board, *, firmware=None, limit=None, gate=True)``.

    Validates the firmware of ``model`` in ``fmt`` on ``board`` against the
    golden (building the firmware unless ``firmware`` is given; with only
    ``firmware=``, its manifest names model, format and board), fails the
    test with the failures, and, with ``gate``, checks cycles and memory
    against the session's baseline. Returns the
    :class:`~simcore.validate.Validation`.
    """
    from simcore import validate as v

    def run(
        model: str | Path | None = None,
        fmt: str | None = None,
        board: BoardSpec | str | None = None,
        *,
        firmware: str | Path | None = None,
        limit: int | None = None,
        gate: bool = True,
    ) -> Validation:
        elf = Path(firmware) if firmware is not None else None
        board_name = (get_board(board) if isinstance(board, str) else board).name if board else None
        if model is None:
            if elf is None:
                raise TypeError("simcore_validate needs a model or firmware=")
            found, _ = v.combination_for_firmware(elf)
            combo = v.Combination(found.model, fmt or found.fmt, board_name or found.board,
                                  found.golden)  # fmt: skip
        else:
            if fmt is None or board_name is None:
                raise TypeError("simcore_validate(model, fmt, board): give the format and board")
            combo = v.combinations_for(model, [fmt], [board_name])[0]
        result = v.validate_many([combo], firmware=elf, limit=limit, jobs=1)[0]
        if not result.passed:
            detail = "; ".join(result.failures)
            samples = ", ".join(str(m["sample"]) for m in result.mismatches)
            pytest.fail(
                f"{result.key}: {detail}" + (f" (first samples: {samples})" if samples else ""),
                pytrace=False,
            )
        if gate:
            simcore_baseline.check(result.key, result.figures(), f"test {result.n_samples}")
        return result

    return run
