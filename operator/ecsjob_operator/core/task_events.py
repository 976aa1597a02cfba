"""ECS task state change events (EventBridge, delivered through SQS): parsed into the same
Observation as a DescribeTasks answer, and ordered, since SQS may duplicate and reorder them
(docs/reference.md, "Events"). Pure: a message body in, an observation out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecsjob_operator.core.decide import ContainerResult, Observation

DETAIL_TYPE = "ECS Task State Change"
SOURCE = "aws.ecs"
# ECS's task lifecycle, in order (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html)
LIFECYCLE = (
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
)


class UnparseableEventError(ValueError):
    """A message that is not an ECS task state change this operator can read."""


@dataclass(frozen=True)
class TaskEvent:
    observation: Observation
    cluster_arn: str
    time: datetime | None  # when EventBridge saw the change


def parse_event(body: str) -> TaskEvent:
    """An EventBridge `ECS Task State Change` event as SQS delivers it (the event JSON as the body)."""
    try:
        event = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise UnparseableEventError(f"not JSON: {exc}") from exc
    if not isinstance(event, dict) or event.get("detail-type") != DETAIL_TYPE or event.get("source") != SOURCE:
        raise UnparseableEventError("not an ECS Task State Change event")
    detail = event.get("detail")
    if not isinstance(detail, dict) or not isinstance(detail.get("taskArn"), str):
        raise UnparseableEventError("no detail.taskArn")
    raw = detail.get("containers")
    containers: list[Any] = raw if isinstance(raw, list) else []
    version = detail.get("version")
    obs = Observation(
        arn=detail["taskArn"],
        last_status=str(detail.get("lastStatus") or "UNKNOWN"),
        started_by=_str(detail.get("startedBy")),
        containers=tuple(
            ContainerResult(str(c.get("name", "")), _int(c.get("exitCode")), _str(c.get("reason")))
            for c in containers
            if isinstance(c, dict)
        ),
        stop_code=_str(detail.get("stopCode")),
        stopped_reason=_str(detail.get("stoppedReason")),
        stopped_at=_time(detail.get("stoppedAt")),
        version=version if isinstance(version, int) and not isinstance(version, bool) else None,
    )
    return TaskEvent(obs, str(detail.get("clusterArn") or ""), _time(event.get("time")))


def is_newer(new: Observation, old: Observation | None) -> bool:
    """Whether `new` may replace `old`: never back in the lifecycle (a late RUNNING after STOPPED), and
    within one state only with a greater version (a duplicate or an older copy changes nothing)."""
    if old is None:
        return True
    new_rank, old_rank = _rank(new.last_status), _rank(old.last_status)
    if new_rank != old_rank:
        return new_rank > old_rank
    if new.version is None or old.version is None:
        return new.version is None and old.version is None and new != old
    return new.version > old.version


def event_message(obs: Observation, cluster_arn: str, region: str, account: str = "123456789012") -> dict[str, Any]:
    """The event ECS sends for this task state (the shape of AWS's documented example); the tests'
    Fargate player and the benchmark emit it."""
    detail: dict[str, Any] = {
        "clusterArn": cluster_arn,
        "taskArn": obs.arn,
        "lastStatus": obs.last_status,
        "desiredStatus": "STOPPED" if obs.last_status in LIFECYCLE[4:] else "RUNNING",
        "startedBy": obs.started_by,
        "launchType": "FARGATE",
        "containers": [
            {
                "name": c.name,
                "lastStatus": obs.last_status,
                **({"exitCode": c.exit_code} if c.exit_code is not None else {}),
                **({"reason": c.reason} if c.reason else {}),
            }
            for c in obs.containers
        ],  # fmt: skip
        "version": obs.version,
    }
    if obs.stop_code:
        detail["stopCode"] = obs.stop_code
    if obs.stopped_reason:
        detail["stoppedReason"] = obs.stopped_reason
    if obs.stopped_at is not None:
        detail["stoppedAt"] = obs.stopped_at.isoformat().replace("+00:00", "Z")
    return {
        "version": "0",
        "id": f"{obs.arn.rsplit('/', 1)[-1]}-{obs.version}",
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": (obs.stopped_at.isoformat().replace("+00:00", "Z") if obs.stopped_at else None),
        "region": region,
        "resources": [obs.arn],
        "detail": detail,
    }


def _rank(status: str) -> int:
    return LIFECYCLE.index(status) if status in LIFECYCLE else -1


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
