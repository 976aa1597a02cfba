"""`ecsjob convert`: Heimdall command/cluster YAML and job JSON -> EcsCommand/EcsCluster/EcsJob.

Pure: documents in, manifests (dicts) and warnings out; the CLI reads the files. Keys go from
snake_case to camelCase; `task_definition_template` becomes an inline `taskDefinition` when the
file can be read (so the result runs in a cluster), `taskDefinitionFile` otherwise (for
`ecsjob run`). `max_fail_count` keeps its documented meaning (retries per task). A whole Heimdall
server configuration is read too: its ECS commands and clusters are converted, the rest is named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from ecsjob_operator.api.models import API_VERSION, ClusterContext, CommandContext, JobContext

ReadTemplate = Callable[[str], str | None]


@dataclass
class Converted:
    manifests: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def k8s_name(name: str) -> str:
    """A DNS-1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253 characters."""
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.")
    return cleaned[:253] or "unnamed"


def camel(value: Any) -> Any:
    """snake_case keys to camelCase, recursively; user tag maps are kept as they are."""
    if isinstance(value, list):
        return [camel(v) for v in value]
    if isinstance(value, dict):
        return {to_camel(k) if "_" in k else k: v if k == "tags" else camel(v) for k, v in value.items()}
    return value


def kind_of(doc: dict[str, Any]) -> str | None:
    context = doc.get("context") or {}
    if "command_criteria" in doc or "cluster_criteria" in doc:
        return "EcsJob"
    if "cluster_name" in context:
        return "EcsCluster"
    if "task_definition_template" in context or "cluster_tags" in doc or doc.get("plugin") == "ecs":
        return "EcsCommand"
    return None


# A Heimdall server configuration (configs/local.yaml): settings, then `commands:` and `clusters:`.
SERVER_LISTS = ("commands", "clusters")


def convert(documents: list[Any], namespace: str, read_template: ReadTemplate) -> Converted:
    """Every Heimdall document (a list of commands/clusters, one job, or a whole server configuration)
    to a manifest; what is not ECS is named and skipped, unknown ECS fields are dropped with a warning."""
    out = Converted()
    items: list[tuple[dict[str, Any], str | None]] = []  # (entry, what the server file says it is)
    for doc in documents:
        if isinstance(doc, dict) and any(isinstance(doc.get(k), list) for k in SERVER_LISTS):
            settings = sorted(k for k in doc if k not in SERVER_LISTS)
            if settings:
                out.warnings.append(f"ignored Heimdall server settings: {', '.join(settings)}")
            for key in SERVER_LISTS:
                items += [(d, key) for d in doc.get(key) or [] if isinstance(d, dict)]
        else:
            items += [(d, None) for d in (doc if isinstance(doc, list) else [doc]) if isinstance(d, dict)]
    for item, listed in items:
        name = item.get("name", "?")
        kind = kind_of(item)
        if listed == "commands" and item.get("plugin") not in (None, "ecs"):
            kind = None
            out.warnings.append(f"skipped {name}: plugin {item.get('plugin')} is not ecs")
        elif listed == "clusters" and kind != "EcsCluster":
            kind = None
            out.warnings.append(f"skipped {name}: not an ECS cluster (its context has no cluster_name)")
        elif kind is None:
            out.warnings.append(f"skipped {name!r}: not an ECS command, cluster or job")
        if kind is not None:
            out.manifests.append(_manifest(kind, item, namespace, read_template, out.warnings))
    return out


def known_fields(kind: str, context: dict[str, Any], name: str, warnings: list[str]) -> dict[str, Any]:
    """The context without the fields our kinds do not have (Heimdall passes anything through; the CRD
    would refuse the whole object), each dropped one named."""
    models: dict[str, type[BaseModel]] = {
        "EcsJob": JobContext,
        "EcsCommand": CommandContext,
        "EcsCluster": ClusterContext,
    }
    model = models[kind]
    allowed = {f.alias or n for n, f in model.model_fields.items()}
    unknown = sorted(k for k in context if k not in allowed)
    for key in unknown:
        warnings.append(f"{name}: unknown field context.{key} dropped (not a field of {kind})")
    return {k: v for k, v in context.items() if k in allowed}


def _manifest(
    kind: str, item: dict[str, Any], namespace: str, read: ReadTemplate, warnings: list[str]
) -> dict[str, Any]:
    name = k8s_name(str(item.get("name", kind.lower())))
    metadata: dict[str, Any] = {"name": name}
    if kind != "EcsCluster":
        metadata["namespace"] = namespace
    if name != item.get("name"):
        metadata["annotations"] = {"ecsjob.io/heimdall-name": str(item.get("name"))}
    raw = item.get("context") or {}
    context = camel(raw) if isinstance(raw, dict) else {}
    if kind == "EcsCommand":
        context = _template(context, read, warnings, name)
    context = known_fields(kind, context, name, warnings)
    if kind == "EcsJob":
        spec: dict[str, Any] = {
            "version": item.get("version"),
            "commandCriteria": item.get("command_criteria"),
            "clusterCriteria": item.get("cluster_criteria"),
            "context": context or None,
            "suspend": item.get("suspend"),
            "ttlSecondsAfterFinished": item.get("ttl_seconds_after_finished"),
        }
        return {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": metadata,
            "spec": {k: v for k, v in spec.items() if v is not None},
        }
    spec = {
        "tags": item.get("tags") or [],
        "status": item.get("status", "active"),
        "version": item.get("version"),
        "description": item.get("description"),
        "context": context,
    }
    if kind == "EcsCommand":
        spec["clusterTags"] = item.get("cluster_tags") or []
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "spec": {k: v for k, v in spec.items() if v is not None},
    }


def _template(context: dict[str, Any], read: ReadTemplate, warnings: list[str], name: str) -> dict[str, Any]:
    path = context.pop("taskDefinitionTemplate", None)
    if path is None:
        return context
    text = read(path)
    if text is None:
        warnings.append(f"{name}: cannot read {path}; kept as taskDefinitionFile (works with `ecsjob run` only)")
        return {"taskDefinitionFile": path, **context}
    return {"taskDefinition": json.loads(text), **context}
