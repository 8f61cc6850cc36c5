"""Building named components (tasks, scorers, selectors, ...) from their registries."""

from __future__ import annotations

import difflib
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from ray_asd.errors import ConfigError

T = TypeVar("T")


class ParameterError(ConfigError):
    """A factory of ``kind`` (task, selector, ...) refused its parameters; ``param`` is the one
    at fault, None when the message does not single one out, so that a caller can name the
    config key (``strategy.selector_params.temperature``)."""

    def __init__(self, message: str, kind: str, param: str | None) -> None:
        super().__init__(message)
        self.kind, self.param = kind, param


def suggest(name: str, choices: Mapping[str, object] | list[str]) -> str:
    """A hint for an unknown name: close matches (if any) and the known names."""
    known = sorted(choices)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return f"{hint} (known: {', '.join(known)})"


def build(
    kind: str, registry: Mapping[str, Callable[..., T]], name: str, params: Mapping[str, Any]
) -> T:
    """``registry[name](**params)``, with config errors that name the kind, the name and the key.

    Each parameter is first checked against the factory's type hint (``temperature: float``
    refuses ``"hot"``), then the factory's own checks run (``temperature must be > 0``).

    Raises:
        ConfigError: unknown name (with close matches).
        ParameterError: parameters the factory does not take, of the wrong type, or whose
            values it refuses.
    """
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}{suggest(name, registry)}")
    factory = registry[name]
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ParameterError(
            f"{kind} {name!r}: unknown parameter(s) {unknown} "
            f"(accepted: {sorted(accepted) or 'none'})",
            kind,
            unknown[0] if len(unknown) == 1 else None,
        )
    typed = _typed(kind, name, factory, params)
    try:
        return factory(**typed)
    except (TypeError, ValueError) as error:  # ConfigError is a ValueError too
        message = str(error)
        prefix = "" if message.startswith(f"{kind} {name}") else f"{kind} {name!r}: "
        raise ParameterError(prefix + message, kind, _culprit(params, message)) from None


def _typed(
    kind: str, name: str, factory: Callable[..., Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    """The parameters validated (and coerced, ``"0.5"`` -> 0.5) by the factory's hints."""
    if not params:
        return {}
    try:
        hints = typing.get_type_hints(factory)
    except (NameError, TypeError):  # unresolvable hints: the factory checks for itself
        hints = {}
    typed = dict(params)
    for param, value in params.items():
        if param not in hints:
            continue
        try:
            typed[param] = TypeAdapter(hints[param]).validate_python(value)
        except ValidationError as error:
            reason = error.errors()[0]["msg"]
            raise ParameterError(
                f"{kind} {name!r}: {param}: {reason}, got {value!r}", kind, param
            ) from None
    return typed


def _culprit(params: Mapping[str, Any], message: str) -> str | None:
    """The parameter a factory's message is about: the only one it names as a word, else the
    only one given, else None."""
    named = [p for p in params if re.search(rf"\b{re.escape(p)}\b", message)]
    if len(named) == 1:
        return named[0]
    return next(iter(params)) if len(params) == 1 else None
