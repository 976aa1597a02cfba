"""Table tests of the lifecycle predicates (core/lifecycle.py) and the status helpers around them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecsjob_operator.api.models import (
    Condition,
    EcsJobStatus,
    MergedCluster,
    MergedContainer,
    MergedContext,
    TaskStatus,
)
from ecsjob_operator.core.lifecycle import (
    is_due,
    is_edited,
    is_finished,
    needs_preparing,
    next_poll_seconds,
    waits_for_catalog,
    wants_reconcile,
)
from ecsjob_operator.core.status import set_condition, summarize
from ecsjob_operator.core.timestamps import iso
from ecsjob_operator.kube.runtime import status_patch

T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def ctx(polling: str = "30s", timeout: str = "1h", max_fail: int = 3) -> MergedContext:
    return MergedContext(
        task_definition_source="inline",
        family="f",
        task_count=2,
        cpu=256,
        memory=512,
        polling_interval=polling,
        timeout=timeout,
        max_fail_count=max_fail,
        containers=[MergedContainer(name="main")],
        cluster=MergedCluster(cluster_name="c"),
    )


def invalid(reason: str) -> EcsJobStatus:
    st = EcsJobStatus(phase="Invalid")
    set_condition(st, "Invalid", "True", reason, "x", T0)
    return st


@pytest.mark.parametrize(
    ("phase", "finished"),
    [("Succeeded", True), ("Failed", True), ("Invalid", True), ("Running", False), ("Pending", False),
     ("Suspended", False), (None, False)],
)  # fmt: skip
def test_is_finished(phase: str | None, finished: bool) -> None:
    assert is_finished(phase) is finished


@pytest.mark.parametrize(
    ("generation", "observed", "edited"), [(1, 1, False), (2, 1, True), (1, None, True), (None, None, False)]
)
def test_is_edited(generation: int | None, observed: int | None, edited: bool) -> None:
    assert is_edited(generation, observed) is edited


@pytest.mark.parametrize(
    ("status", "waits"),
    [
        (invalid("NoMatchingContext"), True),
        (invalid("InvalidSpec"), False),
        (EcsJobStatus(phase="Running"), False),
    ],
)
def test_waits_for_catalog(status: EcsJobStatus, waits: bool) -> None:
    assert waits_for_catalog(status) is waits


@pytest.mark.parametrize(
    ("status", "needs"),
    [
        (EcsJobStatus(), True),
        (EcsJobStatus(phase="Invalid", context=ctx()), True),
        (EcsJobStatus(phase="Running", context=ctx()), False),
        (EcsJobStatus(phase="Succeeded", context=ctx()), False),
    ],
)
def test_needs_preparing(status: EcsJobStatus, needs: bool) -> None:
    assert needs_preparing(status) is needs


@pytest.mark.parametrize(
    ("phase", "edited", "waiting", "wanted"),
    [
        (None, False, False, True),  # new
        ("Pending", False, False, True),
        ("Running", False, False, True),
        ("Suspended", False, False, True),
        ("Succeeded", False, False, False),
        ("Failed", False, False, False),
        ("Invalid", False, False, False),
        ("Invalid", True, False, True),  # fixed by an edit
        ("Invalid", False, True, True),  # waits for an EcsCommand/EcsCluster
        ("Succeeded", True, False, True),  # an edit after the end is observed (and ignored)
        ("Failed", True, False, True),
    ],
)
def test_wants_reconcile(phase: str | None, edited: bool, waiting: bool, wanted: bool) -> None:
    assert wants_reconcile(phase, edited, waiting) is wanted


@pytest.mark.parametrize(
    ("phase", "edited", "now", "due_at", "due"),
    [
        ("Running", False, 10.0, 20.0, False),
        ("Running", False, 20.0, 20.0, True),
        ("Running", True, 10.0, 20.0, True),
        ("Invalid", False, 10.0, 20.0, True),
    ],
)
def test_is_due(phase: str, edited: bool, now: float, due_at: float, due: bool) -> None:
    assert is_due(phase, edited, now, due_at) is due


def _running(**kwargs: Any) -> EcsJobStatus:
    return EcsJobStatus(phase="Running", context=ctx(**kwargs.pop("ctx", {})), **kwargs)


@pytest.mark.parametrize(
    ("status", "seconds"),
    [
        (EcsJobStatus(), 0.0),  # nothing prepared yet
        (EcsJobStatus(phase="Succeeded", context=ctx()), 0.0),
        (_running(), 30.0),  # the polling interval
        (_running(ctx={"polling": "2m"}), 120.0),
        (_running(tasks=[TaskStatus(index=0, task_name="t", next_launch_time=iso(T0 + timedelta(seconds=4)))]), 4.0),
        (_running(tasks=[TaskStatus(index=0, task_name="t", next_launch_time=iso(T0 - timedelta(seconds=4)))]), 0.0),
        (_running(start_time=iso(T0 - timedelta(minutes=59, seconds=50))), 10.0),  # the deadline is sooner
        (EcsJobStatus(phase="Suspended", context=ctx(), start_time=iso(T0 - timedelta(minutes=59, seconds=50))), 30.0),
    ],
)
def test_next_poll_seconds(status: EcsJobStatus, seconds: float) -> None:
    assert next_poll_seconds(status, T0) == seconds


def _tasks(*phases: str, failures: int = 0) -> list[TaskStatus]:
    return [
        TaskStatus(index=i, task_name=f"t-{i}", phase=p, attempts=1, failed_arns=[f"f{i}-{n}" for n in range(failures)])  # type: ignore[arg-type]
        for i, p in enumerate(phases)
    ]


@pytest.mark.parametrize(
    ("tasks", "conditions", "phase", "counters", "message"),
    [
        (_tasks("Running", "Running"), [], "Running", (2, 0, 0), "0/2 task(s) succeeded, 2 running"),
        (_tasks("Succeeded", "Pending"), [], "Running", (0, 1, 0), "1/2 task(s) succeeded, 0 running, 1 waiting to launch"),
        (_tasks("Running", "Running", failures=1), [], "Running", (2, 0, 2), "0/2 task(s) succeeded, 2 running, 2 retries"),
        (_tasks("Running", failures=5), [], "Running", (1, 0, 3), "0/1 task(s) succeeded, 1 running, 3 retries"),
        ([TaskStatus(index=0, task_name="t")], [], "Pending", (0, 0, 0), "0/1 task(s) succeeded, 0 running, 1 waiting to launch"),
        (_tasks("Succeeded"), [("Complete", "AllTasksSucceeded", "all done")], "Succeeded", (0, 1, 0), "all done"),
        (_tasks("Failed"), [("Failed", "Timeout", "too slow")], "Failed", (0, 0, 0), "too slow"),
        (_tasks("Stopped"), [("Suspended", "JobSuspended", "paused")], "Suspended", (0, 0, 0), "paused"),
    ],
)  # fmt: skip
def test_summarize(
    tasks: list[TaskStatus],
    conditions: list[tuple[str, str, str]],
    phase: str,
    counters: tuple[int, int, int],
    message: str,
) -> None:
    st = EcsJobStatus(context=ctx(max_fail=3), tasks=tasks)
    for type_, reason, text in conditions:
        set_condition(st, type_, "True", reason, text, T0)
    summarize(st, T0)
    assert st.phase == phase
    assert (st.active, st.succeeded, st.retries) == counters
    assert st.task_count == len(tasks) and st.progress == f"{st.succeeded}/{len(tasks)}"
    assert st.message == message
    assert st.failed_arns == [a for t in tasks for a in t.failed_arns]


def test_summarize_keeps_a_launch_delay_visible() -> None:
    st = EcsJobStatus(context=ctx(), tasks=[TaskStatus(index=0, task_name="t", next_launch_time=iso(T0))])
    set_condition(st, "Progressing", "True", "LaunchDelayed", "RunTask failed: capacity", T0)
    summarize(st, T0)
    progressing = next(c for c in st.conditions or [] if c.type == "Progressing")
    assert (progressing.reason, progressing.message) == ("LaunchDelayed", "RunTask failed: capacity")


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({}, {"phase": "Running"}, {"phase": "Running"}),
        ({"phase": "Pending", "active": 1}, {"phase": "Running", "active": 1}, {"phase": "Running"}),
        ({"phase": "Running", "logs": {"x": 1}}, {"phase": "Running"}, {"logs": None}),  # removed -> null
        ({"phase": "Running", "kopf": {"progress": 1}}, {"phase": "Running"}, {}),  # kopf's own key is kept
        ({"tasks": [{"index": 0}]}, {"tasks": [{"index": 0, "arn": "a"}]}, {"tasks": [{"index": 0, "arn": "a"}]}),
        ({"phase": "Running"}, {"phase": "Running"}, {}),  # nothing changed: nothing written
    ],
)
def test_status_patch(old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]) -> None:
    assert status_patch(old, new) == patch


def test_conditions_keep_their_transition_time_while_status_holds() -> None:
    st = EcsJobStatus()
    set_condition(st, "Progressing", "True", "Launching", "a", T0)
    set_condition(st, "Progressing", "True", "TasksRunning", "b", T0 + timedelta(minutes=1))
    assert st.conditions == [
        Condition(type="Progressing", status="True", reason="TasksRunning", message="b", last_transition_time=iso(T0))
    ]
