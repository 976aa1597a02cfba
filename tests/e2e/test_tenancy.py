"""Tenancy end to end: what a team that can write EcsJobs in its namespace cannot do.

The tenants' operator watches `team` and `team-x` with the shared-cluster defaults (no inline
clusters, families under `ecsjob-`). Each test asserts on what moto received (roles, subnets,
families, tags, StopTask calls) and on the status and Events that tell the tenant why.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import boto3
import pytest

from ecsjob_operator.core.identity import job_id
from support.fargate import CLUSTER, REGION, FakeFargate
from support.jobs import TEMPLATE
from support.moto_server import MotoServer
from support.operator_env import Kube, OperatorProcess, wait_for

ADMIN_ROLE = "arn:aws:iam::123456789012:role/team-execution"
ADMIN_TASK_ROLE = "arn:aws:iam::123456789012:role/team-task"
ATTACKER_ROLE = "arn:aws:iam::123456789012:role/admin-everything"


@pytest.fixture(autouse=True)
def operators(tenant_operator: OperatorProcess) -> None:
    """Every test here runs against the tenants' operator."""


def uid() -> str:
    return uuid.uuid4().hex[:8]


def admin_cluster(kube: Kube, fargate: FakeFargate, **context: Any) -> str:
    """An admin's EcsCluster for namespace team (and team-x), selected by a unique tag."""
    tag = f"grant:{uid()}"
    ctx = {
        "clusterName": CLUSTER,
        "region": REGION,
        "executionRoleArn": ADMIN_ROLE,
        "vpcConfig": {"subnets": [fargate.subnet], "securityGroups": [fargate.security_group]},
        **context,
    }
    body = {
        "apiVersion": "ecsjob.io/v1alpha1",
        "kind": "EcsCluster",
        "metadata": {"name": f"cl-{tag[6:]}"},
        "spec": {"tags": [tag], "context": ctx, "allowedNamespaces": ["team", "team-x"]},
    }
    kube.create("ecsclusters", body, namespace=None)
    return tag


def job(kube: Kube, namespace: str, command: dict[str, Any], tag: str | None, **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": "ecsjob.io/v1alpha1",
        "kind": "EcsJob",
        "metadata": {"name": f"tj-{uid()}"},
        "spec": {
            "command": {"pollingInterval": "1s", **command},
            **({"clusterCriteria": [tag]} if tag else {}),
            **spec,
        },
    }
    return kube.create("ecsjobs", body, namespace=namespace)


def template(family: str | None = None, **container: Any) -> dict[str, Any]:
    td = copy.deepcopy(TEMPLATE)
    td["family"] = family or f"fam-{uid()}"
    td["containerDefinitions"][0].update(container)
    return td


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def name_of(body: dict[str, Any]) -> str:
    return str(body["metadata"]["name"])


def wait_invalid(kube: Kube, body: dict[str, Any], reason: str) -> str:
    ns = body["metadata"]["namespace"]
    # the job may be seen before its EcsCluster (NoMatchingContext), and is resolved again when it appears
    status = wait_for(
        lambda: condition(s := kube.status(name_of(body), ns), "Invalid").get("reason") == reason and s,
        what=f"Invalid with reason {reason}",
    )
    invalid = condition(status, "Invalid")
    assert status["phase"] == "Invalid"
    events = wait_for(lambda: [e for e in kube.events(name_of(body), ns) if e.reason == "InvalidSpec"], what="Event")
    assert events[0].type == "Warning"
    return str(invalid["message"])


def running(kube: Kube, body: dict[str, Any]) -> dict[str, Any]:
    ns = body["metadata"]["namespace"]
    return wait_for(lambda: (s := kube.status(name_of(body), ns)).get("active") and s, what="a running task")


def registered(moto_server: MotoServer, family_part: str) -> list[dict[str, Any]]:
    return [b for b in moto_server.bodies("RegisterTaskDefinition") if family_part in b.get("family", "")]


