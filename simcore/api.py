"""Argument checks at simcore's Python entry points.

The command line checks what users type; the functions people call from
their own Python (``run_firmware``, ``get_board``, ``load_elf``,
``build_model_firmware``, ``validate``, ``diagnose``, ``open_golden``,
``create_golden``...) are decorated with :func:`public`, which checks every
argument against the function's own type hints (with typeguard) before the
body runs. A wrong type or a wrong call then raises
:class:`~simcore.errors.UsageError` naming the function and the argument,
like every other simcore error, instead of a TypeError or AttributeError from
deep inside. Values (ranges, finiteness) are each function's own business.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from typeguard import CollectionCheckStrategy, TypeCheckError, check_type

from simcore.errors import UsageError

P = ParamSpec("P")
R = TypeVar("R")


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The resolvable type hints of ``func`` (a name only imported for type checking is skipped)."""
    try:
        return typing.get_type_hints(func)
    except NameError:
        hints: dict[str, Any] = {}
        namespace = dict(vars(inspect.getmodule(func)) or {})
        for name, text in func.__annotations__.items():
            try:
                hints[name] = eval(text, namespace) if isinstance(text, str) else text
            except NameError:
                continue
        return hints


def _spell(hint: Any) -> str:
    """A type hint as it reads in the source: ``str | Path | None``, without module paths."""
    text = hint.__name__ if isinstance(hint, type) else str(hint)
    return re.sub(r"\b(?:[a-z_][a-z0-9_]*\.)+([A-Za-z_])", r"\1", text.replace("NoneType", "None"))


def public(func: Callable[P, R]) -> Callable[P, R]:
    """Check ``func``'s arguments against its type hints; UsageError when they do not fit."""
    signature = inspect.signature(func)
    resolved: dict[str, Any] | None = None

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal resolved
        if resolved is None:
            resolved = _hints(func)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise UsageError(f"{func.__name__}(): {exc}") from None
        for name, value in bound.arguments.items():
            hint = resolved.get(name)
            if hint is None:
                continue
            try:
                check_type(
                    value,
                    hint,
                    collection_check_strategy=CollectionCheckStrategy.FIRST_ITEM,
                )
            except TypeCheckError:
                raise UsageError(
                    f"{func.__name__}(): argument {name!r} is {type(value).__name__}, "
                    f"expected {_spell(hint)}",
                    hint=f"see help({func.__module__}.{func.__qualname__})",
                ) from None
        return func(*args, **kwargs)

    return wrapper
