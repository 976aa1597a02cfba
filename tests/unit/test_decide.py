from datetime import UTC, datetime, timedelta

import pytest

from ecsjob_operator.api.models import EcsJobStatus, LogConfig, MergedCluster, MergedContainer, MergedContext
from ecsjob_operator.core.decide import (
    ContainerResult,
    JobRef,
    Launch,
    Observation,
    adoptable,
    classify,
    decide,
    record_launch,
)
from ecsjob_operator.core.status import iso, set_condition

T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
JOB = JobRef(name="j", namespace="ns", uid="uid-1", job_id="3f2a9c1b7d4e", prefix="heimdall-job")


def context(count: int = 2, max_fail: int = 1, timeout: str = "1h") -> MergedContext:
    return MergedContext(
        task_definition_source="inline",
        family="f",
        task_count=count,
        cpu=256,
        memory=512,
        polling_interval="1s",
        timeout=timeout,
        max_fail_count=max_fail,
        containers=[
            MergedContainer(name="main", logs=LogConfig(group="/ecs/g", stream_prefix="ecs", region="us-west-2")),
            MergedContainer(name="sidecar", essential=False),
        ],
        cluster=MergedCluster(cluster_name="c", region="us-west-2"),
    )


def stopped(
    arn: str,
    code: int | None = 0,
    stop_code: str | None = "EssentialContainerExited",
    at: datetime = T0,
    sidecar: int | None = 0,
) -> Observation:
    return Observation(
        arn=arn,
        last_status="STOPPED",
        containers=(ContainerResult("main", code), ContainerResult("sidecar", sidecar)),
        stop_code=stop_code,
        stopped_reason="Essential container in task exited",
        stopped_at=at,
    )


def running(arn: str) -> Observation:
    return Observation(arn=arn, last_status="RUNNING")


def launched(ctx: MergedContext, now: datetime = T0) -> EcsJobStatus:
    """A status where every index has attempt 1 running as arn-{index}-1."""
    d = decide(JOB, EcsJobStatus(job_id=JOB.job_id, context=ctx), {}, now)
    for launch in d.launches:
        record_launch(d.status, launch, f"arn-{launch.index}-{launch.attempt}", None, now)
    return d.status


def relaunch(status: EcsJobStatus, launches: list[Launch], now: datetime = T0) -> None:
    for launch in launches:
        record_launch(status, launch, f"arn-{launch.index}-{launch.attempt}", None, now)


def condition(status: EcsJobStatus, type_: str) -> tuple[str, str] | None:
    c = next((c for c in status.conditions or [] if c.type == type_), None)
    return (c.status, c.reason) if c else None


def test_first_reconcile_launches_every_index() -> None:
    d = decide(JOB, EcsJobStatus(job_id=JOB.job_id, context=context(3)), {}, T0)
    assert d.launches == [Launch(i, 1, f"heimdall-job-3f2a9c1b7d4e-{i}") for i in range(3)]
    assert d.status.phase == "Pending" and d.status.progress == "0/3"


def test_launch_records_arn_and_start_time() -> None:
    st = launched(context())
    assert [t.arn for t in st.tasks or []] == ["arn-0-1", "arn-1-1"]
    assert st.start_time == iso(T0) and [t.attempts for t in st.tasks or []] == [1, 1]


def test_running_tasks_need_nothing() -> None:
    st = launched(context())
    d = decide(JOB, st, {"arn-0-1": running("arn-0-1"), "arn-1-1": running("arn-1-1")}, T0 + timedelta(seconds=5))
    assert not d.launches and not d.stops
    assert (d.status.phase, d.status.active, d.status.succeeded) == ("Running", 2, 0)
    assert condition(d.status, "Progressing") == ("True", "TasksRunning")


