"""Building named components (tasks, scorers, selectors, ...) from their registries."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ray_asd.errors import ConfigError

T = TypeVar("T")


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

    Raises:
        ConfigError: unknown name (with close matches) or parameters the factory does not take.
    """
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}{suggest(name, registry)}")
    factory = registry[name]
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{kind} {name!r}: unknown parameter(s) {unknown} "
            f"(accepted: {sorted(accepted) or 'none'})"
        )
    return factory(**params)
