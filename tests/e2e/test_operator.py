"""End-to-end: EcsJobs created through the kubernetes client, run by the operator process on moto."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from support.fargate import CLUSTER, REGION, FakeFargate
from support.operator_env import Kube, OperatorProcess, wait_for

ROOT = Path(__file__).parents[2]
TEMPLATE = json.loads((ROOT / "manifests" / "samples" / "task-definition.json").read_text())


def name() -> str:
    return f"job-{uuid.uuid4().hex[:8]}"


def cluster_ctx(fargate: FakeFargate) -> dict[str, Any]:
    return {
        "clusterName": CLUSTER,
        "region": REGION,
        "vpcConfig": {"subnets": [fargate.subnet], "securityGroups": [fargate.security_group]},
    }


def inline_job(job_name: str, fargate: FakeFargate, **context: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ecsjob.io/v1alpha1",
        "kind": "EcsJob",
        "metadata": {"name": job_name},
        "spec": {
            "command": {"taskDefinition": copy.deepcopy(TEMPLATE), "pollingInterval": "1s"},
            "cluster": cluster_ctx(fargate),
            "context": context,
        },
    }


def running_tasks(fargate: FakeFargate, status: dict[str, Any]) -> list[str]:
    return [t["taskName"] for t in status.get("tasks", []) if t.get("phase") == "Running"]


def test_success_with_three_tasks(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    kube.create("ecsjobs", inline_job(job, fargate, taskCount=3))
    status = wait_for(lambda: len(running_tasks(fargate, s := kube.status(job))) == 3 and s, what="3 running tasks")
    assert status["phase"] == "Running" and status["jobId"] and status["progress"] == "0/3"
    for task in status["tasks"]:
        fargate.finish_index(task["taskName"], 0)
    done = kube.wait_phase(job, "Succeeded", "Failed")
    assert done["phase"] == "Succeeded" and done["succeeded"] == 3 and done["progress"] == "3/3"
    assert {c["type"]: c["status"] for c in done["conditions"]}["Complete"] == "True"
    assert done["logs"]["stream"].startswith("ecs/main/") and done["observedGeneration"] == 1
    assert "production" not in json.dumps(done)  # environment values never reach status
    events = wait_for(lambda: (r := [e.reason for e in kube.events(job)]) and "Completed" in r and r, what="events")
    assert events.count("TaskLaunched") == 3
