"""The operator with `--events-queue`: a job is seen through ECS task state events from SQS (the
Fargate player emits them), with no DescribeTasks after its launch, and its Events and status
are the same as with polling."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from support.fargate import REGION, FakeFargate
from support.jobs import ecsjob
from support.moto_server import MotoServer
from support.operator_env import Kube, OperatorProcess, wait_for

NAMESPACE = "events"


@pytest.fixture(scope="module")
def queue(moto_server: MotoServer) -> Iterator[str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=f"operator-events-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture(scope="module")
def events_operator(
    kubeconfig: Path, kube: Kube, moto_server: MotoServer, queue: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, moto_server, tmp_path_factory.mktemp("events"), "-n", NAMESPACE,
                              "--allow-inline-cluster", "--events-queue", queue, "--resync-interval", "1h")  # fmt: skip
    process.start()
    yield process
    process.stop()


def test_a_job_is_seen_through_task_events_without_describe_tasks(
    events_operator: OperatorProcess, kube: Kube, fargate: FakeFargate, queue: str
) -> None:
    name = f"ev-{uuid.uuid4().hex[:8]}"
    kube.create("ecsjobs", ecsjob(name, fargate, taskCount=2, pollingInterval="1s"), namespace=NAMESPACE)
    status = wait_for(lambda: (s := kube.status(name, NAMESPACE)).get("active") == 2 and s, what="two running tasks")
    for task in status["tasks"]:
        fargate.emit(fargate.finish_index(task["taskName"], 0), queue)
    done = kube.wait_phase(name, "Succeeded", namespace=NAMESPACE)
    assert done["progress"] == "2/2" and done["retries"] == 0
    metrics = events_operator.scrape()
    assert metrics["ecsjob_describe_calls_total"] == 0  # the resync (1 h) has not come: events alone
    assert metrics['ecsjob_task_events_total{outcome="applied"}'] == 2
    reasons = [e.reason for e in kube.events(name, NAMESPACE)]
    assert reasons.count("TaskSucceeded") == 2 and reasons.count("Completed") == 1
