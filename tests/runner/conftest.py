"""Runner fixtures: one local 2-node Ray cluster per test process (with pytest-xdist, one in
each worker that runs a runner unit: tests/conftest.py).

The cluster mirrors cluster.yaml: a head node with no CPUs for trials (the driver and the
teacher pool live there) and a worker with 2 CPUs where trials and scoring actors run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.state import list_actors
from ray.util.state.common import ActorState

from ray_asd.runner.run import IDLE_WORKERS_LIVE


@dataclass(frozen=True)
class LocalCluster:
    address: str  # the head's GCS address, HOST:PORT, as `ray-asd run --address` takes
    head_node_id: str
    worker_node_id: str
    worker_raylet_pid: int  # the parent of every worker process on the worker node

    def actors(self, class_name: str | None = None) -> list[ActorState]:
        """Every actor this cluster has had (alive or dead), of ``class_name`` if given. Asked
        by address: with none, Ray's state API asks the cluster started last on this machine,
        the other xdist worker's when both run a runner unit."""
        filters = [("class_name", "=", class_name)] if class_name else None
        return list_actors(address=self.address, filters=filters, detail=True, limit=10_000)


@pytest.fixture(scope="session")
def ray_cluster(model_cache: Path) -> Iterator[LocalCluster]:
    saved = os.environ.get("RAY_ASD_CACHE")
    os.environ["RAY_ASD_CACHE"] = str(model_cache)  # every Ray process inherits it
    os.environ.setdefault(*IDLE_WORKERS_LIVE)  # as `ray-asd run` starts a local Ray
    # The dashboard on a free port (0): pytest-xdist's workers may each start a cluster.
    head = {"num_cpus": 0, "include_dashboard": True, "dashboard_port": 0}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    worker = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    try:
        raylet = worker.all_processes["raylet"][0].process.pid
        yield LocalCluster(cluster.address, cluster.head_node.node_id, worker.node_id, raylet)
    finally:
        ray.shutdown()
        cluster.shutdown()
        if saved is None:
            os.environ.pop("RAY_ASD_CACHE", None)
        else:
            os.environ["RAY_ASD_CACHE"] = saved
