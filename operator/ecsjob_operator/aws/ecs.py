"""The AWS side: ECS and CloudWatch Logs over boto3, returning the core's typed observations.

boto3 is configured the standard way (AWS_REGION, AWS_ENDPOINT_URL, profiles, IRSA). Errors that
are not the job's fault become `TransientError`; RunTask `failures` become a failed LaunchResult.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from ecsjob_operator.api.models import LogsPointer, MergedCluster
from ecsjob_operator.core.decide import ContainerResult, Observation
from ecsjob_operator.core.ecs_limits import DESCRIBE_BATCH, RUN_TASK_BURST, RUN_TASK_RATE, STOP_REASON_MAX
from ecsjob_operator.core.identity import TAG_ATTEMPT, TAG_UID, task_env
from ecsjob_operator.core.merge import content_hash
from ecsjob_operator.core.redaction import redact_text
from ecsjob_operator.core.taskdef import TemplateError
from ecsjob_operator.engine.backend import (
    LaunchRequest,
    LaunchResult,
    LogEvent,
    PermanentError,
    TransientError,
)

log = logging.getLogger(__name__)
HASH_TAG = "ecsjob.io/content-hash"
# The one classification of AWS errors (docs/reference.md, "Lifecycle"): these codes, any 5xx and
# any failure to get an answer are transient; every other error AWS answers with is permanent.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServerException",
        "ServiceUnavailable",
        "InternalFailure",
        "ExpiredTokenException",
        "RequestExpired",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ClusterNotFoundException",  # the cluster may appear (an admin creates it)
    }
)
REVISIONS_TO_SCAN = 20
# botocore's parameter validation quotes the offending value ("value: s3cr3t, type: <class 'int'>").
_ECHOED_VALUE = re.compile(r"(value: ).*?(?=, type:|, valid |$)")


class TokenBucket:
    """Client-side rate limit so that a thousand launches do not trip ECS's own throttling."""

    def __init__(self, burst: float, rate: float) -> None:
        self.capacity, self.rate, self.tokens, self.at = burst, rate, burst, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
            self.tokens -= 1
        if wait:
            time.sleep(wait)


def _code(exc: Exception) -> str | None:
    """The AWS error code behind an error, if AWS answered."""
    cause = exc.__cause__ if isinstance(exc, TransientError | PermanentError) else exc
    if isinstance(cause, botocore.exceptions.ClientError):
        return str(cause.response.get("Error", {}).get("Code"))
    return None


def is_transient(exc: Exception) -> bool:
    """Throttling, 5xx, credentials, a missing cluster and no answer at all are transient; every other
    answer (4xx, parameter validation) is permanent."""
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return _code(exc) in TRANSIENT_CODES or status >= 500
    return not isinstance(exc, botocore.exceptions.ParamValidationError)


def aws_message(exc: Exception) -> str:
    """AWS's reason in one line, without values it may echo (botocore quotes invalid parameters)."""
    text = " ".join(str(exc).split())
    return _ECHOED_VALUE.sub(r"\1***", redact_text(text))[:500]


