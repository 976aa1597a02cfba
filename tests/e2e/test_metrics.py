"""A scrape of the operator's Prometheus endpoint during an end-to-end run."""

from __future__ import annotations

import uuid
from pathlib import Path

from support.fargate import FakeFargate
from support.jobs import ecsjob
from support.operator_env import Kube, OperatorProcess, wait_for

ROOT = Path(__file__).parents[2]


def test_metrics_during_a_run(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    before = operator.scrape()
    name = f"metrics-{uuid.uuid4().hex[:6]}"
    kube.create("ecsjobs", ecsjob(name, fargate, taskCount=2, maxFailCount=1))
    status = wait_for(
        lambda: len([t for t in (kube.status(name).get("tasks") or []) if t.get("arn")]) == 2 and kube.status(name),
        what="2 launched tasks",
    )
    running = operator.scrape()
    assert running['ecsjob_jobs{phase="Running"}'] >= 1
    assert running["ecsjob_task_launches_total"] - before.get("ecsjob_task_launches_total", 0) >= 2
    assert running['ecsjob_aws_calls_total{operation="run_task"}'] >= 2
    assert running["ecsjob_reconcile_duration_seconds_count"] > before.get("ecsjob_reconcile_duration_seconds_count", 0)
    fargate.finish_index(status["tasks"][0]["taskName"], 1)
    wait_for(lambda: kube.status(name).get("retries") == 1, what="a retry")
    # the relaunch follows its launch intent by one tick
    wait_for(lambda: kube.status(name)["tasks"][0].get("attempts") == 2, what="attempt 2 launched")
    for task in kube.status(name)["tasks"]:
        fargate.finish_index(task["taskName"], 0)
    kube.wait_phase(name, "Succeeded")
    after = wait_for(lambda: (m := operator.scrape())['ecsjob_jobs{phase="Succeeded"}'] >= 1 and m, what="metrics")
    assert after["ecsjob_task_failures_total"] - before.get("ecsjob_task_failures_total", 0) >= 1
    assert after["ecsjob_task_retries_total"] - before.get("ecsjob_task_retries_total", 0) >= 1
    assert after['ecsjob_aws_calls_total{operation="describe_tasks"}'] >= 1
    assert after['ecsjob_events_total{reason="Completed"}'] >= 1
