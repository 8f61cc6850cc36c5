"""Reading a config file: YAML with ``--set`` overrides, refused duplicate keys and non-UTF-8
text, then validation into the models of :mod:`ray_asd.config` with every problem as one line
naming the dotted key (``budget.per_iteration: ...``), factories' refusals included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ray_asd.config import TaskConfig, TrialConfig
from ray_asd.errors import ConfigError, DataError
from ray_asd.registry import ParameterError, build

ModelT = TypeVar("ModelT", bound=BaseModel)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``key.sub=value`` overrides on a config mapping; values are parsed as YAML scalars.

    Raises:
        ConfigError: an override without ``=`` or one that descends into a non-mapping.
    """
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {override!r}: expected key=value, e.g. budget.iterations=3")
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {override!r}: {part!r} is not a section")
            node = child
        node[leaf] = _parse_value(raw)
    return data


def _parse_value(raw: str) -> Any:
    """A YAML scalar (``3``, ``true``, ``null``), or flow collection (``[a, b]``, ``{k: v}``);
    anything else stays the raw string, so ``model=tiny:`` is the text ``tiny:``."""
    text = raw.strip()
    try:
        value = parse_yaml(text)
    except (yaml.YAMLError, ConfigError):
        return text
    if isinstance(value, dict | list) and not text.startswith(("[", "{")):
        return text
    return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that notes every mapping key given twice (plain YAML keeps the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []  # (line, key)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` overrides by design
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                self.duplicates.append((key_node.start_mark.line + 1, repr(key)))
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, where: str = "--set") -> Any:
    """``yaml.safe_load(text)``, refusing a mapping key given twice.

    Raises:
        ConfigError: one line per duplicate key, naming ``where`` and the line.
        yaml.YAMLError: text that is not YAML.
    """
    loader = _UniqueKeyLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if loader.duplicates:
        lines = sorted(loader.duplicates)  # outer mappings are built before inner ones
        raise ConfigError("\n".join(f"{where}: line {n}: duplicate key {key}" for n, key in lines))
    return data


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    """PyYAML's several-line message as one: ``line 3 column 7: <problem> (<context>)``."""
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
    context = f" ({error.context})" if error.context else ""
    return f"{where}{error.problem or 'invalid YAML'}{context}"


def read_yaml(path: Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """A YAML mapping (empty when ``path`` is None) with ``--set`` overrides applied.

    Raises:
        ConfigError: an unreadable or non-UTF-8 file, bad YAML, a key given twice, or a top
            level that is not a mapping.
    """
    data: Any = {}
    if path is not None:
        try:
            data = parse_yaml(path.read_bytes().decode("utf-8-sig"), str(path)) or {}
        except OSError as error:
            raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
            ) from None
        except yaml.MarkedYAMLError as error:
            raise ConfigError(f"{path}: {_yaml_problem(error)}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: {' '.join(str(error).split())}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    return apply_overrides(data, overrides or [])


class Problems:
    """Every problem found so far, one line each, in the order found and each once (the cells
    of a grid repeat their shared problems)."""

    def __init__(self) -> None:
        self._lines: dict[str, type[ConfigError | DataError]] = {}

    def add(self, error: ConfigError | DataError | str) -> None:
        """Records every line of ``error`` (a plain string counts as a config problem)."""
        kind = DataError if isinstance(error, DataError) else ConfigError
        for line in str(error).splitlines():
            self._lines.setdefault(line, kind)

    def __bool__(self) -> bool:
        return bool(self._lines)

    def raise_any(self) -> None:
        """Raises them all at once: a DataError when every one is about data, else a
        ConfigError.

        Raises:
            ConfigError: one line per problem.
            DataError: one line per problem, all of them in the data.
        """
        if not self._lines:
            return
        data = all(kind is DataError for kind in self._lines.values())
        raise (DataError if data else ConfigError)("\n".join(self._lines))


def validate(model: type[ModelT], data: Any, where: str, prefix: str = "") -> ModelT:
    """``model.model_validate(data)``, with every problem as one line ``where: key: message``.

    Raises:
        ConfigError: one line per invalid key, the dotted key prefixed with ``prefix``.
    """
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{where}: {prefix}{_dotted(loc) or '(top level)'}: {message}"
            for loc, message in _without_text_branches(error.errors())
        ]
        raise ConfigError("\n".join(problems)) from None


