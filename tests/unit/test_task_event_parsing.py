"""Task state events, pure parts and the refresher: parsing AWS's shape, ordering, ownership."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ecsjob_operator.api.models import MergedCluster
from ecsjob_operator.core.decide import ContainerResult, Observation
from ecsjob_operator.core.task_events import UnparseableEventError, event_message, is_newer, parse_event
from ecsjob_operator.engine.describe import DescribeCache

CLUSTER = MergedCluster(cluster_name="c", region="us-west-2")
ARN = "arn:aws:ecs:us-west-2:123456789012:task/c/0a1b2c"
# AWS's documented example of a task state change event, cut to the fields read here
AWS_EXAMPLE = {
    "version": "0",
    "id": "3317b2af-7005-947d-b652-f55e762e571a",
    "detail-type": "ECS Task State Change",
    "source": "aws.ecs",
    "account": "111122223333",
    "time": "2020-01-23T17:57:58Z",
    "region": "us-west-2",
    "resources": [ARN],
    "detail": {
        "clusterArn": "arn:aws:ecs:us-west-2:111122223333:cluster/c",
        "containers": [{"containerArn": "x", "exitCode": 1, "lastStatus": "STOPPED", "name": "main",
                        "reason": "OutOfMemoryError: Container killed due to memory usage"}],
        "desiredStatus": "STOPPED",
        "lastStatus": "STOPPED",
        "startedBy": "heimdall-job-0123456789ab-0",
        "stopCode": "EssentialContainerExited",
        "stoppedAt": "2020-01-23T17:57:58.224Z",
        "stoppedReason": "Essential container in task exited",
        "taskArn": ARN,
        "version": 3,
    },
}  # fmt: skip


def test_parse_aws_example() -> None:
    event = parse_event(json.dumps(AWS_EXAMPLE))
    obs = event.observation
    assert (obs.arn, obs.last_status, obs.stop_code, obs.version) == (ARN, "STOPPED", "EssentialContainerExited", 3)
    assert obs.containers == (ContainerResult("main", 1, "OutOfMemoryError: Container killed due to memory usage"),)
    assert obs.stopped_at == datetime(2020, 1, 23, 17, 57, 58, 224000, tzinfo=UTC) and obs.uid is None
    assert event.cluster_arn.endswith("cluster/c")


@pytest.mark.parametrize(
    "body",
    ["", "not json", "[]", json.dumps({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2"}),
     json.dumps({**AWS_EXAMPLE, "detail": {"lastStatus": "STOPPED"}}), json.dumps({**AWS_EXAMPLE, "detail": "x"})],
)  # fmt: skip
def test_unreadable_messages(body: str) -> None:
    with pytest.raises(UnparseableEventError):
        parse_event(body)


def test_our_event_shape_round_trips() -> None:
    obs = Observation(ARN, "STOPPED", started_by="s", containers=(ContainerResult("main", 0),),
                      stop_code="EssentialContainerExited", stopped_reason="done",
                      stopped_at=datetime(2026, 1, 1, tzinfo=UTC), version=4)  # fmt: skip
    assert parse_event(json.dumps(event_message(obs, "arn:cluster/c", "us-west-2"))).observation == obs


def obs(status: str, version: int | None) -> Observation:
    return Observation(ARN, status, version=version)


@pytest.mark.parametrize(
    ("new", "old", "newer"),
    [
        (obs("RUNNING", 2), None, True),
        (obs("STOPPED", 3), obs("RUNNING", 2), True),
        (obs("RUNNING", 2), obs("STOPPED", 3), False),  # a late RUNNING never undoes STOPPED
        (obs("RUNNING", 9), obs("STOPPED", 3), False),  # whatever its version
        (obs("STOPPED", 3), obs("STOPPED", 3), False),  # a duplicate
        (obs("STOPPED", 4), obs("STOPPED", 3), True),
        (obs("RUNNING", None), obs("PROVISIONING", None), True),
    ],
)
def test_is_newer(new: Observation, old: Observation | None, newer: bool) -> None:
    assert is_newer(new, old) is newer


class NoEcs:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def describe(self, cluster: MergedCluster, arns: list[str]) -> dict[str, Observation]:
        self.asked.append(arns)
        return {a: Observation(a, "RUNNING", uid="owner-from-tags") for a in arns}

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def test_an_event_is_used_only_for_a_task_whose_owner_is_known() -> None:
    ecs, now = NoEcs(), [1000.0]
    cache = DescribeCache(ecs, clock=lambda: now[0])  # type: ignore[arg-type]
    cache.resync = 300.0
    woken: list[set[str]] = []
    cache.on_event = woken.append
    # a tenant's status names somebody else's task: tracked for it, but its owner is unknown
    cache.track(CLUSTER, [ARN], "attacker")
    stopped = Observation(ARN, "STOPPED", started_by="heimdall-job-x-0", version=3)
    assert cache.apply_event(stopped) == "applied" and woken == [{"attacker"}]
    seen = cache.get(CLUSTER, [ARN], 30, "attacker")
    assert ecs.asked == [[ARN]]  # not taken from the event: described, with its tags
    assert seen[ARN].uid == "owner-from-tags"


def test_our_launched_task_follows_its_events_and_an_early_event_waits_for_the_launch() -> None:
    ecs, now = NoEcs(), [1200.0]  # the start of a slot of the 300 s resync grid
    cache = DescribeCache(ecs, clock=lambda: now[0])  # type: ignore[arg-type]
    cache.resync = 300.0
    cache.ours = lambda started_by: started_by.startswith("heimdall-job-")
    early = Observation(ARN, "RUNNING", started_by="heimdall-job-x-0", version=2)
    assert cache.apply_event(early) == "early"  # before the RunTask answer was recorded
    assert cache.apply_event(Observation("arn:other", "RUNNING", started_by="ecs-svc/1", version=1)) == "foreign"
    cache.launched(CLUSTER, ARN, "job-uid")
    assert cache.get(CLUSTER, [ARN], 30, "job-uid")[ARN] == Observation(
        ARN, "RUNNING", started_by="heimdall-job-x-0", version=2, uid="job-uid"
    )
    stopped = Observation(ARN, "STOPPED", started_by="heimdall-job-x-0", version=3)
    assert cache.apply_event(stopped) == "applied" and cache.apply_event(stopped) == "stale"
    now[0] += 299
    assert cache.get(CLUSTER, [ARN], 30, "job-uid")[ARN].last_status == "STOPPED"
    assert ecs.asked == []  # within the resync window: no DescribeTasks
    now[0] += 1  # the next slot of the resync grid
    cache.get(CLUSTER, [ARN], 30, "job-uid")
    assert ecs.asked == [[ARN]]  # the resync
    # the answer of the resync does not undo the newer STOPPED snapshot
    assert cache.get(CLUSTER, [ARN], 30, "job-uid")[ARN].last_status == "STOPPED"
