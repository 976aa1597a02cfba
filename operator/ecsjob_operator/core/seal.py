"""The operator's seal on what it prepared: an HMAC over the job's uid, its merged context and its
task definition ARN, kept in `status.seal` (docs/reference.md, "Security").

A tenant allowed to write `ecsjobs/status` can edit `status.context` (roles, network, cluster) and
`status.taskDefinitionArn`. The operator launches and stops only from a status whose seal matches;
a status without a valid seal (edited, written by an older version, or sealed under another key)
is checked against a context derived again from the spec and the admin's EcsClusters. Pure:
the key is a parameter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from ecsjob_operator.api.models import EcsJobStatus, MergedContext

SEAL_KEY_BYTES = 32


def new_key() -> bytes:
    """A random key for one process (a restart then checks each running job once against its spec)."""
    return secrets.token_bytes(SEAL_KEY_BYTES)


def seal_of(key: bytes, uid: str, status: EcsJobStatus) -> str | None:
    """The seal of a prepared status; None before it has a context."""
    if status.context is None:
        return None
    payload = json.dumps(
        {"uid": uid, "context": status.context.wire(), "taskDefinitionArn": status.task_definition_arn},
        sort_keys=True,
        separators=(",", ":"),
    )
    return "v1:" + hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def is_sealed(key: bytes, uid: str, status: EcsJobStatus) -> bool:
    """Whether the status carries this key's seal of its own context and task definition."""
    expected = seal_of(key, uid, status)
    return expected is not None and status.seal is not None and hmac.compare_digest(expected, status.seal)


def launch_fields_differ(trusted: MergedContext, trusted_arn: str, status: EcsJobStatus) -> list[str]:
    """The status fields a launch reads that differ from a context derived again from the spec and
    the EcsClusters: the cluster (roles, network), the tags, the containers, the task definition."""
    ctx = status.context
    if ctx is None:
        return ["status.context"]
    differ = [
        f"status.context.{name}"
        for name, ours, theirs in (
            ("cluster", trusted.cluster, ctx.cluster),
            ("tags", trusted.tags, ctx.tags),
            ("containers", trusted.containers, ctx.containers),
        )
        if ours != theirs
    ]
    if trusted_arn != status.task_definition_arn:
        differ.append("status.taskDefinitionArn")
    return differ
