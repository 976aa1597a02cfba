"""The fair gate: RunTask tokens round-robin between namespaces, at a bounded rate."""

from __future__ import annotations

import threading
import time

from ecsjob_operator.engine.fairness import FairGate


def test_a_namespace_waits_at_most_one_turn_behind_a_busy_one() -> None:
    gate = FairGate(burst=1, rate=200)
    order: list[str] = []
    lock = threading.Lock()

    def launcher(namespace: str, count: int) -> None:
        for _ in range(count):
            gate.acquire(namespace)
            with lock:
                order.append(namespace)

    busy = [threading.Thread(target=launcher, args=("team-a", 20)) for _ in range(4)]
    for thread in busy:
        thread.start()
    while len(order) < 5:  # team-a is well under way
        time.sleep(0.001)
    with lock:
        before = len(order)
    other = threading.Thread(target=launcher, args=("team-b", 3))
    other.start()
    for thread in [*busy, other]:
        thread.join(10)
    first_b = order.index("team-b")
    assert first_b - before <= 5, order  # a grant or two in flight while team-b enqueues, then its turn
    assert order.count("team-a") == 80 and order.count("team-b") == 3
    later_b = [i for i, ns in enumerate(order) if ns == "team-b"]
    assert all(
        b - a <= 6 for a, b in zip(later_b, later_b[1:], strict=False)
    )  # turns alternate (thread start-up aside)


def test_the_gate_keeps_the_rate() -> None:
    gate = FairGate(burst=2, rate=100)
    started = time.monotonic()
    for _ in range(12):
        gate.acquire("ns")
    assert time.monotonic() - started >= (12 - 2) / 100 * 0.9
