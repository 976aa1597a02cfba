"""Job semantics beyond Heimdall at moto: failure rules, attempt timeout, Continue with
maxFailedIndexes, success policy (docs/reference.md, "Job semantics")."""

from __future__ import annotations

from ecsjob_operator.engine.engine import Engine
from support.fargate import FakeFargate
from support.jobs import Clock, Runner, job_spec
from support.moto_server import MotoServer


def reason(run: Runner, type_: str) -> str | None:
    return next((c.reason for c in run.status.conditions or [] if c.type == type_ and c.status == "True"), None)


def test_exit_code_42_fails_the_job_at_once_by_rule(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    rules = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    run = Runner(engine, clock, job_spec(fargate, taskCount=2, maxFailCount=5, failurePolicy=rules))
    run.step()
    fargate.finish_index(run.task_name(0), 42)
    run.step()
    assert run.status.phase == "Failed" and reason(run, "Failed") == "FailedByRule"
    assert fargate.running() == [] and len(fargate.tasks()) == 2  # the other stopped, nothing relaunched
    assert any(e.reason == "FailedByRule" for e in run.events)


def test_cannot_pull_container_is_ignored_by_rule(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    rules = {"rules": [{"action": "Ignore", "onReasons": ["CannotPullContainerError*"]}]}
    run = Runner(engine, clock, job_spec(fargate, maxFailCount=0, failurePolicy=rules))
    run.step()
    fargate.finish_index(
        run.task_name(0), None, stop_code="TaskFailedToStart", reason="CannotPullContainerError: pull access denied"
    )
    run.step()
    run.step()
    task = (run.status.tasks or [])[0]
    assert run.status.phase == "Running" and task.attempts == 2 and task.failed_arns == []
    assert any(e.reason == "IgnoredFailure" for e in run.events)
    fargate.finish_index(run.task_name(0), 0)
    run.step()
    assert run.status.phase == "Succeeded"


def test_attempt_timeout_stops_and_retries_the_attempt(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    run = Runner(engine, clock, job_spec(fargate, maxFailCount=1, attemptTimeout="1m"))
    run.step()
    first = (run.status.tasks or [])[0].arn
    run.step(61)
    stops = [b for b in moto_server.bodies("StopTask") if b["task"] == first]
    assert stops and "AttemptTimeout" in stops[0]["reason"]
    assert fargate.task(first).last_status == "STOPPED"
    run.step()  # the retry is launched
    task = (run.status.tasks or [])[0]
    assert task.attempts == 2 and task.failed_arns == [first] and "AttemptTimeout" in (task.last_failure or "")
    run.step(61)
    assert run.status.phase == "Failed" and reason(run, "Failed") == "MaxFailCountExceeded"


def test_continue_with_max_failed_indexes(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    spec = job_spec(fargate, taskCount=4, maxFailCount=0, onIndexFailure="Continue", maxFailedIndexes=1)
    run = Runner(engine, clock, spec)
    run.step()
    fargate.finish_index(run.task_name(0), 1)
    run.step()
    assert run.status.phase == "Running" and run.status.failed_indexes == "0" and len(fargate.running()) == 3
    fargate.finish_index(run.task_name(2), 1)
    run.step()
    assert run.status.phase == "Failed" and reason(run, "Failed") == "MaxFailedIndexesExceeded"
    assert run.status.failed_indexes == "0,2" and fargate.running() == []


def test_success_policy_stops_the_rest(engine: Engine, clock: Clock, fargate: FakeFargate) -> None:
    spec = job_spec(fargate, taskCount=3, successPolicy={"succeededIndexes": "0"})
    run = Runner(engine, clock, spec)
    run.step()
    fargate.finish_index(run.task_name(0), 0)
    run.step()
    assert run.status.phase == "Succeeded" and reason(run, "Complete") == "SuccessPolicyMet"
    assert fargate.running() == [] and run.status.retries == 0 and run.status.failed_arns == []
