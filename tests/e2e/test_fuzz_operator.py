"""Property-based fuzzing through the operator: generated EcsJobs that the CRD schema admits each get a
phase and a message, an Invalid one launches nothing, and the operator process survives them all."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from ecsjob_operator.core.identity import job_id
from support.fargate import FakeFargate
from support.fuzzing import base_manifest, mutated
from support.operator_env import Kube, OperatorProcess, wait_for
from support.schemas import validator

pytestmark = pytest.mark.fuzz
DRAWS = int(os.environ.get("ECSJOB_FUZZ_JOBS", "150"))


def admitted(doc: Any, schema: dict[str, Any]) -> bool:
    """What the API server would store: JSON, an object, and valid against the CRD's schema."""
    try:
        json.dumps(doc, allow_nan=False)
        jsonschema.validate(doc, schema)
    except (ValueError, TypeError, RecursionError, jsonschema.ValidationError, jsonschema.SchemaError):
        return False
    return True


def test_every_admitted_job_gets_a_phase_and_a_message(
    kube: Kube, operator: OperatorProcess, fargate: FakeFargate
) -> None:
    schema = validator("EcsJob")
    base = base_manifest(fargate.subnet, fargate.security_group)
    created: list[dict[str, Any]] = []

    @settings(max_examples=DRAWS, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(mutated(base))
    def create(doc: dict[str, Any]) -> None:
        if not isinstance(doc, dict) or not admitted(doc, schema):
            return
        doc = {**doc, "apiVersion": "ecsjob.io/v1alpha1", "kind": "EcsJob"}
        doc["metadata"] = {"name": f"fz-{uuid.uuid4().hex[:10]}"}
        created.append(kube.create("ecsjobs", doc))

    stop = threading.Event()

    def play() -> None:  # end every task soon after it starts
        while not stop.wait(0.2):
            for task in fargate.running():
                with contextlib.suppress(Exception):
                    fargate.finish(task.task_arn, 0)

    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        create()
        assert len(created) >= 20, f"only {len(created)} generated jobs passed the CRD schema"
        names = [c["metadata"]["name"] for c in created]

        def unsettled() -> list[str]:
            return [n for n in names if not ((s := kube.status(n)).get("phase") and s.get("message"))]

        wait_for(lambda: not unsettled(), timeout=90, what=f"a phase and a message on all {len(names)} jobs")
        assert operator.proc is not None and operator.proc.poll() is None, "the operator died"
        phases: dict[str, int] = {}
        for body in created:
            status = kube.status(body["metadata"]["name"])
            phases[status["phase"]] = phases.get(status["phase"], 0) + 1
            reasons = {c["reason"] for c in status.get("conditions", [])}
            assert "ReconcileError" not in reasons, status  # the catch-all caught a bug of ours
            if status["phase"] == "Invalid":
                prefix = f"heimdall-job-{job_id(body['metadata']['uid'])}-"
                assert not [t for t in fargate.tasks() if (t.started_by or "").startswith(prefix)]
                assert any(c["type"] == "Invalid" and c["message"] for c in status["conditions"])
        print(f"\noperator fuzz: {len(created)} jobs admitted of {DRAWS} drawn: {phases}")
        assert set(phases) - {"Invalid"}, "no generated job was valid: the generator no longer reaches the engine"
    finally:
        for body in created:
            with contextlib.suppress(Exception):
                kube.delete_job(body["metadata"]["name"])
        with contextlib.suppress(AssertionError):
            wait_for(lambda: all(kube.job(b["metadata"]["name"]) is None for b in created), timeout=60, what="cleanup")
        stop.set()
        player.join(5)
