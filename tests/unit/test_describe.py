"""The shared DescribeTasks refresher: what one job does to the cache never hides another job's task."""

from __future__ import annotations

import threading
import time
from typing import Any

from ecsjob_operator.api.models import MergedCluster
from ecsjob_operator.core.decide import Observation
from ecsjob_operator.engine.describe import DescribeCache

CLUSTER = MergedCluster(cluster_name="c", region="r")


class SlowEcs:
    """An ECS that answers DescribeTasks for every ARN it is asked about, when told to."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[list[str]] = []

    def describe(self, cluster: MergedCluster, arns: list[str]) -> dict[str, Observation]:
        self.asked.append(list(arns))
        self.release.wait(5)
        return {a: Observation(arn=a, last_status="RUNNING", uid=a.split("/")[0]) for a in arns}

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def test_another_jobs_untrack_during_a_refresh_cannot_hide_a_task() -> None:
    ecs = SlowEcs()
    cache = DescribeCache(ecs, clock=lambda: 1000.0)  # type: ignore[arg-type]
    victim_arn, attacker_arn = "victim/task-1", "attacker/task-2"
    results: dict[str, dict[str, Observation]] = {}
    # the attacker's status names the victim's task as well as its own; its refresh is in flight
    attacker = threading.Thread(
        target=lambda: results.__setitem__("attacker", cache.get(CLUSTER, [attacker_arn, victim_arn], 10, "attacker"))
    )
    attacker.start()
    deadline = time.monotonic() + 5
    while not ecs.asked and time.monotonic() < deadline:
        time.sleep(0.001)
    assert ecs.asked, "the attacker's refresh never reached ECS"
    victim = threading.Thread(
        target=lambda: results.__setitem__("victim", cache.get(CLUSTER, [victim_arn], 10, "victim"))
    )
    victim.start()
    time.sleep(0.05)  # the victim waits for the attacker's refresh
    ecs.release.set()
    attacker.join(5)
    cache.untrack(CLUSTER, [victim_arn], "attacker")  # the attacker drops the task it does not own
    victim.join(5)
    assert victim_arn in results["victim"], "the victim's own task came back as MISSING"
    assert cache.get(CLUSTER, [victim_arn], 10, "victim")[victim_arn].last_status == "RUNNING"
