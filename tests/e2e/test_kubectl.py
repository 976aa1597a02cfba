"""What a user sees with kubectl (the real binary) while the operator runs a job."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from support.fargate import FakeFargate
from support.jobs import ecsjob
from support.operator_env import Kube, OperatorProcess, wait_for

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args], input=stdin, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kubectl_apply_get_and_describe(
    kubeconfig: Path, kube: Kube, operator: OperatorProcess, fargate: FakeFargate
) -> None:
    name = f"kubectl-{uuid.uuid4().hex[:6]}"
    manifest = ecsjob(name, fargate, taskCount=3)
    kubectl(kubeconfig, "apply", "--validate=false", "-f", "-", stdin=json.dumps(manifest))

    def launched() -> dict[str, Any] | None:
        status = kube.status(name)
        return status if len([t for t in status.get("tasks", []) if t.get("arn")]) == 3 else None

    status = wait_for(launched, what="3 launched tasks")
    fargate.finish_index(status["tasks"][0]["taskName"], 1)
    wait_for(lambda: kube.status(name).get("retries") == 1, what="a retry")
    # the relaunch follows its launch intent by one tick
    wait_for(lambda: kube.status(name)["tasks"][0].get("attempts") == 2, what="attempt 2 launched")
    for task in kube.status(name)["tasks"]:
        fargate.finish_index(task["taskName"], 0)
    kube.wait_phase(name, "Succeeded")
    table = kubectl(kubeconfig, "get", "ecsjobs", name).splitlines()
    assert table[0].split() == ["NAME", "PHASE", "SUCCEEDED", "RETRIES", "AGE"]
    assert table[1].split()[:4] == [name, "Succeeded", "3/3", "1"]
    wide = kubectl(kubeconfig, "get", "ej", name, "-o", "wide").splitlines()
    assert "JOBID" in wide[0].split() and "all 3 task(s) succeeded" in wide[1]
    phase = kubectl(kubeconfig, "get", "ej", name, "-o", "jsonpath={.status.phase}")
    assert phase == "Succeeded"
