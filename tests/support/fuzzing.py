"""Hypothesis strategies for EcsJob manifests: a valid job (from the samples and the CRD's fields) with
mutations a user, a script or an attacker could make: wrong types, huge and negative numbers, unicode,
deep nesting, YAML anchors, reserved variable names, odd durations, unknown and snake_case keys, and
damaged bytes. Valid jobs keep pollingInterval and timeout at a few seconds, so a run that does not
end quickly is a hang."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import strategies as st

from support.jobs import TEMPLATE

ODD_DURATIONS = [
    "0s", "-5s", "1h1h", "99999999h", "9999999999999999999h", "1.5s", " 1s", "1s ", "1s\n", "\u0661s", "10",
    "1 hour", "", "1m30", "720h1s", "2h", "0h0m0s", "1S", "1d",
]  # fmt: skip
# The valid durations the generator may write: short enough that every valid job ends in seconds.
SHORT_DURATIONS = ["1s", "2s", "3s", "4s"]
RESERVED = ["TASK_NAME", "TASK_NUM", "TASK_ATTEMPT"]
FIELDS = [
    "taskCount", "cpu", "memory", "pollingInterval", "timeout", "maxFailCount", "tags", "containerOverrides",
    "task_count", "max_fail_count", "suspend", "command", "cluster", "context", "version", "taskDefinition",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 3, 100, 101, 1000, 1001, 256, 512, 2**31, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(ODD_DURATIONS + SHORT_DURATIONS),
    st.sampled_from(["true", "yes", "on", "1", "3", "FARGATE", "main", "\x1b[31m", "\u202e", "null"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def base_manifest(subnet: str, security_group: str) -> dict[str, Any]:
    """A job that runs and ends quickly on the fuzz cluster."""
    template = copy.deepcopy(TEMPLATE)
    return {
        "apiVersion": "ecsjob.io/v1alpha1",
        "kind": "EcsJob",
        "metadata": {"name": "fuzz", "namespace": "default"},
        "spec": {
            "command": {"taskDefinition": template, "pollingInterval": "1s", "timeout": "4s", "maxFailCount": 1},
            "cluster": {
                "clusterName": "batch",
                "region": "us-west-2",
                "executionRoleArn": TEMPLATE["executionRoleArn"],  # the operator takes roles only from here
                "vpcConfig": {"subnets": [subnet], "securityGroups": [security_group]},
            },
            "context": {"taskCount": 1},
        },
    }


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """One to three mutations of the base manifest, at paths drawn from its tree."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        kind = draw(
            st.sampled_from(["set", "set", "delete", "add", "duration", "reserved", "deep", "share", "size", "keep"])
        )
        if kind == "set":
            parent[path[-1]] = draw(values)
        elif kind == "delete":
            del parent[path[-1]]
        elif kind == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELDS) | st.text(min_size=1, max_size=8))] = draw(values)
        elif kind == "duration":
            layer = draw(st.sampled_from(["command", "context"]))
            field = draw(st.sampled_from(["pollingInterval", "timeout"]))
            if isinstance(doc.get("spec"), dict) and isinstance(doc["spec"].get(layer), dict):
                doc["spec"][layer][field] = draw(st.sampled_from(ODD_DURATIONS + SHORT_DURATIONS))
        elif kind == "reserved" and isinstance(doc.get("spec"), dict) and isinstance(doc["spec"].get("context"), dict):
            env = [{"name": draw(st.sampled_from([*RESERVED, "OK"])), "value": draw(st.text(max_size=5))}]
            doc["spec"]["context"]["containerOverrides"] = [{"name": "main", "environment": env}]
        elif kind == "deep":
            nested: Any = draw(scalars)
            for _ in range(draw(st.sampled_from([5, 40, 200]))):
                nested = [nested] if draw(st.booleans()) else {"k": nested}
            parent[path[-1]] = nested
        elif kind == "share":  # yaml.safe_dump writes a shared object as an anchor and aliases
            other = draw(st.sampled_from(paths))
            if other != path and other[: len(path)] != path and path[: len(other)] != other:
                parent[path[-1]] = _parent(doc, other)[other[-1]]
        elif kind == "size" and isinstance(doc.get("spec"), dict) and isinstance(doc["spec"].get("context"), dict):
            doc["spec"]["context"]["taskCount"] = draw(st.integers(min_value=1, max_value=3))
    return doc


@st.composite
def manifest_bytes(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """A mutated manifest as the bytes of a file; sometimes damaged after serialising."""
    doc = draw(mutated(base))
    try:
        text = yaml.safe_dump(doc, allow_unicode=True).encode()
    except (yaml.YAMLError, RecursionError, ValueError):
        text = b"kind: EcsJob\n"
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "byte"]))
    if damage == "truncate" and text:
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    elif damage == "byte" and text:
        at = draw(st.integers(min_value=0, max_value=len(text) - 1))
        text = text[:at] + bytes([draw(st.integers(min_value=0, max_value=255))]) + text[at + 1 :]
    return text
