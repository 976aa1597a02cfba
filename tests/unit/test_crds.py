"""crds/ is generated from the models; every sample validates against both."""

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ecsjob_operator.api.crdgen import PRESERVE, render_all
from ecsjob_operator.api.models import EcsCluster, EcsCommand, EcsJob
from support.schemas import as_jsonschema, crd_schemas

ROOT = Path(__file__).parents[2]
SAMPLES = sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
MODELS = {"EcsJob": EcsJob, "EcsCommand": EcsCommand, "EcsCluster": EcsCluster}


def test_crds_have_not_drifted_from_the_models() -> None:
    generated = render_all()
    on_disk = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert on_disk == generated, "crds/ is stale: run `make crds`"


def walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node] + [n for v in node.values() for n in walk(v)]
    if isinstance(node, list):
        return [n for v in node for n in walk(v)]
    return []


@pytest.mark.parametrize("kind", ["EcsJob", "EcsCommand", "EcsCluster"])
def test_schemas_are_structural(kind: str) -> None:
    schema = crd_schemas()[kind]
    nodes = walk(schema)
    assert not any("$ref" in n or "anyOf" in n or "allOf" in n or "oneOf" in n for n in nodes)
    assert not any(n.get("additionalProperties") is False for n in nodes)
    # free-form only inside taskDefinition (and metadata, which the API server owns)
    free = [n for n in nodes if n.get(PRESERVE)]
    allowed = [schema["properties"]["metadata"]]
    spec = schema["properties"]["spec"]
    for n in walk(spec) + walk(schema["properties"].get("status", {})):
        if "taskDefinition" in n.get("properties", {}):
            allowed.append(n["properties"]["taskDefinition"])
    assert all(any(f is a for a in allowed) for f in free)
    assert all("type" in n for n in walk(spec) if "properties" in n or "items" in n)


def test_job_printer_columns_and_names() -> None:
    doc = yaml.safe_load(render_all()["ecsjobs.yaml"])
    columns = [c["name"] for c in doc["spec"]["versions"][0]["additionalPrinterColumns"] if "priority" not in c]
    assert columns == ["Phase", "Succeeded", "Retries", "Age"]
    assert doc["spec"]["names"]["shortNames"] == ["ej"]
    assert doc["spec"]["versions"][0]["subresources"] == {"status": {}}
    cluster = yaml.safe_load(render_all()["ecsclusters.yaml"])
    assert cluster["spec"]["scope"] == "Cluster" and cluster["spec"]["names"]["shortNames"] == ["ecl"]


def sample_docs() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p.name}[{i}]", d) for p in SAMPLES for i, d in enumerate(yaml.safe_load_all(p.read_text())) if d]


@pytest.mark.parametrize(("where", "doc"), sample_docs(), ids=[w for w, _ in sample_docs()])
def test_samples_validate_against_models_and_crd_schema(where: str, doc: dict[str, Any]) -> None:
    MODELS[doc["kind"]].model_validate(doc)
    schema = as_jsonschema(crd_schemas()[doc["kind"]])
    schema["properties"]["metadata"] = {"type": "object"}
    jsonschema.validate(doc, schema)


def test_crd_schema_refuses_what_the_models_refuse() -> None:
    schema = as_jsonschema(crd_schemas()["EcsJob"])
    schema["properties"]["metadata"] = {"type": "object"}
    bad = {
        "apiVersion": "ecsjob.io/v1alpha1",
        "kind": "EcsJob",
        "metadata": {},
        "spec": {"context": {"timeout": "1 hour", "executionRoleArn": "x"}},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_there_are_samples_of_every_kind() -> None:
    kinds = {d["kind"] for _, d in sample_docs()}
    assert kinds == {"EcsJob", "EcsCommand", "EcsCluster"}
    assert len(SAMPLES) >= 3
