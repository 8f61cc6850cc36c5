"""The kinds of teacher a config can name, with what each can do: the one place that knows the
oracle from an LLM. Configs, the trial's assembly and the runner ask :func:`teacher_kind`
rather than compare backend names.

The constructors live with the teachers (`ray_asd.teacher.build`); this registry holds only
facts, so that configs can validate against it without importing any teacher.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray_asd.errors import ConfigError


@dataclass(frozen=True)
class TeacherKind:
    """What a teacher backend is.

    Attributes:
        name: the config's ``teacher.backend``.
        llm: writes with a language model through a completion backend, so it can also judge
            (the judge and lion strategies) and its calls are cached; False: the oracle, a
            function that rewrites the seed's numbers and answers with the task's solver.
        loads_model: loads a local model (``revision`` pins it, GPUs can serve it).
        engine: served by the runner's teacher pool of engine actors shared by all trials
            (the oracle runs inside each trial).
    """

    name: str
    llm: bool
    loads_model: bool
    engine: bool


TEACHER_KINDS: dict[str, TeacherKind] = {
    kind.name: kind
    for kind in (
        TeacherKind("oracle", llm=False, loads_model=False, engine=False),
        TeacherKind("transformers", llm=True, loads_model=True, engine=True),
        TeacherKind("vllm", llm=True, loads_model=True, engine=True),
        TeacherKind("openai", llm=True, loads_model=False, engine=True),
    )
}


def teacher_kind(backend: str) -> TeacherKind:
    """The kind a ``teacher.backend`` names.

    Raises:
        ConfigError: an unknown backend, naming the known ones.
    """
    try:
        return TEACHER_KINDS[backend]
    except KeyError:
        raise ConfigError(
            f"teacher.backend: unknown {backend!r}; use one of {', '.join(TEACHER_KINDS)}"
        ) from None
