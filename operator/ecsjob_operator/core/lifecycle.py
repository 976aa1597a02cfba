"""The job's lifecycle predicates, in one place: finished, edited, due, needs preparing, next poll.

Every caller (the decision core, the engine, the operator's timer and runtime, `ecsjob run`)
asks these instead of spelling the rules again (docs/reference.md, "Lifecycle"). Pure: the
clock is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ecsjob_operator.api.durations import parse_duration
from ecsjob_operator.api.models import EcsJobStatus
from ecsjob_operator.core.timestamps import parse_iso

TTL_MAX = 2592000  # ttlSecondsAfterFinished: 30 days
FINISHED = frozenset({"Succeeded", "Failed", "Invalid"})
# A job Invalid only because no EcsCommand/EcsCluster matches is re-checked when they change.
NO_MATCH = "NoMatchingContext"


def is_finished(phase: str | None) -> bool:
    """Succeeded, Failed and Invalid end a run: nothing more is launched or polled."""
    return phase in FINISHED


def is_edited(generation: int | None, observed_generation: int | None) -> bool:
    """The spec changed since the status was last written (Kubernetes' observedGeneration rule)."""
    return generation != observed_generation


def waits_for_catalog(status: EcsJobStatus) -> bool:
    """Invalid only because no EcsCommand/EcsCluster matched (yet): worth re-checking on changes."""
    return status.phase == "Invalid" and any(
        c.type == "Invalid" and c.status == "True" and c.reason == NO_MATCH for c in status.conditions or []
    )


def needs_preparing(status: EcsJobStatus) -> bool:
    """No merged context yet, or an Invalid spec that may have been fixed: validate, select, merge again."""
    return status.context is None or status.phase == "Invalid"


def wants_reconcile(phase: str | None, edited: bool, waiting_for_catalog: bool) -> bool:
    """Whether the operator's timer should run for a job at all: finished jobs are never polled, but an
    edit is observed (an Invalid job is validated again; a finished one notes the edit is ignored)."""
    if edited:
        return True
    if phase == "Invalid":
        return waiting_for_catalog
    return not is_finished(phase)


def is_due(phase: str | None, edited: bool, now: float, due_at: float) -> bool:
    """Reconcile now: at the scheduled moment, at once after a spec edit, and while Invalid (cheap)."""
    return edited or phase == "Invalid" or now >= due_at


def next_poll_seconds(status: EcsJobStatus, now: datetime) -> float:
    """How long until the job needs looking at: the next multiple of its polling interval (so that the
    jobs of one interval share one DescribeTasks refresh), sooner for a backoff or deadline."""
    if is_finished(status.phase):
        return 0.0
    if status.context is None:  # preparing: at once, or when the backoff after an AWS error ends
        retry = parse_iso(status.next_retry_time) if status.next_retry_time else now
        return max(0.0, (retry - now).total_seconds())
    interval = float(parse_duration(status.context.polling_interval))
    wait = interval - now.timestamp() % interval  # the next point of the interval's grid: jobs poll together
    moments = [parse_iso(t.next_launch_time) for t in status.tasks or [] if t.next_launch_time]
    if status.start_time and status.phase != "Suspended":
        moments.append(parse_iso(status.start_time) + timedelta(seconds=parse_duration(status.context.timeout)))
    for moment in moments:
        wait = min(wait, max(0.0, (moment - now).total_seconds()))
    return wait


def expires_at(spec: Mapping[str, Any], status: Mapping[str, Any]) -> datetime | None:
    """When spec.ttlSecondsAfterFinished deletes a job that ended Succeeded or Failed (None: never)."""
    ttl, done = spec.get("ttlSecondsAfterFinished"), status.get("completionTime")
    if status.get("phase") not in ("Succeeded", "Failed") or not isinstance(done, str):
        return None
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= TTL_MAX:
        return None
    try:
        return parse_iso(done) + timedelta(seconds=ttl)
    except ValueError:
        return None
