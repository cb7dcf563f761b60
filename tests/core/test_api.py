"""The Python entry points refuse wrong arguments with UsageError, before doing any work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simcore.diagnose.doctor import diagnose, static_diagnose
from simcore.errors import SimError, UsageError
from simcore.firmware.build import build_model_firmware
from simcore.golden.create import create_golden
from simcore.golden.locate import open_golden
from simcore.validate import Combination, validate, validate_many

COMBO = Combination("iris3", "int8", "rp2040")
CASES: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], str]] = [
    (validate, ("iris3/int8/rp2040",), {}, "argument 'combo' is str, expected Combination"),
    (validate, (COMBO,), {"limit": "5"}, "argument 'limit' is str, expected int | None"),
    (validate, (COMBO,), {"jobs": 1.5}, "argument 'jobs' is float, expected int"),
    (validate, (COMBO,), {"limit": 0}, "validate at least 1 sample"),
    (validate_many, (COMBO,), {}, "argument 'combos' is Combination, expected list[Combination]"),
    (validate_many, ([COMBO],), {"jobs": 0}, "at least 1 worker process"),
    (build_model_firmware, (3, "int8", "rp2040"), {}, "argument 'model' is int"),
    (build_model_firmware, ("iris3", "int8"), {}, "missing a required argument: 'board'"),
    (build_model_firmware, ("iris3", "int8", "rp2040"), {"inject": [3]}, "argument 'inject'"),
    (open_golden, (None,), {}, "argument 'ref' is NoneType, expected str | Path"),
    (create_golden, ("m.keras", Path("x.npy")), {}, "argument 'model_path' is str"),
    (diagnose, (Path("a.elf"), "iris3", "int8", 7), {}, "argument 'board' is int"),
    (static_diagnose, (Path("a.elf"), "iris3"), {}, "missing a required argument: 'fmt'"),
]


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "message"),
    CASES,
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)],
)
def test_wrong_arguments_are_usage_errors(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as info:
        func(*args, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2


ANY_VALUE = (
    st.none()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=4)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)
)


@settings(max_examples=60, deadline=None)
@given(combo=ANY_VALUE, limit=ANY_VALUE, jobs=ANY_VALUE)
def test_validate_with_arbitrary_arguments_raises_only_simerrors(
    combo: object, limit: object, jobs: object
) -> None:
    with pytest.raises(SimError):
        validate(combo, limit=limit, jobs=jobs)  # type: ignore[arg-type]


def test_run_firmware_get_board_and_load_elf_check_their_arguments() -> None:
    from simcore.boards import get_board
    from simcore.elf import load_elf
    from simcore.engine import run_firmware

    for call, message in (
        (lambda: run_firmware(123, "rp2040"), "argument 'elf' is int"),  # type: ignore[arg-type]
        (lambda: run_firmware("a.elf", 5), "argument 'board' is int"),  # type: ignore[arg-type]
        (lambda: run_firmware("a.elf", "rp2040", inputs="ab"), "argument 'inputs' is str"),  # type: ignore[arg-type]
        (lambda: load_elf(None), "argument 'path' is NoneType"),  # type: ignore[arg-type]
        (lambda: get_board(3), "argument 'name_or_path' is int"),  # type: ignore[arg-type]
    ):
        with pytest.raises(UsageError, match=message):
            call()
    assert get_board(Path("rp2040")).name == "rp2040"
