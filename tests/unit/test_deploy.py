"""Deployment artefacts: the IAM policy covers every AWS call; the kustomize base builds."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "operator" / "ecsjob_operator"
IAM_PREFIX = {"ecs": "ecs", "logs": "logs"}


def aws_operations() -> set[str]:
    """Every `self._call(service, region, "operation", ...)` in the AWS side, as IAM actions."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "_call":
                service, operation = node.args[0], node.args[2]
                assert isinstance(service, ast.Constant) and isinstance(operation, ast.Constant)
                action = "".join(part.capitalize() for part in operation.value.split("_"))
                found.add(f"{IAM_PREFIX[service.value]}:{action}")
    return found


def policy_actions(*names: str) -> set[str]:
    """The actions of the operator's policy and the CLI users' logs policy (or of the named files)."""
    found = set()
    for name in names or ("iam-policy.json", "iam-policy-logs.json"):
        policy = json.loads((ROOT / "docs" / name).read_text())
        found |= {
            a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
    return found


def test_every_aws_call_is_in_the_iam_policy() -> None:
    calls = aws_operations()
    assert {"ecs:RunTask", "ecs:DescribeTasks", "ecs:ListTasks", "ecs:StopTask", "logs:GetLogEvents"} <= calls
    assert calls <= policy_actions(), f"missing from docs/iam-policy*.json: {sorted(calls - policy_actions())}"


def test_the_operator_policy_scopes_run_task_and_leaves_logs_to_cli_users() -> None:
    policy = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
    run = next(s for s in policy["Statement"] if s["Action"] == ["ecs:RunTask"])
    assert run["Resource"].endswith(":task-definition/ecsjob-*:*")  # the default --family-prefix
    assert all(":cluster/*" not in c for c in run["Condition"]["ArnEquals"]["ecs:cluster"])  # named clusters
    assert "logs:GetLogEvents" not in policy_actions("iam-policy.json")
    assert policy_actions("iam-policy-logs.json") == {"logs:GetLogEvents"}


def test_iam_policy_needs_tagging_and_pass_role_only_for_ecs() -> None:
    actions = policy_actions()
    assert "ecs:TagResource" in actions and "iam:PassRole" in actions  # tags on RunTask/Register; roles
    policy = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
    pass_role = next(s for s in policy["Statement"] if s["Action"] == ["iam:PassRole"])
    assert pass_role["Resource"] != "*"
    assert pass_role["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"
    assert not any(a.endswith(":*") or a == "*" for a in actions)


def kustomize(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")


@needs_kubectl
def test_kustomize_base_builds_with_a_hardened_deployment() -> None:
    docs = kustomize(ROOT / "manifests")
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("CustomResourceDefinition") == 3 and "Deployment" in kinds and "ClusterRole" in kinds
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]


@needs_kubectl
def test_namespaced_overlay_builds_without_cluster_wide_job_rights() -> None:
    docs = kustomize(ROOT / "manifests" / "overlays" / "namespaced")
    roles = [d for d in docs if d["kind"] == "Role"]
    assert roles and all(d["metadata"]["namespace"] == "batch" for d in roles)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace" in args and "batch" in args and "--all-namespaces" not in args
    cluster_role = next(d for d in docs if d["kind"] == "ClusterRole")
    assert not any("ecsjobs" in r["resources"] for r in cluster_role["rules"])


@needs_kubectl
def test_only_the_health_and_metrics_ports_are_open() -> None:
    [policy] = [d for d in kustomize(ROOT / "manifests") if d["kind"] == "NetworkPolicy"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [8080, 9090]


@needs_kubectl
def test_sharded_overlay_runs_two_peering_replicas_per_shard() -> None:
    docs = kustomize(ROOT / "manifests" / "overlays" / "sharded")
    assert not [d for d in docs if d["kind"] == "Deployment"]
    [statefulset] = [d for d in docs if d["kind"] == "StatefulSet"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    shards = int(args[args.index("--shards") + 1])
    per_shard = int(args[args.index("--replicas-per-shard") + 1])
    assert statefulset["spec"]["replicas"] == shards * per_shard and "--standalone" not in args
    assert "--shard-from-pod-name" in args
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    peerings = {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterKopfPeering"}
    assert peerings == {f"ecsjob-shard-{i}" for i in range(shards)}
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    assert any("clusterkopfpeerings" in r["resources"] for r in role["rules"])