class EcsBackend:
    """Runs tasks on ECS Fargate; counts its calls by operation (for benchmarks and metrics)."""

    name = "aws"
    requires_network = True

    def __init__(self, total_max_attempts: int = 3) -> None:
        self._config = Config(retries={"mode": "standard", "total_max_attempts": total_max_attempts})
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()
        self._registered: dict[str, str] = {}
        self._flights: dict[str, threading.Lock] = {}  # one registration in flight per content hash
        self._bucket = TokenBucket(RUN_TASK_BURST, RUN_TASK_RATE)
        self.calls: dict[str, int] = {}
        self.errors: dict[str, int] = {}

    def default_region(self) -> str | None:
        return (
            os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or boto3.session.Session().region_name
        )

    def environment_problem(self, regions: list[str | None]) -> str | None:
        """Checked by `ecsjob run` before any call: a region for every cluster, and some credentials."""
        try:
            if None in regions and self.default_region() is None:
                return "no AWS region: set AWS_REGION (or a profile's region), or the cluster's region"
            credentials = boto3.session.Session().get_credentials()
        except botocore.exceptions.BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
            return f"AWS configuration: {exc}"
        if credentials is None:
            return "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role"
        return None

    def _client(self, service: str, region: str | None) -> Any:
        key = (service, region or self.default_region())
        with self._lock:
            if key not in self._clients:
                session: Any = boto3.session.Session()
                self._clients[key] = session.client(service, region_name=key[1], config=self._config)
            return self._clients[key]

    def _call(self, service: str, region: str | None, operation: str, **kwargs: Any) -> Any:
        """One AWS call; its error becomes TransientError or PermanentError (is_transient)."""
        self._count(self.calls, operation)
        try:
            return getattr(self._client(service, region), operation)(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            self._count(self.errors, operation)
            name = "".join(part.capitalize() for part in operation.split("_"))
            if is_transient(exc):
                raise TransientError(f"{name}: {aws_message(exc)}") from exc
            raise PermanentError(name, aws_message(exc)) from exc

    def _count(self, counter: dict[str, int], operation: str) -> None:
        with self._lock:  # called from the operator's worker threads
            counter[operation] = counter.get(operation, 0) + 1

    # --- task definitions -------------------------------------------------------------------

    def load_task_definition(self, arn: str, region: str | None) -> dict[str, Any]:
        try:
            answer = self._call("ecs", region, "describe_task_definition", taskDefinition=arn)
        except PermanentError as exc:  # the spec names something that is not there (or not ours to read)
            raise TemplateError(f"cannot describe task definition {arn}: {exc.reason}") from exc
        return dict(answer["taskDefinition"])

    def ensure_task_definition(self, task_definition: dict[str, Any], region: str | None) -> str:
        """Register once: reuse an ACTIVE revision of the family that carries the same content hash."""
        digest = content_hash(task_definition)
        with self._lock:
            flight = self._flights.setdefault(digest, threading.Lock())
        with flight:  # single flight: concurrent jobs with the same definition register it once
            if digest in self._registered:
                return self._registered[digest]
            arn = self._find_revision(task_definition["family"], digest, region)
            if arn is None:
                tags = [*task_definition.get("tags", []), {"key": HASH_TAG, "value": digest}]
                answer = self._call("ecs", region, "register_task_definition", **{**task_definition, "tags": tags})
                arn = answer["taskDefinition"]["taskDefinitionArn"]
            self._registered[digest] = str(arn)
            return str(arn)

    def _find_revision(self, family: str, digest: str, region: str | None) -> str | None:
        answer = self._call("ecs", region, "list_task_definitions", familyPrefix=family, status="ACTIVE", sort="DESC")
        for arn in answer.get("taskDefinitionArns", [])[:REVISIONS_TO_SCAN]:
            if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] != family:
                continue
            found = self._call("ecs", region, "describe_task_definition", taskDefinition=arn, include=["TAGS"])
            if any(t["key"] == HASH_TAG and t["value"] == digest for t in found.get("tags", [])):
                return str(arn)
        return None

    # --- tasks ------------------------------------------------------------------------------

    def describe(self, cluster: MergedCluster, arns: list[str]) -> dict[str, Observation]:
        if not arns:
            return {}
        answer = self._call(
            "ecs", cluster.region, "describe_tasks", cluster=cluster.cluster_name, tasks=arns, include=["TAGS"]
        )
        return {t["taskArn"]: _observation(t) for t in answer.get("tasks", [])}

    def find(self, cluster: MergedCluster, started_by: str) -> list[Observation]:
        """Tasks of this startedBy, RUNNING and STOPPED, newest attempt first."""
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            token = None
            while True:
                kwargs = {"cluster": cluster.cluster_name, "startedBy": started_by, "desiredStatus": desired}
                answer = self._call(
                    "ecs", cluster.region, "list_tasks", **kwargs, **({"nextToken": token} if token else {})
                )
                arns += [a for a in answer.get("taskArns", []) if a not in arns]
                token = answer.get("nextToken")
                if not token:
                    break
        found: list[Observation] = []
        for start in range(0, len(arns), DESCRIBE_BATCH):
            found += self.describe(cluster, arns[start : start + DESCRIBE_BATCH]).values()
        mine = [o for o in found if o.started_by == started_by]
        return sorted(mine, key=lambda o: o.attempt or 0, reverse=True)

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """One RunTask with count=1 (each index has its own startedBy), so ECS's 10-per-call cap is moot."""
        self._bucket.take()
        try:
            answer = self._call("ecs", request.cluster.region, "run_task", **run_task_args(request))
        except PermanentError as exc:
            if _code(exc) != "ConflictException":
                raise
            return LaunchResult(failure=exc.reason, conflict=True)
        tasks, failures = answer.get("tasks", []), answer.get("failures", [])
        if tasks:
            return LaunchResult(arn=tasks[0]["taskArn"])
        reason = "; ".join(f"{f.get('reason')}: {f.get('detail', '')}".rstrip(": ") for f in failures)
        return LaunchResult(failure=reason or "RunTask returned no task")

    def stop(self, cluster: MergedCluster, arn: str, reason: str) -> None:
        try:
            self._call(
                "ecs",
                cluster.region,
                "stop_task",
                cluster=cluster.cluster_name,
                task=arn,
                reason=reason[:STOP_REASON_MAX],
            )
        except PermanentError as exc:
            log.info("StopTask %s: %s (already gone)", arn, exc)

    # --- logs -------------------------------------------------------------------------------

    def fetch_logs(self, pointer: LogsPointer) -> list[LogEvent]:
        """Every event of the stream, oldest first; stops when the forward token repeats."""
        events: list[LogEvent] = []
        token = None
        while True:
            kwargs = {"logGroupName": pointer.group, "logStreamName": pointer.stream, "startFromHead": True}
            try:
                answer = self._call(
                    "logs", pointer.region, "get_log_events", **kwargs, **({"nextToken": token} if token else {})
                )
            except PermanentError as exc:
                if _code(exc) == "ResourceNotFoundException":  # no stream (yet): no lines
                    return events
                raise
            events += [
                LogEvent(datetime.fromtimestamp(e["timestamp"] / 1000, UTC), e["message"])
                for e in answer.get("events", [])
            ]
            if answer.get("nextForwardToken") in (None, token):
                return events
            token = answer["nextForwardToken"]


