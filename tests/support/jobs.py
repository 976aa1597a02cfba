"""Drive one job through the engine as the CLI and operator do, with an injected clock."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ecsjob_operator.api.models import EcsJobStatus
from ecsjob_operator.core.decide import JobRef
from ecsjob_operator.engine.engine import Catalog, Engine, StepResult
from support.fargate import CLUSTER, REGION, FakeFargate

SAMPLES = Path(__file__).parents[2] / "manifests" / "samples"
TEMPLATE = json.loads((SAMPLES / "task-definition.json").read_text())
EXECUTION_ROLE = TEMPLATE["executionRoleArn"]  # the cluster's, as the operator requires


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def cluster_ctx(fargate: FakeFargate) -> dict[str, Any]:
    """The fake cluster as a cluster context."""
    return {
        "clusterName": CLUSTER,
        "region": REGION,
        "executionRoleArn": EXECUTION_ROLE,
        "vpcConfig": {"subnets": [fargate.subnet], "securityGroups": [fargate.security_group]},
    }


def job_spec(fargate: FakeFargate, command: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    """An inline job on the fake cluster; `command` entries replace the sample's (None drops one),
    keyword arguments go to the job context."""
    merged = {"taskDefinition": copy.deepcopy(TEMPLATE), "pollingInterval": "1s", **(command or {})}
    return {
        "command": {k: v for k, v in merged.items() if v is not None},
        "cluster": cluster_ctx(fargate),
        "context": context,
    }


def ecsjob(name: str, fargate: FakeFargate, command: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    """The same as a whole EcsJob manifest."""
    return {
        "apiVersion": "ecsjob.io/v1alpha1",
        "kind": "EcsJob",
        "metadata": {"name": name},
        "spec": job_spec(fargate, command, **context),
    }


class Runner:
    """Drives one job through the engine the way the CLI and operator do, with a fake clock."""

    def __init__(self, engine: Engine, clock: Clock, spec: dict[str, Any], uid: str = "uid-0001") -> None:
        self.engine, self.clock = engine, clock
        self.job: JobRef = engine.job_ref("job", "default", uid)
        self.spec = spec
        self.result = engine.prepare(self.job, spec, EcsJobStatus(), Catalog(load_template=_no_external))
        self.status = self.result.status
        self.events = list(self.result.events)

    def prepare_again(self, seconds: float) -> StepResult:
        """One more prepare after `seconds`, as a poll does while the job has no merged context."""
        self.clock.advance(seconds)
        self.result = self.engine.prepare(self.job, self.spec, self.status, Catalog(load_template=_no_external))
        self.status = self.result.status
        self.events += self.result.events
        return self.result

    def step(self, seconds: float = 1.0, suspend: bool = False) -> StepResult:
        self.clock.advance(seconds)
        self.result = self.engine.step(self.job, self.status, suspend)
        self.status = self.result.status
        self.events += self.result.events
        return self.result

    def task_name(self, index: int) -> str:
        return (self.status.tasks or [])[index].task_name


def _no_external(kind: str, value: str) -> dict[str, Any]:
    raise AssertionError(f"unexpected template source {kind}")
