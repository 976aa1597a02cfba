"""Operator-level benchmark: the real `ecsjob operator` process against the Kubernetes API emulator and a
moto server (both in this process; the operator's own CPU and memory are read from /proc).

For JOBS jobs x TASKS tasks at pollingInterval INTERVAL, prints:
- RunTask, ListTasks and DescribeTasks per polling interval while the tasks run (the floor for
  DescribeTasks is ceil(running / 100));
- operator CPU seconds per second while launching, running and idle; peak RSS;
- detection latency (a task stopped at moto -> the job's status shows it), p50 and p99;
- Events per transition (TaskLaunched per launch, TaskSucceeded per success) and status patches per job.
Usage: python tests/bench/bench_operator.py [--jobs 250] [--tasks 5] [--interval 30] [--steady 2]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
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
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Meter:
    def __init__(self, pid: int) -> None:
        self.pid, self.at, self.cpu = pid, time.monotonic(), cpu_seconds(pid)

    def rate(self) -> float:
        """CPU seconds per second since the last call."""
        now, cpu = time.monotonic(), cpu_seconds(self.pid)
        rate = (cpu - self.cpu) / max(1e-6, now - self.at)
        self.at, self.cpu = now, cpu
        return rate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=250)
    p.add_argument("--tasks", type=int, default=5)
    p.add_argument("--interval", type=int, default=30)
    p.add_argument("--steady", type=int, default=2, help="polling intervals measured while running")
    p.add_argument("--detect", type=int, default=50, help="tasks stopped to measure detection latency")
    args = p.parse_args()
    moto = MotoServer().start()
    os.environ.update(AWS_ENDPOINT_URL=moto.url, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION,
                      AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
    crds = [
        yaml.safe_load(f.read_text()) for f in sorted((ROOT / "crds").glob("*.yaml")) if f.name != "kustomization.yaml"
    ]
    emulator = EmulatorThread(crds).start()
    kubeconfig = emulator.kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")
    kube = Kube(kubeconfig)
    kube.core.create_namespace({"metadata": {"name": "bench"}})
    fargate = FakeFargate()
    operator = OperatorProcess(
        kubeconfig, moto, Path(tempfile.mkdtemp()), "-n", "bench", "--allow-inline-cluster", verbose=False
    )
    os.environ["ECSJOB_TICK_SECONDS"] = "1"  # the production default (the e2e tier ticks faster)
    operator.start()
    assert operator.proc is not None
    pid = operator.proc.pid
    try:
        run(args, kube, moto, fargate, emulator, pid)
    finally:
        operator.stop()
        fargate.close()
        emulator.stop()
        moto.stop()


def run(
    args: argparse.Namespace, kube: Kube, moto: MotoServer, fargate: FakeFargate, emulator: EmulatorThread, pid: int
) -> None:
    cluster = {"clusterName": CLUSTER, "region": REGION, "executionRoleArn": TEMPLATE["executionRoleArn"],
               "vpcConfig": {"subnets": [fargate.subnet], "securityGroups": [fargate.security_group]}}  # fmt: skip
    command = {
        "taskDefinition": TEMPLATE,
        "taskCount": args.tasks,
        "pollingInterval": f"{args.interval}s",
        "timeout": "2h",
    }
    total = args.jobs * args.tasks
    meter = Meter(pid)
    started = time.monotonic()
    for i in range(args.jobs):
        body = {"apiVersion": API, "kind": "EcsJob", "metadata": {"name": f"job-{i}"},
                "spec": {"command": command, "cluster": cluster}}  # fmt: skip
        kube.create("ecsjobs", body, "bench")
    wait_for(lambda: moto.calls["RunTask"] >= total, timeout=1800, what="every task launched")
    launching = meter.rate()
    print(f"{args.jobs} jobs x {args.tasks} tasks, pollingInterval {args.interval}s: launched in "
          f"{time.monotonic() - started:.0f} s; operator CPU {launching:.2f} s/s while launching")  # fmt: skip
    time.sleep(args.interval)  # every job has polled once since its launch
    before = dict(moto.calls)
    meter.rate()
    time.sleep(args.steady * args.interval)
    running = meter.rate()
    per = {op: (moto.calls[op] - before.get(op, 0)) / args.steady for op in ("RunTask", "ListTasks", "DescribeTasks")}
    floor = -(-total // 100)
    print(f"running: per interval RunTask {per['RunTask']:.1f}, ListTasks {per['ListTasks']:.1f}, "
          f"DescribeTasks {per['DescribeTasks']:.1f} (floor {floor}); operator CPU {running:.3f} s/s")  # fmt: skip
    latencies = detection(args, kube, fargate)
    print(f"detection latency over {len(latencies)} stopped tasks: p50 {statistics.median(latencies):.1f} s, "
          f"p99 {percentile(latencies, 99):.1f} s (interval {args.interval} s)")  # fmt: skip
    for task in fargate.running():
        fargate.finish(task.task_arn, 0)
    wait_for(lambda: all(kube.status(f"job-{i}", "bench").get("phase") == "Succeeded" for i in range(args.jobs)),
             timeout=4 * args.interval + 60, what="every job Succeeded")  # fmt: skip
    meter.rate()
    time.sleep(10)
    idle = meter.rate()
    events = kube.core.list_namespaced_event("bench").items
    reasons: dict[str, int] = {}
    for event in events:
        reasons[event.reason] = reasons.get(event.reason, 0) + 1
    patches = sum(1 for r in emulator.requests() if r.resource == "ecsjobs/status" and r.verb == "patch")
    print(f"finished: idle operator CPU {idle:.3f} s/s; peak RSS {peak_rss_mib(pid):.0f} MiB")
    print(f"Events: TaskLaunched {reasons.get('TaskLaunched', 0)} for {total} launches, TaskSucceeded "
          f"{reasons.get('TaskSucceeded', 0)} for {total} tasks, Prepared {reasons.get('Prepared', 0)} and Completed "
          f"{reasons.get('Completed', 0)} for {args.jobs} jobs; status patches per job {patches / args.jobs:.1f}")  # fmt: skip


def detection(args: argparse.Namespace, kube: Kube, fargate: FakeFargate) -> list[float]:
    """Stop random tasks at moto; time until each job's status shows the task Succeeded."""
    chosen = random.Random(1).sample(range(args.jobs), min(args.detect, args.jobs))
    stopped: dict[int, tuple[str, float]] = {}
    for i in chosen:
        status = kube.status(f"job-{i}", "bench")
        task = status["tasks"][0]
        fargate.finish(task["arn"], 0)
        stopped[i] = (task["arn"], time.monotonic())
    latencies: dict[int, float] = {}
    deadline = time.monotonic() + 3 * args.interval + 30
    while len(latencies) < len(stopped) and time.monotonic() < deadline:
        for i, (_, at) in stopped.items():
            if i not in latencies and kube.status(f"job-{i}", "bench")["tasks"][0].get("phase") == "Succeeded":
                latencies[i] = time.monotonic() - at
        time.sleep(0.5)  # each round GETs every undetected job: lighter polling disturbs the moto it measures less
    return sorted(latencies.values())


def percentile(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] if ordered else float("nan")


if __name__ == "__main__":
    main()
