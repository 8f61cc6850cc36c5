"""`registry.build`: named components from their registries, with config errors that name the
kind, the name and the parameter at fault."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ray_asd.errors import ConfigError
from ray_asd.registry import ParameterError, build, suggest
from ray_asd.strategies.selectors import SELECTORS, Stochastic


@dataclass(frozen=True)
class Cooler:
    """A factory with typed parameters and checks of its own, as the registries' are."""

    temperature: float = 1.0
    steps: int = 1

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.steps > 10 and self.temperature > 1:
            raise ValueError("steps and temperature too large together")


def fixed() -> str:
    return "fixed"


def unresolvable(size: Missing = 3) -> int:  # type: ignore[name-defined]  # noqa: F821
    """A factory whose hint cannot be resolved: it checks its parameter for itself."""
    if not isinstance(size, int):
        raise TypeError(f"size must be an int, got {size!r}")
    return size


REGISTRY = {"cooler": Cooler, "fixed": fixed, "unresolvable": unresolvable}


def test_build_calls_the_factory_with_its_parameters_coerced_by_their_hints() -> None:
    assert build("thing", REGISTRY, "cooler", {}) == Cooler()
    built = build("thing", REGISTRY, "cooler", {"temperature": "0.5", "steps": 3})
    assert built == Cooler(temperature=0.5, steps=3)
    assert type(built.temperature) is float  # "0.5" coerced, not passed through as text
    assert build("thing", REGISTRY, "fixed", {}) == "fixed"


def test_an_unknown_name_suggests_close_matches_and_lists_the_known() -> None:
    with pytest.raises(ConfigError) as raised:
        build("thing", REGISTRY, "coler", {})
    assert str(raised.value) == (
        "unknown thing 'coler'; did you mean 'cooler'? (known: cooler, fixed, unresolvable)"
    )
    assert not isinstance(raised.value, ParameterError)  # no parameter is at fault


def test_suggest_lists_close_matches_closest_first_then_the_known() -> None:
    assert suggest("zzz", ["b", "a"]) == " (known: a, b)"
    # The closest first, the known names sorted.
    assert suggest("lossgt", {"loss": 1, "loss_gt": 2, "lion": 3}) == (
        "; did you mean 'loss_gt' or 'loss'? (known: lion, loss, loss_gt)"
    )


def test_unknown_parameters_are_listed_with_the_accepted_ones() -> None:
    with pytest.raises(ParameterError) as one:
        build("thing", REGISTRY, "cooler", {"temp": 1.0})
    assert str(one.value) == (
        "thing 'cooler': unknown parameter(s) ['temp'] (accepted: ['steps', 'temperature'])"
    )
    assert (one.value.kind, one.value.param) == ("thing", "temp")
    with pytest.raises(ParameterError) as two:
        build("thing", REGISTRY, "cooler", {"b": 1, "a": 2})
    assert "unknown parameter(s) ['a', 'b']" in str(two.value)
    assert two.value.param is None  # two at fault: none singled out
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['x'\] \(accepted: none\)"):
        build("thing", REGISTRY, "fixed", {"x": 1})


def test_a_value_of_the_wrong_type_names_the_parameter_and_the_value() -> None:
    with pytest.raises(ParameterError) as raised:
        build("thing", REGISTRY, "cooler", {"temperature": "hot"})
    message = str(raised.value)
    assert message.startswith("thing 'cooler': temperature: ") and message.endswith(", got 'hot'")
    assert raised.value.param == "temperature"


def test_the_factory_s_own_refusal_is_prefixed_and_names_its_parameter() -> None:
    with pytest.raises(ParameterError) as raised:
        build("thing", REGISTRY, "cooler", {"temperature": 0, "steps": 2})
    assert str(raised.value) == "thing 'cooler': temperature must be > 0, got 0.0"
    assert raised.value.param == "temperature"  # the only parameter the message names
    with pytest.raises(ParameterError) as both:
        build("thing", REGISTRY, "cooler", {"temperature": 2, "steps": 11})
    assert both.value.param is None  # the message names both: neither is singled out


def test_a_factory_whose_hints_do_not_resolve_checks_for_itself() -> None:
    assert build("thing", REGISTRY, "unresolvable", {"size": 4}) == 4
    with pytest.raises(ParameterError) as raised:
        build("thing", REGISTRY, "unresolvable", {"size": "4"})
    assert str(raised.value) == "thing 'unresolvable': size must be an int, got '4'"
    assert raised.value.param == "size"  # the only parameter given


def test_parameter_errors_are_config_errors_the_cli_prints() -> None:
    # The CLI prints ConfigError as one line and exits 2: a ParameterError must be one.
    assert issubclass(ParameterError, ConfigError)
    with pytest.raises(ConfigError, match=r"^selector 'power': temperature must be > 0"):
        build("selector", SELECTORS, "power", {"temperature": -1})
    assert build("selector", SELECTORS, "power", {"temperature": "0.5"}) == Stochastic("power", 0.5)
