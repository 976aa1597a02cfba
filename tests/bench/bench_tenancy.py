"""Benchmark of the operator process for tenancy: fair share and bounded memory.

The real `ecsjob operator` (a subprocess, shared-cluster defaults) against the Kubernetes API
emulator and a moto server in this process. Prints:
- fair share: namespace team-a launches 8 jobs x 150 tasks, then namespace team-b creates a 1-task
  job; team-b's first-launch latency (creation -> its task in status) and how many of team-a's
  RunTask calls came before it;
- memory: the operator's RSS before and after 1,000 EcsCommands of 100 KB each are indexed.
Usage: python tests/bench/bench_tenancy.py [--jobs 8] [--tasks 150] [--commands 1000] [--kib 100]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e"), str(ROOT / "operator")]

from emulator import EmulatorThread  # noqa: E402

from support.fargate import CLUSTER, REGION, FakeFargate  # noqa: E402
from support.jobs import TEMPLATE  # noqa: E402
from support.moto_server import MotoServer  # noqa: E402
from support.operator_env import Kube, OperatorProcess, wait_for  # noqa: E402

API = "ecsjob.io/v1alpha1"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def setup() -> tuple[EmulatorThread, MotoServer, Kube, FakeFargate, OperatorProcess]:
    moto = MotoServer().start()
    os.environ.update(
        AWS_ENDPOINT_URL=moto.url, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION,
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
    )  # fmt: skip
    crds = [
        yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml")) if p.name != "kustomization.yaml"
    ]
    emulator = EmulatorThread(crds).start()
    kubeconfig = emulator.kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")
    kube = Kube(kubeconfig)
    for namespace in ("team-a", "team-b"):
        kube.core.create_namespace({"metadata": {"name": namespace}})
    fargate = FakeFargate()
    context = {
        "clusterName": CLUSTER,
        "region": REGION,
        "executionRoleArn": TEMPLATE["executionRoleArn"],
        "vpcConfig": {"subnets": [fargate.subnet], "securityGroups": [fargate.security_group]},
    }
    cluster = {
        "apiVersion": API,
        "kind": "EcsCluster",
        "metadata": {"name": "shared"},
        "spec": {"tags": ["shared"], "context": context},
    }
    kube.create("ecsclusters", cluster, namespace=None)
    operator = OperatorProcess(
        kubeconfig, moto, Path(tempfile.mkdtemp()), "-n", "team-a", "-n", "team-b", verbose=False
    )
    operator.start()
    return emulator, moto, kube, fargate, operator


def job(kube: Kube, namespace: str, name: str, tasks: int) -> None:
    spec = {
        "command": {"taskDefinition": TEMPLATE, "taskCount": tasks, "pollingInterval": "5s"},
        "clusterCriteria": ["shared"],
    }
    kube.create("ecsjobs", {"apiVersion": API, "kind": "EcsJob", "metadata": {"name": name}, "spec": spec}, namespace)


def fair_share(kube: Kube, moto: MotoServer, jobs: int, tasks: int) -> None:
    for i in range(jobs):
        job(kube, "team-a", f"big-{i}", tasks)
    wait_for(lambda: moto.calls["RunTask"] >= 50, timeout=120, what="team-a launching")
    before = moto.calls["RunTask"]
    created = time.monotonic()
    job(kube, "team-b", "small", 1)
    wait_for(lambda: kube.status("small", "team-b").get("active") == 1, timeout=300, what="team-b's launch")
    latency = time.monotonic() - created
    namespaces = [
        next(t["value"] for t in b["tags"] if t["key"] == "ecsjob.io/namespace") for b in moto.bodies("RunTask")
    ]
    ahead = namespaces.index("team-b") - before
    print(f"fair share: team-b first launch {latency:.2f} s after creation; {ahead} team-a RunTask calls in between "
          f"(team-a: {jobs} x {tasks} tasks, {before} launched when team-b arrived)")  # fmt: skip
    wait_for(lambda: moto.calls["RunTask"] >= jobs * tasks + 1, timeout=600, what="all launches")


def memory(kube: Kube, operator: OperatorProcess, commands: int, kib: int) -> None:
    assert operator.proc is not None
    idle = rss_mib(operator.proc.pid)
    td = copy.deepcopy(TEMPLATE)
    td["containerDefinitions"][0]["environment"] = [{"name": "BLOB", "value": "x" * (kib * 1024)}]
    started = time.monotonic()
    for i in range(commands):
        body = {"apiVersion": API, "kind": "EcsCommand", "metadata": {"name": f"cmd-{i}"},
                "spec": {"tags": [f"c{i}"], "context": {"taskDefinition": td}}}  # fmt: skip
        kube.create("ecscommands", body, "team-a")
    last = f"c{commands - 1}"
    spec = {"commandCriteria": [last], "clusterCriteria": ["shared"]}
    kube.create("ecsjobs", {"apiVersion": API, "kind": "EcsJob", "metadata": {"name": "probe"}, "spec": spec}, "team-a")
    wait_for(lambda: kube.status("probe", "team-a").get("phase") in ("Pending", "Running"), timeout=600, what="probe")
    time.sleep(12)  # past kopf's idle timeout of per-object workers (5 s), which hold the last event
    indexed = rss_mib(operator.proc.pid)
    print(f"memory: operator RSS {idle:.0f} MiB before, {indexed:.0f} MiB after {commands} EcsCommands of "
          f"{kib} KiB ({commands * kib / 1024:.0f} MiB of specs, indexed in {time.monotonic() - started:.0f} s)")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--tasks", type=int, default=150)
    p.add_argument("--commands", type=int, default=1000)
    p.add_argument("--kib", type=int, default=100)
    p.add_argument("--only", choices=("fair", "memory"), help="run one part")
    args = p.parse_args()
    emulator, moto, kube, fargate, operator = setup()
    try:
        if args.only != "memory":
            fair_share(kube, moto, args.jobs, args.tasks)
        if args.only != "fair":
            memory(kube, operator, args.commands, args.kib)
    finally:
        operator.stop()
        fargate.close()
        emulator.stop()
        moto.stop()


if __name__ == "__main__":
    main()
