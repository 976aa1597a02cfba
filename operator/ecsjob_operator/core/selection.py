"""Pure selection of EcsCommand / EcsCluster by criteria, and the job's layers (docs/reference.md,
"Selection").

Criteria select the active resources whose tags contain every criterion; among several, the
highest semantic version wins, then the oldest. No match makes the job Invalid with reason
NoMatchingContext, and the operator resolves it again when EcsCommands or EcsClusters change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from ecsjob_operator.api.models import (
    ClusterContext,
    CommandContext,
    EcsCluster,
    EcsCommand,
    EcsJobSpec,
    SelectionView,
)
from ecsjob_operator.core.errors import FieldError

T = TypeVar("T", EcsCommand, EcsCluster, SelectionView)
INLINE = "inline"


def version_key(version: str | None) -> tuple[tuple[int, int | str], ...]:
    """Semantic order: numeric parts compare as numbers, others as text (numbers sort first)."""
    parts = re.split(r"[.\-+]", (version or "").lstrip("v"))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


def pick(candidates: Sequence[T], criteria: Sequence[str], namespace: str | None = None) -> T | None:
    """The best active candidate carrying every criterion (and allowing the namespace)."""
    wanted = set(criteria)
    matches = [
        c for c in candidates if c.spec.status == "active" and wanted <= set(c.spec.tags) and _allowed(c, namespace)
    ]
    if not matches:
        return None
    oldest_first = sorted(matches, key=lambda c: (c.metadata.creationTimestamp or "", c.metadata.name))
    return max(oldest_first, key=lambda c: version_key(c.spec.version))  # max keeps the first of ties


def chosen(
    namespace: str, command_criteria: list[str] | None, cluster_criteria: list[str] | None,
    commands: Sequence[SelectionView], clusters: Sequence[SelectionView],
) -> tuple[list[SelectionView], list[SelectionView]]:  # fmt: skip
    """The EcsCommand and EcsCluster (at most one each) that `resolve_layers` will look at for a job,
    chosen from selection views: the operator reads only their full bodies. A cluster that matches
    but refuses the namespace is included, so that the refusal can be named."""
    command = pick([c for c in commands if c.metadata.namespace in (None, namespace)], command_criteria or [])
    picked = [command] if command_criteria is not None and command is not None else []
    if cluster_criteria is None:
        return picked, []
    criteria = [*cluster_criteria, *(command.spec.cluster_tags if picked and command else [])]
    cluster = pick(clusters, criteria, namespace) or pick(clusters, criteria, None)
    return picked, [cluster] if cluster is not None else []


def _allowed(candidate: EcsCommand | EcsCluster | SelectionView, namespace: str | None) -> bool:
    allowed = getattr(candidate.spec, "allowed_namespaces", [])
    return not allowed or namespace is None or namespace in allowed


@dataclass
class Layers:
    """The command and cluster contexts a job resolves to, with names and error paths."""

    command: CommandContext
    cluster: ClusterContext
    command_name: str
    cluster_name: str
    command_path: str
    cluster_path: str


def resolve_layers(
    spec: EcsJobSpec,
    namespace: str | None,
    commands: Sequence[EcsCommand],
    clusters: Sequence[EcsCluster],
) -> Layers | list[FieldError]:
    """Pick the command and cluster of a job: inline, or selected by criteria."""
    errors: list[FieldError] = []
    command, command_name, command_path, cluster_tags = None, INLINE, "spec.command", []
    if (spec.command is None) == (spec.command_criteria is None):
        errors.append(FieldError("spec.command", "give exactly one of command and commandCriteria"))
    elif spec.command is not None:
        command = spec.command
    else:
        found = pick([c for c in commands if c.metadata.namespace in (None, namespace)], spec.command_criteria or [])
        if found is None:
            errors.append(
                FieldError(
                    "spec.commandCriteria",
                    f"no active EcsCommand in namespace {namespace or 'default'} has tags {spec.command_criteria}",
                )
            )
        else:
            command, command_name = found.spec.context, found.metadata.name
            command_path, cluster_tags = f"EcsCommand {command_name}: spec.context", found.spec.cluster_tags
    cluster, cluster_name, cluster_path = None, INLINE, "spec.cluster"
    if (spec.cluster is None) == (spec.cluster_criteria is None):
        errors.append(FieldError("spec.cluster", "give exactly one of cluster and clusterCriteria"))
    elif spec.cluster is not None:
        cluster = spec.cluster
    else:
        criteria = [*(spec.cluster_criteria or []), *cluster_tags]
        found_cluster = pick(clusters, criteria, namespace)
        if found_cluster is None:
            refused = pick(clusters, criteria, None)
            reason = (
                f"EcsCluster {refused.metadata.name} matches but does not allow namespace {namespace}"
                if refused is not None
                else f"no active EcsCluster has tags {criteria}"
            )
            errors.append(FieldError("spec.clusterCriteria", reason))
        else:
            cluster, cluster_name = found_cluster.spec.context, found_cluster.metadata.name
            cluster_path = f"EcsCluster {cluster_name}: spec.context"
    if errors or command is None or cluster is None:
        return errors
    return Layers(command, cluster, command_name, cluster_name, command_path, cluster_path)


def template_source(layers: Layers) -> tuple[str, str] | FieldError:
    """Which of the four task definition sources the command names (exactly one is allowed)."""
    cmd = layers.command
    given = [
        (kind, value)
        for kind, value in (
            ("inline", "inline" if cmd.task_definition is not None else None),
            (
                "configMap",
                f"{cmd.task_definition_ref.config_map_name}/{cmd.task_definition_ref.key}"
                if cmd.task_definition_ref
                else None,
            ),
            ("arn", cmd.task_definition_arn),
            ("file", cmd.task_definition_file),
        )
        if value is not None
    ]
    if len(given) != 1:
        return FieldError(
            f"{layers.command_path}.taskDefinition",
            "give exactly one of taskDefinition, taskDefinitionRef, taskDefinitionArn and "
            f"taskDefinitionFile (found {len(given)})",
        )
    return given[0]
