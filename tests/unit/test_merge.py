import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ecsjob_operator.api.models import ClusterContext, CommandContext, JobContext
from ecsjob_operator.core.ecs_limits import FARGATE_SIZES
from ecsjob_operator.core.merge import MergeInput, content_hash, merge, redact

SAMPLES = Path(__file__).parents[2] / "manifests" / "samples"
TEMPLATE: dict[str, Any] = json.loads((SAMPLES / "task-definition.json").read_text())


def inp(
    job: dict[str, Any] | None = None,
    command: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
    **kw: Any,
) -> MergeInput:
    return MergeInput(
        job=JobContext.model_validate(job or {}),
        command=CommandContext.model_validate(command or {}),
        cluster=ClusterContext.model_validate(cluster or {"clusterName": "c"}),
        template=copy.deepcopy(template or TEMPLATE),
        template_source="inline",
        **kw,
    )


def env_of(td: dict[str, Any], container: str = "main") -> list[tuple[str, str]]:
    c = next(c for c in td["containerDefinitions"] if c["name"] == container)
    return [(e["name"], e["value"]) for e in c.get("environment", [])]


def errors_of(result: Any) -> list[str]:
    return [str(e) for e in result.errors]


def test_seed_complete_example_environment_order() -> None:
    # The seed's complete example: command adds CUSTOM_VAR, the job adds DATA_SOURCE.
    result = merge(
        inp(
            job={
                "taskCount": 2,
                "containerOverrides": [
                    {"name": "main", "environment": [{"name": "DATA_SOURCE", "value": "s3://my-bucket/data/"}]}
                ],
            },
            command={
                "taskCount": 2,
                "cpu": 256,
                "memory": 512,
                "containerOverrides": [
                    {"name": "main", "environment": [{"name": "CUSTOM_VAR", "value": "custom_value"}]}
                ],
            },
        )
    )
    assert not result.errors
    # docs/reference.md (Merge rules) merges environments by name (job > command > template), so the command's
    # CUSTOM_VAR stays; TASK_NAME and TASK_NUM are added per task at launch, after these.
    assert env_of(result.task_definition) == [
        ("ENVIRONMENT", "production"),
        ("LOG_LEVEL", "info"),
        ("CUSTOM_VAR", "custom_value"),
        ("DATA_SOURCE", "s3://my-bucket/data/"),
    ]
    names = [n for n, _ in env_of(result.task_definition)]
    seed_order = ["ENVIRONMENT", "LOG_LEVEL", "DATA_SOURCE"]
    assert [n for n in names if n in seed_order] == seed_order


def test_seed_documented_example_without_command_env() -> None:
    result = merge(
        inp(
            job={
                "containerOverrides": [
                    {"name": "main", "environment": [{"name": "DATA_SOURCE", "value": "s3://my-bucket/data/"}]}
                ]
            }
        )
    )
    assert env_of(result.task_definition) == [
        ("ENVIRONMENT", "production"),
        ("LOG_LEVEL", "info"),
        ("DATA_SOURCE", "s3://my-bucket/data/"),
    ]


@pytest.mark.parametrize(
    ("job", "command", "field", "expected"),
    [
        ({}, {}, "task_count", 1),
        ({}, {"taskCount": 4}, "task_count", 4),
        ({"taskCount": 2}, {"taskCount": 4}, "task_count", 2),
        ({}, {}, "polling_interval", "30s"),
        ({"pollingInterval": "60s"}, {"pollingInterval": "15s"}, "polling_interval", "1m"),
        ({}, {}, "timeout", "1h"),
        ({}, {"timeout": "2h15m30s"}, "timeout", "2h15m30s"),
        ({}, {}, "max_fail_count", 3),
        ({"maxFailCount": 0}, {"maxFailCount": 5}, "max_fail_count", 0),
        ({}, {}, "cpu", 256),
        ({"cpu": 512, "memory": 1024}, {"cpu": 1024, "memory": 2048}, "cpu", 512),
        ({}, {"cpu": 1024, "memory": 2048}, "memory", 2048),
    ],
)
def test_scalars_job_over_command_over_template(job: dict, command: dict, field: str, expected: object) -> None:
    result = merge(inp(job=job, command=command))
    assert result.context is not None, errors_of(result)
    assert getattr(result.context, field) == expected


