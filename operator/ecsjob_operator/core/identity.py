"""Deterministic identities of a job's tasks, so that a retried call launches nothing twice, and the
reserved names (variables, tags) that carry them (docs/reference.md, "Task identity"). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ecsjob_operator.api.models import RESERVED_ENV_NAMES
from ecsjob_operator.core.ecs_limits import CLIENT_TOKEN_MAX, STARTED_BY_CHARS, STARTED_BY_MAX

DEFAULT_PREFIX = "heimdall-job"
MAX_INDEX = 999  # taskCount is at most 1000
_STARTED_BY_CHARS = re.compile(STARTED_BY_CHARS)
JOB_ID_LEN = 12

# Reserved names: the variables the operator sets on every container, and our tag namespace.
TASK_NAME_VAR, TASK_NUM_VAR, TASK_ATTEMPT_VAR = RESERVED_ENV_NAMES
RESERVED_ENV = RESERVED_ENV_NAMES
RESERVED_TAG_PREFIX = "ecsjob.io/"
TAG_NAMESPACE = f"{RESERVED_TAG_PREFIX}namespace"
TAG_NAME = f"{RESERVED_TAG_PREFIX}name"
TAG_UID = f"{RESERVED_TAG_PREFIX}uid"
TAG_INDEX = f"{RESERVED_TAG_PREFIX}index"
TAG_ATTEMPT = f"{RESERVED_TAG_PREFIX}attempt"
TASK_TAG_KEYS = (TAG_NAMESPACE, TAG_NAME, TAG_UID, TAG_INDEX, TAG_ATTEMPT)


class PrefixError(ValueError):
    """A configured task prefix that could produce an invalid startedBy."""


def job_id(uid: str) -> str:
    """The first 12 hex characters of the SHA-256 of the resource's uid."""
    return hashlib.sha256(uid.encode()).hexdigest()[:JOB_ID_LEN]


def check_prefix(prefix: str) -> str:
    """Reject at start-up a prefix whose longest task name would exceed ECS's startedBy limit."""
    longest = task_name(prefix, "0" * JOB_ID_LEN, MAX_INDEX)
    if not _STARTED_BY_CHARS.match(prefix):
        raise PrefixError(f"ECSJOB_TASK_PREFIX {prefix!r} may hold only letters, digits, '-', '_' and '/'")
    if len(longest) > STARTED_BY_MAX:
        limit = STARTED_BY_MAX - (len(longest) - len(prefix))
        raise PrefixError(
            f"ECSJOB_TASK_PREFIX {prefix!r} is {len(prefix)} characters; task names such as "
            f"{longest!r} would exceed ECS's {STARTED_BY_MAX}-character startedBy limit "
            f"(use at most {limit} characters)"
        )
    return prefix


def task_name(prefix: str, jid: str, index: int) -> str:
    """startedBy and TASK_NAME of every attempt of one index."""
    return f"{prefix}-{jid}-{index}"


def client_token(uid: str, index: int, attempt: int, try_: int = 0) -> str:
    """RunTask clientToken of try t of one attempt: 64 hex characters, unique per (uid, index, attempt, try).
    A call that got no answer is retried with the same token; one answered with `failures` (no task
    started) moves to the next try, so that AWS does not answer it from its idempotency cache."""
    name = f"{uid}/{index}/{attempt}" + (f"/{try_}" if try_ else "")
    return hashlib.sha256(name.encode()).hexdigest()[:CLIENT_TOKEN_MAX]


def task_tags(namespace: str, name: str, uid: str, index: int, attempt: int) -> dict[str, str]:
    """The reserved tags that every task of a job carries."""
    return dict(zip(TASK_TAG_KEYS, (namespace, name, uid, str(index), str(attempt)), strict=True))


@dataclass(frozen=True)
class Shard:
    """Which jobs one operator replica serves: those whose uid hashes to its index."""

    count: int = 1
    index: int = 0

    def serves(self, uid: str) -> bool:
        return self.count <= 1 or int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) % self.count == self.index

    @classmethod
    def from_pod_name(cls, pod: str, count: int, replicas_per_shard: int) -> tuple[Shard, int]:
        """A StatefulSet pod `name-K` serves shard K // replicas; its peering priority falls with K % replicas
        (the first replica of a shard is the active one, the others stand by)."""
        ordinal = int(pod.rsplit("-", 1)[-1])
        return cls(count, ordinal // replicas_per_shard), 100 - ordinal % replicas_per_shard


def task_env(task: str, index: int, attempt: int) -> dict[str, str]:
    """The variables set last on every container of every attempt (docs/reference.md, "Merge rules");
    TASK_ATTEMPT is 1-based, so a task can resume idempotently."""
    return {TASK_NAME_VAR: task, TASK_NUM_VAR: str(index), TASK_ATTEMPT_VAR: str(attempt)}
