"""Fargate Spot: an interruption is capacity AWS took back, not the job's fault (a deliberate change
from Heimdall, which counted it): the index is relaunched without counting a failure."""

from __future__ import annotations

from ecsjob_operator.engine.engine import Engine
from support.fargate import FakeFargate
from support.jobs import Clock, Runner, job_spec
from support.moto_server import MotoServer


def test_a_spot_interruption_relaunches_without_counting(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    spec = job_spec(fargate, maxFailCount=0)
    spec["cluster"]["launchType"] = "FARGATE_SPOT"
    run = Runner(engine, clock, spec)
    run.step()
    interrupted = fargate.finish_index(
        run.task_name(0), None, stop_code="SpotInterruption", reason="Your Spot Task was interrupted."
    )
    run.step()
    run.step()
    task = (run.status.tasks or [])[0]
    assert run.status.phase == "Running" and task.attempts == 2 and task.failed_arns == []
    assert task.ignored_arns == [interrupted] and run.status.retries == 0
    assert any(e.reason == "IgnoredFailure" and "SpotInterruption" in e.message for e in run.events)
    fargate.finish_index(run.task_name(0), 0)
    run.step()
    assert run.status.phase == "Succeeded" and run.status.failed_arns == []
    assert [b["capacityProviderStrategy"][0]["capacityProvider"] for b in moto_server.bodies("RunTask")] == [
        "FARGATE_SPOT",
        "FARGATE_SPOT",
    ]
