"""DescribeTasks at the floor: one refresher per cluster and region for every job of the process.

Jobs poll on a grid aligned to their polling interval (core.lifecycle.next_poll_seconds), so the
jobs of one interval come due together: the first finds its tasks without an answer from this
slot of the grid and refreshes every tracked task of the cluster that has none, 100 ARNs per call
with several calls in flight; the others wait for that refresh and read its answers. N running tasks
cost about ceil(N/100) calls per interval. No lock is held during I/O; each answer is stamped when
it arrives, and an answer older than the asking job's interval is never used. A task stays tracked
until its job stops polling it (it stopped, or the job finished).

With task state events (`apply_event`, fed from SQS), an event's snapshot is an answer too: the
newest one per task is kept (SQS may duplicate and reorder), the jobs polling the task are woken,
and the resync interval replaces the polling interval as the age at which a task is described again.
Events carry no tags: a snapshot is used only for a task whose owner is known (from a DescribeTasks
answer's tags, or from this process's RunTask), so ownership is still checked before any StopTask.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from ecsjob_operator.api.models import MergedCluster
from ecsjob_operator.core.decide import Observation
from ecsjob_operator.core.ecs_limits import DESCRIBE_BATCH
from ecsjob_operator.core.task_events import is_newer
from ecsjob_operator.engine.backend import Backend

Key = tuple[str, str | None]
IN_FLIGHT = 4  # DescribeTasks calls of one refresh at once (ECS's read budget is shared with ListTasks)


EARLY_EVENTS = 10_000  # snapshots of tasks not tracked yet (an event before its RunTask answer), kept for a while
EARLY_SECONDS = 600.0


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
        self.resync: float | None = None  # events on: tasks are described again only after this long
        self.on_event: Callable[[set[str]], None] | None = None  # wakes the jobs (uids) an event concerns
        self.ours: Callable[[str], bool] = lambda started_by: True  # a startedBy this process's tasks may have
        self._where: dict[str, Key] = {}  # tracked task ARN -> its cluster
        self._owner: dict[str, str] = {}  # task ARN -> the uid ECS's tags (or our RunTask) say owns it
        self._early: dict[str, tuple[Observation, float]] = {}  # events of tasks not tracked yet
        self._clusters: dict[Key, _Cluster] = {}
        self._cond = threading.Condition()
        self._pool = ThreadPoolExecutor(IN_FLIGHT, "describe")

    def get(self, cluster: MergedCluster, arns: list[str], interval: float, owner: str) -> dict[str, Observation]:
        """Answers for these tasks at most `interval` old; refreshes the cluster (once) when they are not.
        `owner` is the asking job: a task stays tracked while any job polls it, whatever another writes."""
        key = (cluster.cluster_name, cluster.region)
        interval = self.resync or interval  # with events, snapshots are as fresh as the last event
        with self._cond:
            state = self._clusters.setdefault(key, _Cluster())
            for arn in arns:
                state.tracked.setdefault(arn, set()).add(owner)
                self._where[arn] = key
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
                old = state.entries.get(arn)
                if obs is not None and old is not None and old.obs is not None and is_newer(old.obs, obs):
                    obs = old.obs  # an event applied meanwhile is newer than this answer
                state.entries[arn] = _Entry(obs, fetched)
                if obs is not None and obs.uid is not None:
                    self._owner[arn] = obs.uid  # from the task's tags
            return {a: e.obs for a in arns if (e := state.entries.get(a)) and e.obs is not None}

    def track(self, cluster: MergedCluster, arns: Iterable[str], owner: str) -> None:
        """Tasks just launched: the next refresh includes them."""
        arns = list(arns)
        if not arns:  # most steps: no lock taken
            return
        key = (cluster.cluster_name, cluster.region)
        with self._cond:
            state = self._clusters.setdefault(key, _Cluster())
            for arn in arns:
                state.tracked.setdefault(arn, set()).add(owner)
                self._where[arn] = key
                early = self._early.pop(arn, None)
                if early is not None and arn in self._owner:
                    self._store(state, early[0], early[1])

    def launched(self, cluster: MergedCluster, arn: str, uid: str) -> None:
        """A task this process's RunTask started (or adopted after checking its tags) for job `uid`: its
        owner is known, so its events can be used; with events on, it counts as seen at launch."""
        key = (cluster.cluster_name, cluster.region)
        with self._cond:
            self._owner[arn] = uid
            state = self._clusters.setdefault(key, _Cluster())
            state.tracked.setdefault(arn, set()).add(uid)
            self._where[arn] = key
            early = self._early.pop(arn, None)
            if early is not None:
                self._store(state, early[0], early[1])
            elif self.resync and arn not in state.entries:
                state.entries[arn] = _Entry(Observation(arn, "PROVISIONING", uid=uid), self.clock())

    def apply_event(self, obs: Observation) -> str:
        """One task state event: "applied" (the newest snapshot of a tracked task; its jobs are woken),
        "stale" (older than what is known), "early" (the task is not tracked yet: kept for a while), or
        "foreign" (not a task of ours)."""
        with self._cond:
            key = self._where.get(obs.arn)
            if key is None:
                if obs.started_by is None or not self.ours(obs.started_by) or not self._early_ok(obs):
                    return "foreign"
                return "early"
            state = self._clusters[key]
            entry = state.entries.get(obs.arn)
            if not is_newer(obs, entry.obs if entry else None):
                return "stale"
            if obs.arn not in self._owner:  # no tags in events: describe it at the next poll instead
                state.entries.pop(obs.arn, None)
            else:
                self._store(state, obs, self.clock())
            owners = set(state.tracked.get(obs.arn, ()))
        if self.on_event is not None and owners:
            self.on_event(owners)
        return "applied"

    def _store(self, state: _Cluster, obs: Observation, at: float) -> None:
        owner = self._owner[obs.arn]
        state.entries[obs.arn] = _Entry(replace(obs, uid=owner), at)

    def _early_ok(self, obs: Observation) -> bool:
        """Keep an event of an untracked task of ours for a while (bounded): its RunTask answer may come later."""
        now = self.clock()
        if len(self._early) >= EARLY_EVENTS:
            for arn in [a for a, (_, at) in self._early.items() if now - at > EARLY_SECONDS]:
                del self._early[arn]
            if len(self._early) >= EARLY_EVENTS:
                return False
        old = self._early.get(obs.arn)
        if old is None or is_newer(obs, old[0]):
            self._early[obs.arn] = (obs, now)
        return True

    def untrack(self, cluster: MergedCluster, arns: Iterable[str], owner: str) -> None:
        """Tasks this job no longer polls (stopped, its job finished, or not its own); forgotten once no
        job polls them, so that one job can never hide another's task."""
        arns = list(arns)
        if not arns:  # most steps: no lock taken
            return
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
                    self._where.pop(arn, None)
                    self._owner.pop(arn, None)

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