def test_a_tenant_cannot_override_admin_tags() -> None:
    """For the same key the cluster's tag wins over the command's, which wins over the job's (the
    contract reversed the old job-first order: cost and access tags belong to the admin)."""
    result = merge(
        inp(
            job={"tags": {"team": "job", "j": "1"}},
            command={"tags": {"team": "cmd", "c": "1"}},
            cluster={"clusterName": "c", "tags": {"team": "cl", "env": "prod"}},
        )
    )
    assert result.context is not None
    assert result.context.tags == {"team": "cl", "env": "prod", "c": "1", "j": "1"}


@pytest.mark.parametrize(
    ("job_cmd", "command_cmd", "expected"),
    [
        (None, None, ["sh", "-c", 'echo "Task name: $TASK_NAME" && exit 0']),
        (None, ["cmd"], ["cmd"]),
        (["job"], ["cmd"], ["job"]),
        ([], ["cmd"], ["cmd"]),  # empty is not "most specific non-empty"
    ],
)
def test_command_most_specific_non_empty_wins(job_cmd: Any, command_cmd: Any, expected: list[str]) -> None:
    job = {"containerOverrides": [{"name": "main", **({"command": job_cmd} if job_cmd is not None else {})}]}
    command = {
        "containerOverrides": [{"name": "main", **({"command": command_cmd} if command_cmd is not None else {})}]
    }
    result = merge(inp(job=job, command=command))
    assert result.task_definition["containerDefinitions"][0]["command"] == expected


def test_environment_job_over_command_over_template_keeps_template_order() -> None:
    result = merge(
        inp(
            job={
                "containerOverrides": [
                    {
                        "name": "main",
                        "environment": [
                            {"name": "NEW_B", "value": "b"},
                            {"name": "LOG_LEVEL", "value": "debug"},
                            {"name": "X", "value": "job"},
                        ],
                    }
                ]
            },
            command={
                "containerOverrides": [
                    {
                        "name": "main",
                        "environment": [{"name": "X", "value": "cmd"}, {"name": "ENVIRONMENT", "value": "staging"}],
                    }
                ]
            },
        )
    )
    assert env_of(result.task_definition) == [
        ("ENVIRONMENT", "staging"),
        ("LOG_LEVEL", "debug"),
        ("X", "job"),
        ("NEW_B", "b"),
    ]


def test_cluster_roles_replace_template_roles_and_template_fields_are_kept() -> None:
    result = merge(inp(cluster={"clusterName": "c", "executionRoleArn": "arn:exec", "taskRoleArn": "arn:task"}))
    td = result.task_definition
    assert td["executionRoleArn"] == "arn:exec" and td["taskRoleArn"] == "arn:task"
    assert td["ephemeralStorage"] == {"sizeInGiB": 21}
    assert td["runtimePlatform"] == TEMPLATE["runtimePlatform"]
    assert td["containerDefinitions"][0]["logConfiguration"] == TEMPLATE["containerDefinitions"][0]["logConfiguration"]


def test_template_roles_kept_when_cluster_sets_none() -> None:
    td = merge(inp()).task_definition
    assert td["executionRoleArn"] == TEMPLATE["executionRoleArn"]


def test_cpu_memory_replaced_as_strings() -> None:
    td = merge(inp(job={"cpu": 1024, "memory": 4096})).task_definition
    assert (td["cpu"], td["memory"]) == ("1024", "4096")


