"""A scoring pass as a Ray Dataset: the table's batches mapped by a task that forwards each one
to a long-lived engine actor.

The engines (the trial's scoring actors, or the experiment's shared student engines) load the
model once and outlive every Dataset: Ray Data's own actor pools live for one execution, and
restarting an engine per pass cost ~6 s (transformers, CPU) to ~25 s (vLLM, CPU) here, while a
Dataset whose task UDF forwards batches to existing actors costs ~0.1 s (bench/scoring.py,
row ``ray data -> actors``). No Ray Data API keeps actors across executions
(ray-project/ray#46479).

Batches are cut here, not by Ray Data: batch ``i`` is block ``i`` of the Dataset (one block
per batch, ``batch_size=None``) and goes to engine ``i mod engines``, so a pass's batches, and
therefore its answers (left padding depends on a batch's rows), do not depend on Ray's timing.
Rows come back in the table's order. The Dataset is made by ``from_blocks`` (metadata computed
here), not ``from_pandas``, whose metadata tasks need a CPU each: on a cluster whose CPUs the
trials and engines hold, a pass would wait for one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

PART = "_batch"  # the batch index a row travels with through the Dataset


def batch_rows(rows: int, engines: int, batch_size: int) -> int:
    """Rows per batch: at most ``batch_size``, fewer when that keeps every engine busy (64
    rows on 4 engines: 4 batches of 16)."""
    return max(1, min(batch_size, math.ceil(rows / max(engines, 1))))


def scoring_pass(
    table: pd.DataFrame,
    engines: Sequence[Any],
    method: str,
    args: tuple[Any, ...],
    batch_size: int,
) -> pd.DataFrame:
    """``engine.<method>(batch, *args)`` over the table's batches, as one Ray Dataset.

    Args:
        table: the rows to score (seeds or test items).
        engines: actor handles that live longer than the pass.
        method: the engines' method that scores one batch and returns its rows in order.
        args: further arguments of every call (the columns to compute, the adapter to serve).
        batch_size: the most rows per batch (see :func:`batch_rows`).

    Returns:
        The scored rows, in the table's order.
    """
    if table.empty:  # a Dataset of no rows has no columns: the engines give them
        return ray.get(getattr(engines[0], method).remote(table, *args))
    quiet()
    size = batch_rows(len(table), len(engines), batch_size)
    batches = [
        table.iloc[start : start + size].assign(**{PART: index})
        for index, start in enumerate(range(0, len(table), size))
    ]
    scored = (
        ray.data.from_blocks(batches)
        .map_batches(
            forwarder(),
            batch_size=None,  # one block = one batch, as cut above
            batch_format="pandas",
            fn_kwargs={"engines": list(engines), "method": method, "args": args},
            # The task only waits on an engine: it holds no CPU, so a cluster whose CPUs the
            # trials and engines hold still runs it, outside the trial's placement group.
            num_cpus=0,
            compute=ray.data.TaskPoolStrategy(size=len(engines)),
        )
        .to_pandas()
    )
    ordered = scored.sort_values(PART, kind="stable").drop(columns=[PART])
    return plain_dtypes(ordered.reset_index(drop=True))


def plain_dtypes(table: pd.DataFrame) -> pd.DataFrame:
    """The columns Ray Data hands back Arrow-backed (``large_string[pyarrow]``,
    ``int64[pyarrow]``) in the dtypes the engines gave: pandas' default string dtype, numpy's
    numbers and booleans, so a pass's table equals the in-process one."""
    kinds = {}
    for name, dtype in table.dtypes.items():
        if isinstance(dtype, pd.ArrowDtype):
            kinds[name] = "str" if _is_text(dtype) else dtype.numpy_dtype
    return table.astype(kinds) if kinds else table


def _is_text(dtype: pd.ArrowDtype) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    )


def forwarder() -> Callable[..., pd.DataFrame]:
    """The Dataset's task UDF, made here so that cloudpickle sends it by value: a worker that
    runs it imports ray and pandas, not ray_asd's runner (torch, transformers: ~10 s)."""

    def forward(
        batch: pd.DataFrame, engines: list[Any], method: str, args: tuple[Any, ...]
    ) -> pd.DataFrame:
        index = int(batch[PART].iloc[0])
        engine = engines[index % len(engines)]
        scored = ray.get(getattr(engine, method).remote(batch.drop(columns=[PART]), *args))
        return scored.assign(**{PART: index})

    return forward


def warm_workers(runtime_env: dict[str, Any], module: str) -> None:
    """Starts, on every node, the worker process the passes of tasks with ``runtime_env`` will
    run in, and has it import ``module`` in a thread while it waits for them.

    A pass's worker unpickles the engines' actor handles, and Ray loads an actor's class to
    build its handle (``FunctionActorManager.load_actor_class``): the first pass in a worker
    imports the engines' module (2.5 s with Ray and pandas, torch left to the engines that load
    a model; 8.4 s while it imported torch and transformers). Here that import, and the
    worker's start, overlap whatever the run does next (the first trial's process and its
    scoring actors start); a pass that comes sooner waits only for the rest of it (Python's
    import lock). The raylet gives an idle worker to the next task of the same job and runtime
    env, so passes take these.
    """
    load = ray.remote(loader(module))
    nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
    ray.get(
        [
            load.options(
                num_cpus=0,
                runtime_env=runtime_env,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            ).remote()
            for node in nodes
        ]
    )


def loader(module: str) -> Callable[[], None]:
    """The task that starts importing ``module`` and returns, made here (by value, as
    :func:`forwarder`) so that its worker does not import this module first."""

    def load() -> None:
        import importlib
        import threading

        threading.Thread(target=importlib.import_module, args=(module,), daemon=True).start()

    return load


def quiet() -> None:
    """No progress bars or per-execution banners in the trial's log: a trial runs two passes
    an iteration, and its log is the user's progress report."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
