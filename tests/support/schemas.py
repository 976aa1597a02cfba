"""The generated CRD schemas as jsonschema validators, applied the way the API server applies them."""

from __future__ import annotations

from typing import Any

import yaml

from ecsjob_operator.api.crdgen import PRESERVE, render_all


def crd_schemas() -> dict[str, dict[str, Any]]:
    docs = [yaml.safe_load(t) for n, t in render_all().items() if n != "kustomization.yaml"]
    return {d["spec"]["names"]["kind"]: d["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for d in docs}


def as_jsonschema(node: Any) -> Any:
    """OpenAPI v3 as the API server applies it: nullable allows null, unknown fields are refused."""
    if isinstance(node, list):
        return [as_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_jsonschema(v) for k, v in node.items() if k not in ("nullable", PRESERVE)}
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    elif "properties" in node and not node.get(PRESERVE):
        out["additionalProperties"] = False
    return out


def validator(kind: str) -> dict[str, Any]:
    """The jsonschema of one kind (metadata left to the API server)."""
    schema = as_jsonschema(crd_schemas()[kind])
    schema["properties"]["metadata"] = {"type": "object"}
    return schema
