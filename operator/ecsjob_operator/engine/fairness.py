"""Fair share of RunTask between namespaces (docs/reference.md, "Security boundaries").

ECS throttles RunTask per account (a token bucket, burst 100, 40 per second). One namespace's
thousand-task jobs must not make another namespace wait for its first launch: the gate hands out
tokens at ECS's rate, round-robin between the namespaces that are waiting, first come first served
within a namespace.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from ecsjob_operator.core.ecs_limits import RUN_TASK_BURST, RUN_TASK_RATE


class FairGate:
    def __init__(
        self, burst: float = RUN_TASK_BURST, rate: float = RUN_TASK_RATE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst, self._rate, self._clock = burst, rate, clock
        self._tokens, self._at = burst, clock()
        self._cond = threading.Condition()
        self._waiting: dict[str, deque[object]] = {}  # namespace -> its tickets, oldest first
        self._turns: deque[str] = deque()  # namespaces with waiters, whose turn comes first

    def acquire(self, namespace: str) -> None:
        """Block until this namespace's turn comes and a token is there; then take it."""
        ticket = object()
        with self._cond:
            queue = self._waiting.setdefault(namespace, deque())
            if not queue:
                self._turns.append(namespace)
            queue.append(ticket)
            while True:
                self._refill()
                if self._turns[0] == namespace and queue[0] is ticket and self._tokens >= 1:
                    self._tokens -= 1
                    queue.popleft()
                    self._turns.popleft()
                    if queue:
                        self._turns.append(namespace)  # its next launch waits for the others' turns
                    else:
                        del self._waiting[namespace]
                    self._cond.notify_all()
                    return
                self._cond.wait(max(0.001, (1 - self._tokens) / self._rate) if self._tokens < 1 else 0.05)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
