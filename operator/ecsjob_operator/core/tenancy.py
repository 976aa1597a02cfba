"""What a namespace may take from its own spec (docs/reference.md, "Security boundaries"). Pure.

The operator serves many teams: roles, networks, task-definition families, secrets and EFS file
systems come only from what an admin granted in an EcsCluster. `ecsjob run` serves one user with
their own credentials and skips these rules (SINGLE_USER); every rule that protects data (admin
tags, ownership of tasks, redaction) holds for both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ecsjob_operator.core.ecs_limits import FAMILY_MAX, READ_ONLY_KEYS
from ecsjob_operator.core.errors import FieldError
from ecsjob_operator.core.identity import PrefixError

INLINE_CLUSTER_NOT_ALLOWED = "InlineClusterNotAllowed"
TASK_DEFINITION_NOT_ALLOWED = "TaskDefinitionNotAllowed"
FIELD_NOT_ALLOWED = "FieldNotAllowed"
CLUSTER_MISCONFIGURED = "ClusterMisconfigured"
DEFAULT_FAMILY_PREFIX = "ecsjob-"
NAMESPACE_PLACEHOLDER = "{namespace}"


@dataclass(frozen=True)
class Policy:
    """The tenancy rules in force for one engine."""

    inline_cluster: bool = True  # spec.cluster accepted
    roles_from_cluster_only: bool = False  # the template's roles are dropped; executionRoleArn required
    family_prefix: str | None = None  # families are namespaced under this prefix (None: the template's)
    allowlist: bool = False  # only allowlisted task-definition fields, gated by the cluster
    launches_per_dispatch: int | None = None  # RunTask calls per job per step (fair share)

    @property
    def multi_tenant(self) -> bool:
        return self.family_prefix is not None


SINGLE_USER = Policy()


def operator_policy(family_prefix: str = DEFAULT_FAMILY_PREFIX, allow_inline_cluster: bool = False) -> Policy:
    """The operator's rules: every boundary on; inline clusters only when the install says so."""
    return Policy(
        inline_cluster=allow_inline_cluster,
        roles_from_cluster_only=True,
        family_prefix=family_prefix,
        allowlist=True,
        launches_per_dispatch=10,
    )


# --- families -------------------------------------------------------------------------------


def check_family_prefix(prefix: str) -> str:
    """A family prefix: ECS family characters only, and no "_" (it separates the owner), at start-up."""
    if not prefix or not all(c.isascii() and (c.isalnum() or c == "-") for c in prefix) or len(prefix) > 64:
        raise PrefixError(f"--family-prefix {prefix!r} may hold only letters, digits and '-' (at most 64)")
    return prefix


def namespaced_family(prefix: str, namespace: str, family: str) -> str:
    """`{prefix}{namespace}_{family}`: a namespace name cannot hold "_", so the owner is unambiguous.
    A family the namespace already owns is kept; a name over ECS's limit is cut with a short hash."""
    own = f"{prefix}{namespace}_"
    name = family if family.startswith(own) else f"{own}{family}"
    if len(name) <= FAMILY_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: FAMILY_MAX - 11]}-{digest}"


def family_owner(prefix: str, family: str) -> str | None:
    """The namespace owning a family under the prefix (what lies between it and the first "_")."""
    if not family.startswith(prefix):
        return None
    owner, underscore, rest = family[len(prefix) :].partition("_")
    return owner if underscore and owner and rest else None


def arn_family(arn: str) -> str:
    """The family a taskDefinitionArn names: `arn:...:task-definition/FAMILY:REV`, `FAMILY:REV` or `FAMILY`."""
    name = arn.rsplit("task-definition/", 1)[-1] if "task-definition/" in arn else arn.rsplit("/", 1)[-1]
    family, _, revision = name.rpartition(":")
    return family if family and revision.isdigit() else name


def check_task_definition_arn(
    arn: str, namespace: str, prefix: str, allowed: Sequence[str], where: str
) -> FieldError | None:
    """A taskDefinitionArn may name a family the namespace owns, or one the cluster allows by glob."""
    family = arn_family(arn)
    if family_owner(prefix, family) == namespace:
        return None
    if any(fnmatchcase(family, glob.replace(NAMESPACE_PLACEHOLDER, namespace)) for glob in allowed):
        return None
    return FieldError(
        where,
        f"family {family!r} belongs neither to namespace {namespace} (families {prefix}{namespace}_*) nor to "
        "the EcsCluster's allowedTaskDefinitions",
        TASK_DEFINITION_NOT_ALLOWED,
    )


