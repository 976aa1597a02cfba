from typing import Any

import pytest
from pydantic import ValidationError

from ecsjob_operator.api.models import EcsCluster, EcsCommand, EcsJobSpec
from ecsjob_operator.core.errors import from_validation_error, validate_all
from ecsjob_operator.core.selection import Layers, pick, resolve_layers, template_source, version_key

TD = {"family": "f", "containerDefinitions": [{"name": "main"}]}


def command(
    name: str,
    tags: list[str],
    version: str = "1.0.0",
    status: str = "active",
    created: str = "2026-01-01T00:00:00Z",
    cluster_tags: list[str] | None = None,
    ns: str = "data",
) -> EcsCommand:
    return EcsCommand.model_validate(
        {
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
            "spec": {
                "tags": tags,
                "version": version,
                "status": status,
                "clusterTags": cluster_tags or [],
                "context": {"taskDefinition": TD},
            },
        }
    )


def cluster(name: str, tags: list[str], version: str = "1.0.0", allowed: list[str] | None = None) -> EcsCluster:
    return EcsCluster.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "tags": tags,
                "version": version,
                "allowedNamespaces": allowed or [],
                "context": {"clusterName": name},
            },
        }
    )


@pytest.mark.parametrize(
    ("versions", "winner"),
    [
        (["0.0.1", "0.0.2"], "0.0.2"),
        (["0.10.0", "0.9.0"], "0.10.0"),
        (["1.0.0", "1.0.0-rc1"], "1.0.0-rc1"),
        (["2", "10"], "10"),
        (["v1.2.0", "1.10.0"], "1.10.0"),
    ],
)
def test_highest_semantic_version_wins(versions: list[str], winner: str) -> None:
    found = pick([command(f"c{i}", ["type:ecs"], v) for i, v in enumerate(versions)], ["type:ecs"])
    assert found is not None and found.spec.version == winner


def test_version_key_orders_numbers_numerically() -> None:
    assert version_key("0.10.0") > version_key("0.9.9")


def test_oldest_wins_a_version_tie() -> None:
    newer = command("newer", ["type:ecs"], created="2026-02-01T00:00:00Z")
    older = command("older", ["type:ecs"], created="2026-01-01T00:00:00Z")
    found = pick([newer, older], ["type:ecs"])
    assert found is not None and found.metadata.name == "older"


def test_every_criterion_must_match_and_inactive_is_skipped() -> None:
    cands = [
        command("a", ["type:ecs"]),
        command("b", ["type:ecs", "team:x"], status="inactive"),
        command("c", ["type:ecs", "team:x"], "0.1"),
    ]
    found = pick(cands, ["type:ecs", "team:x"])
    assert found is not None and found.metadata.name == "c"
    assert pick(cands, ["type:spark"]) is None


def spec(**kw: Any) -> EcsJobSpec:
    return EcsJobSpec.model_validate(kw)


def test_resolve_by_criteria_with_command_cluster_tags() -> None:
    cmds = [command("cmd", ["type:ecs"], cluster_tags=["data:prod"])]
    cls = [cluster("dev", ["type:fargate"], "9.0.0"), cluster("prod", ["type:fargate", "data:prod"], "1.0.0")]
    layers = resolve_layers(spec(commandCriteria=["type:ecs"], clusterCriteria=["type:fargate"]), "data", cmds, cls)
    assert isinstance(layers, Layers)
    assert (layers.command_name, layers.cluster_name) == ("cmd", "prod")


def test_no_match_is_an_error_naming_the_criteria() -> None:
    errors = resolve_layers(spec(commandCriteria=["type:nope"], clusterCriteria=["type:fargate"]), "data", [], [])
    assert isinstance(errors, list)
    assert [str(e) for e in errors] == [
        "spec.commandCriteria: no active EcsCommand in namespace data has tags ['type:nope']",
        "spec.clusterCriteria: no active EcsCluster has tags ['type:fargate']",
    ]


def test_commands_of_other_namespaces_are_not_selected() -> None:
    errors = resolve_layers(
        spec(commandCriteria=["type:ecs"], cluster={"clusterName": "c"}),
        "data",
        [command("other", ["type:ecs"], ns="elsewhere")],
        [],
    )
    assert isinstance(errors, list) and errors[0].path == "spec.commandCriteria"


