"""What the engine needs from a place that runs tasks (ECS over boto3, or local processes).

Only types: no boto3, no kopf. Both backends implement `Backend`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ecsjob_operator.api.models import LogsPointer, MergedCluster
from ecsjob_operator.core.decide import Observation
from ecsjob_operator.core.redaction import printable


class TransientError(Exception):
    """A failure that is not the job's fault (throttling, 5xx, credentials, a missing cluster): retry
    with backoff (docs/reference.md, "Lifecycle")."""


class PermanentError(Exception):
    """AWS refused the request for good (validation, access denied, any other 4xx): the job ends
    Failed with reason AwsRejected. The message names the operation and is already redacted."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.reason = message


@dataclass(frozen=True)
class LaunchRequest:
    cluster: MergedCluster
    task_definition_arn: str
    task_name: str
    index: int
    attempt: int
    client_token: str
    tags: dict[str, str]
    containers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LaunchResult:
    arn: str | None = None
    failure: str | None = None  # RunTask answered with `failures`: no task started
    conflict: bool = False  # the clientToken was used before with other parameters


@dataclass(frozen=True)
class LogEvent:
    timestamp: datetime
    message: str


class Backend(Protocol):
    name: str
    requires_network: bool

    def default_region(self) -> str | None: ...

    def environment_problem(self, regions: list[str | None]) -> str | None:
        """What is missing to reach the backend at all (a region, credentials), in one line, or None."""
        ...

    def load_task_definition(self, arn: str, region: str | None) -> dict[str, Any]: ...

    def ensure_task_definition(self, task_definition: dict[str, Any], region: str | None) -> str: ...

    def describe(self, cluster: MergedCluster, arns: list[str]) -> dict[str, Observation]: ...

    def find(self, cluster: MergedCluster, started_by: str) -> list[Observation]: ...

    def launch(self, request: LaunchRequest) -> LaunchResult: ...

    def stop(self, cluster: MergedCluster, arn: str, reason: str) -> None: ...

    def fetch_logs(self, pointer: LogsPointer) -> list[LogEvent]: ...


def format_logs(stream: str, events: list[LogEvent]) -> str:
    """docs/reference.md, "ecsjob run": `=== {stream} ===`, a blank line, then `[YYYY-MM-DD HH:MM:SS] message` lines."""
    lines = [f"=== {printable(stream)} ===", ""]
    lines += [f"[{e.timestamp.strftime('%Y-%m-%d %H:%M:%S')}] {printable(e.message.rstrip(chr(10)))}" for e in events]
    return "\n".join(lines) + "\n"
