"""The task state events consumer: SQS queues fed by an EventBridge rule on `ECS Task State Change`
(docs/events/). A few receivers per queue long-poll (20 s, batches of 10), feed each event into the
DescribeTasks refresher (engine/describe.py), which keeps the newest snapshot per task and wakes
its jobs, and delete the messages once applied. A message that cannot be parsed is logged once and
deleted; events of tasks that are not ours are deleted and counted. Messages received but not
deleted (a crash) come back after the queue's visibility timeout.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from ecsjob_operator.core.decide import Observation
from ecsjob_operator.core.task_events import UnparseableEventError, parse_event

log = logging.getLogger(__name__)
WAIT_SECONDS = 20  # SQS long polling, its maximum
BATCH = 10  # messages per ReceiveMessage, its maximum
RECEIVERS = 2  # long-polling threads per queue
_QUEUE_REGION = re.compile(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com")

Apply = Callable[[Observation], str]  # DescribeCache.apply_event: applied, stale, early or foreign


def queue_region(url: str, default: str | None) -> str | None:
    """The region in an SQS queue URL (https://sqs.us-east-1.amazonaws.com/123/q), else the default."""
    found = _QUEUE_REGION.match(url)
    return found.group(1) if found else default


class EventsConsumer:
    """Long-polls SQS queues and applies what they deliver; counters for the metrics."""

    def __init__(
        self,
        urls: list[str],
        apply: Apply,
        default_region: str | None = None,
        receivers: int = RECEIVERS,
        wait_seconds: int = WAIT_SECONDS,
    ) -> None:
        self.urls, self.apply, self.receivers, self.wait_seconds = urls, apply, receivers, wait_seconds
        self.default_region = default_region
        self.counts: Counter[str] = Counter()  # received, applied, stale, early, foreign, unparseable
        self.oldest_applied_seconds = 0.0  # age of the oldest message applied (since it was sent)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=wait_seconds + 10)
        self._clients = {url: boto3.client("sqs", region_name=queue_region(url, default_region), config=config)
                         for url in urls}  # fmt: skip

    def start(self) -> None:
        for url in self.urls:
            for i in range(self.receivers):
                thread = threading.Thread(target=self._receive_loop, args=(url,), name=f"events-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()

    def counters(self) -> dict[str, float]:
        with self._lock:
            return {**self.counts, "oldest_applied_seconds": self.oldest_applied_seconds}

    def poll_once(self, url: str) -> int:
        """One ReceiveMessage on one queue, applied and deleted; the number of messages."""
        client = self._clients[url]
        answer = client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=BATCH,
            WaitTimeSeconds=self.wait_seconds,
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        messages = answer.get("Messages", [])
        done = []
        for message in messages:
            self._handle(message)
            done.append({"Id": message["MessageId"], "ReceiptHandle": message["ReceiptHandle"]})
        if done:
            client.delete_message_batch(QueueUrl=url, Entries=done)
        return len(messages)

    def _receive_loop(self, url: str) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.poll_once(url)
                failures = 0
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                failures += 1
                delay = min(60.0, 2.0**failures)
                log.warning("receiving from %s failed (%s); again in %.0fs", url, exc, delay)
                self._stop.wait(delay)

    def _handle(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.counts["received"] += 1
        try:
            event = parse_event(message.get("Body", ""))
        except UnparseableEventError as exc:
            log.warning("deleting an unreadable message %s: %s", message.get("MessageId"), exc)
            with self._lock:
                self.counts["unparseable"] += 1
            return
        outcome = self.apply(event.observation)
        sent = message.get("Attributes", {}).get("SentTimestamp")
        with self._lock:
            self.counts[outcome] += 1
            if outcome == "applied" and sent and str(sent).isdigit():
                age = max(0.0, time.time() - int(sent) / 1000)
                self.oldest_applied_seconds = max(self.oldest_applied_seconds, age)
