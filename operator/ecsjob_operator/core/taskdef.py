"""The task-definition document checked as data before anything merges or registers it.

A template comes from a tenant (inline, a ConfigMap, a file) or from DescribeTaskDefinition; the
merge reads its fields, so each field it reads must have the type and shape it expects, and the
whole document must be JSON (a YAML date, set or binary is not). Every problem is reported with
its path, e.g. `spec.command.taskDefinition.containerDefinitions[0].name: must be a string`.
Pure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from ecsjob_operator.core.errors import FieldError


class TemplateError(Exception):
    """A task definition source that cannot be loaded; the message names the source."""


MAX_DEPTH = 32  # RegisterTaskDefinition JSON is a few levels deep; deeper is not a task definition
MAX_NODES = 20_000  # a task definition is at most 64 KiB on ECS; YAML aliases can expand far beyond
Check = Callable[[Any], str | None]


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _name(value: Any) -> str | None:
    if value == "":
        return "is required"
    return None if isinstance(value, str) else "must be a non-empty string"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _strings(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return None if ok else "must be a list of strings"


def _size(value: Any) -> str | None:
    ok = (isinstance(value, str) and value.strip().isdigit()) or (
        isinstance(value, int) and not isinstance(value, bool)
    )
    return None if ok else 'must be a whole number or a string of one (e.g. "256")'


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be an object"


def _list(value: Any) -> str | None:
    return None if isinstance(value, list) else "must be a list"


# The fields the merge and the backends read, with the shape each must have.
TOP_LEVEL: dict[str, Check] = {
    "family": _name,
    "cpu": _size,
    "memory": _size,
    "networkMode": _string,
    "requiresCompatibilities": _strings,
    "taskRoleArn": _string,
    "executionRoleArn": _string,
    "volumes": _list,
    "tags": _list,
    "ephemeralStorage": _object,
    "runtimePlatform": _object,
}
CONTAINER: dict[str, Check] = {
    "name": _name,
    "image": _name,
    "essential": _boolean,
    "command": _strings,
    "entryPoint": _strings,
    "environment": _list,
    "secrets": _list,
    "logConfiguration": _object,
    "linuxParameters": _object,
    "repositoryCredentials": _object,
}


def parse_template(text: str | bytes, source: str) -> dict[str, Any]:
    """A task definition from JSON text (a ConfigMap value, a file): an object, or TemplateError."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        raise TemplateError(f"{source} is not UTF-8 text") from None
    except RecursionError:
        raise TemplateError(f"{source} is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int() of a number with too many digits
        raise TemplateError(f"{source} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TemplateError(f"{source} is not a JSON object (a task definition)")
    return document


def check_task_definition(td: Any, path: str) -> list[FieldError]:
    """Every problem of a task-definition document, or [] when the merge can read it safely."""
    if not isinstance(td, dict):
        return [FieldError(path, "must be an object (a task definition)")]
    errors = json_problems(td, path)
    if errors:
        return errors  # the rest would trip over the same values
    errors += _fields(td, TOP_LEVEL, path)
    if "family" not in td:
        errors.append(FieldError(f"{path}.family", "is required"))
    if td.get("networkMode", "awsvpc") != "awsvpc":
        errors.append(FieldError(f"{path}.networkMode", "must be awsvpc on Fargate"))
    tags = td.get("tags")
    for i, tag in enumerate(tags if isinstance(tags, list) else []):
        if not (isinstance(tag, dict) and isinstance(tag.get("key"), str) and isinstance(tag.get("value"), str)):
            errors.append(FieldError(f"{path}.tags[{i}]", "must be {key: string, value: string}"))
    containers = td.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        errors.append(FieldError(f"{path}.containerDefinitions", "must list at least one container"))
        return errors
    names: set[str] = set()
    for i, container in enumerate(containers):
        errors += _container(container, f"{path}.containerDefinitions[{i}]", names)
    return errors


def _container(container: Any, where: str, names: set[str]) -> list[FieldError]:
    if not isinstance(container, dict):
        return [FieldError(where, "must be an object (a container definition)")]
    errors = _fields(container, CONTAINER, where)
    if "name" not in container:  # an image is AWS's to require: the local backend runs without one
        errors.append(FieldError(f"{where}.name", "is required"))
    name = container.get("name")
    if isinstance(name, str) and name:
        if name in names:
            errors.append(FieldError(f"{where}.name", f"container {name!r} is defined twice"))
        names.add(name)
    environment = container.get("environment")
    for j, var in enumerate(environment if isinstance(environment, list) else []):
        at = f"{where}.environment[{j}]"
        if not isinstance(var, dict):
            errors.append(FieldError(at, "must be {name: string, value: string}"))
            continue
        if not isinstance(var.get("name"), str) or not var.get("name"):
            errors.append(FieldError(f"{at}.name", "must be a non-empty string"))
        if "value" in var and not isinstance(var["value"], str):
            errors.append(FieldError(f"{at}.value", "must be a string (quote numbers and booleans)"))
    logs = container.get("logConfiguration")
    if isinstance(logs, dict):
        if not isinstance(logs.get("logDriver"), str):
            errors.append(FieldError(f"{where}.logConfiguration.logDriver", "must be a string"))
        options = logs.get("options", {})
        if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
            errors.append(FieldError(f"{where}.logConfiguration.options", "must map names to strings"))
    return errors


def _fields(doc: dict[str, Any], checks: dict[str, Check], where: str) -> list[FieldError]:
    return [
        FieldError(f"{where}.{key}", problem)
        for key, check in checks.items()
        if key in doc and (problem := check(doc[key])) is not None
    ]


def json_problems(doc: Any, path: str) -> list[FieldError]:
    """Only JSON values (objects with string keys, lists, strings, finite numbers, booleans, null),
    at most MAX_DEPTH deep and MAX_NODES in all; walked without recursion."""
    errors: list[FieldError] = []
    stack: list[tuple[Any, str, int]] = [(doc, path, 0)]
    seen = 0
    while stack and len(errors) < 10:
        value, where, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return [FieldError(path, f"is too large (more than {MAX_NODES} values)")]
        if depth > MAX_DEPTH:
            return [FieldError(where, f"is nested too deeply (more than {MAX_DEPTH} levels)")]
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    errors.append(FieldError(f"{where}.{key}", "keys must be strings"))
                else:
                    stack.append((item, f"{where}.{key}", depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            errors.append(FieldError(where, "must be a finite number"))
        elif value is not None and not isinstance(value, str | int | float | bool):
            kind = type(value).__name__
            errors.append(FieldError(where, f"must be JSON (string, number, boolean, list or object), not a {kind}"))
    return sorted(errors, key=lambda e: e.path)
