"""The Kubernetes side: kopf registrations only. Handlers translate; JobRuntime and the engine decide.

Each unfinished EcsJob of this shard has one kopf daemon: it sleeps until the job is due
(core.lifecycle: its pollingInterval, sooner for a backoff, a deadline or a spec edit), or until
a watch event of the job (or, for a job waiting for an EcsCommand/EcsCluster, of those) wakes it,
then syncs it with the newest body and writes the status. So the cost follows the work that is
due, not jobs x ticks, and a job is never synced by two workers at once. A finished job matches
no daemon, so it is never polled again. Every RESYNC_SECONDS a sleeping daemon looks again.
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
from ecsjob_operator.core.lifecycle import expires_at, is_edited, waits_for_catalog, wants_reconcile
from ecsjob_operator.engine.engine import StepResult, utcnow
from ecsjob_operator.kube.metrics import Metrics
from ecsjob_operator.kube.runtime import JobRuntime, selection_view, status_patch

FINALIZER = "ecsjob.io/stop-tasks"
TICK = float(os.environ.get("ECSJOB_TICK_SECONDS", "1"))  # the pause before a deferred job's next turn
RESYNC_SECONDS = float(os.environ.get("ECSJOB_RESYNC_SECONDS", "60"))  # a sleeping daemon looks again
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
    wakes: dict[str, asyncio.Event] = field(default_factory=dict)  # uid -> its daemon's alarm (loop side)
    waiting: set[str] = field(default_factory=set)  # Invalid jobs that wait for an EcsCommand/EcsCluster

    def wake(self, uid: str) -> None:
        if (alarm := self.wakes.get(uid)) is not None:
            alarm.set()


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


@kopf.on.startup()
async def wake_on_task_events(memo: kopf.Memo, **_: Any) -> None:
    """A task state event (--events-queue) makes the jobs polling that task due at once."""
    svc, loop = services(memo), asyncio.get_running_loop()

    def wake(uids: set[str]) -> None:
        for uid in uids:
            svc.wake(uid)

    def from_thread(uids: set[str]) -> None:  # called on the events consumer's threads
        loop.call_soon_threadsafe(wake, uids)

    svc.runtime.engine.describer.on_event = from_thread


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


def expiring(
    spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any], memo: kopf.Memo, **_: Any
) -> bool:
    """This shard's jobs that ended Succeeded or Failed with spec.ttlSecondsAfterFinished."""
    return mine(meta, memo) and expires_at(spec, status) is not None


@kopf.daemon(
    GROUP, VERSION, "ecsjobs", id="expire", when=expiring, cancellation_backoff=10.0, cancellation_timeout=60.0
)
async def expire(
    body: kopf.Body, spec: kopf.Spec, status: kopf.Status, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """ttlSecondsAfterFinished: the finished job is deleted that long after its completionTime (its tasks
    have ended already; the finalizer finds none running)."""
    svc = services(memo)
    while not stopped:
        at = expires_at(spec, status)
        if at is None:
            await stopped.wait()
            return
        wait = (at - utcnow()).total_seconds()
        if wait > 0:
            await stopped.wait(min(wait, RESYNC_SECONDS))
            continue
        if await in_worker(svc, svc.runtime.delete_job, body):
            post(
                body, [Event("Normal", "Expired", f"deleted {spec.get('ttlSecondsAfterFinished')}s after it finished")]
            )
            await stopped.wait()
        else:
            await stopped.wait(TICK * 5)  # the API did not answer: try again


@kopf.on.event(GROUP, VERSION, "ecsjobs")
def job_changed(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """A watch event of a job (an edit, a status write): its daemon looks again at once."""
    services(memo).wake(str(meta.get("uid")))


@kopf.on.event(GROUP, VERSION, "ecscommands")
@kopf.on.event(GROUP, VERSION, "ecsclusters")
def catalog_changed(memo: kopf.Memo, **_: Any) -> None:
    """An EcsCommand or EcsCluster changed: the jobs that wait for one resolve again."""
    svc = services(memo)
    for uid in list(svc.waiting):
        svc.wake(uid)


# kopf passes indexes as keyword arguments named after them; its DaemonFn protocol does not declare them.
@kopf.daemon(GROUP, VERSION, "ecsjobs", when=unfinished, cancellation_backoff=10.0, cancellation_timeout=60.0)  # type: ignore[arg-type]
async def reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    ecscommands: Commands,
    ecsclusters: Clusters,
    **_: Any,
) -> None:
    """Sync the job whenever it is due, with the EcsCommands of its namespace and every EcsCluster."""
    svc, uid = services(memo), str(meta["uid"])
    alarm = svc.wakes[uid] = asyncio.Event()
    try:
        while not stopped:
            delay = svc.runtime.due_in(body)
            if delay > 0:
                await sleep(alarm, stopped, min(delay, RESYNC_SECONDS))
                continue
            commands = list(ecscommands.get(meta.get("namespace"), []))
            clusters = list(ecsclusters.get(None, []))
            # shielded: a daemon stopped meanwhile (deletion, shutdown) still writes and posts what was done
            result = await asyncio.shield(asyncio.ensure_future(sync_once(svc, body, commands, clusters)))
            if result.deferred:  # launches left for the next turn, or our write is not visible yet
                await sleep(alarm, stopped, TICK)
            elif result.finished or result.status.phase == "Invalid":
                await sleep(alarm, stopped, RESYNC_SECONDS)  # until kopf stops the daemon, an edit, or a catalog change
    finally:
        if svc.wakes.get(uid) is alarm:
            del svc.wakes[uid]
        svc.waiting.discard(uid)


async def sleep(alarm: asyncio.Event, stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Until the alarm rings, kopf stops the daemon (the job finished, was deleted, or the operator
    exits), or the time is up."""
    waits = [asyncio.ensure_future(alarm.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    alarm.clear()


async def sync_once(
    svc: Services, body: kopf.Body, commands: list[dict[str, Any]], clusters: list[dict[str, Any]]
) -> StepResult:
    """One sync on a worker, of the newest body (kopf swaps the whole raw body on each event, so a
    shallow copy is one consistent version), its status written there, its Events posted here."""
    started = time.monotonic()
    uid = str(body.metadata.uid)
    log.debug("syncing %s/%s (%s)", body.metadata.namespace, body.metadata.name, uid)
    result = await in_worker(svc, write_through, svc, dict(body), commands, clusters)
    if result.status.phase == "Invalid" and waits_for_catalog(result.status):
        svc.waiting.add(uid)
    else:
        svc.waiting.discard(uid)
    if svc.metrics is not None:
        svc.metrics.observe(uid, result.status.phase, result.events, time.monotonic() - started)
    post(body, result.events)
    return result


def write_through(
    svc: Services, body: dict[str, Any], commands: list[dict[str, Any]], clusters: list[dict[str, Any]]
) -> StepResult:
    result = svc.runtime.sync(body, commands, clusters)
    patch = status_patch(body.get("status") or {}, result.status.wire())
    if patch:
        svc.runtime.write_status(body, patch)
    return result


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
