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
import types
import typing
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

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


def _plain_classes(hint: Any) -> tuple[type, ...] | None:
    """Classes whose instances certainly pass typeguard's check of ``hint`` (None: none known).

    For a plain class that is the class itself (and ``int`` for ``float``, as PEP 484
    has it); for a union, those of its plain members (an instance of one passes the
    union). The wrapper accepts such a value with ``isinstance`` alone and leaves
    every other value (generics, callables, failures) to typeguard.
    """
    if hint is Any:
        return (object,)
    if hint is None or hint is type(None):
        return (type(None),)
    if hint is float:
        return (float, int)
    if isinstance(hint, type) and typing.get_origin(hint) is None:
        return (hint,)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [c for arg in typing.get_args(hint) for c in _plain_classes(arg) or ()]
        return tuple(found) or None
    return None


def public(func: Callable[P, R]) -> Callable[P, R]:
    """Check ``func``'s arguments against its type hints; UsageError when they do not fit."""
    signature = inspect.signature(func)
    resolved: dict[str, Any] | None = None
    plain: dict[str, tuple[type, ...] | None] = {}

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal resolved, plain
        if resolved is None:
            resolved = _hints(func)
            plain = {name: _plain_classes(hint) for name, hint in resolved.items()}
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise UsageError(f"{func.__name__}(): {exc}") from None
        for name, value in bound.arguments.items():
            hint = resolved.get(name)
            if hint is None:
                continue
            classes = plain.get(name)
            if classes is not None and isinstance(value, classes):
                continue  # what typeguard would accept too; it decides everything else
            # typeguard imports asyncio, unittest.mock and more (0.15 s): not on start-up.
            from typeguard import CollectionCheckStrategy, TypeCheckError, check_type

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


F = TypeVar("F", bound=Callable[..., Any])


def unchecked(func: F) -> F:
    """The function under a :func:`public` wrapper, for simcore's own calls whose arguments
    it built itself (checking a callable argument imports typeguard: 0.15 s of start-up)."""
    return typing.cast(F, getattr(func, "__wrapped__", func))