# --- the field allowlist --------------------------------------------------------------------

# What a batch container on Fargate needs. Anything else is refused with its path.
TASK_FIELDS = frozenset(
    {
        "family", "containerDefinitions", "cpu", "memory", "ephemeralStorage", "runtimePlatform", "networkMode",
        "requiresCompatibilities", "volumes", "tags", "taskRoleArn", "executionRoleArn", *READ_ONLY_KEYS,
    }
)  # fmt: skip
CONTAINER_FIELDS = frozenset(
    {
        "name", "image", "essential", "command", "entryPoint", "environment", "cpu", "memory",
        "memoryReservation", "logConfiguration", "workingDirectory", "user", "portMappings", "ulimits",
        "stopTimeout", "startTimeout", "dependsOn", "healthCheck", "readonlyRootFilesystem",
        "resourceRequirements", "secrets", "repositoryCredentials", "linuxParameters", "mountPoints",
        "dockerLabels", "versionConsistency", "restartPolicy", "interactive", "pseudoTerminal",
    }
)  # fmt: skip
LINUX_PARAMETER_FIELDS = frozenset({"initProcessEnabled"})  # capabilities, devices, tmpfs...: refused
VOLUME_FIELDS = frozenset({"name", "efsVolumeConfiguration"})  # host, docker, FSx: refused


@dataclass(frozen=True)
class Grants:
    """What the cluster's admin granted: secret ARNs and EFS file systems (globs with {namespace})."""

    namespace: str
    secrets: Sequence[str] = ()
    efs_file_systems: Sequence[str] = ()

    def secret(self, arn: Any) -> bool:
        return isinstance(arn, str) and any(
            fnmatchcase(arn, glob.replace(NAMESPACE_PLACEHOLDER, self.namespace)) for glob in self.secrets
        )


def check_allowlist(td: dict[str, Any], path: str, grants: Grants) -> list[FieldError]:
    """Every field of a tenant's task definition that is not allowlisted or not granted."""
    errors = _unknown(td, TASK_FIELDS, path)
    for i, volume in enumerate(td.get("volumes") or []):
        where = f"{path}.volumes[{i}]"
        if not isinstance(volume, dict):
            continue
        errors += _unknown(volume, VOLUME_FIELDS, where, "host and Docker volumes are refused")
        efs = volume.get("efsVolumeConfiguration")
        if isinstance(efs, dict) and efs.get("fileSystemId") not in grants.efs_file_systems:
            errors.append(_refused(f"{where}.efsVolumeConfiguration.fileSystemId", "is not in allowedEfsFileSystems"))
    for i, container in enumerate(td.get("containerDefinitions") or []):
        if isinstance(container, dict):
            errors += _container(container, f"{path}.containerDefinitions[{i}]", grants)
    return errors


def _container(container: dict[str, Any], where: str, grants: Grants) -> list[FieldError]:
    errors = _unknown(container, CONTAINER_FIELDS, where)
    for j, secret in enumerate(container.get("secrets") or []):
        arn = secret.get("valueFrom") if isinstance(secret, dict) else None
        if not grants.secret(arn):
            errors.append(_refused(f"{where}.secrets[{j}].valueFrom", "is not in the EcsCluster's allowedSecrets"))
    credentials = container.get("repositoryCredentials")
    if isinstance(credentials, dict) and not grants.secret(credentials.get("credentialsParameter")):
        at = f"{where}.repositoryCredentials.credentialsParameter"
        errors.append(_refused(at, "is not in the EcsCluster's allowedSecrets"))
    logs = container.get("logConfiguration")
    if isinstance(logs, dict):
        errors += _unknown(logs, frozenset({"logDriver", "options"}), f"{where}.logConfiguration")
    linux = container.get("linuxParameters")
    if isinstance(linux, dict):
        errors += _unknown(linux, LINUX_PARAMETER_FIELDS, f"{where}.linuxParameters", "Linux capabilities are refused")
    return errors


def _unknown(doc: dict[str, Any], allowed: frozenset[str], where: str, why: str = "") -> list[FieldError]:
    reason = why or "is not an allowed task-definition field for jobs in a shared cluster"
    return [_refused(f"{where}.{key}", reason) for key in sorted(doc) if key not in allowed]


def _refused(path: str, message: str) -> FieldError:
    return FieldError(path, message, FIELD_NOT_ALLOWED)
