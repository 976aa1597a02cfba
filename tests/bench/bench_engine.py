"""Benchmark: 200 jobs x 10 tasks polled through the engine against a moto server.

moto runs in its own process (so the numbers below are the engine's alone); the engine runs
in this one with an injected clock, every job polled once per round as the operator's timers
would. Prints ECS calls per poll round, engine CPU seconds per round and peak memory.
Usage: python tests/bench/bench_engine.py [--jobs 200] [--tasks 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[2] / "operator"))

REGION = "us-west-2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    body = json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}}).encode()
    urllib.request.urlopen(
        urllib.request.Request(f"{url}/moto-api/state-manager/set-transition", data=body, method="POST")
    )
    return proc, url


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--tasks", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--big", action="store_true", help="one job of 1,000 tasks with parallelism 100 instead")
    p.add_argument("--events", action="store_true", help="polling, then task state events from SQS, same jobs")
    args = p.parse_args()
    moto, url = start_moto()
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
    )
    try:
        if args.big:
            run_big(1000, 100)
        elif args.events:
            run_events(args.jobs, args.tasks)
        else:
            run(args.jobs, args.tasks, args.rounds)
    finally:
        moto.terminate()
        moto.wait()


def bench_cluster() -> tuple[str, str, dict[str, Any]]:
    """A VPC subnet and the ECS cluster "bench" at moto, and the sample task definition."""
    import boto3

    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/17")["Subnet"]["SubnetId"]
    cluster_arn = boto3.client("ecs").create_cluster(clusterName="bench")["cluster"]["clusterArn"]
    template = json.loads((Path(__file__).parents[2] / "manifests/samples/task-definition.json").read_text())
    return subnet, cluster_arn, template


def run(jobs: int, tasks: int, rounds: int) -> None:
    import boto3

    from ecsjob_operator.api.models import EcsJobStatus
    from ecsjob_operator.aws.ecs import EcsBackend
    from ecsjob_operator.engine.engine import Catalog, Engine

    ecs = boto3.client("ecs")
    subnet, _, template = bench_cluster()
    spec = {
        "command": {"taskDefinition": template, "taskCount": tasks, "pollingInterval": "30s", "maxFailCount": 1},
        "cluster": {
            "clusterName": "bench",
            "region": REGION,
            "vpcConfig": {"subnets": [subnet], "securityGroups": ["sg-1"]},
        },
    }
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    backend = EcsBackend()
    engine = Engine(backend, "heimdall-job", clock=lambda: now[0])
    if os.environ.get("BENCH_TRACEMALLOC"):
        tracemalloc.start()
    refs = [engine.job_ref(f"job-{i}", "bench", f"uid-{i:05d}") for i in range(jobs)]
    statuses = [engine.prepare(r, spec, EcsJobStatus(), Catalog()).status for r in refs]

    def poll_round(label: str) -> None:
        before = dict(backend.calls)
        cpu, wall = time.thread_time(), time.perf_counter()
        for i, ref in enumerate(refs):
            statuses[i] = engine.step(ref, statuses[i]).status
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        calls = {k: v - before.get(k, 0) for k, v in backend.calls.items() if v - before.get(k, 0)}
        phases: dict[str, int] = {}
        for s in statuses:
            phases[s.phase or "?"] = phases.get(s.phase or "?", 0) + 1
        print(f"{label:<22} calls={sum(calls.values()):>5} {json.dumps(calls, sort_keys=True)}")
        print(f"{'':<22} engine_cpu={cpu:.3f}s ({cpu / jobs * 1000:.2f} ms/job) wall={wall:.2f}s phases={phases}")

    print(f"# {jobs} jobs x {tasks} tasks = {jobs * tasks} tasks, one cluster, pollingInterval 30s")
    poll_round("launch round")
    for r in range(rounds):
        now[0] += timedelta(seconds=30)
        poll_round(f"poll round {r + 1}")
    arns = [t.arn for s in statuses for t in s.tasks or [] if t.arn]
    for arn in arns:  # finish every task outside the engine (moto: exit code 0)
        ecs.stop_task(cluster="bench", task=arn, reason="bench: done")
    now[0] += timedelta(seconds=30)
    poll_round("completion round")
    _, peak = tracemalloc.get_traced_memory()
    if peak:
        print(f"tracemalloc peak (engine heap): {peak / 2**20:.1f} MiB")
    print(f"max RSS (engine process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    print(
        f"DescribeTasks per poll round: {engine.describer.calls / (rounds + 1):.1f} on average "
        f"for {jobs * tasks} tasks (the 100-ARN batch floor is {jobs * tasks / 100:.0f})"
    )


def run_events(jobs: int, tasks: int, steady_rounds: int = 20, sample: int = 200) -> None:
    """The same jobs polled, then fed by task state events from an SQS queue (moto), in one run:
    DescribeTasks per 10 minutes of steady running (20 polls of 30 s, injected clock) in each mode,
    and the delay from an event being queued to the job's status showing it (real time)."""
    import queue as queues
    import random
    import threading

    import boto3

    from ecsjob_operator.api.models import EcsJobStatus
    from ecsjob_operator.aws.ecs import EcsBackend
    from ecsjob_operator.aws.events import EventsConsumer
    from ecsjob_operator.core.decide import ContainerResult, Observation
    from ecsjob_operator.core.task_events import event_message
    from ecsjob_operator.engine.engine import Catalog, Engine

    ecs, sqs = boto3.client("ecs"), boto3.client("sqs")
    subnet, cluster_arn, template = bench_cluster()
    url = sqs.create_queue(QueueName="bench-events")["QueueUrl"]
    command = {"taskDefinition": template, "taskCount": tasks, "pollingInterval": "30s", "maxFailCount": 1}
    cluster = {"clusterName": "bench", "region": REGION, "vpcConfig": {"subnets": [subnet], "securityGroups": ["sg-1"]}}
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    engine = Engine(EcsBackend(), "heimdall-job", clock=lambda: now[0])
    refs = [engine.job_ref(f"job-{i}", "bench", f"uid-{i:05d}") for i in range(jobs)]
    spec = {"command": command, "cluster": cluster}
    statuses = {r.uid: engine.prepare(r, spec, EcsJobStatus(), Catalog()).status for r in refs}
    by_uid = {r.uid: r for r in refs}
    print(f"# {jobs} jobs x {tasks} tasks = {jobs * tasks} tasks, pollingInterval 30s; events: resync 5m")
    for ref in refs:
        statuses[ref.uid] = engine.step(ref, statuses[ref.uid]).status
    arns = {t.arn: (ref.uid, t.task_name) for ref in refs for t in statuses[ref.uid].tasks or [] if t.arn}

    def steady(label: str) -> int:
        before = engine.describer.calls
        for _ in range(steady_rounds):
            now[0] += timedelta(seconds=30)
            for ref in refs:
                statuses[ref.uid] = engine.step(ref, statuses[ref.uid]).status
        calls = engine.describer.calls - before
        print(f"{label:<8} DescribeTasks per 10 minutes of steady running: {calls}")
        return calls

    steady("polling")
    # polling's detection, on the injected clock: a task ending at a random moment is seen at the next poll
    rng = random.Random(7)
    waits = sorted(30 - rng.uniform(0, 30) for _ in range(sample))
    print(f"polling  detection (the next point of the 30 s grid): p50 {waits[len(waits) // 2]:.1f} s, "
          f"p99 {waits[int(len(waits) * 0.99)]:.1f} s")  # fmt: skip

    engine.describer.resync = 300.0
    woken: queues.Queue[tuple[str, float]] = queues.Queue()

    def wake(uids: set[str]) -> None:
        for uid in uids:
            woken.put((uid, time.perf_counter()))

    engine.describer.on_event = wake
    events = EventsConsumer([url], engine.describer.apply_event, REGION, receivers=4, wait_seconds=1)
    events.start()

    def send(batch: list[tuple[str, str, str, int | None]]) -> None:
        entries = []
        for n, (arn, name, status, code) in enumerate(batch):
            obs = Observation(arn, status, started_by=name, version=2 if status == "RUNNING" else 3,
                              containers=(ContainerResult("main", code),) if code is not None else ())  # fmt: skip
            entries.append({"Id": str(n), "MessageBody": json.dumps(event_message(obs, cluster_arn, REGION))})
        sqs.send_message_batch(QueueUrl=url, Entries=entries)

    items: list[tuple[str, str, str, int | None]] = [(arn, name, "RUNNING", None) for arn, (_, name) in arns.items()]
    for i in range(0, len(items), 10):
        send(items[i : i + 10])
    deadline = time.monotonic() + 120
    while events.counters().get("applied", 0) + events.counters().get("stale", 0) < len(items):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    while not woken.empty():
        woken.get_nowait()
    steady("events")

    # the delay from queueing a task's STOPPED event to its job's status showing it
    chosen = rng.sample(sorted(arns), min(sample, len(arns)))
    sent_at: dict[str, float] = {}
    delays: list[float] = []
    done = threading.Event()

    def stepper() -> None:
        while not done.is_set() or not woken.empty():
            try:
                uid, _ = woken.get(timeout=0.2)
            except queues.Empty:
                continue
            statuses[uid] = engine.step(by_uid[uid], statuses[uid]).status
            seen = time.perf_counter()
            for task in statuses[uid].tasks or []:
                if task.phase == "Succeeded" and task.arn in sent_at:
                    delays.append(seen - sent_at.pop(task.arn))

    thread = threading.Thread(target=stepper, daemon=True)
    thread.start()
    for arn in chosen:
        ecs.stop_task(cluster="bench", task=arn, reason="bench: done")
        sent_at[arn] = time.perf_counter()
        send([(arn, arns[arn][1], "STOPPED", 0)])
        time.sleep(0.02)  # a steady trickle of task ends, 50 per second
    deadline = time.monotonic() + 60
    while sent_at and time.monotonic() < deadline:
        time.sleep(0.1)
    done.set()
    thread.join(5)
    events.stop()
    delays.sort()
    if delays:
        print(f"events   detection (queued -> status): p50 {delays[len(delays) // 2]:.2f} s, "
              f"p99 {delays[min(len(delays) - 1, int(len(delays) * 0.99))]:.2f} s over {len(delays)} tasks "
              f"({len(sent_at)} not seen)")  # fmt: skip
    print(f"events   counters: {json.dumps({k: int(v) for k, v in events.counters().items()}, sort_keys=True)}")


