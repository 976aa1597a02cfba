"""Shared by every tier: tests/support on the path, --kubeconfig, and the moto server fixtures."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.fargate import REGION, FakeFargate  # noqa: E402
from support.moto_server import MotoServer  # noqa: E402

AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kubeconfig",
        default=None,
        help="run the e2e tier against this real cluster instead of the in-process API emulator",
    )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto as a real HTTP server on 127.0.0.1; boto3 reaches it through AWS_ENDPOINT_URL."""
    server = MotoServer().start()
    saved = {k: os.environ.get(k) for k in AWS_VARS}
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
    """A fresh moto state with a VPC, subnet and cluster; tasks held RUNNING until finished."""
    fake = FakeFargate()
    moto_server.reset()
    yield fake
    fake.close()
