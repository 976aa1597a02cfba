"""The pure decision core: decide(job, status, observed tasks, now) -> actions + new status.

No I/O and no clock: the engine observes ECS (or the local backend), calls `decide`, applies
the actions and feeds launch results back through `record_launch`. Tested as tables.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ecsjob_operator.api.durations import parse_duration
from ecsjob_operator.api.models import EcsJobStatus, FailureRule, LogsPointer, MergedContext, TaskStatus
from ecsjob_operator.core.ecs_limits import CLEAN_STOP_CODES, INTERRUPTION_STOP_CODES
from ecsjob_operator.core.identity import task_name
from ecsjob_operator.core.indexes import format_indexes, parse_indexes
from ecsjob_operator.core.lifecycle import is_finished
from ecsjob_operator.core.status import is_true, logs_pointer, note_decisions, set_condition, summarize
from ecsjob_operator.core.timestamps import iso, parse_iso

LAUNCH_BACKOFF_CAP = 300  # seconds; RunTask capacity failures can last minutes
# Interruptions relaunched without counting before they count again (failurePolicy.maxIgnoredRelaunches' default).
MAX_IGNORED_RELAUNCHES = 10


@dataclass(frozen=True)
class ContainerResult:
    name: str
    exit_code: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Observation:
    """One task as ECS (or the local backend) reports it."""

    arn: str
    last_status: str
    started_by: str | None = None
    containers: tuple[ContainerResult, ...] = ()
    stop_code: str | None = None
    stopped_reason: str | None = None
    stopped_at: datetime | None = None
    attempt: int | None = None
    uid: str | None = None  # the ecsjob.io/uid tag: whose task it is
    version: int | None = None  # ECS's task version: it grows with every change of the task


def owned(obs: Observation, uid: str) -> bool:
    """Only a task tagged with the job's uid is the job's to stop or adopt (docs/reference.md,
    "Security boundaries"); a status is user input and may name anybody's ARN."""
    return obs.uid == uid


def forget_foreign(status: EcsJobStatus, foreign: Mapping[str, Observation]) -> list[Event]:
    """Tasks a status names that are not the job's: left alone in ECS, dropped from the status (the
    index is launched anew), one Warning Event each."""
    events = []
    for task in status.tasks or []:
        obs = foreign.get(task.arn or "")
        if obs is None:
            continue
        events.append(
            Event(
                "Warning",
                "ForeignTask",
                f"task {task.index}: {task.arn} is not this job's task (ecsjob.io/uid {obs.uid or 'missing'}); "
                "it was left alone and the index will be launched anew",
            )
        )
        task.arn, task.phase, task.last_status = None, "Pending", None
    return events


@dataclass(frozen=True)
class JobRef:
    """The identity of a job: what its tasks are named and tagged with."""

    name: str
    namespace: str
    uid: str
    job_id: str
    prefix: str

    @property
    def label(self) -> str:
        """namespace/name (jobId): how StopTask reasons, Events and logs name the job."""
        return f"{self.namespace}/{self.name} ({self.job_id})"


@dataclass(frozen=True)
class Launch:
    index: int
    attempt: int
    task_name: str


@dataclass(frozen=True)
class Stop:
    index: int
    arn: str
    reason: str


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Decision:
    status: EcsJobStatus
    launches: list[Launch] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    job: str = "the job"  # how StopTask reasons name it: namespace/name (jobId)

    @property
    def finished(self) -> bool:
        return is_finished(self.status.phase)


@dataclass(frozen=True)
class Outcome:
    success: bool
    exit_code: int | None
    reason: str


# --- classification -------------------------------------------------------------------------


def classify(obs: Observation, essential: set[str]) -> Outcome:
    """Success iff every essential container exited 0 and nobody else stopped the task."""
    deciding = [c for c in obs.containers if c.name in essential] or list(obs.containers)
    if obs.last_status == "MISSING":
        return Outcome(False, None, "task no longer returned by ECS (MISSING)")
    if not deciding:
        return Outcome(False, None, obs.stopped_reason or "task stopped without containers")
    for c in deciding:
        if c.exit_code is None:
            why = c.reason or obs.stopped_reason or obs.stop_code or "no exit code"
            return Outcome(False, None, f"container {c.name} has no exit code: {why}")
    for c in deciding:
        if c.exit_code != 0:
            return Outcome(False, c.exit_code, f"container {c.name} exited with {c.exit_code}")
    if obs.stop_code not in CLEAN_STOP_CODES:
        return Outcome(False, 0, f"task stopped by {obs.stop_code}: {obs.stopped_reason or ''}".rstrip(": "))
    return Outcome(True, 0, "every essential container exited with 0")