def test_all_succeed_with_last_completed_as_representative() -> None:
    st = launched(context())
    obs = {
        "arn-0-1": stopped("arn-0-1", at=T0 + timedelta(seconds=9)),
        "arn-1-1": stopped("arn-1-1", at=T0 + timedelta(seconds=3)),
    }
    d = decide(JOB, st, obs, T0 + timedelta(seconds=10))
    assert d.status.phase == "Succeeded" and d.finished
    assert condition(d.status, "Complete") == ("True", "AllTasksSucceeded")
    assert d.status.logs is not None
    assert (d.status.logs.task_arn, d.status.logs.stream, d.status.logs.group) == (
        "arn-0-1",
        "ecs/main/arn-0-1",
        "/ecs/g",
    )
    assert d.status.completion_time == iso(T0 + timedelta(seconds=10))


def test_failure_is_relaunched_and_counted() -> None:
    st = launched(context(max_fail=2))
    d = decide(JOB, st, {"arn-0-1": stopped("arn-0-1", code=1), "arn-1-1": running("arn-1-1")}, T0)
    assert d.launches == [Launch(0, 2, "heimdall-job-3f2a9c1b7d4e-0")]
    assert d.status.failed_arns == ["arn-0-1"] and d.status.retries == 1
    assert (d.status.tasks or [])[0].exit_code == 1
    assert {e.reason for e in d.events} == {"TaskFailed", "Retrying"}


def test_index_exhausting_retries_fails_the_job_and_stops_the_others() -> None:
    st = launched(context(max_fail=1))
    d = decide(JOB, st, {"arn-0-1": stopped("arn-0-1", code=2), "arn-1-1": running("arn-1-1")}, T0)
    relaunch(d.status, d.launches)
    d = decide(JOB, d.status, {"arn-0-2": stopped("arn-0-2", code=3), "arn-1-1": running("arn-1-1")}, T0)
    assert d.status.phase == "Failed"
    assert condition(d.status, "Failed") == ("True", "MaxFailCountExceeded")
    assert [(s.index, s.arn) for s in d.stops] == [(1, "arn-1-1")]
    assert d.status.failed_arns == ["arn-0-1", "arn-0-2"] and d.status.retries == 1
    assert d.status.logs is not None and d.status.logs.task_arn == "arn-0-2"
    assert "task 0 failed after 1 retries" in (d.status.message or "")


def test_max_fail_count_zero_means_no_retry() -> None:
    st = launched(context(max_fail=0))
    d = decide(JOB, st, {"arn-0-1": stopped("arn-0-1", code=1), "arn-1-1": running("arn-1-1")}, T0)
    assert d.status.phase == "Failed" and not d.launches and d.status.retries == 0


@pytest.mark.parametrize(
    ("obs", "success", "exit_code"),
    [
        (stopped("a"), True, 0),
        (stopped("a", code=1), False, 1),
        (stopped("a", code=None, stop_code="TaskFailedToStart"), False, None),
        (stopped("a", stop_code="UserInitiated"), False, 0),
        (stopped("a", stop_code="SpotInterruption"), False, 0),
        (stopped("a", sidecar=137), True, 0),  # a non-essential container does not decide
        (stopped("a", sidecar=None), True, 0),
        (Observation(arn="a", last_status="MISSING"), False, None),
        (Observation(arn="a", last_status="STOPPED", stopped_reason="CannotPullContainerError"), False, None),
    ],
)
def test_classify(obs: Observation, success: bool, exit_code: int | None) -> None:
    outcome = classify(obs, {"main"})
    assert (outcome.success, outcome.exit_code) == (success, exit_code)


def test_a_recorded_task_ecs_no_longer_returns_is_a_failure() -> None:
    st = launched(context(max_fail=3))
    d = decide(JOB, st, {"arn-1-1": running("arn-1-1")}, T0)
    assert d.status.failed_arns == ["arn-0-1"] and (d.status.tasks or [])[0].last_status == "MISSING"
    assert d.launches == [Launch(0, 2, "heimdall-job-3f2a9c1b7d4e-0")]