def run_tasks_of(moto_server: MotoServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = f"heimdall-job-{job_id(body['metadata']['uid'])}-"
    return [b for b in moto_server.bodies("RunTask") if b.get("startedBy", "").startswith(prefix)]


def test_a_tenant_cannot_bring_its_own_cluster_roles_or_network(
    kube: Kube, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    inline = {
        "clusterName": CLUSTER,
        "region": REGION,
        "taskRoleArn": ATTACKER_ROLE,
        "executionRoleArn": ATTACKER_ROLE,
        "vpcConfig": {"subnets": [fargate.subnet], "securityGroups": ["sg-open"], "assignPublicIp": "ENABLED"},
    }
    family = f"fam-{uid()}"
    body = job(kube, "team", {"taskDefinition": template(family), "taskCount": 3}, None, cluster=inline)
    message = wait_invalid(kube, body, "InlineClusterNotAllowed")
    assert message.startswith("spec.cluster: an inline cluster is not allowed")
    assert registered(moto_server, family) == [] and run_tasks_of(moto_server, body) == []


def test_a_tenant_cannot_keep_a_role_of_its_own(kube: Kube, fargate: FakeFargate, moto_server: MotoServer) -> None:
    tag = admin_cluster(kube, fargate)  # the admin grants an execution role and no task role
    family = f"fam-{uid()}"
    td = template(family)
    td["taskRoleArn"] = td["executionRoleArn"] = ATTACKER_ROLE
    body = job(kube, "team", {"taskDefinition": td}, tag)
    status = running(kube, body)
    [sent] = registered(moto_server, family)
    assert sent["executionRoleArn"] == ADMIN_ROLE and "taskRoleArn" not in sent  # no task role at all
    assert sent["family"] == f"ecsjob-team_{family}" == status["context"]["family"]
    [launch] = run_tasks_of(moto_server, body)
    assert launch["overrides"]["executionRoleArn"] == ADMIN_ROLE and "taskRoleArn" not in launch["overrides"]
    network = launch["networkConfiguration"]["awsvpcConfiguration"]
    assert network == {
        "subnets": [fargate.subnet],
        "securityGroups": [fargate.security_group],
        "assignPublicIp": "DISABLED",
    }
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    kube.wait_phase(name_of(body), "Succeeded", namespace="team")


def test_an_admin_cluster_without_an_execution_role_serves_nobody(
    kube: Kube, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    tag = f"grant:{uid()}"
    kube.create(
        "ecsclusters",
        {
            "apiVersion": "ecsjob.io/v1alpha1",
            "kind": "EcsCluster",
            "metadata": {"name": f"cl-{tag[6:]}"},
            "spec": {
                "tags": [tag],
                "context": {"clusterName": CLUSTER, "region": REGION, "vpcConfig": {"subnets": [fargate.subnet]}},
            },
        },
        namespace=None,
    )
    family = f"fam-{uid()}"
    body = job(kube, "team", {"taskDefinition": template(family)}, tag)
    message = wait_invalid(kube, body, "ClusterMisconfigured")
    assert (
        f"EcsCluster cl-{tag[6:]}: spec.context.executionRoleArn: EcsCluster cl-{tag[6:]} sets no executionRoleArn"
        in message
    )
    assert registered(moto_server, family) == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"secrets": [{"name": "DB", "valueFrom": "arn:aws:secretsmanager:us-west-2:123456789012:secret:team-x/db"}]},
         "containerDefinitions[0].secrets[0].valueFrom: is not in the EcsCluster's allowedSecrets"),
        ({"repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-west-2:123456789012:secret:ci"}},
         "containerDefinitions[0].repositoryCredentials.credentialsParameter: is not in the EcsCluster's allowedSecrets"),
        ({"linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}},
         "containerDefinitions[0].linuxParameters.capabilities: Linux capabilities are refused"),
        ({"privileged": True}, "containerDefinitions[0].privileged: is not an allowed task-definition field"),
        ({"environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::team-x/env"}]},
         "containerDefinitions[0].environmentFiles: is not an allowed task-definition field"),
    ],
)  # fmt: skip
def test_a_tenant_cannot_reach_secrets_or_privileges_not_granted(
    kube: Kube, fargate: FakeFargate, moto_server: MotoServer, change: dict[str, Any], path: str
) -> None:
    tag = admin_cluster(kube, fargate, allowedSecrets=["arn:aws:secretsmanager:*:*:secret:{namespace}/*"])
    family = f"fam-{uid()}"
    body = job(kube, "team", {"taskDefinition": template(family, **change)}, tag)
    message = wait_invalid(kube, body, "FieldNotAllowed")
    assert f"spec.command.taskDefinition.{path}" in message
    assert registered(moto_server, family) == [] and run_tasks_of(moto_server, body) == []


