"""MLflow: one experiment per config, one run per trial, metrics per iteration.

Steps: iteration t is logged at step t, the warm-up at step -1 and the base model at step -2,
so every curve starts from the untrained student. The run id travels in the trial's
checkpoint, so a trial restored by Tune continues its run instead of opening a new one, and
logging is idempotent per step: a restored trial re-sends its rows, MLflow gets each once.

A store that is down or busy (a tracking server restarting, a SQLite file locked past its
20 s busy timeout by another trial's write) does not fail a trial whose work is saved: every
call is tried 3 times, 0.5 s and 2 s apart, and :meth:`TrialRun.sync` then logs one warning
line and keeps the rows for its next call, which sends them first.

Nothing secret reaches MLflow from here: params and tags pass through `ray_asd.redact`, and
so does every error text this module logs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from sqlalchemy.exc import OperationalError

from ray_asd.errors import ConfigError
from ray_asd.redact import redact, redact_text

log = logging.getLogger(__name__)
T = TypeVar("T")

# MLflow limits: params and metrics per log_batch call, characters per param value.
BATCH = 100
MAX_PARAM = 6000
STEP_OF_PHASE = {"base": -2, "warmup": -1}
STEP_MARKER = "n_synthetic"
GRID_TAG = "ray_asd.grid"  # experiment tag: the grid's axes, for `ray-asd report`
GRID_AXES = ("strategy", "student", "task", "seed")
# The experiment's kind, as MLflow 3 names it (its UI's enum; `finetuning` is one of its
# "machine learning" kinds, not GenAI). MLflow 3.17's UI picks the page an experiment opens on
# from its own GenAI / Model training switch (the URL's ``workflowType``, else the browser's
# last choice, GenAI at first), so the link ray-asd prints (:func:`runs_link`) sets it too.
KIND_TAG = ("mlflow.experimentKind", "finetuning")
RUNS_VIEW = "runs?workflowType=machine_learning"
STATUS_TAG = "ray_asd.status"  # a trial run's end, where MLflow's status cannot say it
STOPPED_EARLY = "stopped_early"  # stopped by tune.scheduler: its curve ends at the stop
STOPPED_AT_TAG = "ray_asd.stopped_at_iteration"
MAX_EXPERIMENT_TAG = 5000
RETRY_SECONDS = (0.5, 2.0)  # the waits between the 3 tries of a tracking call
# MLflow's HTTP client retries each request 7 times with backoff: one call to a server that is
# down took 246 s here, so a trial's 3 tries would stall it ~12 minutes per checkpoint. A
# trial's calls are retried by `retried` and wait for the next checkpoint (the final ones for
# Tune's retry): its client sends each request once, unless the user set another number.
TRIAL_HTTP_RETRIES = "0"
# MLflow errors that a retry cannot fix (a wrong run id, a bad value): raised at once.
_FINAL = frozenset(
    ErrorCode.Name(code)
    for code in (INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, RESOURCE_ALREADY_EXISTS)
)


def transient(error: BaseException) -> bool:
    """Whether a tracking call's error may pass: a store down or busy (MLflow's errors for a
    locked database or an HTTP failure, the network's), not a request the store refuses."""
    if isinstance(error, MlflowException):
        return error.error_code not in _FINAL
    return isinstance(error, OSError | OperationalError)


def retried(call: Callable[[], T]) -> T:
    """``call()``, tried again after each wait of RETRY_SECONDS while its error is transient.

    Raises:
        Exception: the last try's error, or the first one that is not transient.
    """
    for wait in RETRY_SECONDS:
        try:
            return call()
        except Exception as error:
            if not transient(error):
                raise
            time.sleep(wait)
    return call()


def default_uri(storage: Path) -> str:
    """The embedded default: a SQLite file next to the experiment folders."""
    return f"sqlite:///{(storage / 'mlflow.db').resolve()}"


def ui_command(uri: str, experiment_id: str | None = None) -> str:
    """The command that shows the runs of ``uri`` in the browser; with ``experiment_id``, the
    address of that experiment's runs (:func:`runs_link`) to open."""
    link = runs_link(uri, experiment_id) if experiment_id else uri
    if uri.startswith(("http://", "https://")):
        return f"open {link}"
    command = f"mlflow ui --backend-store-uri {uri}"
    return f"{command}, then open {link}" if experiment_id else command


