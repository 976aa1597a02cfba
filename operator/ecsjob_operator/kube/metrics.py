"""Prometheus metrics of the operator: jobs by phase, task launches/failures/retries, AWS calls
and errors by operation, reconcile duration. Served on ECSJOB_METRICS_PORT (`--metrics-port`).

Neither kopf nor boto3 here: the handlers feed results in, and AWS counters are read through a
callable that the composition root (cli.py) wires to the backend.
"""

from __future__ import annotations

import threading
import typing
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ecsjob_operator.api.models import Phase
from ecsjob_operator.core.decide import Event

AwsCounts = Callable[[], tuple[Mapping[str, int], Mapping[str, int]]]
EventCounts = Callable[[], Mapping[str, float]]
EVENT_OUTCOMES = ("received", "applied", "stale", "early", "foreign", "unparseable")
PHASES: tuple[str, ...] = typing.get_args(Phase)


class _Derived(Collector):
    """Gauges and counters read at scrape time from the operator's own state."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        jobs = GaugeMetricFamily("ecsjob_jobs", "EcsJobs known to this operator, by phase", labels=["phase"])
        tally = self.metrics.phase_tally()
        for phase in PHASES:
            jobs.add_metric([phase], tally.get(phase, 0))
        yield jobs
        calls, errors = self.metrics.aws_counts()
        by_call = CounterMetricFamily("ecsjob_aws_calls", "AWS API calls, by operation", labels=["operation"])
        by_error = CounterMetricFamily("ecsjob_aws_errors", "AWS API errors, by operation", labels=["operation"])
        for operation, count in sorted(calls.items()):
            by_call.add_metric([operation], count)
        for operation, count in sorted(errors.items()):
            by_error.add_metric([operation], count)
        yield by_call
        yield by_error
        yield CounterMetricFamily(
            "ecsjob_describe_calls",
            "DescribeTasks calls (with events on: the resync's)",
            value=self.metrics.describe_calls(),
        )
        if self.metrics.event_counts is not None:
            counts = self.metrics.event_counts()
            by_outcome = CounterMetricFamily(
                "ecsjob_task_events", "ECS task state events from SQS, by outcome", labels=["outcome"]
            )
            for outcome in EVENT_OUTCOMES:
                by_outcome.add_metric([outcome], counts.get(outcome, 0))
            yield by_outcome
            yield GaugeMetricFamily(
                "ecsjob_task_event_oldest_applied_seconds",
                "Age of the oldest event message applied (from SentTimestamp)",
                value=counts.get("oldest_applied_seconds", 0.0),
            )


class Metrics:
    def __init__(
        self,
        aws_counts: AwsCounts | None = None,
        registry: CollectorRegistry | None = None,
        event_counts: EventCounts | None = None,
        describe_calls: Callable[[], int] | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.aws_counts: AwsCounts = aws_counts or (lambda: ({}, {}))
        self.event_counts = event_counts
        self.describe_calls: Callable[[], int] = describe_calls or (lambda: 0)
        self._phases: dict[str, str] = {}
        self._lock = threading.Lock()
        self.reconcile_seconds = Histogram(
            "ecsjob_reconcile_duration_seconds",
            "Time of one reconcile of one job (AWS calls included)",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.launches = Counter("ecsjob_task_launches", "Tasks launched (RunTask) or adopted", registry=self.registry)
        self.failures = Counter("ecsjob_task_failures", "Task attempts that failed", registry=self.registry)
        self.retries = Counter("ecsjob_task_retries", "Failed attempts relaunched", registry=self.registry)
        self.events = Counter(
            "ecsjob_events", "Kubernetes Events posted, by reason", ["reason"], registry=self.registry
        )
        self.registry.register(_Derived(self))

    def observe(self, uid: str, phase: str | None, events: list[Event], seconds: float) -> None:
        """Account for one reconcile of one job."""
        self.reconcile_seconds.observe(seconds)
        with self._lock:
            if phase:
                self._phases[uid] = phase
        for event in events:
            self.events.labels(event.reason).inc()
            if event.reason in ("TaskLaunched", "TaskAdopted"):
                self.launches.inc()
            elif event.reason == "TaskFailed":
                self.failures.inc()
            elif event.reason == "Retrying":
                self.retries.inc()

    def forget(self, uid: str) -> None:
        with self._lock:
            self._phases.pop(uid, None)

    def phase_tally(self) -> Tally[str]:
        with self._lock:
            return Tally(self._phases.values())

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)
