"""Failover benchmark: two replicas of one shard (kopf peering, priorities 200 and 100) against the
emulator and moto; JOBS running jobs of TASKS tasks; SIGKILL of the active replica. Prints the takeover
time (kill -> the standby's first status write), whether every job ended right, and duplicates at moto.
Usage: python tests/bench/bench_failover.py [--jobs 200] [--tasks 2] [--lifetime 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e"), str(ROOT / "operator")]

from emulator import PEERING_CRD, EmulatorThread  # noqa: E402

from ecsjob_operator.core.identity import job_id  # noqa: E402
from support.fargate import CLUSTER, REGION, FakeFargate  # noqa: E402
from support.jobs import TEMPLATE  # noqa: E402
from support.moto_server import MotoServer  # noqa: E402
from support.operator_env import Kube, OperatorProcess, wait_for  # noqa: E402

API, NS, PEERING = "ecsjob.io/v1alpha1", "bench", "ecsjob-bench"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--lifetime", type=int, default=10, help="ECSJOB_PEERING_LIFETIME of both replicas")
    args = p.parse_args()
    moto = MotoServer().start()
    os.environ.update(AWS_ENDPOINT_URL=moto.url, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION,
                      AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", ECSJOB_TICK_SECONDS="1")  # fmt: skip
    crds = [
        yaml.safe_load(f.read_text()) for f in sorted((ROOT / "crds").glob("*.yaml")) if f.name != "kustomization.yaml"
    ]
    emulator = EmulatorThread([*crds, PEERING_CRD]).start()
    kubeconfig = emulator.kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")
    kube = Kube(kubeconfig)
    kube.core.create_namespace({"metadata": {"name": NS}})
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}}
    kube.custom.create_namespaced_custom_object("kopf.dev", "v1", NS, "kopfpeerings", peering)
    fargate = FakeFargate()
    replicas = [
        OperatorProcess(kubeconfig, moto, Path(tempfile.mkdtemp()), "-n", NS, "--allow-inline-cluster",
                        "--peering", PEERING, "--priority", str(priority), standalone=False,
                        env={"ECSJOB_PEERING_LIFETIME": str(args.lifetime)}, verbose=False)
        for priority in (200, 100)
    ]  # fmt: skip
    for replica in replicas:
        replica.start()
    try:
        run(args, kube, moto, fargate, emulator, replicas)
    finally:
        for replica in replicas:
            replica.stop()
        fargate.close()
        emulator.stop()
        moto.stop()


def run(args: argparse.Namespace, kube: Kube, moto: MotoServer, fargate: FakeFargate, emulator: EmulatorThread,
        replicas: list[OperatorProcess]) -> None:  # fmt: skip
    active, standby = replicas
    cluster = {"clusterName": CLUSTER, "region": REGION, "executionRoleArn": TEMPLATE["executionRoleArn"],
               "vpcConfig": {"subnets": [fargate.subnet], "securityGroups": [fargate.security_group]}}  # fmt: skip
    command = {"taskDefinition": TEMPLATE, "taskCount": args.tasks, "pollingInterval": "5s", "timeout": "2h"}
    uids = []
    for i in range(args.jobs):
        body = {"apiVersion": API, "kind": "EcsJob", "metadata": {"name": f"job-{i}"},
                "spec": {"command": command, "cluster": cluster}}  # fmt: skip
        uids.append(kube.create("ecsjobs", body, NS)["metadata"]["uid"])
    total = args.jobs * args.tasks
    wait_for(lambda: moto.calls["RunTask"] >= total, timeout=900, what="every task launched")
    wait_for(lambda: all(kube.status(f"job-{i}", NS).get("active") == args.tasks for i in range(args.jobs)),
             timeout=300, what="every job running")  # fmt: skip
    print(
        f"{args.jobs} jobs x {args.tasks} tasks running under the active replica (peering lifetime {args.lifetime} s)"
    )
    active.kill()
    killed = time.monotonic()
    writes_before = len([r for r in emulator.requests() if r.resource == "ecsjobs/status"])
    for task in fargate.running()[: total // 2]:  # half the tasks end while nobody is in charge
        fargate.finish(task.task_arn, 0)

    def standby_wrote() -> bool:
        writes = [r for r in emulator.requests() if r.resource == "ecsjobs/status" and r.verb == "patch"]
        return len(writes) > writes_before

    wait_for(standby_wrote, timeout=10 * args.lifetime + 120, what="the standby's first status write")
    takeover = time.monotonic() - killed
    for task in fargate.running():
        fargate.finish(task.task_arn, 0)
    wait_for(lambda: all(kube.status(f"job-{i}", NS).get("phase") == "Succeeded" for i in range(args.jobs)),
             timeout=600, what="every job Succeeded")  # fmt: skip
    ended = time.monotonic() - killed
    launches: dict[str, int] = {}
    for body in moto.bodies("RunTask"):
        launches[body.get("startedBy", "")] = launches.get(body.get("startedBy", ""), 0) + 1
    duplicates = sum(n - 1 for n in launches.values() if n > 1)
    ours = sum(1 for uid in uids for s in launches if s.startswith(f"heimdall-job-{job_id(uid)}-"))
    print(f"takeover (kill -> the standby's first status write): {takeover:.1f} s; every job Succeeded "
          f"{ended:.1f} s after the kill")  # fmt: skip
    print(f"tasks launched: {ours} task names for {total} tasks; duplicate RunTask: {duplicates}")


if __name__ == "__main__":
    main()
