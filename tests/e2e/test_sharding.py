"""Horizontal scale: two operator replicas with `--shards 2` split the jobs of a namespace by uid.

Every job is reconciled by exactly one replica (one Prepared Event, its tasks launched once at moto),
and every job ends right.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecsjob_operator.core.identity import Shard, job_id
from support.fargate import FakeFargate
from support.jobs import ecsjob
from support.moto_server import MotoServer
from support.operator_env import Kube, OperatorProcess, wait_for


@pytest.fixture(scope="module")
def shards(
    kubeconfig: Path, kube: Kube, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[OperatorProcess]]:
    processes = [
        OperatorProcess(kubeconfig, moto_server, tmp_path_factory.mktemp(f"shard{i}"),
                        "-n", "shards", "--allow-inline-cluster", "--shards", "2", "--shard-index", str(i))
        for i in range(2)
    ]  # fmt: skip
    for process in processes:
        process.start()
    yield processes
    for process in processes:
        process.stop()


def test_two_shards_split_the_jobs_and_each_job_runs_once(
    shards: list[OperatorProcess], kube: Kube, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    names = [f"sh-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    created = [kube.create("ecsjobs", ecsjob(name, fargate, taskCount=2), namespace="shards") for name in names]
    for name in names:
        wait_for(lambda n=name: kube.status(n, "shards").get("active") == 2, what=f"{name} running")  # type: ignore[misc]
        for task in kube.status(name, "shards")["tasks"]:
            fargate.finish_index(task["taskName"], 0)
    for name in names:
        kube.wait_phase(name, "Succeeded", namespace="shards")
    owners = {0: 0, 1: 0}
    for body in created:
        uid = body["metadata"]["uid"]
        prefix = f"heimdall-job-{job_id(uid)}-"
        launches = [b for b in moto_server.bodies("RunTask") if b.get("startedBy", "").startswith(prefix)]
        assert len(launches) == 2, "a task was launched twice"
        prepared = [e for e in kube.events(body["metadata"]["name"], "shards") if e.reason == "Prepared"]
        assert len(prepared) == 1
        owners[0 if Shard(2, 0).serves(uid) else 1] += 1
    logs = [p.log.read_text() for p in shards]
    for body in created:
        name, uid = body["metadata"]["name"], body["metadata"]["uid"]
        mine = 0 if Shard(2, 0).serves(uid) else 1
        assert f"shards/{name} Prepared" in logs[mine] and f"shards/{name} Prepared" not in logs[1 - mine]
    assert owners[0] and owners[1]  # both replicas did work
