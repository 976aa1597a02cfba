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


def test_spot_fallback_relaunches_on_fargate_after_the_admins_count(
    engine: Engine, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    spec = job_spec(fargate, maxFailCount=0)
    spec["cluster"].update(launchType="FARGATE_SPOT", spotFallback={"afterInterruptions": 2})
    run = Runner(engine, clock, spec)
    before = len(moto_server.bodies("RunTask"))
    run.step()
    for _ in range(2):
        fargate.finish_index(run.task_name(0), None, stop_code="SpotInterruption", reason="interrupted")
        run.step()
        run.step()
    launches = moto_server.bodies("RunTask")[before:]
    kinds = [b.get("launchType") or b["capacityProviderStrategy"][0]["capacityProvider"] for b in launches]
    assert kinds == ["FARGATE_SPOT", "FARGATE_SPOT", "FARGATE"]  # the third attempt, after two interruptions
    assert [e["value"] for b in launches for e in b["overrides"]["containerOverrides"][0]["environment"]
            if e["name"] == "TASK_ATTEMPT"] == ["1", "2", "3"]  # fmt: skip
    fargate.finish_index(run.task_name(0), 0)
    run.step()
    assert run.status.phase == "Succeeded" and (run.status.tasks or [])[0].spot_interruptions == 2
    assert [e.message for e in run.events if e.reason == "SpotFallback"] == [
        "task 0 attempt 3 runs on FARGATE after 2 Spot interruptions (spotFallback)"
    ]
