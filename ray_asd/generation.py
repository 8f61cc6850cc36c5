"""The loop's generation stage: the teacher writes a new question from each picked seed and
answers it; the filters keep the new, valid ones; rejected seeds are tried again."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ray_asd.config import TrialConfig
from ray_asd.filters import NoveltyIndex, RejectReason, reject_reason
from ray_asd.parts import TrialParts
from ray_asd.records import Item, Spend


def novelty_index(config: TrialConfig, pool: pd.DataFrame, accepted: list[Item]) -> NoveltyIndex:
    """The near-duplicate index over the seeds and every accepted item so far."""
    novelty = NoveltyIndex(config.generation.ngram, config.generation.near_duplicate_threshold)
    for question in [*pool["question"], *(item.question or "" for item in accepted)]:
        novelty.add(question)
    return novelty


def generate_items(
    parts: TrialParts,
    picked: pd.DataFrame,
    rng: np.random.Generator,
    novelty: NoveltyIndex,
    t: int,
    label: str,
    spent: int = 0,
) -> list[Item]:
    """Generation for every picked seed, retried up to ``max_attempts`` times, and not
    begun again once the trial's teacher tokens (``spent`` before this call) reach the
    schedule's cap (the batch in flight completes).

    Returns every item the teacher produced, accepted or not, with its provenance.
    """
    config, schedule, task, teacher = (
        parts.plan.config,
        parts.plan.schedule,
        parts.task,
        parts.teacher,
    )
    if len(picked):
        parts.log(f"[trial] t={t}: the teacher writes from {len(picked)} picked seeds")
    pending = list(zip(picked["id"], picked["question"], strict=True))
    items: list[Item] = []
    for attempt in range(1, config.generation.max_attempts + 1):
        if not pending or schedule.spent(spent):
            break
        seeds = rng.integers(0, 2**31 - 1, size=len(pending)).tolist()
        generated = teacher.generate(task, [q for _, q in pending], seeds)
        retry = []
        for (seed_id, seed_question), new in zip(pending, generated, strict=True):
            reason = (
                RejectReason.TEACHER_ERROR
                if new.error is not None
                else reject_reason(task, new.question, new.answer, novelty)
            )
            if reason is None:
                novelty.add(new.question)
            else:
                retry.append((seed_id, seed_question))
            spent += Spend.of([new]).tokens
            items.append(
                Item(
                    id=f"t{t}-{len(items)}",
                    seed_id=seed_id,
                    iteration=t,
                    attempt=attempt,
                    strategy=label,
                    teacher=teacher.model,
                    question=new.question,
                    answer=new.answer,
                    final_answer=task.extract(new.answer) if new.answer else None,
                    prompt_tokens=new.prompt_tokens,
                    completion_tokens=new.completion_tokens,
                    teacher_calls=new.calls,
                    teacher_retries=new.retries,
                    teacher_cached=new.cached,
                    teacher_error=new.error,
                    accepted=reason is None,
                    reject_reason=None if reason is None else str(reason),
                )
            )
        pending = retry
    return items