def test_timeout_stops_everything() -> None:
    st = launched(context(timeout="10s"))
    obs = {"arn-0-1": stopped("arn-0-1"), "arn-1-1": running("arn-1-1")}
    d = decide(JOB, st, obs, T0 + timedelta(seconds=9))
    assert d.status.phase == "Running"
    d = decide(JOB, d.status, {"arn-1-1": running("arn-1-1")}, T0 + timedelta(seconds=10))
    assert d.status.phase == "Failed" and condition(d.status, "Failed") == ("True", "Timeout")
    assert [s.arn for s in d.stops] == ["arn-1-1"]
    assert d.status.logs is not None and d.status.logs.task_arn == "arn-1-1"


def test_success_observed_at_the_deadline_wins_over_timeout() -> None:
    st = launched(context(timeout="10s"))
    obs = {"arn-0-1": stopped("arn-0-1"), "arn-1-1": stopped("arn-1-1")}
    assert decide(JOB, st, obs, T0 + timedelta(seconds=60)).status.phase == "Succeeded"


def test_suspend_stops_without_counting_and_resume_relaunches() -> None:
    st = launched(context())
    d = decide(JOB, st, {"arn-0-1": running("arn-0-1"), "arn-1-1": running("arn-1-1")}, T0, suspend=True)
    assert d.status.phase == "Suspended" and len(d.stops) == 2 and not d.launches
    assert d.status.failed_arns == []
    d2 = decide(JOB, d.status, {}, T0 + timedelta(seconds=5), suspend=True)
    assert not d2.stops and not d2.launches and d2.status.phase == "Suspended"
    d3 = decide(JOB, d2.status, {}, T0 + timedelta(seconds=6), suspend=False)
    assert d3.launches == [Launch(0, 2, "heimdall-job-3f2a9c1b7d4e-0"), Launch(1, 2, "heimdall-job-3f2a9c1b7d4e-1")]
    assert condition(d3.status, "Suspended") == ("False", "JobResumed")
    assert d3.status.failed_arns == [] and d3.status.retries == 0


def test_runtask_failure_backs_off_and_is_not_a_task_failure() -> None:
    d = decide(JOB, EcsJobStatus(job_id=JOB.job_id, context=context(1)), {}, T0)
    event = record_launch(d.status, d.launches[0], None, "RESOURCE:FARGATE", T0)
    assert event.reason == "LaunchDelayed"
    task = (d.status.tasks or [])[0]
    assert (task.attempts, task.launch_failures, task.failed_arns) == (0, 1, [])
    assert condition(d.status, "Progressing") == ("True", "LaunchDelayed")
    assert not decide(JOB, d.status, {}, T0 + timedelta(seconds=1)).launches
    later = decide(JOB, d.status, {}, T0 + timedelta(seconds=2))
    assert later.launches == [Launch(0, 1, "heimdall-job-3f2a9c1b7d4e-0")]


def test_finished_jobs_are_left_alone() -> None:
    st = launched(context())
    done = decide(JOB, st, {"arn-0-1": stopped("arn-0-1"), "arn-1-1": stopped("arn-1-1")}, T0).status
    again = decide(JOB, done, {}, T0 + timedelta(hours=5))
    assert again.status == done and not again.launches and not again.stops and not again.events


def test_adoption_matches_the_attempt_being_launched() -> None:
    st = launched(context(max_fail=3))
    d = decide(JOB, st, {"arn-0-1": stopped("arn-0-1", code=1), "arn-1-1": running("arn-1-1")}, T0)
    task = (d.status.tasks or [])[0]
    name = task.task_name
    found = [
        Observation(arn="arn-0-1", last_status="STOPPED", started_by=name, attempt=1),
        Observation(arn="orphan", last_status="RUNNING", started_by=name, attempt=2),
        Observation(arn="other", last_status="RUNNING", started_by="someone-else", attempt=2),
    ]
    assert adoptable(task, 2, found) == found[1]
    assert adoptable(task, 3, found) is None