def runs_link(uri: str, experiment_id: str) -> str:
    """The address of the experiment's runs in the MLflow UI, in its Model training view (a
    tracking server's own address; else where ``mlflow ui`` serves by default)."""
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/{RUNS_VIEW}"


def client_of(uri: str) -> MlflowClient:
    """An MLflow client of ``uri``. MLflow prints each finished run's link with the URI as
    given (to the trial's log, which Ray forwards to the driver): where the URI carries
    credentials, it prints none."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if redact_text(uri, secrets=[]) != uri:
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    return MlflowClient(uri)


def _trial_client(uri: str) -> MlflowClient:
    """A trial's client: each HTTP request sent once (TRIAL_HTTP_RETRIES)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", TRIAL_HTTP_RETRIES)
    return client_of(uri)


def prepare_experiment(uri: str, name: str, storage: Path) -> str:
    """The id of MLflow experiment ``name`` (created if needed) at tracking ``uri``.

    Created by the driver before any trial starts, so trials never race to create it. With
    a database URI the artifacts go to ``storage/mlartifacts``; a tracking server chooses its
    own artifact store.
    """
    client = client_of(uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        raise ConfigError(
            f"tracking.experiment: MLflow experiment {name!r} is deleted at {uri}; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or "
            "choose another name"
        )
    if experiment is None:
        location = None
        if not uri.startswith(("http://", "https://", "databricks")):
            location = (storage / "mlartifacts").resolve().as_uri()
        experiment_id = client.create_experiment(name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    client.set_experiment_tag(experiment_id, *KIND_TAG)  # also on experiments made before it
    return experiment_id


def record_grid(uri: str, experiment_id: str, cells: list[dict[str, str]]) -> None:
    """Tags the MLflow experiment with the grid's axes (the labels of every cell's tags), so
    that `ray-asd report` can name the cells that have no run yet. Skipped for a grid whose
    labels do not fit in a tag."""
    axes = {axis: list(dict.fromkeys(tags[axis] for tags in cells)) for axis in GRID_AXES}
    text = json.dumps(axes)
    if len(text) <= MAX_EXPERIMENT_TAG:
        client_of(uri).set_experiment_tag(experiment_id, GRID_TAG, text)


def read_record(record: Path, where: str, advice: str) -> dict[str, Any]:
    """A config record (``experiment.json``, a trial's ``config.json``) as written.

    Raises:
        ConfigError: one line, ``<where><record>: unreadable (...); <advice>``, when it is cut
            short or not a JSON object.
    """
    try:
        before = json.loads(record.read_text(encoding="utf-8"))
        if not isinstance(before, dict):
            raise ValueError("not a JSON object")
    except ValueError as error:
        raise ConfigError(f"{where}{record}: unreadable ({error}); {advice}") from None
    return before


def leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"task": {"params": {"max_ops": 3}}}`` -> ``{"task.params.max_ops": 3}``: every value
    that is not a non-empty mapping, under its dotted key, as it is."""
    found: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            found.update(leaves(value, f"{name}."))
        else:
            found[name] = value
    return found


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`leaves` (and of :func:`flatten`, values left as text)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def flatten(data: Mapping[str, Any]) -> dict[str, str]:
    """:func:`leaves` as MLflow params: ``{"task": {"params": {"max_ops": 3}}}`` ->
    ``{"task.params.max_ops": "3"}``, a string as itself, anything else as JSON text, each cut
    at MAX_PARAM characters. Lossy: what MLflow keeps, not a record to rebuild a config from."""
    return {
        key: (value if isinstance(value, str) else json.dumps(value, default=str))[:MAX_PARAM]
        for key, value in leaves(data).items()
    }


def flattened(record: Mapping[str, Any]) -> bool:
    """Whether a config record is :func:`flatten`'s output (every value a string), the form of
    ``experiment.json`` before ray-asd wrote it nested; a nested config's sections are
    mappings."""
    return all(isinstance(value, str) for value in record.values())


class TrialRun:
    """The MLflow run of one trial."""

    def __init__(self, uri: str, run_id: str) -> None:
        self.client = _trial_client(uri)
        self.run_id = run_id
        # Every row carries n_synthetic: its history lists the steps logged so far.
        history = retried(lambda: self.client.get_metric_history(run_id, STEP_MARKER))
        self.logged_steps = {metric.step for metric in history}
        # Rows not yet logged, with the time they were first sent: a store that was down gets
        # them at the next call, and a resend of a half-sent row repeats its exact metrics.
        self.pending: dict[int, tuple[int, dict[str, Any]]] = {}

    @classmethod
    def start(
        cls,
        uri: str,
        experiment_id: str,
        name: str,
        tags: dict[str, str],
        params: dict[str, Any],
    ) -> TrialRun:
        """Opens a run with ``tags`` and the flattened ``params`` (a config), both redacted:
        the config by its keys and values, the tags by their values (labels such as
        ``ray_asd.warmup_key`` name no secret)."""
        client = _trial_client(uri)
        labels = {key: redact_text(value) for key, value in tags.items()}
        run = retried(lambda: client.create_run(experiment_id, run_name=name, tags=labels))
        items = [Param(k, v) for k, v in flatten(redact(params)).items()]
        for i in range(0, len(items), BATCH):
            retried(lambda i=i: client.log_batch(run.info.run_id, params=items[i : i + BATCH]))
        return cls(uri, run.info.run_id)

    def log_rows(self, rows: list[dict[str, Any]]) -> None:
        """Every numeric value of each metrics row at the row's step, after the rows an earlier
        call could not send; steps logged before are skipped. The step marker goes last, so a
        step counts as logged only once all of its values are.

        Raises:
            MlflowException, OSError: the store stayed unavailable (the rows are kept).
        """
        now = int(time.time() * 1000)
        for row in rows:
            step = STEP_OF_PHASE.get(row["phase"], row["iteration"])
            if step not in self.logged_steps:
                self.pending.setdefault(step, (now, row))
        for step, (stamp, row) in list(self.pending.items()):
            metrics = [
                Metric(key, float(value), stamp, step)
                for key, value in row.items()
                if key not in ("iteration", "phase", STEP_MARKER) and isinstance(value, int | float)
            ]
            metrics.append(Metric(STEP_MARKER, float(row[STEP_MARKER]), stamp, step))
            for i in range(0, len(metrics), BATCH):
                batch = metrics[i : i + BATCH]
                retried(lambda batch=batch: self.client.log_batch(self.run_id, metrics=batch))
            self.logged_steps.add(step)
            del self.pending[step]

    def sync(self, rows: list[dict[str, Any]], artifacts: Iterable[Path] = ()) -> bool:
        """:meth:`log_rows` and :meth:`log_artifact` for a trial whose work is saved: a store
        that stays unavailable is one warning line, and the rows go at the next call.

        Returns:
            Whether everything was logged.
        """
        try:
            self.log_rows(rows)
            for path in artifacts:
                self.log_artifact(path)
        except Exception as error:
            if not transient(error):
                raise
            log.warning(
                "MLflow run %s: tracking unavailable (%s); %d metrics rows wait for the next "
                "checkpoint",
                self.run_id,
                redact_text((str(error) or repr(error)).splitlines()[0]),
                len(self.pending),
            )
            return False
        return True

    def log_summary(self, values: dict[str, float]) -> None:
        """Metrics of the whole trial (no step of their own: logged at step 0)."""
        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, 0) for key, value in values.items()]
        retried(lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def tag(self, key: str, value: str) -> None:
        tags = [RunTag(key, redact_text(value))]
        retried(lambda: self.client.log_batch(self.run_id, tags=tags))

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        if path.is_dir():
            retried(lambda: self.client.log_artifacts(self.run_id, str(path), folder))
        else:
            retried(lambda: self.client.log_artifact(self.run_id, str(path), folder))

    def finish(self, status: str = "FINISHED") -> None:
        retried(lambda: self.client.set_terminated(self.run_id, status))

    def stopped_early(self, iteration: int | None) -> None:
        """Ends the run of a trial that tune.scheduler stopped after iteration ``iteration``
        (its metrics up to there are logged): tagged so, status KILLED (Tune ended it)."""
        tags = [RunTag(STATUS_TAG, STOPPED_EARLY)]
        if iteration is not None:
            tags.append(RunTag(STOPPED_AT_TAG, str(iteration)))
        retried(lambda: self.client.log_batch(self.run_id, tags=tags))
        self.finish("KILLED")
