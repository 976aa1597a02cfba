"""The status seal at moto: a status edited by hand never launches with the forged roles or task
definition; an honest status sealed under another key (a restart) is sealed again and goes on."""

from __future__ import annotations

import pytest

from ecsjob_operator.aws.ecs import EcsBackend
from ecsjob_operator.core.seal import is_sealed
from ecsjob_operator.engine.engine import Catalog, Engine
from support.fargate import FakeFargate
from support.jobs import Clock, Runner, job_spec
from support.moto_server import MotoServer

FORGED_ROLE = "arn:aws:iam::123456789012:role/admin-everything"
KEY, OTHER_KEY = b"k" * 32, b"o" * 32


def sealed_engine(backend: EcsBackend, clock: Clock, key: bytes = KEY) -> Engine:
    return Engine(backend, "heimdall-job", clock=clock, seal_key=key)


def catalog() -> Catalog:
    return Catalog(load_template=lambda kind, value: pytest.fail(f"unexpected template {kind}"))


def test_prepare_seals_the_status(backend: EcsBackend, clock: Clock, fargate: FakeFargate) -> None:
    run = Runner(sealed_engine(backend, clock), clock, job_spec(fargate))
    assert run.status.seal and run.status.seal.startswith("v1:")
    assert is_sealed(KEY, "uid-0001", run.status)
    assert not is_sealed(KEY, "uid-0002", run.status)  # a seal cannot be copied to another job
    assert not is_sealed(OTHER_KEY, "uid-0001", run.status)


def test_a_status_with_forged_roles_launches_nothing_and_fails(
    backend: EcsBackend, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    engine = sealed_engine(backend, clock)
    run = Runner(engine, clock, job_spec(fargate, taskCount=2))
    run.step()
    own = [t.arn for t in run.status.tasks or []]
    assert len(fargate.running()) == 2
    forged = run.status.model_copy(deep=True)
    assert forged.context is not None
    forged.context.cluster.task_role_arn = FORGED_ROLE
    forged.context.cluster.assign_public_ip = "ENABLED"
    assert not engine.is_sealed(run.job, forged)
    with pytest.raises(ValueError, match="not sealed"):
        engine.step(run.job, forged)  # never a launch from it, even if a caller forgets to reseal
    launches = len(moto_server.bodies("RunTask"))
    result = engine.reseal(run.job, run.spec, forged, catalog())
    assert result.status.phase == "Failed"
    failed = next(c for c in result.status.conditions or [] if c.type == "Failed")
    assert failed.reason == "StatusTampered" and "status.context.cluster" in failed.message
    assert [e.reason for e in result.events][0] == "StatusTampered"
    assert len(moto_server.bodies("RunTask")) == launches
    assert all(b.get("overrides", {}).get("taskRoleArn") != FORGED_ROLE for b in moto_server.bodies("RunTask"))
    assert fargate.running() == []  # the job's own tasks were stopped
    assert sorted(b["task"] for b in moto_server.bodies("StopTask")[-2:]) == sorted(own)
    assert result.status.context is not None and result.status.context.cluster.task_role_arn is None


def test_a_forged_task_definition_is_refused(
    backend: EcsBackend, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    engine = sealed_engine(backend, clock)
    run = Runner(engine, clock, job_spec(fargate))
    forged = run.status.model_copy(update={"task_definition_arn": "arn:aws:ecs:us-east-1:1:task-definition/victim:1"})
    result = engine.reseal(run.job, run.spec, forged, catalog())
    failed = next(c for c in result.status.conditions or [] if c.type == "Failed")
    assert failed.reason == "StatusTampered" and "status.taskDefinitionArn" in failed.message
    assert moto_server.bodies("RunTask") == [] or all(
        "victim" not in b["taskDefinition"] for b in moto_server.bodies("RunTask")
    )


def test_an_honest_status_under_another_key_is_sealed_again_and_goes_on(
    backend: EcsBackend, clock: Clock, fargate: FakeFargate
) -> None:
    run = Runner(sealed_engine(backend, clock, OTHER_KEY), clock, job_spec(fargate, taskCount=2))
    restarted = sealed_engine(backend, clock)  # a new process with another key
    assert not restarted.is_sealed(run.job, run.status)
    result = restarted.reseal(run.job, run.spec, run.status, catalog())
    assert result.events == [] and result.deferred and result.status.phase == "Pending"
    assert restarted.is_sealed(run.job, result.status)
    run.engine, run.status = restarted, result.status
    run.step()
    assert run.status.phase == "Running" and len(fargate.running()) == 2


def test_a_status_whose_seal_was_removed_is_checked_like_a_forged_one(
    backend: EcsBackend, clock: Clock, fargate: FakeFargate
) -> None:
    engine = sealed_engine(backend, clock)
    run = Runner(engine, clock, job_spec(fargate))
    stripped = run.status.model_copy(update={"seal": None})
    assert not engine.is_sealed(run.job, stripped)
    assert engine.reseal(run.job, run.spec, stripped, catalog()).status.seal == run.status.seal
