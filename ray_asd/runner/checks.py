"""The driver's checks before it writes anything or starts Tune: the experiment's state in
storage (new, or resumable and unchanged), the cluster address, whether each resource request
fits a node of the cluster, and the lock that keeps a second driver off the experiment folder.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ray
from ray import tune

from ray_asd.config import TeacherConfig
from ray_asd.errors import ConfigError
from ray_asd.experiment import ExperimentConfig, ResourcesConfig, TeacherResources
from ray_asd.kinds import teacher_kind
from ray_asd.redact import redact
from ray_asd.teacher.backends import engine_shards
from ray_asd.tracking import flatten, flattened, leaves, nest, read_record

RECORD = "experiment.json"  # the config the experiment runs with, redacted (resume compares)
LOCK = "driver.lock"  # held by the running driver; names its pid and host
KINDS = ("CPU", "GPU")  # the resources a config asks for


@dataclass(frozen=True)
class Pool:
    """A pool of engines the driver starts: the teacher's or the judge's."""

    role: str  # teacher, judge
    llm: TeacherConfig
    resources: TeacherResources

    @property
    def section(self) -> str:
        """The config section of ``llm``: teacher, judge.llm."""
        return "teacher" if self.role == "teacher" else f"{self.role}.llm"


@dataclass(frozen=True)
class Request:
    """What one trial, actor or engine asks Ray for; ``count`` bundles of it that may land on
    different nodes (a tensor-parallel vLLM engine)."""

    key: str  # the config key that sets it, e.g. resources.trial
    what: str  # e.g. "per trial"
    cpus: float
    gpus: float
    count: int = 1


def check_state(config: ExperimentConfig, folder: Path, where: str, resume: bool) -> None:
    """A new experiment must not exist yet; a resumed one must, with the settings it ran
    with, or its trials would continue under others. Reads only."""
    tune_path = folder / "tune"
    restorable = tune.Tuner.can_restore(str(tune_path))
    if resume and not restorable:
        stopped_early = " (stopped before Tune saved its state: run it without --resume)"
        raise ConfigError(
            f"{where}: --resume: no experiment {config.name!r} to continue in {folder.parent}"
            + (stopped_early if tune_path.exists() else "")
        )
    if not resume and restorable:
        raise ConfigError(
            f"{where}: name: experiment {config.name!r} exists in {folder.parent}; pass --resume "
            "to continue it, or choose another name (--set name=...)"
        )
    record = folder / RECORD
    if not resume or not record.is_file():
        return
    before = read_record(record, f"{where}: --resume: ", "delete it to resume unchecked")
    changed = changed_settings(before, config)
    if changed:
        raise ConfigError(
            f"{where}: --resume: the experiment ran with other settings of {', '.join(changed)} "
            f"(see {record}); resume with those, or start a new name"
        )


def settings_record(config: ExperimentConfig) -> dict[str, Any]:
    """What ``experiment.json`` holds: the config as validated, nested and whole, secrets
    masked. ``ray-asd export`` rebuilds the config and its cells from it, so nothing is cut or
    turned into text (MLflow's params, ``tracking.flatten``, are; a grid of 30 strategy blocks
    is over their 6000 characters). A grid's strategy blocks keep only the keys they were
    given: a cell is named after those (``experiment._strategy_entry``: a pairing given the
    name ``loss`` is ``loss``, one given none ``loss+balanced``)."""
    data = config.model_dump(mode="json")
    grid = config.grid.model_dump(mode="json", exclude_unset=True)
    data["grid"]["strategy"] = grid.get("strategy")
    return redact(data)


def changed_settings(before: Mapping[str, Any], config: ExperimentConfig) -> list[str]:
    """The dotted keys whose value differs between a recorded experiment and its config now.

    Args:
        before: ``experiment.json``: nested (:func:`settings_record`), or flat as versions
            before it wrote (``tracking.flatten``'s text, compared as such); one written before
            redaction compares masked.
        config: the config now. A key the record lacks counts only if its value now is not
            the default: a newer version's new setting (e.g. ``student.revision``) at its
            default changes nothing.
    """
    if flattened(before):
        recorded, form = _masked(before), _flat_record
    else:
        recorded, form = leaves(redact(before)), _nested_leaves
    now, defaults = form(config), form(ExperimentConfig())
    return sorted(
        key
        for key in recorded.keys() | now.keys()
        if recorded.get(key) != now.get(key)
        and not (key not in recorded and now.get(key) == defaults.get(key))
    )


def _nested_leaves(config: ExperimentConfig) -> dict[str, Any]:
    return leaves(settings_record(config))


def _flat_record(config: ExperimentConfig) -> dict[str, str]:
    """``experiment.json`` as versions before the nested record wrote it: flattened, then
    masked."""
    return _masked(flatten(config.model_dump(mode="json")))


def _masked(flat: Mapping[str, str]) -> dict[str, str]:
    """A flattened config with its secrets masked as ``redact`` masks the nested config."""
    return flatten(redact(nest(flat)))


@contextmanager
def driver_lock(folder: Path, where: str) -> Iterator[None]:
    """Holds the experiment folder for this driver, creating the folder: a second driver of
    the experiment fails at once, naming the first. ``flock``: the kernel drops the lock with
    its holder's last file descriptor, so a killed driver's lock file does not block.

    Raises:
        ConfigError: another process holds the lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK).open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a process that has not written its pid yet"
            raise ConfigError(
                f"{where}: experiment folder {folder} is in use by another driver ({holder}); "
                "wait for it to end, or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield


def check_resources(
    config: ExperimentConfig, pools: list[Pool], where: str, address: str | None
) -> None:
    """Every trial, scoring actor and engine must fit some node of the connected cluster;
    else Ray would keep it pending and Tune wait for ever.

    Raises:
        ConfigError: one line per request no node can hold. On an existing cluster with
            ``resources.max_concurrent_trials`` set (the README's advice for an autoscaling
            cluster, whose node types Ray may not report) a warning line instead.
    """
    nodes = node_shapes()
    # A trial with its actors is checked once each fits alone: one line for one problem.
    problems = unmet_requests(resource_requests(config.resources, pools), nodes) or (
        unmet_requests(trial_group(config.resources), nodes)
    )
    if problems and address is not None and config.resources.max_concurrent_trials is not None:
        print(f"[run] waiting for nodes the cluster does not have yet: {'; '.join(problems)}")
    elif problems:
        raise ConfigError("\n".join(f"{where}: {problem}" for problem in problems))


def resource_requests(resources: ResourcesConfig, pools: list[Pool]) -> list[Request]:
    """What each trial, scoring actor and engine of the experiment asks Ray for."""
    requests = [
        Request("resources.trial", "per trial", resources.trial.cpus, resources.trial.gpus),
        Request(
            "resources.scoring", "per scoring actor", resources.scoring.cpus, resources.scoring.gpus
        ),
    ]
    for pool in pools:
        what = f"per {pool.role} engine"
        parallel = engine_shards(pool.llm)
        if parallel > 1:  # `teacher_pool._placement`: a bundle of 1 GPU + 1 CPU per shard
            key = f"{pool.section}.vllm.tensor_parallel_size"
            requests.append(Request(key, what, 1.0, 1.0, parallel))
        else:
            cpus = pool_cpus(pool.llm, pool.resources)
            requests.append(Request(f"resources.{pool.role}", what, cpus, pool.resources.gpus))
    return requests


def trial_group(resources: ResourcesConfig) -> list[Request]:
    """A trial's placement group, its scoring actors' bundle included, is on one node
    (`placement.py`): trial and actors together must fit a node. None with shared engines
    (they are outside the trials) or actors that hold nothing."""
    trial, scoring = resources.trial, resources.scoring
    if scoring.shared or not (scoring.cpus or scoring.gpus):
        return []
    what = f"per trial and its {scoring.actors} scoring actor(s), on one node"
    cpus, gpus = (
        trial.cpus + scoring.actors * scoring.cpus,
        trial.gpus + scoring.actors * scoring.gpus,
    )
    return [Request("resources.scoring", what, cpus, gpus)]


def unmet_requests(requests: list[Request], nodes: list[dict[str, float]]) -> list[str]:
    """The requests no node can hold (Ray would keep them pending for ever), one line each
    naming the key and what the cluster has.

    Args:
        requests: from :func:`resource_requests`.
        nodes: each node's resources (``{"CPU": 2.0, "GPU": 0.0, ...}``), :func:`node_shapes`.
    """
    most = {kind: max((node.get(kind, 0.0) for node in nodes), default=0.0) for kind in KINDS}
    total = {kind: sum(node.get(kind, 0.0) for node in nodes) for kind in KINDS}
    has = (
        f"the cluster's {len(nodes)} node(s) have at most "
        + " and ".join(f"{_number(most[kind])} {kind}" for kind in KINDS)
        + " each"
    )
    problems = []
    for request in requests:
        need = {"CPU": request.cpus, "GPU": request.gpus}
        if request.count > 1 and total["GPU"] < request.count * request.gpus:
            problems.append(
                f"{request.key}: {request.count} GPUs {request.what}, but the cluster has "
                f"{_number(total['GPU'])} GPU in all"
            )
        elif not any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes):
            short = [kind for kind in KINDS if most[kind] < need[kind]] or list(KINDS)
            if request.count > 1:
                where = request.key
            else:
                where = " and ".join(f"{request.key}.{kind.lower()}s" for kind in short)
            asked = " + ".join(f"{_number(need[kind])} {kind}" for kind in KINDS if need[kind])
            problems.append(f"{where}: {asked} {request.what}, but {has}")
    return problems


