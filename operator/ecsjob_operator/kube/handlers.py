"""The Kubernetes side: kopf registrations only. Handlers translate; JobRuntime and the engine decide.

A timer ticks every ECSJOB_TICK_SECONDS (default 1 s) for each unfinished EcsJob and syncs it
when it is due (core.lifecycle: its pollingInterval, sooner for a backoff, a deadline or a spec
edit). A finished job matches no timer, so it is never polled again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import kopf

from ecsjob_operator.api.models import GROUP, VERSION, EcsJobStatus
from ecsjob_operator.core.decide import Event
from ecsjob_operator.core.identity import Shard
from ecsjob_operator.core.lifecycle import is_edited, waits_for_catalog, wants_reconcile
from ecsjob_operator.kube.metrics import Metrics
from ecsjob_operator.kube.runtime import JobRuntime, selection_view, status_patch

FINALIZER = "ecsjob.io/stop-tasks"
TICK = float(os.environ.get("ECSJOB_TICK_SECONDS", "1"))
T = TypeVar("T")
log = logging.getLogger(__name__)
Commands = kopf.Index[str | None, dict[str, Any]]
Clusters = kopf.Index[None, dict[str, Any]]


@dataclass(frozen=True)
class Services:
    """What every handler needs, built once by the composition root and kept in kopf's memo."""

    runtime: JobRuntime
    workers: ThreadPoolExecutor
    metrics: Metrics | None = None
    shard: Shard = field(default_factory=Shard)


def services(memo: kopf.Memo) -> Services:
    found = memo.get("services")
    assert isinstance(found, Services), "run the operator through ecsjob_operator.kube.runner"
    return found


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.CRITICAL  # our Events are explicit (kopf.event), not log lines
    # how long a silent peer counts as alive: a standby takes over within about this long
    settings.peering.lifetime = int(os.environ.get("ECSJOB_PEERING_LIFETIME", "60"))


@kopf.index(GROUP, VERSION, "ecscommands")
def ecscommands(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str | None, dict[str, Any]]:
    return {namespace: selection_view(body)}  # not the task definition: memory stays bounded


@kopf.index(GROUP, VERSION, "ecsclusters")
def ecsclusters(body: kopf.Body, **_: Any) -> dict[None, dict[str, Any]]:
    return {None: selection_view(body)}


def mine(meta: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> bool:
    """Jobs of this replica's shard (every job when the operator is not sharded)."""
    return services(memo).shard.serves(str(meta.get("uid")))


def unfinished(status: Mapping[str, Any], meta: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> bool:
    """The timer's filter: this shard's jobs that core.lifecycle.wants_reconcile (the status is parsed only
    when Invalid)."""
    if not mine(meta, memo):
        return False
    phase = status.get("phase")
    edited = is_edited(meta.get("generation"), status.get("observedGeneration"))
    waiting = phase == "Invalid" and waits_for_catalog(EcsJobStatus.model_validate(dict(status)))
    return wants_reconcile(phase, edited, waiting)


# kopf passes indexes as keyword arguments named after them; its TimerFn protocol does not declare them.
@kopf.timer(GROUP, VERSION, "ecsjobs", interval=TICK, when=unfinished, initial_delay=0)  # type: ignore[arg-type]
async def reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    ecscommands: Commands,
    ecsclusters: Clusters,
    **_: Any,
) -> None:
    """Sync the job when due, with the EcsCommands of its namespace and every EcsCluster."""
    svc = services(memo)
    if not svc.runtime.is_due(body):
        return
    commands = list(ecscommands.get(meta.get("namespace"), []))
    clusters = list(ecsclusters.get(None, []))
    started = time.monotonic()
    result = await in_worker(svc, svc.runtime.sync, body, commands, clusters)
    if svc.metrics is not None:
        svc.metrics.observe(meta["uid"], result.status.phase, result.events, time.monotonic() - started)
    patch.status.update(status_patch(status, result.status.wire()))
    post(body, result.events)


@kopf.on.delete(GROUP, VERSION, "ecsjobs", when=mine)  # the finalizer goes only on this shard's jobs
async def stop_tasks(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """The finalizer: a deleted job's running tasks are stopped before the object goes."""
    svc = services(memo)
    try:
        events = await in_worker(svc, svc.runtime.delete, body)
    except Exception as exc:  # AWS unreachable: keep the finalizer and retry
        raise kopf.TemporaryError(f"cannot stop the job's tasks yet: {exc}", delay=5) from exc
    post(body, events)
    if svc.metrics is not None:
        svc.metrics.forget(body.metadata.uid)


async def in_worker(svc: Services, fn: Callable[..., T], *args: Any) -> T:
    """Run blocking engine work (AWS calls, the RunTask token bucket) on the operator's worker pool."""
    return await asyncio.get_running_loop().run_in_executor(svc.workers, fn, *args)


def post(body: kopf.Body, events: list[Event]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        level = logging.WARNING if event.type == "Warning" else logging.INFO
        log.log(level, "%s/%s %s: %s", body.metadata.namespace, body.metadata.name, event.reason, event.message)