# --- decide ---------------------------------------------------------------------------------


def initial_tasks(job: JobRef, count: int) -> list[TaskStatus]:
    return [TaskStatus(index=i, task_name=task_name(job.prefix, job.job_id, i)) for i in range(count)]


def decide(
    job: JobRef,
    status: EcsJobStatus,
    observed: Mapping[str, Observation],
    now: datetime,
    suspend: bool = False,
) -> Decision:
    """From the current status and what ECS reports, the next status and actions."""
    if is_finished(status.phase) or status.context is None:
        return Decision(status=status)
    st = status.model_copy(deep=True)
    ctx = st.context
    assert ctx is not None
    st.tasks = st.tasks or initial_tasks(job, ctx.task_count)
    d = Decision(status=st, job=job.label)
    essential = {c.name for c in ctx.containers if c.essential}
    exhausted: TaskStatus | None = None
    fail_job: TaskStatus | None = None
    for task in st.tasks:
        is_running = task.phase == "Running" and bool(task.arn)
        if not is_running:
            continue
        verdict = _attempt_timeout(task, ctx, now, d) or _observe(task, observed.get(task.arn or ""), ctx, essential, d)
        if verdict == FAIL_JOB and fail_job is None:
            fail_job = task
        elif verdict == EXHAUSTED and exhausted is None:
            exhausted = task
    failed = [t.index for t in st.tasks if t.phase == "Failed"]
    st.failed_indexes = format_indexes(failed) if failed else None
    if not suspend and is_true(st, "Suspended"):
        st.start_time = None  # resuming: like a Kubernetes Job, the timeout restarts with the next launch
    continuing = ctx.on_index_failure == "Continue"
    if fail_job is not None:
        _finish_failed(d, ctx, now, "FailedByRule", f"task {fail_job.index}: {fail_job.last_failure}", fail_job)
    elif exhausted is not None and not continuing:
        _finish_failed(d, ctx, now, "MaxFailCountExceeded", _exhausted_message(exhausted, ctx), exhausted)
    elif ctx.success_policy is not None and _success_policy_met(st, ctx):
        _finish_succeeded(d, ctx, now, policy=True)
    elif continuing and ctx.max_failed_indexes is not None and len(failed) > ctx.max_failed_indexes:
        message = (
            f"{len(failed)} indexes failed ({st.failed_indexes}), more than maxFailedIndexes {ctx.max_failed_indexes}"
        )
        _finish_failed(d, ctx, now, "MaxFailedIndexesExceeded", message, exhausted or _task(st, failed[-1]))
    elif all(t.phase == "Succeeded" for t in st.tasks):
        _finish_succeeded(d, ctx, now)
    elif failed and all(t.phase in ("Succeeded", "Failed") for t in st.tasks):
        message = f"every index ended and {len(failed)} failed ({st.failed_indexes})"
        _finish_failed(d, ctx, now, "FailedIndexes", message, _task(st, failed[-1]))
    elif not suspend and _timed_out(st, ctx, now):  # suspended time does not count
        tasks = st.tasks
        running = next((t for t in tasks if t.phase == "Running"), None) or next(
            (t for t in tasks if t.arn and t.phase != "Succeeded"), None
        )
        _finish_failed(d, ctx, now, "Timeout", f"the job exceeded its timeout of {ctx.timeout}", running)
    elif suspend:
        _suspend(d, now)
    else:
        _resume_and_launch(d, now)
    summarize(st, now)
    note_decisions(st, [(e.reason, e.message) for e in d.events], now)
    return d


# What a failed attempt means for its job (the verdicts of _observe).
EXHAUSTED, FAIL_JOB = "exhausted", "fail-job"


