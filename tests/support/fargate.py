"""A test helper that plays Fargate inside the moto server: it holds tasks RUNNING until told,
stops them with chosen exit codes and stop codes, and writes their CloudWatch log events
(moto never does either)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import boto3
from moto.backends import get_backend
from moto.moto_api import state_manager

from ecsjob_operator.core.decide import ContainerResult, Observation
from ecsjob_operator.core.task_events import event_message

ACCOUNT = "123456789012"
REGION = "us-west-2"
CLUSTER = "batch"


class FakeFargate:
    def __init__(self) -> None:
        for service in ("ecs", "ec2", "logs"):
            get_backend(service).reset()  # type: ignore[no-untyped-call]
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/18")["Subnet"]["SubnetId"]
        self.security_group = ec2.create_security_group(GroupName="batch", Description="b", VpcId=vpc)["GroupId"]
        boto3.client("ecs", region_name=REGION).create_cluster(clusterName=CLUSTER)
        self.logs = boto3.client("logs", region_name=REGION)
        self._versions: dict[str, int] = {}  # ECS's task version, per task, for the events

    def emit(self, arn: str, queue_url: str, version: int | None = None) -> dict[str, Any]:
        """Send the `ECS Task State Change` event of this task's current state to an SQS queue, as the
        EventBridge rule of docs/events/ delivers it; returns the event (tests resend it, reordered)."""
        task = self.task(arn)
        self._versions[arn] = version if version is not None else self._versions.get(arn, 0) + 1
        obs = Observation(
            arn=arn,
            last_status=task.last_status,
            started_by=task.started_by,
            containers=tuple(ContainerResult(c.name, getattr(c, "exitCode", None)) for c in task.containers),
            stop_code=task.stop_code if task.last_status == "STOPPED" else None,
            stopped_reason=task.stopped_reason if task.last_status == "STOPPED" else None,
            stopped_at=datetime.fromtimestamp(task.stopped_at, UTC) if task.last_status == "STOPPED" else None,
            version=self._versions[arn],
        )
        event = event_message(obs, f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}", REGION)
        self.send(event, queue_url)
        return event

    @staticmethod
    def send(event: dict[str, Any], queue_url: str) -> None:
        boto3.client("sqs", region_name=REGION).send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))

    def close(self) -> None:
        state_manager.unset_transition("ecs::task")

    @property
    def _backend(self) -> Any:
        return get_backend("ecs")[ACCOUNT][REGION]

    def tasks(self) -> list[Any]:
        return list(self._backend.tasks.get(CLUSTER, {}).values())

    def running(self) -> list[Any]:
        return [t for t in self.tasks() if t.last_status != "STOPPED"]

    def by_started_by(self, started_by: str) -> list[Any]:
        return [t for t in self.tasks() if t.started_by == started_by]

    def task(self, arn: str) -> Any:
        return next(t for t in self.tasks() if t.task_arn == arn)

    def finish(
        self,
        arn: str,
        exit_code: int | None = 0,
        stop_code: str = "EssentialContainerExited",
        reason: str = "Essential container in task exited",
    ) -> None:
        """Stop a task as Fargate would, with this exit code (None: the container never ran)."""
        task = self.task(arn)
        task.last_status = task.desired_status = "STOPPED"
        task.stopped_reason, task.stop_code = reason, stop_code
        task.stopped_at = datetime.now(UTC).timestamp()
        for container in task.containers:
            container.last_status = "STOPPED"
            if exit_code is None:
                if hasattr(container, "exitCode"):
                    del container.exitCode
            else:
                container.exitCode = exit_code

    def finish_index(self, started_by: str, exit_code: int | None = 0, **kw: Any) -> str:
        """Stop the running attempt of one task name; return its ARN."""
        task = next(t for t in self.by_started_by(started_by) if t.last_status != "STOPPED")
        self.finish(task.task_arn, exit_code, **kw)
        return str(task.task_arn)

    def write_logs(
        self,
        arn: str,
        lines: list[str],
        group: str = "/ecs/batch-jobs",
        prefix: str = "ecs",
        container: str = "main",
        start_ms: int | None = None,
    ) -> str:
        stream = f"{prefix}/{container}/{arn.rsplit('/', 1)[-1]}"
        if start_ms is None:  # CloudWatch refuses events older than 14 days
            start_ms = int((datetime.now(UTC).timestamp() - 60) * 1000)
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=group)
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [{"timestamp": start_ms + i * 1000, "message": line} for i, line in enumerate(lines)]
        for start in range(0, len(events), 1000):
            self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start : start + 1000])
        return stream