def test_allowed_namespaces_refuse_other_namespaces() -> None:
    cls = [cluster("restricted", ["type:fargate"], allowed=["finance"])]
    errors = resolve_layers(spec(command={"taskDefinition": TD}, clusterCriteria=["type:fargate"]), "data", [], cls)
    assert isinstance(errors, list)
    assert str(errors[0]) == "spec.clusterCriteria: EcsCluster restricted matches but does not allow namespace data"
    ok = resolve_layers(spec(command={"taskDefinition": TD}, clusterCriteria=["type:fargate"]), "finance", [], cls)
    assert isinstance(ok, Layers)


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({}, "spec.command"),
        (
            {"command": {"taskDefinition": TD}, "commandCriteria": ["a"], "cluster": {"clusterName": "c"}},
            "spec.command",
        ),
        ({"command": {"taskDefinition": TD}}, "spec.cluster"),
    ],
)
def test_exactly_one_of_inline_or_criteria(kw: dict, path: str) -> None:
    errors = resolve_layers(spec(**kw), "data", [], [])
    assert isinstance(errors, list) and path in [e.path for e in errors]


@pytest.mark.parametrize(
    ("command_ctx", "expected"),
    [
        ({"taskDefinition": TD}, ("inline", "inline")),
        ({"taskDefinitionRef": {"configMapName": "td", "key": "td.json"}}, ("configMap", "td/td.json")),
        (
            {"taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/f:1"},
            ("arn", "arn:aws:ecs:us-east-1:1:task-definition/f:1"),
        ),
        ({"taskDefinitionFile": "td.json"}, ("file", "td.json")),
    ],
)
def test_template_sources(command_ctx: dict, expected: tuple[str, str]) -> None:
    layers = resolve_layers(spec(command=command_ctx, cluster={"clusterName": "c"}), "data", [], [])
    assert isinstance(layers, Layers)
    assert template_source(layers) == expected


@pytest.mark.parametrize("command_ctx", [{}, {"taskDefinition": TD, "taskDefinitionFile": "x.json"}])
def test_exactly_one_template_source(command_ctx: dict) -> None:
    layers = resolve_layers(spec(command=command_ctx, cluster={"clusterName": "c"}), "data", [], [])
    assert isinstance(layers, Layers)
    error = template_source(layers)
    assert not isinstance(error, tuple)
    assert error.path == "spec.command.taskDefinition" and "exactly one of" in error.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"context": {"timeout": "1 hour"}},
            'spec.context.timeout: "1 hour" is not a valid duration; write it as "30s", "45m", "1h" or "2h15m30s"',
        ),
        ({"context": {"pollingInterval": 10}}, "spec.context.pollingInterval: 10 is not a duration string"),
        ({"context": {"taskCount": 0}}, "spec.context.taskCount: Input should be greater than or equal to 1"),
        ({"context": {"taskCount": 1001}}, "spec.context.taskCount: Input should be less than or equal to 1000"),
        ({"context": {"maxFailCount": 101}}, "spec.context.maxFailCount: Input should be less than or equal to 100"),
        ({"context": {"executionRoleArn": "arn:x"}}, "spec.context.executionRoleArn: unknown field"),
        ({"context": {"taskDefinition": {}}}, "spec.context.taskDefinition: unknown field"),
        ({"cluster": {"region": "x"}}, "spec.cluster.clusterName: is required"),
        (
            {"cluster": {"clusterName": "c", "launchType": "EC2"}},
            "spec.cluster.launchType: Input should be 'FARGATE' or 'FARGATE_SPOT'",
        ),
        ({"bogus": 1}, "spec.bogus: unknown field"),
    ],
)
def test_spec_errors_have_field_paths(body: dict, expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        EcsJobSpec.model_validate(body)
    messages = [str(e) for e in from_validation_error(err.value, "spec")]
    assert any(m.startswith(expected) for m in messages), messages


def test_validate_all_salvages_the_rest_of_a_spec() -> None:
    spec = {"context": {"timeout": "1 hour", "taskCount": 0, "cpu": 512}, "cluster": {"clusterName": "c"}}
    parsed, errors = validate_all(EcsJobSpec, spec, "spec")
    assert [e.path for e in errors] == ["spec.context.taskCount", "spec.context.timeout"]
    assert parsed is not None and parsed.context is not None and parsed.context.cpu == 512
    assert spec["context"]["timeout"] == "1 hour"  # the caller's data is untouched


def test_validate_all_gives_up_when_a_required_field_is_missing() -> None:
    parsed, errors = validate_all(EcsJobSpec, {"cluster": {"region": "x"}}, "spec")
    assert parsed is None and [e.path for e in errors] == ["spec.cluster.clusterName"]