def _observe(
    task: TaskStatus, obs: Observation | None, ctx: MergedContext, essential: set[str], d: Decision
) -> str | None:
    """Update one running task from its observation; EXHAUSTED when it has run out of retries, FAIL_JOB
    when a failurePolicy rule says so."""
    if obs is None:
        obs = Observation(arn=task.arn or "", last_status="MISSING")
    task.last_status = obs.last_status
    if obs.last_status not in ("STOPPED", "MISSING"):
        return None
    outcome = classify(obs, essential)
    task.exit_code, task.stop_code = outcome.exit_code, obs.stop_code
    task.stopped_reason = obs.stopped_reason or outcome.reason
    if obs.stopped_at is not None:
        task.stopped_at = iso(obs.stopped_at)
    if outcome.success:
        task.phase = "Succeeded"
        d.events.append(Event("Normal", "TaskSucceeded", f"task {task.index} ({task.arn}) succeeded"))
        return None
    if obs.stop_code in INTERRUPTION_STOP_CODES:
        task.spot_interruptions += 1
    action, rule = failure_action(ctx.failure_rules, obs, essential)
    if action == "Ignore" and len(task.ignored_arns) < ctx.max_ignored_relaunches:
        _ignore(task, obs, outcome, rule, ctx, d)
        return None
    if action == "FailJob":
        task.failed_arns.append(task.arn or "")
        task.last_failure = f"attempt {task.attempts}: {outcome.reason} (failurePolicy rule {rule}: FailJob)"
        task.phase = "Failed"
        return FAIL_JOB
    return _count_failure(task, outcome.reason, ctx, d)


def _count_failure(task: TaskStatus, reason: str, ctx: MergedContext, d: Decision) -> str | None:
    """A counted failure: relaunched while retries remain, else the index is exhausted."""
    task.failed_arns.append(task.arn or "")
    task.last_failure = f"attempt {task.attempts}: {reason}"
    failures = len(task.failed_arns)
    d.events.append(
        Event(
            "Warning",
            "TaskFailed",
            f"task {task.index} attempt {task.attempts} failed ({failures}/{ctx.max_fail_count + 1}): {reason}",
        )
    )
    if failures > ctx.max_fail_count:
        task.phase = "Failed"
        return EXHAUSTED
    task.phase = "Pending"
    d.events.append(
        Event("Normal", "Retrying", f"task {task.index} will be relaunched (retry {failures} of {ctx.max_fail_count})")
    )
    return None


def _attempt_timeout(task: TaskStatus, ctx: MergedContext, now: datetime, d: Decision) -> str | None:
    """An attempt running longer than attemptTimeout is stopped and counted as failed (reason AttemptTimeout)."""
    if ctx.attempt_timeout is None or task.started_at is None or task.last_status == "STOPPED":
        return None
    limit = parse_duration(ctx.attempt_timeout)
    if now < parse_iso(task.started_at) + timedelta(seconds=limit):
        return None
    reason = f"AttemptTimeout: attempt {task.attempts} ran longer than attemptTimeout {ctx.attempt_timeout}"
    d.stops.append(Stop(task.index, task.arn or "", f"ecsjob: job {d.job} task {task.index}: {reason}"))
    d.events.append(Event("Warning", "AttemptTimeout", f"task {task.index}: {reason}; stopped"))
    task.stopped_reason, task.last_status = reason, "STOPPED"
    return _count_failure(task, reason, ctx, d)


def failure_action(rules: list[FailureRule], obs: Observation, essential: set[str]) -> tuple[str, str]:
    """The first rule matching a failed attempt decides (its action, and which rule); after the user's
    rules the built-in one treats Fargate Spot interruptions as Ignore; otherwise Count."""
    for i, rule in enumerate(rules):
        if _matches(rule, obs, essential):
            return rule.action, f"#{i}"
    if obs.stop_code in INTERRUPTION_STOP_CODES:
        return "Ignore", "built-in (Spot interruption)"
    return "Count", "none"


def _matches(rule: FailureRule, obs: Observation, essential: set[str]) -> bool:
    """Every matcher the rule gives must match."""
    if rule.on_stop_codes is not None and obs.stop_code not in rule.on_stop_codes:
        return False
    if rule.on_reasons is not None:
        reasons = [r for r in (obs.stopped_reason, *(c.reason for c in obs.containers)) if r]
        if not any(fnmatch.fnmatchcase(r, glob) for r in reasons for glob in rule.on_reasons):
            return False
    match = rule.on_exit_codes
    if match is not None:
        if match.container_name is not None:
            codes = [c.exit_code for c in obs.containers if c.name == match.container_name]
        else:
            codes = [c.exit_code for c in obs.containers if c.name in essential] or [
                c.exit_code for c in obs.containers
            ]
        known = [c for c in codes if c is not None]
        if match.operator == "In" and not any(c in match.values for c in known):
            return False
        if match.operator == "NotIn" and not any(c != 0 and c not in match.values for c in known):
            return False
    return True


