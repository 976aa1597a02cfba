"""The Kubernetes side: kopf registrations only. Handlers translate; JobRuntime and the engine decide.

A timer ticks every ECSJOB_TICK_SECONDS (default 1 s) for each unfinished EcsJob and calls the
engine when the job is due (its pollingInterval, sooner for a backoff, a deadline or a spec
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
from ecsjob_operator.core import redaction as logsafety
from ecsjob_operator.core.decide import Event
from ecsjob_operator.core.status import waits_for_catalog
from ecsjob_operator.kube.metrics import Metrics
from ecsjob_operator.kube.runtime import JobRuntime, status_patch

FINALIZER = "ecsjob.io/stop-tasks"
TICK = float(os.environ.get("ECSJOB_TICK_SECONDS", "1"))
WORKERS = int(os.environ.get("ECSJOB_WORKERS", "8"))  # threads for engine work (AWS calls)
T = TypeVar("T")
log = logging.getLogger(__name__)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.CRITICAL  # our Events are explicit (kopf.event), not log lines


@kopf.index(GROUP, VERSION, "ecscommands")
def ecscommands(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str | None, dict[str, Any]]:
    return {namespace: dict(body)}


@kopf.index(GROUP, VERSION, "ecsclusters")
def ecsclusters(body: kopf.Body, **_: Any) -> dict[None, dict[str, Any]]:
    return {None: dict(body)}


def unfinished(status: Mapping[str, Any], meta: Mapping[str, Any], **_: Any) -> bool:
    """Succeeded and Failed are final; Invalid waits for a new generation (or a matching context)."""
    phase = status.get("phase")
    if phase == "Invalid":
        edited = meta.get("generation") != status.get("observedGeneration")
        return edited or waits_for_catalog(EcsJobStatus.model_validate(dict(status)))
    return phase not in ("Succeeded", "Failed")


@kopf.timer(GROUP, VERSION, "ecsjobs", interval=TICK, when=unfinished, initial_delay=0)
async def reconcile(
    body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Step the job when due; kwargs carry kopf's indexes of EcsCommands and EcsClusters."""
    ecscommands: kopf.Index[str | None, dict[str, Any]] = kwargs["ecscommands"]
    ecsclusters: kopf.Index[None, dict[str, Any]] = kwargs["ecsclusters"]
    runtime: JobRuntime = memo.runtime
    if not runtime.is_due(body):
        return
    commands = list(ecscommands.get(meta.get("namespace"), []))
    clusters = list(ecsclusters.get(None, []))
    started = time.monotonic()
    result = await in_worker(memo, runtime.reconcile, body, commands, clusters)
    metrics: Metrics | None = memo.get("metrics")
    if metrics is not None:
        metrics.observe(meta["uid"], result.status.phase, result.events, time.monotonic() - started)
    new = result.status.wire()
    patch.status.update(status_patch(status, new))
    post(body, result.events)


@kopf.on.delete(GROUP, VERSION, "ecsjobs")
async def stop_tasks(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """The finalizer: a deleted job's running tasks are stopped before the object goes."""
    runtime: JobRuntime = memo.runtime
    try:
        events = await in_worker(memo, runtime.delete, body)
    except Exception as exc:  # AWS unreachable: keep the finalizer and retry
        raise kopf.TemporaryError(f"cannot stop the job's tasks yet: {exc}", delay=5) from exc
    post(body, events)
    if memo.get("metrics") is not None:
        memo.metrics.forget(body.metadata.uid)


async def in_worker(memo: kopf.Memo, fn: Callable[..., T], *args: Any) -> T:
    """Run blocking engine work (AWS calls, the RunTask token bucket) on the operator's worker pool."""
    return await asyncio.get_running_loop().run_in_executor(memo.workers, fn, *args)


def post(body: kopf.Body, events: list[Event]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        level = logging.WARNING if event.type == "Warning" else logging.INFO
        log.log(level, "%s/%s %s: %s", body.metadata.namespace, body.metadata.name, event.reason, event.message)


@dataclass
class KopfOptions:
    """The `kopf run` options that `ecsjob operator` accepts."""

    namespaces: list[str] = field(default_factory=list)
    standalone: bool = False
    priority: int | None = None
    peering: str | None = None
    liveness: str | None = None
    log_format: str = "full"
    verbose: bool = False
    debug: bool = False
    quiet: bool = False


def run_operator(runtime: JobRuntime, options: KopfOptions, metrics: Metrics | None = None) -> int:
    """Run kopf with these handlers until SIGINT/SIGTERM."""
    kopf.configure(
        verbose=options.verbose,
        debug=options.debug,
        quiet=options.quiet,
        log_format=kopf.LogFormat[options.log_format.upper()],
    )
    logsafety.install(wire_logs=options.debug)
    kopf.run(
        memo=kopf.Memo(runtime=runtime, metrics=metrics, workers=ThreadPoolExecutor(WORKERS, "ecsjob")),
        standalone=options.standalone,
        priority=options.priority,
        peering_name=options.peering,
        liveness_endpoint=options.liveness,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
    )
    return 0
