"""The engine: prepare a job (validate, select, merge, register) and step it (observe, decide, act).

Shared by `ecsjob run` and the operator. It talks to a `Backend` and calls the pure core; it
imports neither kopf nor boto3.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecsjob_operator.api.durations import format_duration, parse_duration
from ecsjob_operator.api.models import (
    EcsCluster,
    EcsCommand,
    EcsJobSpec,
    EcsJobStatus,
    JobContext,
    MergedCluster,
    MergedContext,
    Resolved,
    TaskStatus,
)
from ecsjob_operator.core.backoff import backoff_seconds
from ecsjob_operator.core.decide import (
    Decision,
    Event,
    JobRef,
    Launch,
    Observation,
    adoptable,
    decide,
    fail,
    forget_foreign,
    initial_tasks,
    owned,
    record_intent,
    record_launch,
    stop_all,
)
from ecsjob_operator.core.ecs_limits import DESCRIBE_BATCH
from ecsjob_operator.core.errors import FieldError, validate_all
from ecsjob_operator.core.identity import client_token, job_id, task_tags
from ecsjob_operator.core.lifecycle import is_finished
from ecsjob_operator.core.merge import DEFAULT_TIMEOUT, MergeInput, merge, redact, strip_read_only
from ecsjob_operator.core.seal import is_sealed, launch_fields_differ, seal_of
from ecsjob_operator.core.selection import INLINE, Layers, resolve_layers, template_source
from ecsjob_operator.core.status import mark_invalid, note_decisions, set_condition, summarize
from ecsjob_operator.core.taskdef import TemplateError
from ecsjob_operator.core.tenancy import (
    CLUSTER_MISCONFIGURED,
    INLINE_CLUSTER_NOT_ALLOWED,
    SINGLE_USER,
    Grants,
    Policy,
    check_allowlist,
    check_task_definition_arn,
)
from ecsjob_operator.core.timestamps import iso, parse_iso
from ecsjob_operator.engine.backend import Backend, LaunchRequest, PermanentError, TransientError
from ecsjob_operator.engine.describe import DescribeCache
from ecsjob_operator.engine.fairness import FairGate

log = logging.getLogger(__name__)
LoadTemplate = Callable[[str, str], dict[str, Any]]


TOKEN_TRUST = timedelta(hours=23)  # AWS honours a RunTask clientToken for 24 h; older intents are looked up
INLINE_REFUSED = FieldError(
    "spec.cluster",
    "an inline cluster is not allowed by this operator: select an admin's EcsCluster with clusterCriteria",
    INLINE_CLUSTER_NOT_ALLOWED,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    deferred: bool = False  # launches left for the next dispatch (fair share): due again at once

    @property
    def finished(self) -> bool:
        return is_finished(self.status.phase)


def launch_cluster(cluster: MergedCluster, task: TaskStatus) -> MergedCluster:
    """The admin's spotFallback: after that many Spot interruptions of an index, it runs on FARGATE."""
    after = cluster.spot_fallback_after
    if cluster.launch_type == "FARGATE_SPOT" and after is not None and task.spot_interruptions >= after:
        return cluster.model_copy(update={"launch_type": "FARGATE"})
    return cluster