def _ignore(task: TaskStatus, obs: Observation, outcome: Outcome, rule: str, ctx: MergedContext, d: Decision) -> None:
    """An Ignore rule (the built-in one: a Fargate Spot interruption): relaunched uncounted, bounded."""
    task.ignored_arns.append(task.arn or "")
    task.last_failure = f"attempt {task.attempts}: {outcome.reason} (ignored: not counted)"
    task.phase = "Pending"
    cause = f"was interrupted ({obs.stop_code})" if rule.startswith("built-in") else f"failed ({outcome.reason})"
    d.events.append(
        Event(
            "Normal",
            "IgnoredFailure",
            f"task {task.index} attempt {task.attempts} {cause}; failurePolicy rule {rule}: relaunched without "
            f"counting a failure ({len(task.ignored_arns)}/{ctx.max_ignored_relaunches})",
        )
    )


def _success_policy_met(st: EcsJobStatus, ctx: MergedContext) -> bool:
    policy = ctx.success_policy
    assert policy is not None
    succeeded = {t.index for t in st.tasks or [] if t.phase == "Succeeded"}
    if policy.succeeded_indexes is not None and not parse_indexes(policy.succeeded_indexes) <= succeeded:
        return False
    return policy.succeeded_count is None or len(succeeded) >= policy.succeeded_count


def _task(st: EcsJobStatus, index: int) -> TaskStatus:
    return (st.tasks or [])[index]


def _exhausted_message(task: TaskStatus, ctx: MergedContext) -> str:
    retries = "no retries" if ctx.max_fail_count == 0 else f"{ctx.max_fail_count} retries"
    return f"task {task.index} failed after {retries}: {task.stopped_reason}"


def _timed_out(st: EcsJobStatus, ctx: MergedContext, now: datetime) -> bool:
    if st.start_time is None:
        return False
    return now >= parse_iso(st.start_time) + timedelta(seconds=parse_duration(ctx.timeout))


def _stop_running(d: Decision, reason: str) -> int:
    stopped = 0
    for task in d.status.tasks or []:
        if task.phase == "Running" and task.arn:
            d.stops.append(Stop(task.index, task.arn, reason))
            task.phase, task.stopped_reason = "Stopped", reason
            stopped += 1
        elif task.phase == "Pending":
            task.phase = "Stopped"
    return stopped


def _finish_failed(
    d: Decision, ctx: MergedContext | None, now: datetime, reason: str, message: str, rep: TaskStatus | None
) -> None:
    stopped = _stop_running(d, f"ecsjob: job {d.job} failed ({reason})")
    if stopped:
        message += f"; {stopped} running task(s) stopped"
    _finish(d, "Failed", reason, message, now, logs_pointer(ctx, rep) if ctx is not None else None)
    d.events.append(Event("Warning", reason, message))


def _finish(d: Decision, type_: str, reason: str, message: str, now: datetime, logs: LogsPointer | None) -> None:
    """The end of a run: completion time, the final condition (and Progressing False), the logs pointer."""
    st = d.status
    st.completion_time = iso(now)
    set_condition(st, type_, "True", reason, message, now)
    set_condition(st, "Progressing", "False", reason, message, now)
    st.logs = logs


def fail(job: JobRef, status: EcsJobStatus, reason: str, message: str, now: datetime) -> Decision:
    """End the job Failed now (AWS rejected a request, or it could not be prepared in time), stopping
    whatever runs; works before the job has a merged context too."""
    d = Decision(status=status.model_copy(deep=True), job=job.label)
    _finish_failed(d, d.status.context, now, reason, message, None)
    summarize(d.status, now)
    return d


def _finish_succeeded(d: Decision, ctx: MergedContext, now: datetime, policy: bool = False) -> None:
    st = d.status
    tasks = st.tasks or []
    done = [t for t in tasks if t.phase == "Succeeded"]
    last = max(done, key=lambda t: (t.stopped_at or "", t.index))
    reason, message = "AllTasksSucceeded", f"all {len(tasks)} task(s) succeeded"
    if policy:
        reason = "SuccessPolicyMet"
        message = f"successPolicy met: {len(done)} of {len(tasks)} task(s) succeeded"
        stopped = _stop_running(d, f"ecsjob: job {d.job} succeeded (SuccessPolicyMet)")
        if stopped:
            message += f"; {stopped} running task(s) stopped"
    _finish(d, "Complete", reason, message, now, logs_pointer(ctx, last))
    d.events.append(Event("Normal", "Completed", message))


