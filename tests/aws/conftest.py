"""The AWS tier: the engine in this process, moto as a server on 127.0.0.1 (tests/conftest.py)."""

from __future__ import annotations

import pytest

from ecsjob_operator.aws.ecs import EcsBackend
from ecsjob_operator.engine.engine import Engine
from support.fargate import FakeFargate
from support.jobs import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backend(fargate: FakeFargate) -> EcsBackend:
    return EcsBackend(total_max_attempts=1)


@pytest.fixture
def engine(backend: EcsBackend, clock: Clock) -> Engine:
    return Engine(backend, "heimdall-job", clock=clock)
