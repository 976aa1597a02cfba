"""Fair share at moto: namespace B's first RunTask comes before namespace A's big jobs are launched."""

from __future__ import annotations

import threading

from ecsjob_operator.api.models import EcsJobStatus
from ecsjob_operator.aws.ecs import EcsBackend
from ecsjob_operator.core.tenancy import operator_policy
from ecsjob_operator.engine.engine import Catalog, Engine
from ecsjob_operator.engine.fairness import FairGate
from support.fargate import FakeFargate
from support.jobs import Clock, job_spec
from support.moto_server import MotoServer


def test_a_small_namespace_is_not_starved_by_a_big_one(
    backend: EcsBackend, clock: Clock, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    policy = operator_policy(allow_inline_cluster=True)
    engine = Engine(
        backend, "heimdall-job", clock=clock, policy=policy, sole_launcher=True
    )  # no look-ups: fairness only
    engine.gate = FairGate(burst=1, rate=100)  # a tight account-wide RunTask budget
    jobs = []
    for i, (namespace, count) in enumerate([("team-a", 30), ("team-a", 30), ("team-b", 1)]):
        job = engine.job_ref(f"j{i}", namespace, f"uid-{i}")
        prepared = engine.prepare(job, job_spec(fargate, taskCount=count), EcsJobStatus(), Catalog())
        assert prepared.status.context is not None, prepared.status.message
        jobs.append((job, prepared.status))
    a_started = threading.Event()

    def dispatch(job, status, rounds):  # type: ignore[no-untyped-def]
        for _ in range(rounds):  # the operator's next ticks: a job is due again while launches wait
            result = engine.step(job, status)
            status = result.status
            a_started.set()
            if not result.deferred:
                return

    threads = [threading.Thread(target=dispatch, args=(*jobs[i], 5)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    a_started.wait(5)
    arrived = len(moto_server.bodies("RunTask"))
    b_result = engine.step(*jobs[2])  # team-b arrives while team-a is launching 60 tasks
    for thread in threads:
        thread.join(30)
    order = [b["tags"] for b in moto_server.bodies("RunTask")]
    namespaces = [next(t["value"] for t in tags if t["key"] == "ecsjob.io/namespace") for tags in order]
    first_b = namespaces.index("team-b")
    assert namespaces.count("team-a") == 60 and b_result.status.active == 1
    assert first_b - arrived <= 5, (arrived, namespaces)  # served at its turn (a grant or two), not after team-a's 60
