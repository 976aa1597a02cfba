"""The engine: prepare a job (validate, select, merge, register) and step it (observe, decide, act).

Shared by `ecsjob run` and the operator. It talks to a `Backend` and calls the pure core; it
imports neither kopf nor boto3.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecsjob_operator.api.durations import parse_duration
from ecsjob_operator.api.models import (
    EcsCluster,
    EcsCommand,
    EcsJobSpec,
    EcsJobStatus,
    JobContext,
    MergedCluster,
    MergedContext,
    Resolved,
)
from ecsjob_operator.core.decide import (
    Decision,
    Event,
    JobRef,
    Launch,
    Observation,
    adoptable,
    decide,
    initial_tasks,
    record_launch,
    stop_all,
)
from ecsjob_operator.core.ecs_limits import DESCRIBE_BATCH
from ecsjob_operator.core.errors import FieldError, validate_all
from ecsjob_operator.core.identity import client_token, job_id, task_tags
from ecsjob_operator.core.lifecycle import is_finished
from ecsjob_operator.core.merge import MergeInput, merge, redact, strip_read_only
from ecsjob_operator.core.selection import resolve_layers, template_source
from ecsjob_operator.core.status import mark_invalid, set_condition, summarize
from ecsjob_operator.engine.backend import Backend, LaunchRequest, TemplateError, TransientError

log = logging.getLogger(__name__)
LoadTemplate = Callable[[str, str], dict[str, Any]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Entry:
    obs: Observation | None
    fetched: float


@dataclass
class DescribeCache:
    """Coalesces DescribeTasks across all jobs sharing a cluster and region.

    The first job whose tasks are stale refreshes every task that any job asked about recently,
    100 ARNs per call; the others read the fresh answers. Polling N tasks costs about N/100 calls
    per interval instead of one call per job.
    """

    backend: Backend
    clock: Callable[[], float] = time.monotonic
    freshness: float = 0.5  # fraction of the polling interval an answer stays fresh
    calls: int = 0
    _entries: dict[tuple[str, str | None], dict[str, _Entry]] = field(default_factory=dict)
    _asked: dict[tuple[str, str | None], dict[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, cluster: MergedCluster, arns: list[str], interval: float) -> dict[str, Observation]:
        key = (cluster.cluster_name, cluster.region)
        max_age = interval * self.freshness
        with self._lock:
            now = self.clock()
            entries = self._entries.setdefault(key, {})
            asked = self._asked.setdefault(key, {})
            for arn in arns:
                asked[arn] = now
            if any(a not in entries or now - entries[a].fetched > max_age for a in arns):
                self._refresh(cluster, entries, asked, now, max_age)
            return {a: e.obs for a in arns if (e := entries.get(a)) and e.obs is not None}

    def track(self, cluster: MergedCluster, arns: list[str]) -> None:
        """Announce tasks just launched, so that the next refresh includes them."""
        with self._lock:
            asked = self._asked.setdefault((cluster.cluster_name, cluster.region), {})
            now = self.clock()
            for arn in arns:
                asked[arn] = now

    def _refresh(
        self, cluster: MergedCluster, entries: dict[str, _Entry], asked: dict[str, float], now: float, max_age: float
    ) -> None:
        for arn in [a for a, t in asked.items() if now - t > 4 * max_age]:  # nobody polls it any more
            asked.pop(arn)
            entries.pop(arn, None)
        wanted = sorted(a for a in asked if a not in entries or now - entries[a].fetched > max_age / 2)
        for start in range(0, len(wanted), DESCRIBE_BATCH):
            batch = wanted[start : start + DESCRIBE_BATCH]
            self.calls += 1
            found = self.backend.describe(cluster, batch)
            for arn in batch:
                entries[arn] = _Entry(found.get(arn), now)


@dataclass(frozen=True)
class Catalog:
    """What a job resolves against: the EcsCommands and EcsClusters it may select, and its template loader."""

    commands: Sequence[EcsCommand] = ()
    clusters: Sequence[EcsCluster] = ()
    load_template: LoadTemplate = field(default=lambda kind, value: _no_template(kind, value))


def _no_template(kind: str, value: str) -> dict[str, Any]:
    raise TemplateError(f"no {kind} task definition source is available here ({value})")


@dataclass(frozen=True)
class Prepared:
    """A job resolved and merged: its frozen context, the task definition to register, where it came from."""

    context: MergedContext
    task_definition: dict[str, Any]
    resolved: Resolved
    reuse_arn: str | None  # a taskDefinitionArn used as is (nothing to register)


@dataclass
class StepResult:
    status: EcsJobStatus
    events: list[Event]

    @property
    def finished(self) -> bool:
        return is_finished(self.status.phase)


class Engine:
    """Runs jobs against one backend; one instance serves every job of a process."""

    def __init__(self, backend: Backend, prefix: str, clock: Callable[[], datetime] = utcnow) -> None:
        self.backend = backend
        self.prefix = prefix
        self.clock = clock
        self.describer = DescribeCache(backend, clock=lambda: self.clock().timestamp())
        # What this process launched, by (uid, index, attempt): a lost status write is healed from
        # memory without a call; across processes, ListTasks by startedBy finds it (docs/reference.md, "Task identity").
        self._launched: dict[tuple[str, int, int], str] = {}

    def job_ref(self, name: str, namespace: str, uid: str) -> JobRef:
        return JobRef(name=name, namespace=namespace, uid=uid, job_id=job_id(uid), prefix=self.prefix)

    # --- prepare ------------------------------------------------------------------------------

    def prepare(
        self, job: JobRef, spec: dict[str, Any], status: EcsJobStatus, catalog: Catalog, generation: int | None = None
    ) -> StepResult:
        """Validate, select, merge and register: the status to start from, or an Invalid one."""
        now = self.clock()
        st = status.model_copy(deep=True)
        st.job_id = job_id(job.uid)
        try:
            prepared, errors = self._resolve(job, spec, catalog)
        except TransientError as exc:  # e.g. DescribeTaskDefinition throttled: not the spec's fault
            return self._transient(st, "DescribeTaskDefinition", exc, now)
        if prepared is None or errors:
            st = mark_invalid(st, errors, now, generation)
            return StepResult(st, [Event("Warning", "InvalidSpec", st.message or "")])
        context, arn = prepared.context, prepared.reuse_arn
        if arn is None:
            try:
                arn = self.backend.ensure_task_definition(prepared.task_definition, context.cluster.region)
            except TransientError as exc:
                return self._transient(st, "RegisterTaskDefinition", exc, now)
        st.context, st.resolved, st.task_definition_arn = context, prepared.resolved, arn
        st.observed_generation = generation
        st.tasks = initial_tasks(job, context.task_count)
        st.conditions = [c for c in st.conditions or [] if c.type != "Invalid"]
        summarize(st, now)
        message = f"using {arn} with {context.task_count} task(s) on cluster {context.cluster.cluster_name}"
        return StepResult(st, [Event("Normal", "Prepared", message)])

    def _resolve(self, job: JobRef, spec: dict[str, Any], catalog: Catalog) -> tuple[Prepared | None, list[FieldError]]:
        """The merged job, or every problem of its spec (schema, selection, template, merge) at once."""
        parsed, errors = validate_all(EcsJobSpec, spec, "spec")
        if parsed is None:
            return None, errors
        layers = resolve_layers(parsed, job.namespace, catalog.commands, catalog.clusters)
        if isinstance(layers, list):
            return None, errors + layers
        source = template_source(layers)
        if isinstance(source, FieldError):
            return None, [*errors, source]
        kind, value = source
        try:
            template = self._load(kind, value, layers.command.task_definition, layers.cluster.region, catalog)
        except TemplateError as exc:
            field_name = {"configMap": "taskDefinitionRef", "arn": "taskDefinitionArn", "file": "taskDefinitionFile"}
            return None, [
                *errors,
                FieldError(f"{layers.command_path}.{field_name.get(kind, 'taskDefinition')}", str(exc)),
            ]
        inp = MergeInput(
            job=parsed.context or JobContext(),
            command=layers.command,
            cluster=layers.cluster,
            template=template,
            template_source=value if kind in ("inline", "arn") else f"{kind}:{value}",
            command_path=layers.command_path,
            cluster_path=layers.cluster_path,
            default_region=self.backend.default_region(),
            require_network=self.backend.requires_network,
        )
        merged = merge(inp)
        if errors or merged.errors or merged.context is None:
            return None, errors + merged.errors
        unchanged = kind == "arn" and merged.task_definition == strip_read_only(template)
        log.debug("merged task definition %s", redact(merged.task_definition))
        resolved = Resolved(command=layers.command_name, cluster=layers.cluster_name)
        return Prepared(merged.context, merged.task_definition, resolved, value if unchanged else None), []

    def _load(
        self, kind: str, value: str, inline: dict[str, Any] | None, region: str | None, catalog: Catalog
    ) -> dict[str, Any]:
        if kind == "inline" and inline is not None:
            return inline
        if kind == "arn":
            return self.backend.load_task_definition(value, region or self.backend.default_region())
        return catalog.load_template(kind, value)

    # --- step ---------------------------------------------------------------------------------

    def step(self, job: JobRef, status: EcsJobStatus, suspend: bool = False) -> StepResult:
        """One reconcile: observe the running tasks, decide, stop and launch, record."""
        now = self.clock()
        ctx = status.context
        if ctx is None or is_finished(status.phase):
            return StepResult(status, [])
        interval = parse_duration(ctx.polling_interval)
        running = [t.arn for t in status.tasks or [] if t.phase == "Running" and t.arn]
        try:
            observed = self.describer.get(ctx.cluster, running, interval) if running else {}
        except TransientError as exc:
            return self._transient(status, "DescribeTasks", exc, now)
        decision = decide(job, status, observed, now, suspend)
        self._stop(decision, ctx.cluster)
        for launch in decision.launches:
            decision.events.append(self._launch(job, decision, launch, now))
        launched = [t.arn for t in decision.status.tasks or [] if t.phase == "Running" and t.arn]
        self.describer.track(ctx.cluster, [a for a in launched if a not in running])
        if decision.finished:
            self.forget(job)
        summarize(decision.status, now)
        return StepResult(decision.status, decision.events)

    def _stop(self, decision: Decision, cluster: MergedCluster) -> None:
        for stop in decision.stops:
            try:
                self.backend.stop(cluster, stop.arn, stop.reason)
            except TransientError as exc:  # the task is marked stopped; ECS ends it at the timeout at worst
                log.warning("StopTask %s failed: %s", stop.arn, exc)
            decision.events.append(Event("Normal", "TaskStopped", f"task {stop.index} stopped: {stop.reason}"))

    def _launch(self, job: JobRef, decision: Decision, launch: Launch, now: datetime) -> Event:
        """Adopt a task this attempt already has (from memory, else ListTasks by startedBy), or RunTask."""
        st = decision.status
        assert st.context is not None and st.task_definition_arn is not None
        task = (st.tasks or [])[launch.index]
        key = (job.uid, launch.index, launch.attempt)
        try:
            if key in self._launched:
                return record_launch(st, launch, self._launched[key], None, now, adopted=True)
            found = adoptable(task, launch.attempt, self.backend.find(st.context.cluster, launch.task_name))
            if found is not None:
                return record_launch(st, launch, found.arn, None, now, adopted=True)
            result = self.backend.launch(
                LaunchRequest(
                    cluster=st.context.cluster,
                    task_definition_arn=st.task_definition_arn,
                    task_name=launch.task_name,
                    index=launch.index,
                    attempt=launch.attempt,
                    client_token=client_token(job.uid, launch.index, launch.attempt),
                    tags={
                        **st.context.tags,
                        **task_tags(job.namespace, job.name, job.uid, launch.index, launch.attempt),
                    },
                    containers=[c.name for c in st.context.containers],
                )
            )
        except TransientError as exc:
            return record_launch(st, launch, None, str(exc), now)
        if result.arn is not None:
            self._launched[key] = result.arn
        return record_launch(st, launch, result.arn, result.failure, now)

    def forget(self, job: JobRef) -> None:
        """Drop what this process remembers of a finished or deleted job."""
        for key in [k for k in self._launched if k[0] == job.uid]:
            del self._launched[key]

    def _transient(self, status: EcsJobStatus, operation: str, exc: Exception, now: datetime) -> StepResult:
        st = status.model_copy(deep=True)
        message = f"{operation} failed, will retry: {exc}"
        set_condition(st, "Progressing", "True", "AwsError", message, now)
        return StepResult(st, [Event("Warning", "AwsError", message)])

    def stop_all(self, status: EcsJobStatus, reason: str) -> list[Event]:
        """Stop every running task (deletion, Ctrl-C); counts no failure."""
        if status.context is None:
            return []
        decision = Decision(status=status, stops=stop_all(status, reason))
        self._stop(decision, status.context.cluster)
        return decision.events
