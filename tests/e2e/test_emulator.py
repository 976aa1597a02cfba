"""The emulator's realism layer itself: merge patch, JSON patch, the status subresource, 404s.

The e2e tier trusts these behaviours (kopf's JSON-patch `test` conflicts, status writes that do
not touch the spec); here they are checked directly, over HTTP where the server is involved.
"""

from __future__ import annotations

import uuid
from typing import Any

import kubernetes
import pytest
from emulator import EmulatorThread, json_patch, merge_patch
from kmock._internal.k8s import KubernetesError

from support.operator_env import Kube


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": 1, "b": 2}, {"b": None}, {"a": 1}),  # null deletes
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}, {"a": {"x": 1, "y": 3}}),  # dicts merge
        ({"a": [1, 2, 3]}, {"a": [4]}, {"a": [4]}),  # lists replace
        ({"a": 1}, {"b": {"c": None}}, {"a": 1, "b": {}}),  # nested null on a missing key
        ("scalar", {"a": 1}, {"a": 1}),  # a non-object target is replaced
    ],
)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_json_patch_adds_replaces_and_removes() -> None:
    doc = {"metadata": {"finalizers": ["a"]}, "status": {"x": 1}}
    ops = [
        {"op": "add", "path": "/metadata/finalizers/-", "value": "b"},
        {"op": "replace", "path": "/status/x", "value": 2},
        {"op": "remove", "path": "/metadata/finalizers/0"},
        {"op": "add", "path": "/metadata/annotations~1x", "value": "escaped"},
    ]
    assert json_patch(doc, ops) == {
        "metadata": {"finalizers": ["b"], "annotations/x": "escaped"},
        "status": {"x": 2},
    }
    assert doc["status"]["x"] == 1  # the input is not modified


def test_json_patch_failed_test_is_a_422_conflict() -> None:
    doc = {"metadata": {"resourceVersion": "7"}}
    assert json_patch(doc, [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}]) == doc
    with pytest.raises(KubernetesError) as err:
        json_patch(doc, [{"op": "test", "path": "/metadata/resourceVersion", "value": "6"}])
    assert err.value.status == 422


GROUP, VERSION, PLURAL = "emulator.test", "v1", "probes"  # declared in conftest; nothing watches it


def _get(kube: Kube, name: str) -> dict[str, Any] | None:
    try:
        return dict(kube.custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name))
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_status_subresource_is_separate_from_the_object(emulator: EmulatorThread | None, kube: Kube) -> None:
    if emulator is None:
        pytest.skip("checks the emulator, not a real cluster")
    name = f"emu-{uuid.uuid4().hex[:6]}"
    api = kube.custom
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Probe", "metadata": {"name": name}, "spec": {"version": "1"}}
    created = dict(api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body))
    meta = created["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["generation"] == 1 and meta["creationTimestamp"]
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, name, {"status": {"phase": "Running"}, "spec": {"version": "x"}}
    )
    after_status = _get(kube, name)
    assert after_status is not None
    assert after_status["status"] == {"phase": "Running"}
    assert after_status["spec"] == {"version": "1"}  # a status write never touches the spec
    assert after_status["metadata"]["generation"] == 1
    api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, name, {"spec": {"version": "2"}, "status": {"phase": "Failed"}}
    )
    after_spec = _get(kube, name)
    assert after_spec is not None
    assert after_spec["status"] == {"phase": "Running"}  # a main write never touches the status
    assert after_spec["metadata"]["generation"] == 2  # a spec change moves the generation
    api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
    assert _get(kube, name) is None  # 404, not a 500
    with pytest.raises(kubernetes.client.ApiException) as err:
        api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
    assert err.value.status == 404
    made = [r for r in emulator.requests() if r.resource == f"{PLURAL}/status"]
    assert any(r.verb == "patch" and r.namespace == "default" for r in made)


def test_generate_name_is_tried_again_on_a_clash(
    emulator: EmulatorThread | None, kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As API servers since Kubernetes 1.32 do: a generated name that exists is drawn again (kopf names
    every Event with generateName; 12,000 Events of 6 hex characters clash a few times)."""
    if emulator is None:
        pytest.skip("the emulator's own behaviour")
    import emulator as module

    suffixes = iter(["c1a5e0", "c1a5e0", "0ther1"])
    monkeypatch.setattr(module.secrets, "token_hex", lambda n: next(suffixes))
    first = kube.core.create_namespaced_config_map("default", {"metadata": {"generateName": "clash-"}})
    second = kube.core.create_namespaced_config_map("default", {"metadata": {"generateName": "clash-"}})
    assert (first.metadata.name, second.metadata.name) == ("clash-c1a5e0", "clash-0ther1")
