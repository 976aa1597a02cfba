"""Task state events at moto's SQS: the Fargate player emits `ECS Task State Change` events shaped
like AWS's documented example; the consumer feeds them to the engine's refresher. Jobs complete
from events without DescribeTasks, duplicates and reordering change nothing, dropped events are
caught by the resync, and messages not deleted (a crash) come back."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from ecsjob_operator.aws.ecs import EcsBackend
from ecsjob_operator.aws.events import EventsConsumer
from ecsjob_operator.cli.commands import main
from ecsjob_operator.core.decide import ContainerResult, Observation
from ecsjob_operator.core.task_events import event_message, parse_event
from ecsjob_operator.engine.engine import Engine
from support.cfn import cloudformation
from support.fargate import REGION, FakeFargate
from support.jobs import Clock, Runner, ecsjob, job_spec
from support.moto_server import MotoServer
from support.operator_env import wait_for

RESYNC = 300.0


@pytest.fixture
def queue(fargate: FakeFargate) -> Iterator[str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=f"ecs-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def events_engine(backend: EcsBackend, clock: Clock) -> Engine:
    engine = Engine(backend, "heimdall-job", clock=clock)
    engine.describer.resync = RESYNC
    return engine


def consumer(engine: Engine, url: str) -> EventsConsumer:
    return EventsConsumer([url], engine.describer.apply_event, REGION, wait_seconds=0)


def drain(events: EventsConsumer, url: str) -> None:
    while events.poll_once(url):
        pass


def test_a_job_completes_from_events_without_describe_tasks(
    events_engine: Engine, clock: Clock, fargate: FakeFargate, queue: str
) -> None:
    woken: list[set[str]] = []
    events_engine.describer.on_event = woken.append
    events = consumer(events_engine, queue)
    run = Runner(events_engine, clock, job_spec(fargate, taskCount=3, pollingInterval="5s"))
    run.step()
    for task in run.status.tasks or []:
        assert task.arn is not None
        fargate.emit(task.arn, queue)  # RUNNING
    drain(events, queue)
    run.step(5)
    assert run.status.phase == "Running" and run.status.active == 3
    for i in range(3):
        fargate.emit(fargate.finish_index(run.task_name(i), 0), queue)
    drain(events, queue)
    run.step(5)
    assert run.status.phase == "Succeeded"
    assert events_engine.describer.calls == 0  # seen from events alone (before any resync)
    assert woken and all(uids == {"uid-0001"} for uids in woken)  # the job is made due at once
    assert events.counts["applied"] == 6 and events.counts["unparseable"] == 0


def test_duplicated_and_reordered_events_give_the_same_result(
    events_engine: Engine, clock: Clock, fargate: FakeFargate, queue: str
) -> None:
    events = consumer(events_engine, queue)
    run = Runner(events_engine, clock, job_spec(fargate, maxFailCount=2))
    run.step()
    arn = (run.status.tasks or [])[0].arn
    assert arn is not None
    running = fargate.emit(arn, queue)
    drain(events, queue)
    fargate.finish(arn, 0)
    stopped = fargate.emit(arn, queue)
    # the STOPPED event twice, then the older RUNNING one late: nothing goes back
    for event in (stopped, running, stopped, running):
        fargate.send(event, queue)
    drain(events, queue)
    run.step()
    assert run.status.phase == "Succeeded" and run.status.retries == 0 and run.status.failed_arns == []
    assert events.counts["applied"] == 2 and events.counts["stale"] == 4
    assert events_engine.describer.calls == 0


def test_with_a_fifth_of_the_events_dropped_every_job_ends_through_the_resync(
    events_engine: Engine, clock: Clock, fargate: FakeFargate, queue: str
) -> None:
    events = consumer(events_engine, queue)
    runs = [Runner(events_engine, clock, job_spec(fargate, taskCount=5), uid=f"uid-drop-{i}") for i in range(4)]
    for run in runs:
        run.step()
    sent = dropped = 0
    for run in runs:
        for i in range(5):
            arn = fargate.finish_index(run.task_name(i), 0 if i != 2 else 3)  # index 2 fails once
            sent += 1
            if sent % 5:
                fargate.emit(arn, queue)
            else:
                dropped += 1
    drain(events, queue)
    for run in runs:
        run.step(5)
    assert events_engine.describer.calls == 0
    assert any(run.status.phase == "Running" for run in runs)  # a dropped event: not seen yet
    clock.advance(RESYNC)  # the resync describes the tasks without an event in its window
    for _ in range(3):
        for run in runs:
            run.step(1)
        for task in fargate.running():  # relaunched attempts succeed (and their events are emitted)
            fargate.emit(fargate.finish_index(task.started_by, 0), queue)
        drain(events, queue)
    for run in runs:
        run.step(1)
    assert [run.status.phase for run in runs] == ["Succeeded"] * 4
    assert all(run.status.retries == 1 for run in runs)  # index 2's failure counted once, nothing else
    assert 0 < events_engine.describer.calls <= 2 and dropped == 4


def test_messages_not_deleted_by_a_crashed_consumer_come_back(
    events_engine: Engine, clock: Clock, fargate: FakeFargate, queue: str
) -> None:
    run = Runner(events_engine, clock, job_spec(fargate))
    run.step()
    arn = fargate.finish_index(run.task_name(0), 0)
    fargate.emit(arn, queue)
    sqs = boto3.client("sqs", region_name=REGION)
    taken = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=1, WaitTimeSeconds=0)
    assert len(taken["Messages"]) == 1  # received, then the consumer dies before applying and deleting
    restarted = consumer(events_engine, queue)
    assert restarted.poll_once(queue) == 0  # invisible while the first receiver may still work on it
    back = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=queue, WaitTimeSeconds=2, VisibilityTimeout=30
    )
    assert len(back["Messages"]) == 1  # after the visibility timeout it comes back
    sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=back["Messages"][0]["ReceiptHandle"], VisibilityTimeout=0
    )
    drain(restarted, queue)
    run.step()
    assert run.status.phase == "Succeeded" and events_engine.describer.calls == 0
    assert (
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )


def test_unreadable_and_foreign_messages_are_deleted_and_counted(
    events_engine: Engine, fargate: FakeFargate, queue: str
) -> None:
    events = consumer(events_engine, queue)
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=queue, MessageBody="not json")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"detail-type": "EC2 Instance State-change"}))
    foreign = {"detail-type": "ECS Task State Change", "source": "aws.ecs",
               "detail": {"taskArn": "arn:aws:ecs:us-west-2:1:task/other/x", "lastStatus": "STOPPED",
                          "startedBy": "ecs-svc/123", "version": 3}}  # fmt: skip
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(foreign))
    drain(events, queue)
    assert events.counts["unparseable"] == 2 and events.counts["foreign"] == 1 and events.counts["received"] == 3
    left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_the_shipped_rule_routes_a_task_event_into_the_queue(fargate: FakeFargate, queue: str) -> None:
    """docs/events/: the rule's pattern, with an SQS target, in moto's EventBridge."""
    cluster_arn = f"arn:aws:ecs:{REGION}:123456789012:cluster/batch"
    pattern = json.loads(json.dumps(cloudformation()["Resources"]["TaskStateRule"]["Properties"]["EventPattern"]))
    pattern["detail"]["clusterArn"] = [cluster_arn]
    bridge, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
    name = f"ecsjob-task-state-{uuid.uuid4().hex[:6]}"
    bridge.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bridge.put_targets(Rule=name, Targets=[{"Id": "operator", "Arn": queue_arn}])
    ours = event_message(Observation("arn:aws:ecs:us-west-2:123456789012:task/batch/abc", "STOPPED",
                                     started_by="heimdall-job-0123456789ab-0",
                                     containers=(ContainerResult("main", 0),), stop_code="EssentialContainerExited",
                                     version=3), cluster_arn, REGION)  # fmt: skip
    elsewhere = {**ours["detail"], "clusterArn": f"arn:aws:ecs:{REGION}:123456789012:cluster/other"}
    for detail in (ours["detail"], elsewhere):
        entry = {"Source": "aws.ecs", "DetailType": "ECS Task State Change", "Detail": json.dumps(detail)}
        assert bridge.put_events(Entries=[entry])["FailedEntryCount"] == 0
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert len(got) == 1  # the other cluster's event is not routed
    event = parse_event(got[0]["Body"])
    assert event.observation.arn.endswith("/abc") and event.observation.last_status == "STOPPED"
    assert event.observation.containers[0].exit_code == 0 and event.observation.version == 3
    bridge.remove_targets(Rule=name, Ids=["operator"])
    bridge.delete_rule(Name=name)


def test_ecsjob_run_follows_task_events(
    fargate: FakeFargate, queue: str, moto_server: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ecsjob run --events-queue`: the job ends from the events, before its 30 s poll, without DescribeTasks."""
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(ecsjob("events", fargate, taskCount=2, pollingInterval="30s")))
    describes = len(moto_server.bodies("DescribeTasks"))

    def player() -> None:  # Fargate: the tasks end once both run, and ECS sends their events
        found = wait_for(lambda: len(fargate.running()) == 2 and fargate.running(), what="two tasks")
        for task in found:
            fargate.finish(task.task_arn, 0)
            fargate.emit(task.task_arn, queue)

    thread = threading.Thread(target=player, daemon=True)
    thread.start()
    code = main(["run", "-f", str(path), "--backend", "aws", "--events-queue", queue, "--resync-interval", "1h"])
    thread.join(5)
    assert code == 0, capsys.readouterr().err
    assert len(moto_server.bodies("DescribeTasks")) == describes


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "local", "--events-queue", "http://q"], "--events-queue needs --backend aws"),
        (["--backend", "aws", "--events-queue", "http://q", "--resync-interval", "5s"], "--resync-interval"),
    ],
)
def test_events_options_are_checked(
    fargate: FakeFargate, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(ecsjob("events", fargate)))
    assert main(["run", "-f", str(path), *extra]) == 2
    assert message in capsys.readouterr().err
