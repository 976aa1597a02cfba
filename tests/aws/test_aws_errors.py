"""AWS errors get one clear outcome: permanent ones end the job at once (AwsRejected, one call), transient
ones are retried with backoff (one call per step, never one per poll), bounded by the job's timeout."""

from __future__ import annotations

import copy

from ecsjob_operator.core.backoff import backoff_seconds
from ecsjob_operator.engine.engine import Engine
from support.fargate import FakeFargate
from support.jobs import TEMPLATE, Clock, Runner, job_spec
from support.moto_server import MotoServer


def condition(run: Runner, type_: str) -> tuple[str, str] | None:
    c = next((c for c in run.status.conditions or [] if c.type == type_ and c.status == "True"), None)
    return (c.reason, c.message) if c else None


def test_access_denied_on_register_fails_the_job_after_one_call(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    moto_server.inject("RegisterTaskDefinition", "error:AccessDeniedException:400")
    run = Runner(engine, clock, job_spec(fargate))
    assert run.status.phase == "Failed"
    reason, message = condition(run, "Failed") or ("", "")
    assert reason == "AwsRejected" and "RegisterTaskDefinition" in message and "AccessDenied" in message
    assert [e.reason for e in run.events] == ["AwsRejected"]
    run.step(5)
    run.step(5)
    assert moto_server.calls["RegisterTaskDefinition"] == 1 and moto_server.calls["RunTask"] == 0


def test_a_container_without_image_is_rejected_by_aws_not_retried(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    template = copy.deepcopy(TEMPLATE)
    del template["containerDefinitions"][0]["image"]
    run = Runner(engine, clock, job_spec(fargate, command={"taskDefinition": template}))
    assert run.status.phase == "Failed" and (condition(run, "Failed") or ("",))[0] == "AwsRejected"
    assert "image" in (run.status.message or "")
    assert moto_server.calls["RegisterTaskDefinition"] == 1


def test_parameter_validation_is_permanent_and_names_no_value(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    template = copy.deepcopy(TEMPLATE)
    template["containerDefinitions"][0]["foo"] = "s3cr3t-value"
    run = Runner(engine, clock, job_spec(fargate, command={"taskDefinition": template}))
    assert run.status.phase == "Failed" and (condition(run, "Failed") or ("",))[0] == "AwsRejected"
    assert "foo" in (run.status.message or "") and "s3cr3t-value" not in run.status.model_dump_json()
    assert moto_server.calls["RegisterTaskDefinition"] == 0  # botocore refused it before sending


def test_permanent_error_while_running_stops_the_job(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    run = Runner(engine, clock, job_spec(fargate, taskCount=2))
    run.step()
    assert len(fargate.running()) == 2
    moto_server.inject("DescribeTasks", "error:AccessDeniedException:400")
    run.step(2)
    assert run.status.phase == "Failed" and (condition(run, "Failed") or ("",))[0] == "AwsRejected"
    assert fargate.running() == []  # the job's tasks were stopped
    assert moto_server.calls["StopTask"] == 2


def test_transient_prepare_errors_back_off_one_call_per_step(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    moto_server.inject("RegisterTaskDefinition", "error500", "throttle", "error500")
    run = Runner(engine, clock, job_spec(fargate))
    assert run.status.phase == "Pending" and run.status.prepare_failures == 1
    assert (condition(run, "Progressing") or ("",))[0] == "AwsError" and run.status.next_retry_time
    assert run.status.start_time  # the timeout runs from the first attempt to reach AWS
    calls = [moto_server.calls["RegisterTaskDefinition"]]
    for _ in range(20):  # twenty polls at 0.1 s: only the backoff moments call AWS again
        run.prepare_again(0.1)
        calls.append(moto_server.calls["RegisterTaskDefinition"])
    assert calls[-1] <= 2 + 1  # 1 s then 2 s (jittered down to half) fit in 2 s, not 20 calls
    run.prepare_again(10)
    run.prepare_again(10)
    assert run.status.context is not None, run.status.message
    assert run.status.prepare_failures is None and run.status.next_retry_time is None
    assert moto_server.calls["RegisterTaskDefinition"] == 4


def test_a_job_that_can_never_prepare_times_out(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    moto_server.inject("RegisterTaskDefinition", *["error500"] * 50)
    run = Runner(engine, clock, job_spec(fargate, timeout="30s"))
    for _ in range(30):
        run.prepare_again(5)
        if run.status.phase == "Failed":
            break
    assert run.status.phase == "Failed" and (condition(run, "Failed") or ("",))[0] == "Timeout"
    assert moto_server.calls["RegisterTaskDefinition"] < 10  # one per backoff step, not one per poll


def test_backoff_doubles_from_one_second_to_five_minutes_with_jitter() -> None:
    waits = [backoff_seconds(n, "uid-1") for n in range(1, 15)]
    assert 0.5 <= waits[0] <= 1 and 1 <= waits[1] <= 2 and 2 <= waits[2] <= 4
    assert all(150 <= w <= 300 for w in waits[9:])
    assert backoff_seconds(3, "uid-1") != backoff_seconds(3, "uid-2")  # jobs spread out
    assert backoff_seconds(3, "uid-1") == backoff_seconds(3, "uid-1")  # reproducible
