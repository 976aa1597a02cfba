"""Deterministic identities of a job's tasks (API.md 2), so that a retried call launches nothing twice.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re

DEFAULT_PREFIX = "heimdall-job"
# ECS RunTask `startedBy`: up to 36 letters, numbers, hyphens, forward slashes and underscores.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html#ECS-RunTask-request-startedBy
STARTED_BY_MAX = 36
# RunTask `clientToken`: up to 64 ASCII characters (same page, clientToken).
CLIENT_TOKEN_MAX = 64
MAX_INDEX = 999  # taskCount is at most 1000
_STARTED_BY_CHARS = re.compile(r"^[A-Za-z0-9_/-]+$")
JOB_ID_LEN = 12

TAG_NAMESPACE = "ecsjob.io/namespace"
TAG_NAME = "ecsjob.io/name"
TAG_UID = "ecsjob.io/uid"
TAG_INDEX = "ecsjob.io/index"
TAG_ATTEMPT = "ecsjob.io/attempt"


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


def client_token(uid: str, index: int, attempt: int) -> str:
    """RunTask clientToken of one attempt: 64 hex characters, unique per (uid, index, attempt)."""
    return hashlib.sha256(f"{uid}/{index}/{attempt}".encode()).hexdigest()[:CLIENT_TOKEN_MAX]


def task_tags(namespace: str, name: str, uid: str, index: int, attempt: int) -> dict[str, str]:
    """The reserved tags that every task of a job carries."""
    return {
        TAG_NAMESPACE: namespace,
        TAG_NAME: name,
        TAG_UID: uid,
        TAG_INDEX: str(index),
        TAG_ATTEMPT: str(attempt),
    }