@pytest.mark.parametrize(
    ("job", "command", "cluster", "expected"),
    [
        (
            {"cpu": 300},
            {},
            {},
            "spec.context.cpu: 300 is not a Fargate CPU value; use one of 256, 512, 1024, 2048, 4096, 8192, 16384",
        ),
        (
            {"memory": 4096},
            {},
            {},
            "spec.context.memory: 4096 MiB is not valid with cpu 256 on Fargate; use 512, 1024, 2048",
        ),
        (
            {},
            {"cpu": 1024, "memory": 1024},
            {},
            "spec.command.memory: 1024 MiB is not valid with cpu 1024 on Fargate; use 2048, 3072, 4096, 5120, 6144, 7168, 8192",
        ),
        (
            {"cpu": 4096, "memory": 8192},
            {},
            {"maxCpu": 2048},
            "spec.context.cpu: 4096 exceeds the cluster's maxCpu 2048",
        ),
        (
            {"cpu": 1024, "memory": 8192},
            {},
            {"maxMemory": 4096},
            "spec.context.memory: 8192 exceeds the cluster's maxMemory 4096",
        ),
        (
            {"taskCount": 11},
            {},
            {"maxTaskCount": 10},
            "spec.context.taskCount: 11 exceeds the cluster's maxTaskCount 10",
        ),
        (
            {},
            {"taskCount": 20},
            {"maxTaskCount": 10},
            "spec.command.taskCount: 20 exceeds the cluster's maxTaskCount 10",
        ),
        (
            {"containerOverrides": [{"name": "sidecar"}]},
            {},
            {},
            "spec.context.containerOverrides[0].name: container 'sidecar' is not in the task definition (it has main)",
        ),
        (
            {"containerOverrides": [{"name": "main", "environment": [{"name": "TASK_NAME", "value": "x"}]}]},
            {},
            {},
            "spec.context.containerOverrides[0].environment[0].name: TASK_NAME is set by the operator on every container and cannot be overridden",
        ),
        (
            {},
            {"containerOverrides": [{"name": "main", "environment": [{"name": "TASK_NUM", "value": "1"}]}]},
            {},
            "spec.command.containerOverrides[0].environment[0].name: TASK_NUM is set by the operator on every container and cannot be overridden",
        ),
        (
            {"tags": {"ecsjob.io/name": "x"}},
            {},
            {},
            "spec.context.tags.ecsjob.io/name: keys under ecsjob.io/ are reserved",
        ),
        (
            {"containerOverrides": [{"name": "main"}, {"name": "main"}]},
            {},
            {},
            "spec.context.containerOverrides[1].name: container 'main' is overridden twice",
        ),
    ],
)
def test_validation_errors(job: dict, command: dict, cluster: dict, expected: str) -> None:
    result = merge(inp(job=job, command=command, cluster={"clusterName": "c", **cluster}))
    assert result.context is None
    assert expected in errors_of(result)


def test_all_problems_reported_at_once() -> None:
    result = merge(
        inp(
            job={"cpu": 300, "taskCount": 50, "containerOverrides": [{"name": "nope"}]},
            cluster={"clusterName": "c", "maxTaskCount": 10},
        )
    )
    assert {e.path for e in result.errors} == {
        "spec.context.containerOverrides[0].name",
        "spec.context.cpu",
        "spec.context.taskCount",
    }
    result = merge(inp(job={"cpu": 300, "taskCount": 50}, cluster={"clusterName": "c", "maxTaskCount": 10}))
    paths = {e.path for e in result.errors}
    assert paths == {"spec.context.cpu", "spec.context.taskCount"}


def test_vpc_config_required_on_aws() -> None:
    result = merge(inp(require_network=True))
    assert "spec.cluster.vpcConfig: is required on AWS: give subnets and securityGroups" in errors_of(result)


@pytest.mark.parametrize(
    ("template_change", "expected"),
    [
        ({"containerDefinitions": []}, "taskDefinition.containerDefinitions: must list at least one container"),
        ({"family": ""}, "taskDefinition.family: is required"),
        ({"networkMode": "bridge"}, "taskDefinition.networkMode: must be awsvpc on Fargate"),
    ],
)
def test_template_problems(template_change: dict, expected: str) -> None:
    assert expected in errors_of(merge(inp(template={**TEMPLATE, **template_change})))


@pytest.mark.parametrize(("cpu", "memories"), sorted(FARGATE_SIZES.items()))
def test_every_fargate_pair_is_accepted(cpu: int, memories: list[int]) -> None:
    for memory in (memories[0], memories[-1]):
        assert not merge(inp(job={"cpu": cpu, "memory": memory})).errors


def test_merged_context_never_holds_environment_values() -> None:
    result = merge(
        inp(job={"containerOverrides": [{"name": "main", "environment": [{"name": "SECRET", "value": "hunter2"}]}]})
    )
    assert result.context is not None
    assert "hunter2" not in json.dumps(result.context.wire())
    assert "production" not in json.dumps(result.context.wire())
    assert [e.name for e in result.context.containers[0].environment] == ["ENVIRONMENT", "LOG_LEVEL", "SECRET"]
    assert "hunter2" not in json.dumps(redact(result.task_definition))


def test_log_configuration_is_summarised() -> None:
    result = merge(inp())
    assert result.context is not None
    logs = result.context.containers[0].logs
    assert logs is not None and (logs.group, logs.stream_prefix, logs.region) == ("/ecs/batch-jobs", "ecs", "us-west-2")


def test_content_hash_is_stable_and_sensitive() -> None:
    a = merge(inp()).task_definition
    b = merge(inp()).task_definition
    c = merge(inp(job={"cpu": 512, "memory": 1024})).task_definition
    assert content_hash(a) == content_hash(b) != content_hash(c)
