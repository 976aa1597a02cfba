"""Least privilege: every request the operator made to the API is allowed by its ClusterRole.

Runs a job whose task definition comes from a ConfigMap (so that every kind of call happens:
watches, status patches, Events, the ConfigMap read, the deletion after its TTL and the finalizer), then checks the
emulator's request log, filtered on the operator's user agents, against manifests/base/rbac.yaml.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from emulator import EmulatorThread

from support.fargate import FakeFargate
from support.jobs import cluster_ctx
from support.operator_env import Kube, OperatorProcess, wait_for

ROOT = Path(__file__).parents[2]
OPERATOR_AGENTS = ("kopf/", "ecsjob-operator/")


def allowed() -> set[tuple[str, str, str]]:
    docs = list(yaml.safe_load_all((ROOT / "manifests" / "base" / "rbac.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    return {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }


def requested(emulator: EmulatorThread) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every request the operator made, discovery left out (open to all), and
    kopf's peering left out: only replicas that peer make those (test_failover's), and the sharded
    overlay, not the base, grants them."""
    return {
        (r.group, r.resource, r.verb)
        for r in emulator.requests()
        if r.resource and r.user_agent.startswith(OPERATOR_AGENTS) and r.group != "kopf.dev"
    }


def test_operator_requests_are_all_allowed_by_its_role(
    emulator: EmulatorThread | None, kube: Kube, operator: OperatorProcess, fargate: FakeFargate
) -> None:
    if emulator is None:
        pytest.skip("needs the emulator's request log")
    name = f"rbac-{uuid.uuid4().hex[:6]}"
    template = (ROOT / "manifests" / "samples" / "task-definition.json").read_text()
    kube.core.create_namespaced_config_map("default", {"metadata": {"name": name}, "data": {"td.json": template}})
    # every kind of read: the EcsCommand and EcsCluster are selected (then read whole), the template is a ConfigMap
    ref = {"taskDefinitionRef": {"configMapName": name, "key": "td.json"}, "pollingInterval": "1s"}
    api = "ecsjob.io/v1alpha1"
    command = {"tags": [name], "context": ref}
    kube.create("ecscommands", {"apiVersion": api, "kind": "EcsCommand", "metadata": {"name": name}, "spec": command})
    cluster = {"tags": [name], "context": cluster_ctx(fargate)}
    body = {"apiVersion": api, "kind": "EcsCluster", "metadata": {"name": name}, "spec": cluster}
    kube.create("ecsclusters", body, namespace=None)
    job = {"apiVersion": "ecsjob.io/v1alpha1", "kind": "EcsJob", "metadata": {"name": name}}
    spec = {"commandCriteria": [name], "clusterCriteria": [name], "ttlSecondsAfterFinished": 0}
    kube.create("ecsjobs", {**job, "spec": spec})
    status: dict[str, Any] = wait_for(lambda: (s := kube.status(name)).get("active") == 1 and s, what="a running task")
    assert status["context"]["taskDefinitionSource"] == f"configMap:{name}/td.json"
    # registered in the namespace's own family: ecsjob-<namespace>_<the template's family>
    assert status["context"]["family"] == f"ecsjob-default_{json.loads(template)['family']}"
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    wait_for(lambda: kube.job(name) is None, what="its deletion by the operator (ttlSecondsAfterFinished 0)")
    made = requested(emulator)
    assert ("", "configmaps", "get") in made and ("ecsjob.io", "ecsjobs/status", "patch") in made
    assert ("ecsjob.io", "ecscommands", "get") in made and ("ecsjob.io", "ecsclusters", "get") in made
    assert ("", "events", "create") in made and ("ecsjob.io", "ecsjobs", "delete") in made
    missing = made - allowed()
    assert not missing, f"the operator made requests its ClusterRole does not allow: {sorted(missing)}"
    unused = {a for a in allowed() if a[0] == "ecsjob.io"} - made
    assert not unused, f"the ClusterRole grants what the operator never uses: {sorted(unused)}"
