"""DescribeTasks at the floor: one refresher per cluster and region for every job of the process.

Jobs poll on a grid aligned to their polling interval (core.lifecycle.next_poll_seconds), so the
jobs of one interval come due together: the first finds its tasks without an answer from this
slot of the grid and refreshes every tracked task of the cluster that has none, 100 ARNs per call
with several calls in flight; the others wait for that refresh and read its answers. N running tasks
cost about ceil(N/100) calls per interval. No lock is held during I/O; each answer is stamped when
it arrives, and an answer older than the asking job's interval is never used. A task stays tracked
until its job stops polling it (it stopped, or the job finished).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ecsjob_operator.api.models import MergedCluster
from ecsjob_operator.core.decide import Observation
from ecsjob_operator.core.ecs_limits import DESCRIBE_BATCH
from ecsjob_operator.engine.backend import Backend

Key = tuple[str, str | None]
IN_FLIGHT = 4  # DescribeTasks calls of one refresh at once (ECS's read budget is shared with ListTasks)


@dataclass
class _Entry:
    obs: Observation | None
    fetched: float  # when the answer arrived


@dataclass
class _Cluster:
    tracked: dict[str, set[str]] = field(default_factory=dict)  # ARN -> the jobs (uids) polling it
    entries: dict[str, _Entry] = field(default_factory=dict)
    refreshing: bool = False


class DescribeCache:
    def __init__(self, backend: Backend, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend, self.clock = backend, clock
        self.calls = 0
        self._clusters: dict[Key, _Cluster] = {}
        self._cond = threading.Condition()
        self._pool = ThreadPoolExecutor(IN_FLIGHT, "describe")

    def get(self, cluster: MergedCluster, arns: list[str], interval: float, owner: str) -> dict[str, Observation]:
        """Answers for these tasks at most `interval` old; refreshes the cluster (once) when they are not.
        `owner` is the asking job: a task stays tracked while any job polls it, whatever another writes."""
        key = (cluster.cluster_name, cluster.region)
        with self._cond:
            state = self._clusters.setdefault(key, _Cluster())
            for arn in arns:
                state.tracked.setdefault(arn, set()).add(owner)
            while True:
                now = self.clock()
                slot = now - now % interval  # the start of this interval on the grid the jobs poll on
                if not any(self._stale(state, a, slot) for a in arns):
                    return {a: e.obs for a in arns if (e := state.entries.get(a)) and e.obs is not None}
                if not state.refreshing:
                    break
                self._cond.wait(1.0)  # another worker is refreshing this cluster: read its answers
            # every tracked task without an answer from this slot, and always the asking job's own
            wanted = sorted({a for a in state.tracked if self._stale(state, a, slot)} | set(arns))
            state.refreshing = True
        try:
            answers = self._describe(cluster, wanted)
        finally:
            with self._cond:
                state.refreshing = False
                self._cond.notify_all()
        with self._cond:
            for arn, (obs, fetched) in answers.items():
                state.entries[arn] = _Entry(obs, fetched)
            return {a: e.obs for a in arns if (e := state.entries.get(a)) and e.obs is not None}

    def track(self, cluster: MergedCluster, arns: Iterable[str], owner: str) -> None:
        """Tasks just launched: the next refresh includes them."""
        with self._cond:
            state = self._clusters.setdefault((cluster.cluster_name, cluster.region), _Cluster())
            for arn in arns:
                state.tracked.setdefault(arn, set()).add(owner)

    def untrack(self, cluster: MergedCluster, arns: Iterable[str], owner: str) -> None:
        """Tasks this job no longer polls (stopped, its job finished, or not its own); forgotten once no
        job polls them, so that one job can never hide another's task."""
        with self._cond:
            state = self._clusters.get((cluster.cluster_name, cluster.region))
            if state is None:
                return
            for arn in arns:
                owners = state.tracked.get(arn, set())
                owners.discard(owner)
                if not owners:
                    state.tracked.pop(arn, None)
                    state.entries.pop(arn, None)

    @staticmethod
    def _stale(state: _Cluster, arn: str, slot: float) -> bool:
        """No answer since this slot of the grid began: an answer is never older than the interval."""
        entry = state.entries.get(arn)
        return entry is None or entry.fetched < slot

    def _describe(self, cluster: MergedCluster, arns: list[str]) -> dict[str, tuple[Observation | None, float]]:
        batches = [arns[i : i + DESCRIBE_BATCH] for i in range(0, len(arns), DESCRIBE_BATCH)]

        def one(batch: list[str]) -> dict[str, tuple[Observation | None, float]]:
            found = self.backend.describe(cluster, batch)
            arrived = self.clock()
            return {arn: (found.get(arn), arrived) for arn in batch}

        with self._cond:
            self.calls += len(batches)
        answers: dict[str, tuple[Observation | None, float]] = {}
        for result in self._pool.map(one, batches):  # the first error is raised to the refreshing job
            answers.update(result)
        return answers