def node_shapes() -> list[dict[str, float]]:
    """The resources of each node the cluster has, and of each node type its autoscaler can
    add where Ray publishes them (the cluster config Ray Train reads)."""
    shapes = [dict(node["Resources"]) for node in ray.nodes() if node["Alive"]]
    try:  # a private API: absent on some versions and under Ray Client
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:
        config = None
    if config is not None:
        shapes += [dict(g.resources) for g in config.node_group_configs if g.max_count != 0]
    return shapes


def _number(value: float) -> str:
    return f"{value:g}"


def check_address(address: str | None) -> None:
    """A ``ray://host:port`` or ``host:port`` address must accept a connection: fail in a
    second with the flag named, not after Ray's long connection retries."""
    if address in (None, "", "auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise ConfigError(f"--address {address}: {error}") from None
    if not host or not port:
        raise ConfigError(f"--address {address}: expected ray://HOST:PORT, HOST:PORT or auto")
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        raise ConfigError(
            f"--address {address}: cannot connect to {host}:{port} ({error})"
        ) from None


def pool_cpus(llm: TeacherConfig, resources: TeacherResources) -> float:
    """CPUs per engine: as configured, else 1 for a kind served by engines and none for one
    that is not (the oracle: a function each trial runs)."""
    if resources.cpus is not None:
        return resources.cpus
    return 1.0 if teacher_kind(llm.backend).engine else 0.0
