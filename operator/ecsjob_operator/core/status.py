"""Pure status helpers: conditions, the phase derived from them, counters, log pointers, Invalid.

Shared by the decision core (decide.py) and the engine; no I/O and no clock.
"""

from __future__ import annotations

from datetime import datetime

from ecsjob_operator.api.models import Condition, EcsJobStatus, LogsPointer, MergedContext, TaskStatus
from ecsjob_operator.core.errors import FieldError, render
from ecsjob_operator.core.lifecycle import NO_MATCH
from ecsjob_operator.core.timestamps import iso

SELECTION_PATHS = ("spec.commandCriteria", "spec.clusterCriteria")


def set_condition(st: EcsJobStatus, type_: str, status: str, reason: str, message: str, now: datetime) -> None:
    """Upsert a condition; lastTransitionTime moves only when its status changes."""
    conditions = st.conditions = list(st.conditions or [])
    for i, c in enumerate(conditions):
        if c.type == type_:
            moved = c.status != status
            conditions[i] = Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=iso(now) if moved else c.last_transition_time,
            )
            return
    conditions.append(
        Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=iso(now),
        )
    )


def is_true(st: EcsJobStatus, type_: str) -> bool:
    return any(c.type == type_ and c.status == "True" for c in st.conditions or [])


def derive_phase(st: EcsJobStatus) -> str:
    for type_, phase in (
        ("Invalid", "Invalid"),
        ("Complete", "Succeeded"),
        ("Failed", "Failed"),
        ("Suspended", "Suspended"),
    ):
        if is_true(st, type_):
            return phase
    return "Running" if any(t.attempts for t in st.tasks or []) else "Pending"


def summarize(st: EcsJobStatus, now: datetime) -> None:
    """Derive counters, phase, Progressing and the message from the tasks and conditions."""
    ctx, tasks = st.context, st.tasks or []
    max_fail = ctx.max_fail_count if ctx else 0
    st.task_count = len(tasks)
    st.active = sum(1 for t in tasks if t.phase == "Running")
    st.succeeded = sum(1 for t in tasks if t.phase == "Succeeded")
    st.retries = sum(min(len(t.failed_arns), max_fail) for t in tasks)
    st.failed_arns = [arn for t in tasks for arn in t.failed_arns]
    st.progress = f"{st.succeeded}/{st.task_count}"
    st.phase = derive_phase(st)  # type: ignore[assignment]
    if st.phase in ("Running", "Pending"):
        waiting = sum(1 for t in tasks if t.phase == "Pending")
        progress = f"{st.succeeded}/{st.task_count} task(s) succeeded, {st.active} running"
        progress += f", {waiting} waiting to launch" if waiting else ""
        progress += f", {st.retries} retr{'y' if st.retries == 1 else 'ies'}" if st.retries else ""
        delayed = any(t.next_launch_time for t in tasks)
        reason = "LaunchDelayed" if delayed else ("TasksRunning" if st.active else "Launching")
        if not delayed or not is_true(st, "Progressing"):
            set_condition(st, "Progressing", "True", reason, progress, now)
        st.message = progress
    else:
        st.message = next(
            (c.message for c in st.conditions or [] if c.status == "True" and c.type != "Progressing"), st.message
        )


# Decisions that keep the job going and are named on Progressing for the step that made them.
NOTED_DECISIONS = ("IgnoredFailure", "AttemptTimeout", "SpotFallback")


def note_decisions(st: EcsJobStatus, decisions: list[tuple[str, str]], now: datetime) -> None:
    """After summarize: the last of these (reason, message) pairs becomes Progressing's reason while the job runs."""
    noted = [(reason, message) for reason, message in decisions if reason in NOTED_DECISIONS]
    if noted and st.phase in ("Running", "Pending"):
        reason, message = noted[-1]
        set_condition(st, "Progressing", "True", reason, f"{message}; {st.message}", now)


def logs_pointer(ctx: MergedContext, task: TaskStatus | None) -> LogsPointer | None:
    """CloudWatch stream of a task: {awslogs-stream-prefix}/{container}/{task id}."""
    if task is None or not task.arn:
        return None
    with_logs = [c for c in ctx.containers if c.logs is not None]
    if not with_logs:
        return None
    container = next((c for c in with_logs if c.essential), with_logs[0])
    assert container.logs is not None
    task_id = task.arn.rsplit("/", 1)[-1]
    prefix = f"{container.logs.stream_prefix}/" if container.logs.stream_prefix else ""
    return LogsPointer(
        task_arn=task.arn,
        group=container.logs.group,
        stream=f"{prefix}{container.name}/{task_id}",
        region=container.logs.region or ctx.cluster.region,
    )


EDIT_IGNORED = "edits after the end are ignored"


def note_ignored_edit(status: EcsJobStatus, generation: int | None, now: datetime) -> EcsJobStatus:
    """A finished job that was edited: observe the generation and say the edit changes nothing, so that
    `kubectl` and Argo CD see the final state as current (docs/reference.md, "Lifecycle")."""
    st = status.model_copy(deep=True)
    st.observed_generation = generation
    final = next((c for c in st.conditions or [] if c.status == "True" and c.type in ("Complete", "Failed")), None)
    if final is not None:
        note = f"{final.message.split('; ' + EDIT_IGNORED)[0]}; {EDIT_IGNORED} (generation {generation})"
        set_condition(st, "Progressing", "False", final.reason, note, now)
    return st


def mark_reconcile_error(status: EcsJobStatus, error: str, retry_in: float, now: datetime) -> EcsJobStatus:
    """An unexpected error while reconciling: shown on Progressing (reason ReconcileError), never phaseless."""
    st = status.model_copy(deep=True)
    message = f"reconcile failed ({error}); retrying in {retry_in:.0f}s"
    set_condition(st, "Progressing", "True", "ReconcileError", message, now)
    st.phase = st.phase or "Pending"
    st.message = message
    return st


def mark_invalid(status: EcsJobStatus, errors: list[FieldError], now: datetime, generation: int | None) -> EcsJobStatus:
    """The status of a spec that cannot run: phase Invalid, one condition naming every bad field."""
    st = status.model_copy(deep=True)
    message = render(errors)
    selection_only = all(e.path in SELECTION_PATHS for e in errors)
    specific = [e.reason for e in errors if e.reason != "InvalidSpec"]  # a boundary names itself
    reason = NO_MATCH if selection_only else specific[0] if specific else "InvalidSpec"
    set_condition(st, "Invalid", "True", reason, message, now)
    set_condition(st, "Progressing", "False", reason, message, now)
    st.observed_generation = generation
    st.phase = "Invalid"
    st.message = f"invalid spec: {message}"
    return st
