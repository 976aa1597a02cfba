"""The engine against a moto server over HTTP, with FakeFargate playing the tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from ecsjob_operator.aws.ecs import EcsBackend
from ecsjob_operator.engine.backend import format_logs
from ecsjob_operator.engine.engine import Engine
from support.fargate import FakeFargate
from support.jobs import TEMPLATE, Clock, Runner, job_spec
from support.moto_server import MotoServer


def reason_of(runner: Runner, type_: str) -> str | None:
    return next((c.reason for c in runner.status.conditions or [] if c.type == type_ and c.status == "True"), None)


def test_all_tasks_succeed(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=3))
    assert run.status.phase == "Pending" and run.status.task_definition_arn
    run.step()
    assert run.status.phase == "Running" and len(fargate.running()) == 3
    for i in range(3):
        fargate.finish_index(run.task_name(i), 0)
    run.step()
    assert run.status.phase == "Succeeded" and run.status.progress == "3/3"
    assert run.status.retries == 0 and run.status.failed_arns == []
    assert run.status.logs is not None and run.status.logs.stream.startswith("ecs/main/")


def test_run_task_request_carries_identity_env_and_network(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=2, tags={"team": "data"}))
    run.step()
    task = fargate.by_started_by(run.task_name(1))[0]
    env = task.overrides["containerOverrides"][0]["environment"]
    assert env == [
        {"name": "TASK_NAME", "value": run.task_name(1)},
        {"name": "TASK_NUM", "value": "1"},
        {"name": "TASK_ATTEMPT", "value": "1"},
    ]
    tags = {t["key"]: t["value"] for t in task.tags}
    assert tags["ecsjob.io/index"] == "1" and tags["ecsjob.io/attempt"] == "1" and tags["team"] == "data"
    assert tags["ecsjob.io/uid"] == "uid-0001" and tags["ecsjob.io/namespace"] == "default"
    assert task.launch_type == "FARGATE"
    assert task.network_configuration["awsvpcConfiguration"]["subnets"] == [fargate.subnet]
    assert len(run.task_name(1)) <= 36


def test_one_index_fails_twice_then_succeeds(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=2, maxFailCount=3))
    run.step()
    fargate.finish_index(run.task_name(1), 0)
    failed = [fargate.finish_index(run.task_name(0), 1)]
    run.step()
    failed.append(fargate.finish_index(run.task_name(0), 2))
    run.step()
    fargate.finish_index(run.task_name(0), 0)
    run.step()
    assert run.status.phase == "Succeeded"
    assert run.status.retries == 2 and run.status.failed_arns == failed
    task0 = (run.status.tasks or [])[0]
    assert task0.attempts == 3 and task0.failed_arns == failed
    assert len(fargate.by_started_by(run.task_name(0))) == 3


def test_index_exceeding_max_fail_count_stops_the_others(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=3, maxFailCount=1))
    run.step()
    fargate.finish_index(run.task_name(2), 0)
    fargate.finish_index(run.task_name(0), 1)
    run.step()
    last = fargate.finish_index(run.task_name(0), 7)
    run.step()
    assert run.status.phase == "Failed" and reason_of(run, "Failed") == "MaxFailCountExceeded"
    assert fargate.running() == []  # task 1 was stopped
    stopped = fargate.by_started_by(run.task_name(1))[0]
    assert stopped.stopped_reason == f"ecsjob: job default/job ({run.status.job_id}) failed (MaxFailCountExceeded)"
    assert run.status.logs is not None and run.status.logs.task_arn == last
    assert (run.status.tasks or [])[0].exit_code == 7


def test_max_fail_count_zero_fails_on_first_failure(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=2, maxFailCount=0))
    run.step()
    fargate.finish_index(run.task_name(0), 1)
    run.step()
    assert run.status.phase == "Failed" and run.status.retries == 0 and len(fargate.tasks()) == 2


def test_task_that_never_started_is_a_failure(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, maxFailCount=1))
    run.step()
    fargate.finish_index(
        run.task_name(0),
        None,
        stop_code="TaskFailedToStart",
        reason="CannotPullContainerError: pull image manifest has been retried 5 time(s)",
    )
    run.step()
    task = (run.status.tasks or [])[0]
    assert "attempt 1: container main has no exit code: CannotPullContainerError" in (task.last_failure or "")
    assert any(e.reason == "TaskFailed" and "CannotPullContainerError" in e.message for e in run.events)
    assert run.status.retries == 1 and task.attempts == 2


def test_timeout_stops_everything(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=2, timeout="30s"))
    run.step()
    fargate.finish_index(run.task_name(0), 0)
    run.step(10)
    assert run.status.phase == "Running"
    run.step(25)
    assert run.status.phase == "Failed" and reason_of(run, "Failed") == "Timeout"
    assert fargate.running() == []
    assert run.status.logs is not None and run.status.logs.task_arn == (run.status.tasks or [])[1].arn


def test_run_task_failures_are_retried_without_counting(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=1))
    moto_server.inject("RunTask", "capacity", "capacity")
    run.step()
    assert fargate.tasks() == [] and reason_of(run, "Progressing") == "LaunchDelayed"
    run.step(2)  # backoff 2 s after the first failure: second capacity failure
    assert fargate.tasks() == []
    run.step(1)  # still backing off (4 s)
    assert moto_server.calls["RunTask"] == 2
    run.step(4)
    assert len(fargate.tasks()) == 1
    fargate.finish_index(run.task_name(0), 0)
    run.step()
    assert run.status.phase == "Succeeded" and run.status.retries == 0 and run.status.failed_arns == []
    assert any(e.reason == "LaunchDelayed" for e in run.events)


def test_throttling_is_retried_and_never_fails_the_job(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=2))
    moto_server.inject("RunTask", "throttle")
    run.step()
    assert len(fargate.tasks()) == 1  # one index throttled, the other launched
    moto_server.inject("DescribeTasks", "throttle")
    run.step(3)
    assert run.status.phase == "Running" and reason_of(run, "Progressing") == "AwsError"
    assert any(e.reason == "AwsError" and "ThrottlingException" in e.message for e in run.events)
    run.step(3)
    assert len(fargate.tasks()) == 2
    for i in range(2):
        fargate.finish_index(run.task_name(i), 0)
    run.step()
    assert run.status.phase == "Succeeded" and run.status.failed_arns == []


def test_crash_between_run_task_and_status_write_adopts(
    backend: EcsBackend, clock: Clock, fargate: FakeFargate
) -> None:
    engine = Engine(backend, "heimdall-job", clock=clock)
    run = Runner(engine, clock, job_spec(fargate, taskCount=3))
    before = run.status
    run.step()  # RunTask x3 ... and the status write is lost
    assert len(fargate.tasks()) == 3
    restarted = Engine(EcsBackend(total_max_attempts=1), "heimdall-job", clock=clock)
    run2 = Runner(restarted, clock, job_spec(fargate, taskCount=3))
    run2.status = before
    run2.step()
    assert len(fargate.tasks()) == 3, "a duplicate task was launched"
    assert sum(e.reason == "TaskAdopted" for e in run2.events) == 3
    for i in range(3):
        fargate.finish_index(run2.task_name(i), 0)
    run2.step()
    assert run2.status.phase == "Succeeded"


def test_adopts_a_task_that_failed_while_unrecorded(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=1, maxFailCount=2))
    before = run.status
    run.step()
    arn = fargate.finish_index(run.task_name(0), 3)
    run.status = before
    run.step()  # adopts the stopped attempt 1
    run.step()  # observes its failure and relaunches attempt 2
    assert (run.status.tasks or [])[0].failed_arns == [arn]
    assert len(fargate.tasks()) == 2


def test_task_definition_registered_once_and_reused(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    a = Runner(engine, clock, job_spec(fargate), uid="a")
    b = Runner(Engine(EcsBackend(), "heimdall-job", clock=clock), clock, job_spec(fargate), uid="b")
    c = Runner(engine, clock, job_spec(fargate, cpu=512, memory=1024), uid="c")
    assert a.status.task_definition_arn == b.status.task_definition_arn
    assert c.status.task_definition_arn != a.status.task_definition_arn
    assert moto_server.calls["RegisterTaskDefinition"] == 2


def test_250_running_tasks_cost_at_most_3_describe_calls_per_poll(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=250))
    run.step()
    assert len(fargate.running()) == 250
    for _ in range(3):
        before = moto_server.calls["DescribeTasks"]
        run.step()
        assert moto_server.calls["DescribeTasks"] - before <= 3
    assert run.status.active == 250


def test_describe_is_shared_by_jobs_on_one_cluster(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    runs = [Runner(engine, clock, job_spec(fargate, taskCount=10), uid=f"job-{i}") for i in range(20)]
    for r in runs:
        r.step(0)
    clock.advance(1)
    before = moto_server.calls["DescribeTasks"]
    for r in runs:
        r.step(0)
    assert moto_server.calls["DescribeTasks"] - before == 2  # 200 tasks, 100 per call, one refresh


def test_logs_over_several_pages(
    engine: Engine, backend: EcsBackend, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    run = Runner(engine, clock, job_spec(fargate))
    run.step()
    arn = fargate.finish_index(run.task_name(0), 0)
    lines = [f"line {i}" for i in range(25_000)]
    start_ms = int(clock.now.timestamp() * 1000)
    fargate.write_logs(arn, lines, start_ms=start_ms)
    run.step()
    assert run.status.logs is not None
    events = backend.fetch_logs(run.status.logs)
    assert [e.message for e in events] == lines
    assert moto_server.calls["GetLogEvents"] >= 3  # moto pages at 10,000 events
    text = format_logs(run.status.logs.stream, events[:2])
    first = datetime.fromtimestamp(start_ms / 1000, UTC)
    stamps = [(first + timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S") for s in (0, 1)]
    assert text == f"=== {run.status.logs.stream} ===\n\n[{stamps[0]}] line 0\n[{stamps[1]}] line 1\n"


@pytest.mark.parametrize("launch_type", ["FARGATE_SPOT"])
def test_fargate_spot_uses_a_capacity_provider(
    engine: Engine, clock: Clock, fargate: FakeFargate, launch_type: str
) -> None:
    spec = job_spec(fargate)
    spec["cluster"]["launchType"] = launch_type
    run = Runner(engine, clock, spec)
    run.step()
    task = fargate.tasks()[0]
    assert task.launch_type != "FARGATE"


def test_invalid_spec_launches_nothing(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    spec = job_spec(
        fargate,
        cpu=300,
        timeout="1 hour",
        containerOverrides=[{"name": "main", "environment": [{"name": "TASK_NAME", "value": "x"}]}],
    )
    run = Runner(engine, clock, spec)
    assert run.status.phase == "Invalid"
    message = run.status.message or ""
    # every problem at once: a schema error does not hide the merge errors
    assert 'spec.context.timeout: "1 hour" is not a valid duration' in message
    assert "spec.context.containerOverrides[0].environment[0].name: TASK_NAME is set by the operator" in message
    assert "spec.context.cpu: 300 is not a Fargate CPU value" in message
    run.step()
    assert fargate.tasks() == [] and moto_server.calls["RunTask"] == 0
    assert moto_server.calls["RegisterTaskDefinition"] == 0


def test_a_missing_cluster_delays_launches_and_the_job_times_out(
    engine: Engine, clock: Clock, fargate: FakeFargate
) -> None:
    spec = job_spec(fargate, timeout="20s")
    spec["cluster"]["clusterName"] = "no-such-cluster"
    run = Runner(engine, clock, spec)
    run.step()
    assert run.status.phase == "Pending" and reason_of(run, "Progressing") == "LaunchDelayed"
    assert any(e.reason == "LaunchDelayed" and "ClusterNotFound" in e.message for e in run.events)
    assert (run.status.tasks or [])[0].failed_arns == [] and fargate.tasks() == []
    run.step(25)
    assert run.status.phase == "Failed" and reason_of(run, "Failed") == "Timeout"


def test_server_errors_are_shown_and_retried(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    run = Runner(engine, clock, job_spec(fargate))
    run.step()
    moto_server.inject("DescribeTasks", "error500")
    run.step()
    assert run.status.phase == "Running" and reason_of(run, "Progressing") == "AwsError"
    fargate.finish_index(run.task_name(0), 0)
    run.step()
    assert run.status.phase == "Succeeded" and run.status.failed_arns == []


def test_task_definition_arn_used_as_is_or_derived(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    ecs = boto3.client("ecs", region_name="us-west-2")
    template = {k: v for k, v in TEMPLATE.items() if k not in ("ephemeralStorage", "runtimePlatform")}
    arn = ecs.register_task_definition(**template)["taskDefinition"]["taskDefinitionArn"]
    moto_server.reset()
    spec = job_spec(fargate, command={"taskDefinition": None, "taskDefinitionArn": arn})
    plain = Runner(engine, clock, spec, uid="plain")
    assert plain.status.task_definition_arn == arn and moto_server.calls["RegisterTaskDefinition"] == 0
    env = [{"name": "DATA_SOURCE", "value": "s3://bucket/"}]
    derived = Runner(
        engine,
        clock,
        job_spec(
            fargate,
            command={"taskDefinition": None, "taskDefinitionArn": arn},
            containerOverrides=[{"name": "main", "environment": env}],
        ),
        uid="derived",
    )
    assert derived.status.phase == "Pending", derived.status.message
    assert derived.status.task_definition_arn not in (None, arn) and moto_server.calls["RegisterTaskDefinition"] == 1
    registered = ecs.describe_task_definition(taskDefinition=derived.status.task_definition_arn)["taskDefinition"]
    assert registered["family"] == template["family"]
    assert {"name": "DATA_SOURCE", "value": "s3://bucket/"} in registered["containerDefinitions"][0]["environment"]
    missing = Runner(
        engine,
        clock,
        job_spec(fargate, command={"taskDefinition": None, "taskDefinitionArn": arn.replace(":1", ":99")}),
        uid="m",
    )
    assert missing.status.phase == "Invalid" and "spec.command.taskDefinitionArn" in (missing.status.message or "")


def test_every_relaunch_looks_for_an_unrecorded_task_first(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, maxFailCount=2))
    run.step()
    failed = fargate.finish_index(run.task_name(0), 1)
    # another operator process (say, before a lost status write) already started attempt 2
    orphan = boto3.client("ecs", region_name="us-west-2").run_task(
        cluster="batch",
        taskDefinition=run.status.task_definition_arn,
        count=1,
        startedBy=run.task_name(0),
        launchType="FARGATE",
        tags=[{"key": "ecsjob.io/attempt", "value": "2"}, {"key": "ecsjob.io/uid", "value": run.job.uid}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": [fargate.subnet], "securityGroups": ["sg-1"]}},
    )["tasks"][0]["taskArn"]
    run.step()
    task = (run.status.tasks or [])[0]
    assert task.failed_arns == [failed] and task.arn == orphan and task.attempts == 2
    assert len(fargate.by_started_by(run.task_name(0))) == 2
    assert any(e.reason == "TaskAdopted" for e in run.events)


def test_parallelism_is_never_exceeded_at_moto(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=6, parallelism=2))
    seen = []
    for _ in range(12):
        run.step()
        seen.append(len(fargate.running()))
        for task in fargate.running()[:1]:  # one task ends per poll
            fargate.finish(task.task_arn, 0)
        if run.status.phase == "Succeeded":
            break
    assert run.status.phase == "Succeeded" and max(seen) == 2 and len(fargate.tasks()) == 6