class Engine:
    """Runs jobs against one backend; one instance serves every job of a process."""

    def __init__(
        self,
        backend: Backend,
        prefix: str,
        clock: Callable[[], datetime] = utcnow,
        policy: Policy = SINGLE_USER,
        durable_status: bool = False,
        sole_launcher: bool = False,
        seal_key: bytes | None = None,
    ) -> None:
        """`durable_status`: the status is written before the next step (the operator), so a launch intent
        is written first and RunTask waits for the next step; `sole_launcher`: no other process can have
        launched this job's tasks (`ecsjob run` with a fresh uid). Either spares the ListTasks recovery."""
        self.backend = backend
        self.seal_key = seal_key  # the operator seals what it prepared (core.seal); `ecsjob run` keeps status in memory
        self.durable_status, self.sole_launcher = durable_status, sole_launcher
        self._intents: dict[tuple[str, int, int], datetime] = {}  # the launch intents this process wrote
        self.policy = policy
        self.gate = FairGate() if policy.launches_per_dispatch else None  # round-robin RunTask by namespace
        self.prefix = prefix
        self.clock = clock
        self.describer = DescribeCache(backend, clock=lambda: self.clock().timestamp())
        self.describer.ours = lambda started_by: started_by.startswith(f"{prefix}-")
        # What this process launched, by (uid, index, attempt): a lost status write is healed from
        # memory without a call; across processes, ListTasks by startedBy finds it (docs/reference.md, "Task identity").
        self._launched: dict[tuple[str, int, int], str] = {}

    def job_ref(self, name: str, namespace: str, uid: str) -> JobRef:
        return JobRef(name=name, namespace=namespace, uid=uid, job_id=job_id(uid), prefix=self.prefix)

    # --- prepare ------------------------------------------------------------------------------

    def prepare(
        self, job: JobRef, spec: dict[str, Any], status: EcsJobStatus, catalog: Catalog, generation: int | None = None
    ) -> StepResult:
        """Validate, select, merge and register: the status to start from, an Invalid one, or a backoff."""
        now = self.clock()
        st = status.model_copy(deep=True)
        st.job_id = job_id(job.uid)
        if st.next_retry_time and now < parse_iso(st.next_retry_time):
            return StepResult(st, [])  # backing off after a transient AWS error
        try:
            prepared, errors = self._resolve(job, spec, catalog)
            if prepared is None or errors:
                st = mark_invalid(st, errors, now, generation)
                return StepResult(st, [Event("Warning", "InvalidSpec", st.message or "")])
            context = prepared.context
            arn = prepared.reuse_arn or self.backend.ensure_task_definition(
                prepared.task_definition, context.cluster.region
            )
        except TransientError as exc:  # not the spec's fault: back off, bounded by the job's timeout
            return self._retry_prepare(job, st, spec, catalog, exc, now)
        except PermanentError as exc:
            failed = fail(job, st, "AwsRejected", f"AWS rejected {exc.operation}: {exc.reason}", now)
            failed.status.observed_generation = generation
            return StepResult(failed.status, failed.events)
        st.context, st.resolved, st.task_definition_arn = context, prepared.resolved, arn
        st.seal = seal_of(self.seal_key, job.uid, st) if self.seal_key else None
        st.observed_generation = generation
        st.start_time = st.start_time or iso(now)  # the first attempt to reach AWS
        st.prepare_failures = st.next_retry_time = None
        st.tasks = initial_tasks(job, context.task_count)
        st.conditions = [c for c in st.conditions or [] if c.type != "Invalid"]
        summarize(st, now)
        message = f"using {arn} with {context.task_count} task(s) on cluster {context.cluster.cluster_name}"
        return StepResult(st, [Event("Normal", "Prepared", message)])

    def _retry_prepare(
        self, job: JobRef, st: EcsJobStatus, spec: dict[str, Any], catalog: Catalog, exc: Exception, now: datetime
    ) -> StepResult:
        """One call per backoff step (1 s doubling to 5 min, jittered) until the job's timeout."""
        st.start_time = st.start_time or iso(now)
        timeout = self._timeout(job, spec, catalog)
        if now >= parse_iso(st.start_time) + timedelta(seconds=timeout):
            limit = format_duration(timeout)
            failed = fail(
                job, st, "Timeout", f"the job could not be prepared within its timeout of {limit}: {exc}", now
            )
            return StepResult(failed.status, failed.events)
        st.prepare_failures = (st.prepare_failures or 0) + 1
        delay = backoff_seconds(st.prepare_failures, job.uid)
        st.next_retry_time = iso(now + timedelta(seconds=delay))
        message = f"{exc}; retrying in {delay:.0f}s (attempt {st.prepare_failures})"
        set_condition(st, "Progressing", "True", "AwsError", message, now)
        st.phase, st.message = "Pending", f"preparing: {message}"
        return StepResult(st, [Event("Warning", "AwsError", message)])

    def _timeout(self, job: JobRef, spec: dict[str, Any], catalog: Catalog) -> int:
        """The timeout a job declares (job > command > default), readable before anything is merged."""
        parsed, _ = validate_all(EcsJobSpec, spec, "spec")
        layers = resolve_layers(parsed, job.namespace, catalog.commands, catalog.clusters) if parsed else []
        declared = [parsed.context.timeout if parsed and parsed.context else None]
        declared.append(layers.command.timeout if not isinstance(layers, list) else None)
        return parse_duration(next((d for d in declared if d), DEFAULT_TIMEOUT))

    def _resolve(self, job: JobRef, spec: dict[str, Any], catalog: Catalog) -> tuple[Prepared | None, list[FieldError]]:
        """The merged job, or every problem of its spec (schema, boundaries, selection, template, merge) at once."""
        parsed, errors = validate_all(EcsJobSpec, spec, "spec")
        if parsed is None:
            return None, errors
        if parsed.cluster is not None and not self.policy.inline_cluster:
            return None, [*errors, INLINE_REFUSED]  # nothing of a tenant's own cluster is looked at
        layers = resolve_layers(parsed, job.namespace, catalog.commands, catalog.clusters)
        if isinstance(layers, list):
            return None, errors + layers
        source = template_source(layers)
        if isinstance(source, FieldError):
            return None, [*errors, source]
        kind, value = source
        field_name = {"configMap": "taskDefinitionRef", "arn": "taskDefinitionArn", "file": "taskDefinitionFile"}
        where = f"{layers.command_path}.{field_name.get(kind, 'taskDefinition')}"
        denied = self._boundaries(job, layers, kind, value, where)
        if denied:
            return None, errors + denied  # a refused source is never loaded: no AWS call for it
        try:
            template = self._load(kind, value, layers.command.task_definition, layers.cluster.region, catalog)
        except TemplateError as exc:
            return None, [*errors, FieldError(where, str(exc))]
        if self.policy.allowlist and kind != "arn":  # an ARN's family was granted as a whole
            cluster = layers.cluster
            grants = Grants(job.namespace, cluster.allowed_secrets or [], cluster.allowed_efs_file_systems or [])
            errors += check_allowlist(template, where, grants)
        merged = merge(
            MergeInput(
                job=parsed.context or JobContext(),
                command=layers.command,
                cluster=layers.cluster,
                template=template,
                template_source=value if kind in ("inline", "arn") else f"{kind}:{value}",
                template_path=where,
                command_path=layers.command_path,
                cluster_path=layers.cluster_path,
                default_region=self.backend.default_region(),
                require_network=self.backend.requires_network,
                namespace=job.namespace,
                family_prefix=self.policy.family_prefix,
                roles_from_cluster_only=self.policy.roles_from_cluster_only,
            )
        )
        if errors or merged.errors or merged.context is None:
            return None, errors + merged.errors
        unchanged = kind == "arn" and merged.task_definition == strip_read_only(template)
        log.debug("merged task definition %s", redact(merged.task_definition))
        resolved = Resolved(command=layers.command_name, cluster=layers.cluster_name)
        return Prepared(merged.context, merged.task_definition, resolved, value if unchanged else None), []

    def _boundaries(self, job: JobRef, layers: Layers, kind: str, value: str, where: str) -> list[FieldError]:
        """What the admin's cluster must grant before anything is loaded (docs/reference.md, "Security boundaries")."""
        errors = []
        cluster = layers.cluster
        if self.policy.roles_from_cluster_only and not cluster.execution_role_arn:
            owner = "the inline cluster" if layers.cluster_name == INLINE else f"EcsCluster {layers.cluster_name}"
            message = f"{owner} sets no executionRoleArn: tasks take their roles only from the cluster; ask its admin"
            errors.append(FieldError(f"{layers.cluster_path}.executionRoleArn", message, CLUSTER_MISCONFIGURED))
        if kind == "arn" and self.policy.family_prefix is not None:
            allowed = cluster.allowed_task_definitions or []
            denied = check_task_definition_arn(value, job.namespace, self.policy.family_prefix, allowed, where)
            errors += [denied] if denied else []
        return errors

    def _load(
        self, kind: str, value: str, inline: dict[str, Any] | None, region: str | None, catalog: Catalog
    ) -> dict[str, Any]:
        if kind == "inline" and inline is not None:
            return inline
        if kind == "arn":
            return self.backend.load_task_definition(value, region or self.backend.default_region())
        return catalog.load_template(kind, value)

    # --- seal ---------------------------------------------------------------------------------

    def is_sealed(self, job: JobRef, status: EcsJobStatus) -> bool:
        """Whether the status's context and task definition are the ones this operator prepared."""
        return self.seal_key is None or status.context is None or is_sealed(self.seal_key, job.uid, status)

    def reseal(self, job: JobRef, spec: dict[str, Any], status: EcsJobStatus, catalog: Catalog) -> StepResult:
        """A status without a valid seal: derive the context again from the spec and the EcsClusters. Equal
        where a launch reads it: sealed again (a restart with a new key, an older version's status). Else
        the status was edited by hand: the job's own tasks (as ECS tags them) are stopped, it ends Failed
        (reason StatusTampered), and nothing is launched from the forged fields."""
        assert self.seal_key is not None
        now = self.clock()
        try:
            prepared, errors = self._resolve(job, spec, catalog)
            trusted = None if prepared is None or errors else prepared.context
            arn = None
            if prepared is not None and trusted is not None:
                arn = prepared.reuse_arn or self.backend.ensure_task_definition(
                    prepared.task_definition, trusted.cluster.region
                )
        except TransientError as exc:
            return self._transient(status, exc, now)
        except PermanentError as exc:
            return self._reject(job, status.model_copy(update={"context": None}), exc, now, [])
        differ = ["status.context"] if trusted is None or arn is None else launch_fields_differ(trusted, arn, status)
        st = status.model_copy(deep=True)
        if not differ:
            st.seal = seal_of(self.seal_key, job.uid, st)
            log.info("%s: status sealed again (checked against its spec and EcsClusters)", job.label)
            return StepResult(st, [], deferred=True)
        why = "cannot be derived again" if trusted is None else "differ from what the spec and EcsClusters give"
        message = f"{', '.join(differ)} {why}: the status was edited by hand; nothing is launched from it"
        events: list[Event] = []
        st.context = trusted
        if trusted is not None:
            st.task_definition_arn = arn
            events = self.stop_all(job, st, f"ecsjob: job {job.label} status was edited by hand")
        decision = fail(job, st, "StatusTampered", message, now)  # its stops went out above, owned ones only
        self.forget(job)
        return StepResult(decision.status, [Event("Warning", "StatusTampered", message), *events, *decision.events])

    # --- step ---------------------------------------------------------------------------------

    def step(self, job: JobRef, status: EcsJobStatus, suspend: bool = False) -> StepResult:
        """One reconcile: observe the running tasks, decide, stop and launch, record."""
        now = self.clock()
        ctx = status.context
        if ctx is None or is_finished(status.phase):
            return StepResult(status, [])
        if not self.is_sealed(job, status):  # the operator's runtime reseals first; never launch from it
            raise ValueError("status.context is not sealed by this operator")
        interval = parse_duration(ctx.polling_interval)
        running = [t.arn for t in status.tasks or [] if t.phase == "Running" and t.arn]
        try:
            observed = self.describer.get(ctx.cluster, running, interval, job.uid) if running else {}
        except TransientError as exc:
            return self._transient(status, exc, now)
        except PermanentError as exc:
            return self._reject(job, status, exc, now, [])
        foreign = {arn: obs for arn, obs in observed.items() if not owned(obs, job.uid)}
        if foreign:
            status = status.model_copy(deep=True)
            warnings = forget_foreign(status, foreign)
            observed = {arn: obs for arn, obs in observed.items() if arn not in foreign}
            running = [arn for arn in running if arn not in foreign]
            self.describer.untrack(ctx.cluster, foreign, job.uid)
        decision = decide(job, status, observed, now, suspend)
        if foreign:
            decision.events[:0] = warnings
        self._stop(decision, ctx.cluster)
        cap = self.policy.launches_per_dispatch or len(decision.launches)
        waiting = len(decision.launches) > cap  # the rest wait for the next dispatch, others' jobs go first
        for launch in decision.launches[:cap]:
            task, key = (decision.status.tasks or [])[launch.index], (job.uid, launch.index, launch.attempt)
            recover = self._needs_recovery(key, task, launch, now)  # judged before we write an intent
            if task.intent_attempt != launch.attempt:
                record_intent(decision.status, launch, now)
                self._intents[key] = now
                if self.durable_status:  # RunTask only once the intent is in the stored status
                    waiting = True
                    continue
            try:
                decision.events.append(self._launch(job, decision, launch, now, recover))
            except PermanentError as exc:
                return self._reject(job, decision.status, exc, now, decision.events)
        still = {t.arn for t in decision.status.tasks or [] if t.phase == "Running" and t.arn}
        self.describer.untrack(ctx.cluster, [a for a in running if a not in still], job.uid)  # no longer polled
        self.describer.track(ctx.cluster, [a for a in still if a not in running], job.uid)
        if decision.finished:
            self.forget(job)
        summarize(decision.status, now)
        note_decisions(decision.status, [(e.reason, e.message) for e in decision.events], now)
        return StepResult(decision.status, decision.events, deferred=waiting)

    def _stop(self, decision: Decision, cluster: MergedCluster) -> None:
        for stop in decision.stops:
            try:
                self.backend.stop(cluster, stop.arn, stop.reason)
            except (TransientError, PermanentError) as exc:  # marked stopped; ECS ends it at the timeout at worst
                log.warning("StopTask %s failed: %s", stop.arn, exc)
            decision.events.append(Event("Normal", "TaskStopped", f"task {stop.index} stopped: {stop.reason}"))

    def _launch(self, job: JobRef, decision: Decision, launch: Launch, now: datetime, recover: bool) -> Event:
        """Adopt a task this attempt already has (from memory, else ListTasks by startedBy), or RunTask."""
        st = decision.status
        assert st.context is not None and st.task_definition_arn is not None
        task = (st.tasks or [])[launch.index]
        key = (job.uid, launch.index, launch.attempt)
        try:
            if key in self._launched:
                return self._record(job, st, launch, self._launched[key], now, adopted=True)
            if recover and (found := self._recover(job, st, launch)):
                return self._record(job, st, launch, found, now, adopted=True)
            if self.gate is not None:
                self.gate.acquire(job.namespace)
            cluster = launch_cluster(st.context.cluster, task)
            if cluster is not st.context.cluster:
                message = (
                    f"task {launch.index} attempt {launch.attempt} runs on FARGATE after "
                    f"{task.spot_interruptions} Spot interruptions (spotFallback)"
                )
                decision.events.append(Event("Normal", "SpotFallback", message))
            result = self.backend.launch(
                LaunchRequest(
                    cluster=cluster,
                    task_definition_arn=st.task_definition_arn,
                    task_name=launch.task_name,
                    index=launch.index,
                    attempt=launch.attempt,
                    client_token=client_token(job.uid, launch.index, launch.attempt, task.launch_try),
                    tags={
                        **st.context.tags,
                        **task_tags(job.namespace, job.name, job.uid, launch.index, launch.attempt),
                    },
                    containers=[c.name for c in st.context.containers],
                )
            )
        except TransientError as exc:  # no answer: the next try reuses the same token
            return record_launch(st, launch, None, str(exc), now)
        if result.conflict and (found := self._recover(job, st, launch)):
            return self._record(job, st, launch, found, now, adopted=True)
        if result.arn is not None:
            self._launched[key] = result.arn
            self.describer.launched(st.context.cluster, result.arn, job.uid)
        return record_launch(st, launch, result.arn, result.failure, now, new_token=result.arn is None)

    def _record(self, job: JobRef, st: EcsJobStatus, launch: Launch, arn: str, now: datetime, adopted: bool) -> Event:
        """A task this job owns (ours from memory, or its uid tag checked): recorded, its events usable."""
        assert st.context is not None
        self.describer.launched(st.context.cluster, arn, job.uid)
        return record_launch(st, launch, arn, None, now, adopted=adopted)

    def _needs_recovery(self, key: tuple[str, int, int], task: TaskStatus, launch: Launch, now: datetime) -> bool:
        """Whether another process may have launched this attempt: only then is ListTasks worth a call."""
        written = self._intents.get(key)
        if written is not None:  # ours: AWS answers a retried token with the original task for 24 h
            return now - written >= TOKEN_TRUST
        if self.durable_status:  # the status is the truth: an intent there that we did not write
            return task.intent_attempt == launch.attempt
        return not self.sole_launcher

    def _recover(self, job: JobRef, st: EcsJobStatus, launch: Launch) -> str | None:
        """ListTasks by startedBy: the task of this attempt (uid and attempt tags), if one exists."""
        assert st.context is not None
        task = (st.tasks or [])[launch.index]
        mine = [o for o in self.backend.find(st.context.cluster, launch.task_name) if owned(o, job.uid)]
        found = adoptable(task, launch.attempt, mine)
        return found.arn if found is not None else None

    def forget(self, job: JobRef) -> None:
        """Drop what this process remembers of a finished or deleted job."""
        for key in [k for k in self._launched if k[0] == job.uid]:
            del self._launched[key]
        for key in [k for k in self._intents if k[0] == job.uid]:
            del self._intents[key]

    def _transient(self, status: EcsJobStatus, exc: Exception, now: datetime) -> StepResult:
        """A poll that got no answer: shown, and tried again at the next poll."""
        st = status.model_copy(deep=True)
        message = f"{exc}; will retry at the next poll"
        set_condition(st, "Progressing", "True", "AwsError", message, now)
        return StepResult(st, [Event("Warning", "AwsError", message)])

    def _reject(
        self, job: JobRef, status: EcsJobStatus, exc: PermanentError, now: datetime, events: list[Event]
    ) -> StepResult:
        """AWS refused a request for good: stop what runs and end the job (reason AwsRejected)."""
        decision = fail(job, status, "AwsRejected", f"AWS rejected {exc.operation}: {exc.reason}", now)
        if status.context is not None:
            self._stop(decision, status.context.cluster)
        self.forget(job)
        return StepResult(decision.status, events + decision.events)

    def stop_all(self, job: JobRef, status: EcsJobStatus, reason: str) -> list[Event]:
        """Stop every running task of the job (deletion, Ctrl-C); counts no failure. A task is stopped
        only when ECS says it is the job's (its uid tag): the status alone is not trusted."""
        if status.context is None:
            return []
        stops = stop_all(status, reason)
        arns = [s.arn for s in stops]
        observed: dict[str, Observation] = {}
        for start in range(0, len(arns), DESCRIBE_BATCH):
            observed.update(self.backend.describe(status.context.cluster, arns[start : start + DESCRIBE_BATCH]))
        foreign = {s.arn: o for s in stops if (o := observed.get(s.arn)) is not None and not owned(o, job.uid)}
        events = forget_foreign(status.model_copy(deep=True), foreign)
        mine = [s for s in stops if s.arn in observed and s.arn not in foreign]  # MISSING: nothing to stop
        decision = Decision(status=status, stops=mine)
        self._stop(decision, status.context.cluster)
        self.describer.untrack(status.context.cluster, arns, job.uid)
        return events + decision.events