def run_big(tasks: int, parallelism: int) -> None:
    """One job of `tasks` tasks, at most `parallelism` running: each poll round ends the running ones.
    Prints DescribeTasks and engine CPU per poll, the most tasks RUNNING at moto, the status size."""
    import boto3

    from ecsjob_operator.api.models import EcsJobStatus
    from ecsjob_operator.aws.ecs import EcsBackend
    from ecsjob_operator.engine.engine import Catalog, Engine

    ecs = boto3.client("ecs")
    subnet, _, template = bench_cluster()
    command = {"taskDefinition": template, "taskCount": tasks, "parallelism": parallelism, "pollingInterval": "30s"}
    cluster = {"clusterName": "bench", "region": REGION, "vpcConfig": {"subnets": [subnet], "securityGroups": ["sg-1"]}}
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    backend = EcsBackend()
    engine = Engine(backend, "heimdall-job", clock=lambda: now[0])
    ref = engine.job_ref("big", "bench", "uid-big")
    status = engine.prepare(ref, {"command": command, "cluster": cluster}, EcsJobStatus(), Catalog()).status
    print(f"# one job of {tasks} tasks, parallelism {parallelism}, pollingInterval 30s")
    rounds, most, cpus, describes, sizes = 0, 0, [], [], []
    while status.phase not in ("Succeeded", "Failed") and rounds < 5 * tasks // parallelism:
        before = engine.describer.calls
        cpu = time.thread_time()
        status = engine.step(ref, status).status
        cpus.append(time.thread_time() - cpu)
        describes.append(engine.describer.calls - before)
        sizes.append(len(json.dumps(status.wire())))
        running = ecs.list_tasks(cluster="bench", desiredStatus="RUNNING", maxResults=100)
        arns = running["taskArns"]
        while running.get("nextToken"):
            running = ecs.list_tasks(cluster="bench", desiredStatus="RUNNING", nextToken=running["nextToken"])
            arns += running["taskArns"]
        most = max(most, len(arns))
        for arn in arns:  # every running task ends before the next poll (moto: exit code 0)
            ecs.stop_task(cluster="bench", task=arn, reason="bench: done")
        now[0] += timedelta(seconds=30)
        rounds += 1
    print(f"phase {status.phase} after {rounds} polls ({status.message}); most tasks RUNNING at moto at once: {most}")
    print(f"DescribeTasks per poll: max {max(describes)}, mean {sum(describes) / len(describes):.1f}")
    print(f"engine CPU per poll: mean {sum(cpus) / len(cpus) * 1000:.0f} ms, max {max(cpus) * 1000:.0f} ms")
    print(f"status size: max {max(sizes) / 1024:.0f} KiB, final {sizes[-1] / 1024:.0f} KiB (etcd's limit: 1,536 KiB)")
    print(f"max RSS (engine process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
