"""The admission-time rules, evaluated with a CEL library as the API server would evaluate them.

Every `x-kubernetes-validations` rule of the generated CRDs runs on accepted and rejected samples,
and the operator's own validation must agree with it on each sample; the shipped
ValidatingAdmissionPolicy's expressions run on admin and non-admin requests.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from ecsjob_operator.api.crdgen import render_all
from ecsjob_operator.api.models import EcsJobStatus
from ecsjob_operator.engine.engine import Catalog, Engine
from ecsjob_operator.local.backend import LocalBackend

ROOT = Path(__file__).parents[2]
ENV = celpy.Environment()
TEMPLATE = {
    "family": "f",
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [{"name": "main", "image": "x", "command": ["true"]}],
}
VALID = {"command": {"taskDefinition": TEMPLATE}, "cluster": {"clusterName": "local"}}


def evaluate(rule: str, **variables: Any) -> bool:
    """A rule's verdict; an evaluation error rejects, as in Kubernetes."""
    program = ENV.program(ENV.compile(rule))
    try:
        return bool(program.evaluate({k: celpy.json_to_cel(v) for k, v in variables.items()}))
    except celpy.CELEvalError:
        return False


def schema(kind: str) -> dict[str, Any]:
    docs = {
        d["spec"]["names"]["kind"]: d
        for n, t in render_all().items()
        if n != "kustomization.yaml"
        for d in [yaml.safe_load(t)]
    }
    return dict(docs[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def violations(node: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Every rule that rejects the value, walking the schema as the API server does (absent fields skip)."""
    found = [
        f"{path}: {rule['message']}"
        for rule in node.get("x-kubernetes-validations", [])
        if value is not None and not evaluate(rule["rule"], self=value)
    ]
    if isinstance(value, dict):
        for key, child in (node.get("properties") or {}).items():
            if key in value:
                found += violations(child, value[key], f"{path}.{key}")
    elif isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            found += violations(node["items"], item, f"{path}[{i}]")
    return found


def with_changes(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(VALID)
    for key, value in changes.items():
        target = spec
        parts = key.split("__")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if value is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = value
    return spec


REJECTED = [
    (with_changes(commandCriteria=["type:ecs"]), "give exactly one of command and commandCriteria"),
    (with_changes(command=None), "give exactly one of command and commandCriteria"),
    (with_changes(clusterCriteria=["type:fargate"]), "give exactly one of cluster and clusterCriteria"),
    (with_changes(context__timeout="721h"), "must be at most 720h"),
    (with_changes(context__pollingInterval="2h"), "must be between 1s and 1h"),
    (with_changes(command__pollingInterval="0s"), "must be between 1s and 1h"),
    (with_changes(context__containerOverrides=[{"name": "main", "environment": [{"name": "TASK_NUM", "value": "1"}]}]),
     "TASK_NAME, TASK_NUM, TASK_ATTEMPT are set by the operator"),
    (with_changes(command__containerOverrides=[{"name": "main", "environment": [{"name": "TASK_NAME", "value": "x"}]}]),
     "TASK_NAME, TASK_NUM, TASK_ATTEMPT are set by the operator"),
    (with_changes(context__containerOverrides=[{"name": "main", "environment": [{"name": "TASK_ATTEMPT", "value": "1"}]}]),
     "TASK_NAME, TASK_NUM, TASK_ATTEMPT are set by the operator"),
    (with_changes(context__attemptTimeout="0s"), "must be between 1s and 720h"),
    (with_changes(context__failurePolicy={"rules": [{"action": "Ignore"}]}),
     "a rule needs at least one of onExitCodes, onStopCodes and onReasons"),
    (with_changes(context__successPolicy={}), "give succeededIndexes, succeededCount or both"),
]  # fmt: skip
ACCEPTED = [
    VALID,
    with_changes(context__attemptTimeout="10m", context__onIndexFailure="Continue", context__maxFailedIndexes=2),
    with_changes(
        context__failurePolicy={
            "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}],
            "maxIgnoredRelaunches": 3,
        }
    ),
    with_changes(context__successPolicy={"succeededIndexes": "0,2-4"}, context__taskCount=5),
    with_changes(context__timeout="720h", context__pollingInterval="1h"),
    with_changes(context__pollingInterval="1s", command__timeout="2h15m30s"),
    with_changes(context__containerOverrides=[{"name": "main", "environment": [{"name": "TASK_X", "value": "1"}]}]),
]


def operator_verdict(spec: dict[str, Any], tmp_path: Path) -> str:
    """The operator's own validation of the same spec (on the local backend: no AWS)."""
    engine = Engine(LocalBackend(tmp_path), "heimdall-job")
    result = engine.prepare(engine.job_ref("j", "ns", "uid-cel"), spec, EcsJobStatus(), Catalog())
    return result.status.message or "" if result.status.phase == "Invalid" else ""


@pytest.mark.parametrize(("spec", "message"), REJECTED)
def test_rejected_at_admission_and_by_the_operator(spec: dict[str, Any], message: str, tmp_path: Path) -> None:
    assert any(message in v for v in violations(schema("EcsJob")["properties"]["spec"], spec, "spec"))
    assert operator_verdict(spec, tmp_path), "the operator accepted what admission rejects"


@pytest.mark.parametrize("spec", ACCEPTED)
def test_accepted_at_admission_and_by_the_operator(spec: dict[str, Any], tmp_path: Path) -> None:
    assert violations(schema("EcsJob")["properties"]["spec"], spec, "spec") == []
    assert operator_verdict(spec, tmp_path) == ""


def test_every_rule_in_the_crds_has_a_rejected_sample() -> None:
    """A rule added to a model must get a sample here: its message must be one a sample expects."""
    messages = {rule["message"] for kind in ("EcsJob", "EcsCommand", "EcsCluster") for rule in _rules(schema(kind))}
    expected = {message for _, message in REJECTED}
    untested = {m for m in messages if not any(e in m for e in expected)}
    assert messages and not untested, f"CEL rules without a rejected sample: {untested}"


def _rules(node: Any) -> list[dict[str, str]]:
    if isinstance(node, list):
        return [r for n in node for r in _rules(n)]
    if not isinstance(node, dict):
        return []
    return list(node.get("x-kubernetes-validations", [])) + [
        r for k, v in node.items() if k != "x-kubernetes-validations" for r in _rules(v)
    ]


POLICY = [d for d in yaml.safe_load_all((ROOT / "manifests" / "policies" / "inline-cluster.yaml").read_text())]


@pytest.mark.parametrize(
    ("spec", "groups", "allowed"),
    [
        ({"cluster": {"clusterName": "c"}}, ["system:authenticated", "team"], False),
        ({"cluster": {"clusterName": "c"}}, ["ecsjob-admins"], True),
        ({"clusterCriteria": ["type:fargate"]}, ["team"], True),
    ],
)
def test_the_admission_policy_keeps_inline_clusters_to_admins(
    spec: dict[str, Any], groups: list[str], allowed: bool
) -> None:
    policy = next(d for d in POLICY if d["kind"] == "ValidatingAdmissionPolicy")
    params = next(d for d in POLICY if d["kind"] == "ConfigMap")
    variables = {"object": {"spec": spec}, "request": {"userInfo": {"groups": groups}}, "params": params}
    verdicts = [evaluate(v["expression"], **variables) for v in policy["spec"]["validations"]]
    assert all(verdicts) is allowed
    if not allowed:
        message = ENV.program(ENV.compile(policy["spec"]["validations"][0]["messageExpression"]))
        text = str(message.evaluate({k: celpy.json_to_cel(v) for k, v in variables.items()}))
        assert "spec.cluster" in text and "ecsjob-admins" in text
