"""Runner fixtures: one local 2-node Ray cluster per test run.

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

from ray_asd.runner.run import IDLE_WORKERS_LIVE


@dataclass(frozen=True)
class LocalCluster:
    address: str  # the head's GCS address, HOST:PORT, as `ray-asd run --address` takes
    head_node_id: str
    worker_node_id: str
    worker_raylet_pid: int  # the parent of every worker process on the worker node


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
