"""One call per launch: a launch intent written before RunTask, the clientToken's 24-hour idempotency
(moto's server is given AWS's semantics by tests/support/moto_server.py), and ListTasks only to recover."""

from __future__ import annotations

import boto3

from ecsjob_operator.aws.ecs import EcsBackend
from ecsjob_operator.core.identity import client_token
from ecsjob_operator.engine.engine import Engine
from support.fargate import CLUSTER, REGION, FakeFargate
from support.jobs import Clock, Runner, job_spec
from support.moto_server import MotoServer


def operator_engine(clock: Clock) -> Engine:
    """As the operator runs it: the status is stored between steps."""
    return Engine(EcsBackend(total_max_attempts=1), "heimdall-job", clock=clock, durable_status=True)


def test_a_run_without_restarts_makes_no_list_tasks_call(
    clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    run = Runner(operator_engine(clock), clock, job_spec(fargate, taskCount=3, maxFailCount=2))
    first = run.step()
    assert first.deferred and fargate.tasks() == [] and all(t.intent_attempt == 1 for t in run.status.tasks or [])
    run.step()  # the intents are stored: RunTask now
    assert len(fargate.running()) == 3
    fargate.finish_index(run.task_name(0), 1)  # a failure: attempt 2 of index 0
    for _ in range(3):
        run.step()
    assert len(fargate.running()) == 3 and (run.status.tasks or [])[0].attempts == 2
    for i in range(3):
        fargate.finish_index(run.task_name(i), 0)
    run.step()
    assert run.status.phase == "Succeeded"
    assert moto_server.calls["ListTasks"] == 0 and moto_server.calls["RunTask"] == 4


def test_an_intent_this_process_did_not_write_is_recovered_with_list_tasks(
    clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    run = Runner(operator_engine(clock), clock, job_spec(fargate, taskCount=2))
    run.step()  # intents written and stored
    stored = run.status
    run.step()  # RunTask x2 ... then the process is killed before the status is written
    assert len(fargate.tasks()) == 2
    restarted = Runner(operator_engine(clock), clock, job_spec(fargate, taskCount=2))
    restarted.status = stored
    restarted.step()
    assert len(fargate.tasks()) == 2, "a duplicate task was launched"
    assert sum(e.reason == "TaskAdopted" for e in restarted.events) == 2
    assert moto_server.calls["ListTasks"] >= 2 and moto_server.calls["RunTask"] == 2


def test_a_retried_run_task_is_answered_with_the_original_task(
    clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    """Without any look-up (a CLI run with a fresh uid), the token alone prevents a duplicate."""
    engine = Engine(EcsBackend(total_max_attempts=1), "heimdall-job", clock=clock, sole_launcher=True)
    run = Runner(engine, clock, job_spec(fargate))
    before = run.status
    run.step()
    arn = (run.status.tasks or [])[0].arn
    again = Runner(Engine(EcsBackend(total_max_attempts=1), "heimdall-job", clock=clock, sole_launcher=True),
                   clock, job_spec(fargate))  # fmt: skip
    again.status = before  # the status write was lost; same uid, same attempt, same token
    again.step()
    assert (again.status.tasks or [])[0].arn == arn and len(fargate.tasks()) == 1
    assert moto_server.replays["replayed"] == 1 and moto_server.calls["ListTasks"] == 0


def test_a_failures_answer_moves_to_the_next_token(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    moto_server.inject("RunTask", "capacity")
    run = Runner(engine, clock, job_spec(fargate))
    run.step()
    run.step(3)
    tokens = [b["clientToken"] for b in moto_server.bodies("RunTask")]
    uid = run.job.uid
    assert tokens == [client_token(uid, 0, 1), client_token(uid, 0, 1, 1)] and len(fargate.tasks()) == 1


def test_a_token_conflict_is_recovered_not_fatal(clock: Clock, fargate: FakeFargate, moto_server: MotoServer) -> None:
    run = Runner(operator_engine(clock), clock, job_spec(fargate))
    run.step()  # intent
    network = {"awsvpcConfiguration": {"subnets": [fargate.subnet], "securityGroups": [fargate.security_group]}}
    boto3.client("ecs", region_name=REGION).run_task(  # someone used our token with other parameters
        cluster=CLUSTER, taskDefinition=run.status.task_definition_arn, startedBy="someone-else",
        launchType="FARGATE", networkConfiguration=network, clientToken=client_token(run.job.uid, 0, 1),
    )  # fmt: skip
    run.step()
    assert moto_server.replays["conflict"] == 1 and run.status.phase == "Pending"
    assert any(e.reason == "LaunchDelayed" and "ConflictException" in e.message for e in run.events)
    run.step(3)  # the next try's token
    assert run.status.phase == "Running" and len(fargate.by_started_by(run.task_name(0))) == 1


def test_concurrent_jobs_register_an_identical_definition_once(
    backend: EcsBackend, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    import copy
    import threading

    from support.jobs import TEMPLATE

    definition = {k: v for k, v in copy.deepcopy(TEMPLATE).items() if k not in ("ephemeralStorage", "runtimePlatform")}
    arns: list[str] = []
    threads = [
        threading.Thread(target=lambda: arns.append(backend.ensure_task_definition(definition, REGION)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(arns) == 8 and len(set(arns)) == 1
    assert moto_server.calls["RegisterTaskDefinition"] == 1


def test_a_forged_arn_in_one_jobs_status_cannot_fail_another_jobs_task(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    """Both jobs poll through the one DescribeTasks refresher: what one job's (user-written) status
    names must neither stop nor hide the other's task (it would count as MISSING, a failure)."""
    victim = Runner(engine, clock, job_spec(fargate), uid="victim")
    attacker = Runner(engine, clock, job_spec(fargate, taskCount=2), uid="attacker")
    victim.step()
    attacker.step()
    victim_arn = (victim.status.tasks or [])[0].arn
    (attacker.status.tasks or [])[0].arn = victim_arn  # the tenant writes the victim's ARN into its status
    for _ in range(3):
        attacker.step()
        victim.step()
    task = (victim.status.tasks or [])[0]
    assert task.phase == "Running" and task.arn == victim_arn and task.failed_arns == [] and task.attempts == 1
    assert any(e.reason == "ForeignTask" for e in attacker.events)
    assert victim_arn not in [b["task"] for b in moto_server.bodies("StopTask")]
    fargate.finish(victim_arn or "", 0)
    victim.step()
    assert victim.status.phase == "Succeeded"