def _suspend(d: Decision, now: datetime) -> None:
    st = d.status
    stopped = _stop_running(d, f"ecsjob: job {d.job} suspended")
    if not is_true(st, "Suspended"):
        message = f"job suspended; {stopped} running task(s) stopped"
        set_condition(st, "Suspended", "True", "JobSuspended", message, now)
        set_condition(st, "Progressing", "False", "JobSuspended", message, now)
        d.events.append(Event("Normal", "Suspended", message))


def _resume_and_launch(d: Decision, now: datetime) -> None:
    st = d.status
    if is_true(st, "Suspended"):
        set_condition(st, "Suspended", "False", "JobResumed", "job resumed", now)
        d.events.append(Event("Normal", "Resumed", "job resumed"))
    tasks = st.tasks or []
    for task in tasks:
        if task.phase == "Stopped":
            task.phase = "Pending"
    ctx = st.context
    slots = (ctx.parallelism or len(tasks)) - sum(1 for t in tasks if t.phase == "Running") if ctx else len(tasks)
    for task in tasks:
        if len(d.launches) >= slots:  # parallelism: the rest wait for a running task to end
            break
        if task.phase != "Pending":
            continue
        if task.next_launch_time and now < parse_iso(task.next_launch_time):
            continue
        d.launches.append(Launch(task.index, task.attempts + 1, task.task_name))


# --- launch results -------------------------------------------------------------------------


def adoptable(task: TaskStatus, attempt: int, found: list[Observation]) -> Observation | None:
    """A task already running under this attempt's identity, left unrecorded by a crash."""
    known = {task.arn, *task.failed_arns}
    for obs in found:
        if obs.started_by == task.task_name and obs.arn not in known and obs.attempt in (attempt, None):
            return obs
    return None


def record_intent(status: EcsJobStatus, launch: Launch, now: datetime) -> None:
    """Before RunTask: this attempt may be launched from now on (docs/reference.md, "Task identity")."""
    task = (status.tasks or [])[launch.index]
    if task.intent_attempt != launch.attempt:
        task.intent_attempt, task.intent_time, task.launch_try = launch.attempt, iso(now), 0


def record_launch(
    status: EcsJobStatus,
    launch: Launch,
    arn: str | None,
    failure: str | None,
    now: datetime,
    adopted: bool = False,
    new_token: bool = False,
) -> Event:
    """Write a RunTask (or adoption) result into status; a failed RunTask backs off, uncounted. A call
    answered with `failures` (new_token) moves the attempt to its next clientToken."""
    task = (status.tasks or [])[launch.index]
    if arn is not None:
        task.arn, task.attempts, task.phase = arn, launch.attempt, "Running"
        task.last_status, task.exit_code, task.stop_code, task.stopped_reason = "PROVISIONING", None, None, None
        task.stopped_at, task.started_at = None, iso(now)
        task.launch_failures, task.next_launch_time = 0, None
        task.intent_attempt, task.intent_time, task.launch_try = None, None, 0
        status.start_time = status.start_time or iso(now)
        verb = "adopted" if adopted else "launched"
        return Event(
            "Normal",
            "TaskAdopted" if adopted else "TaskLaunched",
            f"task {launch.index} attempt {launch.attempt} {verb}: {arn}",
        )
    status.start_time = status.start_time or iso(now)  # the timeout runs even if nothing ever starts
    task.launch_failures += 1
    task.launch_try += 1 if new_token else 0
    delay = min(LAUNCH_BACKOFF_CAP, 2**task.launch_failures)
    task.next_launch_time = iso(now + timedelta(seconds=delay))
    message = f"RunTask for task {launch.index} did not start a task ({failure}); retrying in {delay}s"
    set_condition(status, "Progressing", "True", "LaunchDelayed", message, now)
    return Event("Warning", "LaunchDelayed", message)


def stop_all(status: EcsJobStatus, reason: str) -> list[Stop]:
    """Stops for every running task (deletion, interruption); no failure is counted."""
    st = copy.deepcopy(status)
    d = Decision(status=st)
    _stop_running(d, reason)
    return d.stops
