"""The task-definition document checked as data (core/taskdef.py): every problem with its path."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from ecsjob_operator.core.taskdef import TemplateError, check_task_definition, json_problems, parse_template


def td(**container: Any) -> dict[str, Any]:
    return {"family": "f", "containerDefinitions": [{"name": "main", "image": "x", **container}]}


@pytest.mark.parametrize(
    ("document", "problems"),
    [
        (td(), []),
        (td(environment=[{"name": "A", "value": "1"}], command=["sh"], essential=False), []),
        ([], ["t: must be an object (a task definition)"]),
        ({"containerDefinitions": [{"name": "m"}]}, ["t.family: is required"]),
        ({"family": 5, "containerDefinitions": [{"name": "m"}]}, ["t.family: must be a non-empty string"]),
        ({"family": "f"}, ["t.containerDefinitions: must list at least one container"]),
        ({"family": "f", "containerDefinitions": ["m"]}, ["t.containerDefinitions[0]: must be an object (a container definition)"]),
        ({"family": "f", "containerDefinitions": [{"image": "x"}]}, ["t.containerDefinitions[0].name: is required"]),
        ({"family": "f", "containerDefinitions": [{"name": "m"}, {"name": "m"}]}, ["t.containerDefinitions[1].name: container 'm' is defined twice"]),
        (td(name=True), ["t.containerDefinitions[0].name: must be a non-empty string"]),
        (td(essential="maybe"), ["t.containerDefinitions[0].essential: must be true or false"]),
        (td(command="echo hi"), ["t.containerDefinitions[0].command: must be a list of strings"]),
        (td(environment="A=b"), ["t.containerDefinitions[0].environment: must be a list"]),
        (td(environment=[{"value": "x"}]), ["t.containerDefinitions[0].environment[0].name: must be a non-empty string"]),
        (td(environment=[{"name": "A", "value": 1}]), ["t.containerDefinitions[0].environment[0].value: must be a string (quote numbers and booleans)"]),
        (td(logConfiguration="awslogs"), ["t.containerDefinitions[0].logConfiguration: must be an object"]),
        (td(logConfiguration={"logDriver": "awslogs", "options": {"a": 1}}), ["t.containerDefinitions[0].logConfiguration.options: must map names to strings"]),
        ({**td(), "networkMode": "bridge"}, ["t.networkMode: must be awsvpc on Fargate"]),
        ({**td(), "cpu": "lots"}, ['t.cpu: must be a whole number or a string of one (e.g. "256")']),
        ({**td(), "tags": [{"key": "a"}]}, ["t.tags[0]: must be {key: string, value: string}"]),
        (td(dockerLabels={"built": datetime.date(2024, 1, 1)}), ["t.containerDefinitions[0].dockerLabels.built: must be JSON (string, number, boolean, list or object), not a date"]),
        (td(dockerLabels={"x": float("nan")}), ["t.containerDefinitions[0].dockerLabels.x: must be a finite number"]),
    ],
)  # fmt: skip
def test_check_task_definition(document: Any, problems: list[str]) -> None:
    assert [str(e) for e in check_task_definition(document, "t")] == problems


def test_deep_or_huge_documents_are_refused_without_recursion() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    assert "nested too deeply" in str(json_problems(deep, "t")[0])
    shared = ["x"] * 100
    wide = [shared] * 1000  # YAML aliases make this from a few lines
    assert "too large" in str(json_problems(wide, "t")[0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"\xff\xfe", "src is not UTF-8 text"),
        ("[1, 2]", "src is not a JSON object (a task definition)"),
        ("{", "src is not JSON"),
        ("[" * 100_000, "src is nested too deeply"),
    ],
)
def test_parse_template_refuses_what_is_no_task_definition(text: str | bytes, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        parse_template(text, "src")
    assert str(err.value).startswith(message)
