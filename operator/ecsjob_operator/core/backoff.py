"""Exponential backoff with jitter for transient AWS errors (docs/reference.md, "Lifecycle").

1 s doubling to a 5 min cap, one call per step. The jitter is derived from a key (the job's uid
and the step), not from a random source, so the core stays pure and a retry moment is
reproducible; different jobs still spread out.
"""

from __future__ import annotations

import hashlib

BASE_SECONDS = 1.0
CAP_SECONDS = 300.0


def backoff_seconds(failures: int, key: str) -> float:
    """The wait after the n-th consecutive failure (n >= 1): a random-looking point in [d/2, d]."""
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2.0 ** min(max(failures, 1) - 1, 20))
    spread = int(hashlib.sha256(f"{key}/{failures}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return ceiling / 2 + spread * ceiling / 2
