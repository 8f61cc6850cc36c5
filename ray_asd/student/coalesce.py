"""Concurrent callers' requests merged into one running engine: a shared vLLM student engine
(``resources.scoring.shared``) takes several trials' batches at once, and each joins the batch
the engine is stepping instead of waiting for the others' calls to end.

A :class:`Merger` drives an engine that takes requests at any time and reports those that
finished at each step (vLLM's ``LLM.enqueue`` and ``LLMEngine.step``). One caller at a time
drives it: it adds every queued caller's requests, steps, and hands each finished output to
its caller; it stops once its own requests are done, and a caller still waiting takes over.
No caller waits for a batch to fill: requests that arrive while the engine runs join it at
its next step, so two trials' passes share the steps they overlap in. Pure logic (a fake
engine tests it in milliseconds: tests/student/test_coalesce.py); the engine is called from
one thread at a time, as vLLM's ``LLM`` needs. :class:`VllmSteps` is that ``LLM`` as a
:class:`Stepper` (`ray_asd.student.vllm_engine` runs its requests through it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

R = TypeVar("R")  # a request
T = TypeVar("T")  # its output
R_contra = TypeVar("R_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)


class Stepper(Protocol[R_contra, T_co]):
    """An engine that takes requests between its steps (never called from two threads)."""

    def add(self, requests: Sequence[R_contra]) -> list[str]:
        """Queues ``requests``; their ids, unique among the requests in flight."""
        ...

    def step(self) -> list[tuple[str, T_co]]:
        """One engine step; ``(id, output)`` of each request that finished in it."""
        ...


@dataclass(eq=False)  # a call is itself: two with equal outputs are not the same call
class _Call:
    """One caller's requests: their outputs by position, or the error that ended them."""

    size: int
    outputs: dict[int, object] = field(default_factory=dict)
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.error is not None or len(self.outputs) == self.size


class Merger(Generic[R, T]):
    """Runs concurrent callers' requests on one :class:`Stepper`, merged into its steps.

    Attributes:
        counts: ``calls`` (of :meth:`run`) and ``busy_periods`` (spans in which the engine had
            requests in flight without a gap): fewer busy periods than calls means calls
            shared the engine's steps.
    """

    def __init__(self, engine: Stepper[R, T]) -> None:
        self._engine = engine
        self._changed = threading.Condition()
        self._queued: list[tuple[_Call, Sequence[R]]] = []
        self._in_flight: dict[str, tuple[_Call, int]] = {}
        self._dropped: set[str] = set()  # requests of calls ended on an error
        self._driving = False
        self.counts = {"calls": 0, "busy_periods": 0}

    def run(self, requests: Sequence[R]) -> list[T]:
        """The outputs of ``requests``, in their order, computed in whatever steps the engine
        takes them; an error of the engine on them is raised here."""
        call = _Call(len(requests))
        if not requests:
            return []
        with self._changed:
            self.counts["calls"] += 1
            self._queued.append((call, requests))
            while not call.done and self._driving:
                self._changed.wait()
            drive = not call.done
            self._driving = self._driving or drive
        if drive:
            try:
                self._drive(call)
            finally:
                with self._changed:
                    self._driving = False
                    self._changed.notify_all()  # a waiting caller takes over
        if call.error is not None:
            raise call.error
        return [call.outputs[i] for i in range(call.size)]  # type: ignore[misc]

    def _drive(self, call: _Call) -> None:
        while not call.done:
            with self._changed:
                queued, self._queued = self._queued, []
            for other, requests in queued:
                self._add(other, requests)
            if not call.done:
                self._step()

    def _add(self, call: _Call, requests: Sequence[R]) -> None:
        try:
            ids = self._engine.add(requests)
        except Exception as error:  # the caller's bad request: raised to that caller only
            self._end([call], error)
            return
        with self._changed:
            self.counts["busy_periods"] += not self._in_flight
            self._in_flight.update({key: (call, i) for i, key in enumerate(ids)})

    def _step(self) -> None:
        # Only the driving thread changes what is in flight: read here without the lock.
        try:
            finished = self._engine.step()
            known = self._in_flight.keys() | self._dropped
            unknown = [key for key, _ in finished if key not in known]
            if unknown:
                raise KeyError(f"the engine finished requests it was not given: {unknown}")
        except Exception as error:  # the engine failed: every request in it is lost
            self._end([call for call, _ in self._in_flight.values()], error)
            return
        with self._changed:
            for key, output in finished:
                if key in self._dropped:
                    self._dropped.discard(key)
                else:
                    call, position = self._in_flight.pop(key)
                    call.outputs[position] = output
            self._changed.notify_all()

    def _end(self, calls: list[_Call], error: Exception) -> None:
        with self._changed:
            for call in calls:
                call.error = error
            ended = {k for k, (call, _) in self._in_flight.items() if call in calls}
            self._dropped |= ended
            self._in_flight = {k: v for k, v in self._in_flight.items() if k not in ended}
            self._changed.notify_all()


@dataclass(frozen=True)
class VllmRequest:
    """One prompt for a vLLM engine: its token ids, its ``SamplingParams`` arguments and its
    adapter (a ``LoRARequest``; None: the base model)."""

    ids: list[int]
    params: dict[str, Any]
    lora: Any


class VllmSteps:
    """A vLLM ``LLM`` as a :class:`Stepper`: requests queued by ``LLM.enqueue`` (each with its
    own adapter and sampling settings), outputs taken as ``LLM.generate`` takes them
    (``LLMEngine.step``; finished requests only, ``generate``'s final-only outputs)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.seconds = 0.0  # inside the engine (a Merger calls it from one thread at a time)

    def add(self, requests: Sequence[VllmRequest]) -> list[str]:
        from vllm import SamplingParams

        start = time.perf_counter()
        ids = self.llm.enqueue(
            [{"prompt_token_ids": r.ids} for r in requests],
            [SamplingParams(**r.params) for r in requests],
            lora_request=[r.lora for r in requests],
            use_tqdm=False,
        )
        self.seconds += time.perf_counter() - start
        # enqueue gives vLLM's internal ids (the LLM's counter, "-", 8 random characters);
        # outputs carry the counter's value alone (LLM.generate sorts them by it).
        return [key.split("-")[0] for key in ids]

    def step(self) -> list[tuple[str, Any]]:
        start = time.perf_counter()
        outputs = self.llm.llm_engine.step()
        self.seconds += time.perf_counter() - start
        return [(output.request_id, output) for output in outputs if output.finished]