def _without_text_branches(errors: list[Any]) -> list[tuple[tuple[Any, ...], str]]:
    """(loc, message) per error, where a ``str | X`` union (a grid entry: a name or a block)
    that failed as X keeps X's errors alone, without the branch's name in the key: the user
    wrote a block, so "should be a valid string" is noise."""
    unions = set()  # the locs of such unions
    for e in errors:
        loc = tuple(e["loc"])
        text_branch = loc[-1:] == ("str",) and e["type"] == "string_type"
        if text_branch and any(f is not e and f["loc"][: len(loc) - 1] == loc[:-1] for f in errors):
            unions.add(loc[:-1])
    result = []
    for e in errors:
        loc = tuple(e["loc"])
        union = next((u for u in unions if loc[: len(u)] == u), None)
        if union is not None:
            if loc[len(union) :] == ("str",):
                continue
            loc = union + loc[len(union) + 1 :]
        # A validator's ValueError reads as its own text, without pydantic's "Value error, ".
        message = str(e["ctx"]["error"]) if e["type"] == "value_error" else e["msg"]
        result.append((loc, message))
    return result


def _dotted(loc: tuple[Any, ...]) -> str:
    """``grid.task[1].params``: keys dotted, list positions in brackets (as cells name them)."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]


# Where a factory's parameters live in a section, by the kind of factory.
PARAMS_KEYS = {"selector": "selector_params", "task": "params"}


def factory_problem(where: str, key: str, error: ConfigError) -> str:
    """The line of a factory's error, naming the parameter's key where the factory singled
    one out: ``f.yaml: strategy.selector_params.temperature: selector 'power': ...``."""
    if isinstance(error, ParameterError):
        params = f"{key}.{PARAMS_KEYS.get(error.kind, 'params')}"
        key = f"{params}.{error.param}" if error.param else params
    return f"{where}: {key}: {error}"


def factory_problems(data: dict[str, Any], where: str) -> list[str]:
    """The task's and the selector's factories run on the raw ``task`` and ``strategy``
    sections, so that a value they refuse (``temperature: 0``) is listed with the sections'
    other problems, even when those keep the sections from validating."""
    from ray_asd.strategies.selectors import SELECTORS
    from ray_asd.tasks import TASKS

    checks = []
    task = data.get("task", {})
    if isinstance(task, dict) and isinstance(task.get("params", {}), dict):
        name = task.get("name", TaskConfig.model_fields["name"].default)
        checks.append(("task", "task", TASKS, name, task.get("params", {})))
    strategy = data.get("strategy")
    if isinstance(strategy, dict):
        selector, params = strategy.get("selector"), strategy.get("selector_params", {})
        if isinstance(selector, dict):  # the block form, {name: power, temperature: 0.5}
            params = {k: v for k, v in selector.items() if k != "name"}
            selector = selector.get("name")
        if isinstance(params, dict):
            checks.append(("strategy", "selector", SELECTORS, selector, params))
    problems = []
    for key, kind, registry, name, params in checks:
        if not isinstance(name, str):
            continue  # a missing or non-text name: the section's validation says so
        try:
            build(kind, registry, name, params)
        except ConfigError as error:
            problems.append(factory_problem(where, key, error))
    return problems


def load_config(path: Path | None, overrides: list[str] | None = None) -> TrialConfig:
    """Reads a YAML trial config (or the defaults when ``path`` is None) with overrides.

    Raises:
        ConfigError: unreadable YAML, or every invalid key with its problem, one per line.
    """
    config, problems = read_config(TrialConfig, path, overrides, "config")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def read_config(
    model: type[ModelT], path: Path | None, overrides: list[str] | None, default_where: str
) -> tuple[ModelT, list[str]]:
    """The file (or the defaults) read and validated as ``model``, and the factories'
    problems; a file that does not validate raises with both kinds of problem at once.

    Raises:
        ConfigError: unreadable YAML, or every invalid key and factory problem, one per line.
    """
    where = str(path) if path else default_where
    data = read_yaml(path, overrides)
    problems = factory_problems(data, where)
    try:
        return validate(model, data, where), problems
    except ConfigError as error:
        raise ConfigError("\n".join([str(error), *problems])) from None
