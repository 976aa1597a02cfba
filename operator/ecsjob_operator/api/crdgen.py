"""Generate the CRDs in crds/ from the pydantic models (`ecsjob crds`).

The OpenAPI v3 schemas are structural: $refs inlined, Optional as `nullable`, no
`additionalProperties: false` (the API server prunes and, with strict field validation,
rejects unknown fields), free-form only inside `taskDefinition`.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from ecsjob_operator.api.models import GROUP, VERSION, EcsClusterSpec, EcsCommandSpec, EcsJobSpec, EcsJobStatus

PRESERVE = "x-kubernetes-preserve-unknown-fields"


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema made structural for a CRD."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})
    cleaned: dict[str, Any] = _clean(schema, defs)
    return cleaned


def _clean(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_clean(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _clean({**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(node["anyOf"])
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        merged = {**_clean(options[0], defs), **_clean(rest, defs)} if len(options) == 1 else _clean(rest, defs)
        if nullable:
            merged["nullable"] = True
        return merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title",) or (key == "default" and value is None):
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "additionalProperties" and value is True:
            out[PRESERVE] = True
            continue
        if key == "properties":
            out[key] = {k: _clean(v, defs) for k, v in value.items()}
            continue
        out[key] = _clean(value, defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out[PRESERVE] = True
    if "default" in out and isinstance(out["default"], list) and not out["default"]:
        out.pop("default")
    return out


def crd(
    kind: str,
    plural: str,
    short: str,
    scope: str,
    spec: type[BaseModel],
    status: type[BaseModel] | None = None,
    columns: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    properties: dict[str, Any] = {"spec": structural(spec)}
    if status is not None:
        properties["status"] = structural(status)
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    **properties,
                },
            }
        },
    }
    if status is not None:
        version["subresources"] = {"status": {}}
    if columns:
        version["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["ecsjob"],
            },
            "versions": [version],
        },
    }


JOB_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Succeeded", "type": "string", "jsonPath": ".status.progress"},
    {"name": "Retries", "type": "integer", "jsonPath": ".status.retries"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "JobId", "type": "string", "jsonPath": ".status.jobId", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
]
SELECTABLE_COLUMNS: list[dict[str, Any]] = [
    {"name": "Status", "type": "string", "jsonPath": ".spec.status"},
    {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def all_crds() -> dict[str, dict[str, Any]]:
    return {
        "ecsjobs.yaml": crd("EcsJob", "ecsjobs", "ej", "Namespaced", EcsJobSpec, EcsJobStatus, JOB_COLUMNS),
        "ecscommands.yaml": crd(
            "EcsCommand", "ecscommands", "ecmd", "Namespaced", EcsCommandSpec, None, SELECTABLE_COLUMNS
        ),
        "ecsclusters.yaml": crd(
            "EcsCluster", "ecsclusters", "ecl", "Cluster", EcsClusterSpec, None, SELECTABLE_COLUMNS
        ),
    }


def render_all() -> dict[str, str]:
    """File name -> YAML text, exactly what crds/ holds."""
    header = "# Generated by `ecsjob crds` from operator/ecsjob_operator/api/models.py; do not edit.\n"
    files = {name: header + yaml.safe_dump(doc, sort_keys=False, width=120) for name, doc in all_crds().items()}
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": list(files)}
    files["kustomization.yaml"] = header + yaml.safe_dump(kustomization, sort_keys=False)
    return files
