"""Failover: two replicas of one shard peer through kopf (KopfPeering); the standby pauses while the
active one runs, and takes the jobs over when it dies (kill -9), without launching any task twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecsjob_operator.core.identity import job_id
from support.fargate import FakeFargate
from support.jobs import ecsjob
from support.moto_server import MotoServer
from support.operator_env import Kube, OperatorProcess, wait_for

NAMESPACE, PEERING = "failover", "ecsjob-failover"
LIFETIME = "3"  # seconds a silent peer counts as alive (the default is 60)


@pytest.fixture(scope="module")
def replicas(
    kubeconfig: Path, kube: Kube, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[OperatorProcess]]:
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}}
    kube.custom.create_namespaced_custom_object("kopf.dev", "v1", NAMESPACE, "kopfpeerings", peering)
    processes = [
        OperatorProcess(kubeconfig, moto_server, tmp_path_factory.mktemp(f"replica{i}"),
                        "-n", NAMESPACE, "--allow-inline-cluster", "--peering", PEERING, "--priority", str(priority),
                        standalone=False, env={"ECSJOB_PEERING_LIFETIME": LIFETIME})
        for i, priority in enumerate((200, 100))
    ]  # fmt: skip
    for process in processes:
        process.start()
    yield processes
    for process in processes:
        process.stop()


def synced(process: OperatorProcess, uid: str) -> bool:
    return any("syncing " in line and uid in line for line in process.log.read_text().splitlines())


def test_the_standby_takes_over_when_the_active_replica_dies(
    replicas: list[OperatorProcess], kube: Kube, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    active, standby = replicas
    name = f"fo-{uuid.uuid4().hex[:8]}"
    uid = kube.create("ecsjobs", ecsjob(name, fargate, taskCount=2), namespace=NAMESPACE)["metadata"]["uid"]
    status = wait_for(lambda: (s := kube.status(name, NAMESPACE)).get("active") == 2 and s, what="two running tasks")
    assert synced(active, uid) and not synced(standby, uid)  # the standby paused while the active one ran
    active.kill()
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    # the standby resumes once the dead peer's lease runs out, and sees what happened meanwhile
    wait_for(lambda: kube.status(name, NAMESPACE).get("succeeded") == 1, timeout=60, what="the standby to take over")
    assert synced(standby, uid)
    fargate.finish_index(status["tasks"][1]["taskName"], 0)
    kube.wait_phase(name, "Succeeded", namespace=NAMESPACE)
    prefix = f"heimdall-job-{job_id(uid)}-"
    launches = [b for b in moto_server.bodies("RunTask") if b.get("startedBy", "").startswith(prefix)]
    assert len(launches) == 2, "a task was launched twice"
    events = kube.events(name, NAMESPACE)
    assert [e.reason for e in events].count("Prepared") == 1
    assert [e.reason for e in events].count("TaskSucceeded") == 2