def test_a_tenant_cannot_mount_file_systems_or_host_paths_not_granted(
    kube: Kube, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    tag = admin_cluster(kube, fargate, allowedEfsFileSystems=["fs-granted"])
    family = f"fam-{uid()}"
    td = template(family)
    td["volumes"] = [
        {"name": "other", "efsVolumeConfiguration": {"fileSystemId": "fs-other-team"}},
        {"name": "host", "host": {"sourcePath": "/"}},
        {"name": "ok", "efsVolumeConfiguration": {"fileSystemId": "fs-granted"}},
    ]
    body = job(kube, "team", {"taskDefinition": td}, tag)
    message = wait_invalid(kube, body, "FieldNotAllowed")
    assert "volumes[0].efsVolumeConfiguration.fileSystemId: is not in allowedEfsFileSystems" in message
    assert "volumes[1].host: host and Docker volumes are refused" in message and "volumes[2]" not in message
    assert registered(moto_server, family) == []


def test_granted_secrets_are_accepted(kube: Kube, fargate: FakeFargate, moto_server: MotoServer) -> None:
    tag = admin_cluster(kube, fargate, allowedSecrets=["arn:aws:secretsmanager:*:*:secret:{namespace}/*"])
    family = f"fam-{uid()}"
    secret = "arn:aws:secretsmanager:us-west-2:123456789012:secret:team/db"
    body = job(kube, "team", {"taskDefinition": template(family, secrets=[{"name": "DB", "valueFrom": secret}])}, tag)
    status = running(kube, body)
    assert registered(moto_server, family)[0]["containerDefinitions"][0]["secrets"][0]["valueFrom"] == secret
    fargate.finish_index(status["tasks"][0]["taskName"], 0)


def _register(family: str, **extra: Any) -> str:
    td = {k: v for k, v in template(family).items() if k not in ("ephemeralStorage", "runtimePlatform")}
    td.update(extra)
    ecs = boto3.client("ecs", region_name=REGION)
    return str(ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"])


@pytest.mark.parametrize(
    ("namespace", "victim"), [("team", "ecsjob-team-x_etl"), ("team-x", "ecsjob-team_etl"), ("team", "payroll")]
)
def test_a_tenant_cannot_run_another_teams_task_definition(
    kube: Kube, fargate: FakeFargate, moto_server: MotoServer, namespace: str, victim: str
) -> None:
    arn = _register(f"{victim}-{uid()}", taskRoleArn="arn:aws:iam::123456789012:role/victim")
    tag = admin_cluster(kube, fargate)
    described = len(moto_server.bodies("DescribeTaskDefinition"))
    registrations = len(registered(moto_server, victim))  # the victim's own, above
    override = [{"name": "main", "environment": [{"name": "X", "value": "1"}]}]
    body = job(kube, namespace, {"taskDefinitionArn": arn, "containerOverrides": override}, tag)
    message = wait_invalid(kube, body, "TaskDefinitionNotAllowed")
    assert "spec.command.taskDefinitionArn" in message and f"belongs neither to namespace {namespace}" in message
    assert len(moto_server.bodies("DescribeTaskDefinition")) == described  # not even read
    assert len(registered(moto_server, victim)) == registrations and run_tasks_of(moto_server, body) == []


def test_an_allowed_family_runs_with_the_clusters_roles_in_the_namespaces_family(
    kube: Kube, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    shared = f"shared-{uid()}"
    arn = _register(shared, taskRoleArn="arn:aws:iam::123456789012:role/shared-owner")
    tag = admin_cluster(kube, fargate, allowedTaskDefinitions=["shared-*"], taskRoleArn=ADMIN_TASK_ROLE)
    body = job(kube, "team", {"taskDefinitionArn": arn}, tag)
    status = running(kube, body)
    [source, derived] = registered(moto_server, shared)  # the test's own, then the job's
    assert source["family"] == shared  # the source family is never written to by the job
    assert derived["family"] == f"ecsjob-team_{shared}"
    assert (derived["taskRoleArn"], derived["executionRoleArn"]) == (ADMIN_TASK_ROLE, ADMIN_ROLE)
    [launch] = run_tasks_of(moto_server, body)
    assert (launch["overrides"]["taskRoleArn"], launch["overrides"]["executionRoleArn"]) == (
        ADMIN_TASK_ROLE,
        ADMIN_ROLE,
    )
    fargate.finish_index(status["tasks"][0]["taskName"], 0)


def test_a_tenant_cannot_write_into_another_teams_family(
    kube: Kube, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    victim = f"ecsjob-team-x_etl-{uid()}"
    tag = admin_cluster(kube, fargate)
    body = job(kube, "team", {"taskDefinition": template(victim, image="attacker/image")}, tag)
    status = running(kube, body)
    families = [b["family"] for b in registered(moto_server, victim)]
    assert families == [f"ecsjob-team_{victim}"]  # namespaced under the tenant, never the victim's family
    fargate.finish_index(status["tasks"][0]["taskName"], 0)


def test_a_tenant_cannot_override_the_admins_tags(kube: Kube, fargate: FakeFargate, moto_server: MotoServer) -> None:
    tag = admin_cluster(kube, fargate, tags={"cost-center": "platform", "access": "restricted"})
    body = job(kube, "team", {"taskDefinition": template(), "tags": {"access": "open"}}, tag,
               context={"tags": {"cost-center": "free", "mine": "1"}})  # fmt: skip
    status = running(kube, body)
    [launch] = run_tasks_of(moto_server, body)
    tags = {t["key"]: t["value"] for t in launch["tags"]}
    assert (tags["cost-center"], tags["access"], tags["mine"]) == ("platform", "restricted", "1")
    fargate.finish_index(status["tasks"][0]["taskName"], 0)


def test_a_tenant_cannot_stop_another_teams_task_through_its_status(
    kube: Kube, fargate: FakeFargate, moto_server: MotoServer, tenant_operator: OperatorProcess
) -> None:
    tag = admin_cluster(kube, fargate)
    victim = job(kube, "team-x", {"taskDefinition": template()}, tag)
    victim_arn = running(kube, victim)["tasks"][0]["arn"]
    attacker = job(kube, "team", {"taskDefinition": template(), "taskCount": 2}, tag)
    running(kube, attacker)
    # While the operator is away (a running operator sends its own last status again over a forged one),
    # the tenant writes the victim's ARN into its job's status, as a tenant allowed to write status can.
    tenant_operator.kill()
    tasks = kube.status(name_of(attacker), "team")["tasks"]
    tasks[0] = {"index": 0, "taskName": "x", "phase": "Running", "arn": victim_arn, "attempts": 1}
    kube.custom.patch_namespaced_custom_object_status(
        "ecsjob.io", "v1alpha1", "team", "ecsjobs", name_of(attacker), {"status": {"tasks": tasks}}
    )
    tenant_operator.start()
    warnings = wait_for(
        lambda: [e for e in kube.events(name_of(attacker), "team") if e.reason == "ForeignTask"], what="ForeignTask"
    )
    assert warnings[0].type == "Warning" and victim_arn in warnings[0].message
    kube.delete_job(name_of(attacker), "team")  # deletion stops the job's tasks: only its own
    wait_for(lambda: kube.job(name_of(attacker), "team") is None, what="the deletion")
    assert victim_arn not in [b["task"] for b in moto_server.bodies("StopTask")]
    assert fargate.task(victim_arn).last_status == "RUNNING"
    fargate.finish(victim_arn, 0)
    kube.wait_phase(name_of(victim), "Succeeded", namespace="team-x")


def test_a_tenant_cannot_relaunch_with_roles_or_a_task_definition_it_wrote_into_status(
    kube: Kube, fargate: FakeFargate, moto_server: MotoServer, tenant_operator: OperatorProcess
) -> None:
    tag = admin_cluster(kube, fargate, taskRoleArn=ADMIN_TASK_ROLE)
    body = job(kube, "team", {"taskDefinition": template(), "maxFailCount": 3}, tag)
    first = running(kube, body)["tasks"][0]
    # While the operator is away, the tenant (allowed to write ecsjobs/status) forges the launch
    # fields, and the task fails so that the index is due for a relaunch.
    tenant_operator.kill()
    status = kube.status(name_of(body), "team")
    context = status["context"]
    context["cluster"].update(taskRoleArn=ATTACKER_ROLE, executionRoleArn=ATTACKER_ROLE, assignPublicIp="ENABLED")
    victim_td = "arn:aws:ecs:us-east-1:123456789012:task-definition/ecsjob-team-x_victim:1"
    kube.custom.patch_namespaced_custom_object_status(
        "ecsjob.io", "v1alpha1", "team", "ecsjobs", name_of(body),
        {"status": {"context": context, "taskDefinitionArn": victim_td}},
    )  # fmt: skip
    fargate.finish(first["arn"], 1)
    tenant_operator.start()
    done = kube.wait_phase(name_of(body), "Failed", namespace="team")
    failed = condition(done, "Failed")
    assert failed["reason"] == "StatusTampered"
    assert "status.context.cluster" in failed["message"] and "status.taskDefinitionArn" in failed["message"]
    launches = run_tasks_of(moto_server, body)
    assert len(launches) == 1  # the first attempt only: nothing was launched from the forged status
    assert launches[0]["overrides"]["taskRoleArn"] == ADMIN_TASK_ROLE
    assert all(ATTACKER_ROLE not in str(b) for b in moto_server.bodies("RunTask"))
    assert done["context"]["cluster"]["taskRoleArn"] == ADMIN_TASK_ROLE  # the status shows the truth again
    events = wait_for(
        lambda: [e for e in kube.events(name_of(body), "team") if e.reason == "StatusTampered"], what="Event"
    )
    assert events[0].type == "Warning"