def run_task_args(request: LaunchRequest) -> dict[str, Any]:
    """The RunTask request of one attempt: deterministic identity, network, TASK_NAME/TASK_NUM."""
    cluster = request.cluster
    env = [{"name": k, "value": v} for k, v in task_env(request.task_name, request.index, request.attempt).items()]
    args: dict[str, Any] = {
        "cluster": cluster.cluster_name,
        "taskDefinition": request.task_definition_arn,
        "count": 1,
        "startedBy": request.task_name,
        "clientToken": request.client_token,
        "tags": [{"key": k, "value": v} for k, v in request.tags.items()],
        "overrides": {
            "containerOverrides": [{"name": c, "environment": env} for c in request.containers],
            # the cluster's roles win even over a task definition used as is (docs/reference.md, "Security boundaries")
            **{
                k: v
                for k, v in (("executionRoleArn", cluster.execution_role_arn), ("taskRoleArn", cluster.task_role_arn))
                if v
            },
        },
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": cluster.subnets,
                "securityGroups": cluster.security_groups,
                "assignPublicIp": cluster.assign_public_ip or "DISABLED",
            }
        },
    }
    if cluster.launch_type == "FARGATE_SPOT":
        args["capacityProviderStrategy"] = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    else:
        args["launchType"] = "FARGATE"
    return args


def _observation(task: dict[str, Any]) -> Observation:
    tags = {t["key"]: t["value"] for t in task.get("tags", [])}
    attempt = tags.get(TAG_ATTEMPT)
    stopped_at = task.get("stoppedAt")
    return Observation(
        arn=task["taskArn"],
        last_status=task.get("lastStatus", "UNKNOWN"),
        started_by=task.get("startedBy"),
        containers=tuple(
            ContainerResult(c.get("name", ""), c.get("exitCode"), c.get("reason")) for c in task.get("containers", [])
        ),
        stop_code=task.get("stopCode"),
        stopped_reason=task.get("stoppedReason"),
        stopped_at=stopped_at if isinstance(stopped_at, datetime) else None,
        attempt=int(attempt) if attempt and attempt.isdigit() else None,
        uid=tags.get(TAG_UID),
        version=task.get("version") if isinstance(task.get("version"), int) else None,
    )
