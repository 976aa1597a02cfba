"""DescribeTasks shared by every job of a cluster and region, 100 ARNs per call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ecsjob_operator.api.models import MergedCluster
from ecsjob_operator.core.decide import Observation
from ecsjob_operator.core.ecs_limits import DESCRIBE_BATCH
from ecsjob_operator.engine.backend import Backend


@dataclass
class _Entry:
    obs: Observation | None
    fetched: float


@dataclass
class DescribeCache:
    """Coalesces DescribeTasks across all jobs sharing a cluster and region.

    The first job whose tasks are stale refreshes every task that any job asked about recently,
    100 ARNs per call; the others read the fresh answers. Polling N tasks costs about N/100 calls
    per interval instead of one call per job.
    """

    backend: Backend
    clock: Callable[[], float] = time.monotonic
    freshness: float = 0.5  # fraction of the polling interval an answer stays fresh
    calls: int = 0
    _entries: dict[tuple[str, str | None], dict[str, _Entry]] = field(default_factory=dict)
    _asked: dict[tuple[str, str | None], dict[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, cluster: MergedCluster, arns: list[str], interval: float) -> dict[str, Observation]:
        key = (cluster.cluster_name, cluster.region)
        max_age = interval * self.freshness
        with self._lock:
            now = self.clock()
            entries = self._entries.setdefault(key, {})
            asked = self._asked.setdefault(key, {})
            for arn in arns:
                asked[arn] = now
            if any(a not in entries or now - entries[a].fetched > max_age for a in arns):
                self._refresh(cluster, entries, asked, now, max_age)
            return {a: e.obs for a in arns if (e := entries.get(a)) and e.obs is not None}

    def track(self, cluster: MergedCluster, arns: list[str]) -> None:
        """Announce tasks just launched, so that the next refresh includes them."""
        with self._lock:
            asked = self._asked.setdefault((cluster.cluster_name, cluster.region), {})
            now = self.clock()
            for arn in arns:
                asked[arn] = now

    def _refresh(
        self, cluster: MergedCluster, entries: dict[str, _Entry], asked: dict[str, float], now: float, max_age: float
    ) -> None:
        for arn in [a for a, t in asked.items() if now - t > 4 * max_age]:  # nobody polls it any more
            asked.pop(arn)
            entries.pop(arn, None)
        wanted = sorted(a for a in asked if a not in entries or now - entries[a].fetched > max_age / 2)
        for start in range(0, len(wanted), DESCRIBE_BATCH):
            batch = wanted[start : start + DESCRIBE_BATCH]
            self.calls += 1
            found = self.backend.describe(cluster, batch)
            for arn in batch:
                entries[arn] = _Entry(found.get(arn), now)
