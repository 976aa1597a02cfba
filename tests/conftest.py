"""Shared by every tier: makes tests/support importable and adds --kubeconfig."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kubeconfig",
        default=None,
        help="run the e2e tier against this real cluster instead of the in-process API emulator",
    )
