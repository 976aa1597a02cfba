"""The AWS tier: a moto server on 127.0.0.1 that boto3 reaches through AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecsjob_operator.ecs import EcsBackend
from ecsjob_operator.engine import Engine
from support.fargate import REGION, FakeFargate
from support.jobs import Clock, job_spec  # noqa: F401  (re-exported for tests)
from support.moto_server import MotoServer

SAMPLES = Path(__file__).parents[2] / "manifests" / "samples"
TEMPLATE = json.loads((SAMPLES / "task-definition.json").read_text())


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    os.environ.update(
        AWS_ENDPOINT_URL=server.url,
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def fargate(moto_server: MotoServer) -> Iterator[FakeFargate]:
    fake = FakeFargate()
    moto_server.reset()
    yield fake
    fake.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backend(fargate: FakeFargate) -> EcsBackend:
    return EcsBackend(total_max_attempts=1)


@pytest.fixture
def engine(backend: EcsBackend, clock: Clock) -> Engine:
    return Engine(backend, "heimdall-job", clock=clock)
