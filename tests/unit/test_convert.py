"""`ecsjob convert` on the seed's Heimdall examples: manifests that validate, with the seed's meaning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ecsjob_operator.api.models import EcsCluster, EcsCommand, EcsJob
from ecsjob_operator.cli.convert import convert, k8s_name
from support.schemas import validator

DATA = Path(__file__).parents[1] / "data" / "heimdall"
MODELS = {"EcsJob": EcsJob, "EcsCommand": EcsCommand, "EcsCluster": EcsCluster}


def seed(read_templates: bool = True) -> Any:
    docs = [yaml.safe_load((DATA / n).read_text()) for n in ("commands.yaml", "clusters.yaml", "job.json")]

    def read(path: str) -> str | None:
        return (DATA / path).read_text() if read_templates and (DATA / path).exists() else None

    return convert(docs, "data", read)


def test_seed_examples_convert_to_valid_manifests() -> None:
    result = seed()
    assert [m["kind"] for m in result.manifests] == ["EcsCommand", "EcsCluster", "EcsJob"]
    assert result.warnings == []
    for manifest in result.manifests:
        MODELS[manifest["kind"]].model_validate(manifest)
        jsonschema.validate(manifest, validator(manifest["kind"]))


def test_seed_meaning_is_kept() -> None:
    command, cluster, job = seed().manifests
    ctx = command["spec"]["context"]
    assert ctx["taskDefinition"] == json.loads((DATA / "task-definition.json").read_text())
    assert (ctx["taskCount"], ctx["pollingInterval"], ctx["timeout"], ctx["maxFailCount"]) == (2, "30s", "1h", 3)
    assert ctx["containerOverrides"] == [
        {"name": "main", "environment": [{"name": "CUSTOM_VAR", "value": "custom_value"}]}
    ]
    assert command["spec"]["tags"] == ["type:ecs"] and command["spec"]["clusterTags"] == ["type:fargate"]
    assert command["metadata"] == {"name": "ecs-batch-job-0.0.1", "namespace": "data"}
    assert cluster["spec"]["context"]["vpcConfig"] == {
        "subnets": ["subnet-12345678", "subnet-87654321"],
        "securityGroups": ["sg-12345678"],
    }
    assert cluster["spec"]["context"]["maxTaskCount"] == 10 and "namespace" not in cluster["metadata"]
    assert job["spec"]["commandCriteria"] == ["type:ecs"] and job["spec"]["context"]["taskCount"] == 2


def test_unreadable_template_is_kept_as_a_file_with_a_warning() -> None:
    result = seed(read_templates=False)
    assert result.manifests[0]["spec"]["context"]["taskDefinitionFile"] == "task-definition.json"
    assert "cannot read task-definition.json" in result.warnings[0]


def test_names_and_tags() -> None:
    assert k8s_name("My Job_v2!") == "my-job-v2"
    result = convert(
        [{"name": "x", "command_criteria": ["a"], "context": {"tags": {"cost_center": "7"}}}], "ns", lambda _: None
    )
    assert result.manifests[0]["spec"]["context"]["tags"] == {"cost_center": "7"}
    assert result.manifests[0]["metadata"]["name"] == "x"
    assert convert([{"name": "other"}], "ns", lambda _: None).warnings


def test_a_whole_heimdall_server_configuration() -> None:
    doc = yaml.safe_load((DATA / "server.yaml").read_text())
    result = convert([doc], "data", lambda path: (DATA / path).read_text())
    assert [(m["kind"], m["metadata"]["name"]) for m in result.manifests] == [
        ("EcsCommand", "ecs-batch-job-0.0.1"),
        ("EcsCluster", "fargate-spot"),
    ]
    assert result.warnings == [
        "ignored Heimdall server settings: auth, database, plugin_directory, pool",
        "skipped ping-0.0.1: plugin ping is not ecs",
        "ecs-batch-job-0.0.1: unknown field context.logGroupRetention dropped (not a field of EcsCommand)",
        "skipped localhost-0.0.1: not an ECS cluster (its context has no cluster_name)",
    ]
    for manifest in result.manifests:  # the new fields convert too, and validate
        MODELS[manifest["kind"]].model_validate(manifest)
        jsonschema.validate(manifest, validator(manifest["kind"]))
    command = result.manifests[0]["spec"]["context"]
    assert command["failurePolicy"]["rules"][0] == {
        "action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
    }  # fmt: skip
    assert command["successPolicy"] == {"succeededCount": 3} and command["onIndexFailure"] == "Continue"
    assert command["attemptTimeout"] == "10m" and command["failurePolicy"]["maxIgnoredRelaunches"] == 3
    assert result.manifests[1]["spec"]["context"]["spotFallback"] == {"afterInterruptions": 2}