def test_condition_transition_time_moves_only_on_change() -> None:
    st = EcsJobStatus()
    set_condition(st, "Progressing", "True", "A", "a", T0)
    set_condition(st, "Progressing", "True", "B", "b", T0 + timedelta(seconds=5))
    assert (st.conditions or [])[0].last_transition_time == iso(T0)
    set_condition(st, "Progressing", "False", "C", "c", T0 + timedelta(seconds=9))
    assert (st.conditions or [])[0].last_transition_time == iso(T0 + timedelta(seconds=9))


def test_a_job_that_never_manages_to_launch_still_times_out() -> None:
    d = decide(JOB, EcsJobStatus(job_id=JOB.job_id, context=context(1, timeout="10s")), {}, T0)
    record_launch(d.status, d.launches[0], None, "ClusterNotFoundException", T0)
    assert d.status.start_time == iso(T0)
    later = decide(JOB, d.status, {}, T0 + timedelta(seconds=9))
    record_launch(later.status, later.launches[0], None, "ClusterNotFoundException", T0 + timedelta(seconds=9))
    assert later.status.phase == "Pending"
    done = decide(JOB, later.status, {}, T0 + timedelta(seconds=10))
    assert done.status.phase == "Failed" and condition(done.status, "Failed") == ("True", "Timeout")


def test_suspended_time_does_not_count_towards_the_timeout() -> None:
    st = launched(context(timeout="10s"))
    d = decide(JOB, st, {"arn-0-1": running("arn-0-1"), "arn-1-1": running("arn-1-1")}, T0, suspend=True)
    d = decide(JOB, d.status, {}, T0 + timedelta(hours=2), suspend=True)
    assert d.status.phase == "Suspended"
    d = decide(JOB, d.status, {}, T0 + timedelta(hours=2, seconds=1))
    relaunch(d.status, d.launches, T0 + timedelta(hours=2, seconds=1))
    assert d.status.phase == "Running" and d.status.start_time == iso(T0 + timedelta(hours=2, seconds=1))


def test_a_spot_interruption_is_relaunched_without_counting_then_counts_when_it_flaps() -> None:
    from ecsjob_operator.core.decide import MAX_IGNORED_RELAUNCHES

    st = launched(context(count=1, max_fail=0))
    for n in range(1, MAX_IGNORED_RELAUNCHES + 1):
        arn = (st.tasks or [])[0].arn or ""
        d = decide(JOB, st, {arn: stopped(arn, code=None, stop_code="SpotInterruption")}, T0)
        task = (d.status.tasks or [])[0]
        assert d.status.phase != "Failed" and task.failed_arns == [] and len(task.ignored_arns) == n
        assert [e.reason for e in d.events] == ["IgnoredFailure"] and d.launches == [Launch(0, n + 1, task.task_name)]
        relaunch(d.status, d.launches)
        st = d.status
    arn = (st.tasks or [])[0].arn or ""
    d = decide(JOB, st, {arn: stopped(arn, code=None, stop_code="TerminationNotice")}, T0)
    assert d.status.phase == "Failed"  # past the bound, the failure counts (maxFailCount 0: the job fails)
    assert condition(d.status, "Failed") == ("True", "MaxFailCountExceeded")


def test_other_stop_codes_still_count() -> None:
    st = launched(context(count=1, max_fail=0))
    arn = (st.tasks or [])[0].arn or ""
    d = decide(JOB, st, {arn: stopped(arn, code=None, stop_code="TaskFailedToStart")}, T0)
    assert d.status.phase == "Failed" and (d.status.tasks or [])[0].ignored_arns == []


def test_parallelism_caps_the_running_tasks() -> None:
    ctx = context(count=5, max_fail=1).model_copy(update={"parallelism": 2})
    d = decide(JOB, EcsJobStatus(job_id=JOB.job_id, context=ctx), {}, T0)
    assert [launch.index for launch in d.launches] == [0, 1]
    relaunch(d.status, d.launches)
    d = decide(JOB, d.status, {"arn-0-1": stopped("arn-0-1"), "arn-1-1": running("arn-1-1")}, T0)
    assert [launch.index for launch in d.launches] == [2]  # one ended: one slot
    assert d.status.message and "3 waiting to launch" in d.status.message
