"""`ecsjob logs` and `kubectl ecsjob logs` for a job the operator ran, logs read from moto."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from support.fargate import FakeFargate
from support.jobs import ecsjob
from support.moto_server import MotoServer
from support.operator_env import Kube, OperatorProcess, wait_for

ROOT = Path(__file__).parents[2]


def cli(kubeconfig: Path, moto: MotoServer, *args: str, kubectl: bool = False) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "AWS_ENDPOINT_URL": moto.url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = ["kubectl", "ecsjob", *args] if kubectl else [sys.executable, "-m", "ecsjob_operator.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def test_logs_of_a_finished_job(
    kubeconfig: Path, kube: Kube, operator: OperatorProcess, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    name = f"logs-{uuid.uuid4().hex[:6]}"
    kube.create("ecsjobs", ecsjob(name, fargate, taskCount=2))
    status = wait_for(lambda: (s := kube.status(name)).get("active") == 2 and s, what="2 running tasks")
    early = cli(kubeconfig, moto_server, "logs", name)
    assert early.returncode == 1 and "has no logs yet" in early.stderr
    for i, task in enumerate(status["tasks"]):
        arn = fargate.finish_index(task["taskName"], 0)
        fargate.write_logs(arn, [f"hello from task {i}", "done"])
    done = kube.wait_phase(name, "Succeeded")
    rep = cli(kubeconfig, moto_server, "logs", name, "-n", "default")
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.startswith(f"=== {done['logs']['stream']} ===\n\n[")
    assert rep.stdout.rstrip().endswith("] done")
    second = cli(kubeconfig, moto_server, "logs", name, "--index", "1")
    assert second.returncode == 0 and "hello from task 1" in second.stdout
    assert cli(kubeconfig, moto_server, "logs", name, "--index", "7").returncode == 2


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_plugin(kubeconfig: Path, kube: Kube, operator: OperatorProcess, moto_server: MotoServer) -> None:
    missing = cli(kubeconfig, moto_server, "logs", "no-such-job", kubectl=True)
    assert missing.returncode == 1 and "cannot read EcsJob default/no-such-job: 404" in missing.stderr
