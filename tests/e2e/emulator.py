"""A Kubernetes API for end-to-end tests: kmock's KubernetesEmulator plus a thin realism layer.

kmock (by kopf's author) serves discovery, lists and watch streams. This subclass takes over
create, fetch, patch and delete so that objects behave as on a real API server where the
operator depends on it: uid, resourceVersion, generation and creationTimestamp are stamped;
`generateName` is honoured; create answers 201; the status subresource is separate from the
main object (for resources that declare it; kopf's peering objects do not); merge patches delete keys set to null; JSON patches apply, and a failing `test`
answers 422 (a conflict, as kopf expects); finalizers hold deletion; a missing object is 404.

It also reads `/api/v1/namespaces[/NAME]` as the Namespace resource (kmock 0.8 fails on it).

It does not emulate: schema validation or defaulting, admission, RBAC, label or field
selectors, server-side apply, PUT (replace), resourceVersion preconditions on merge patches,
or garbage collection by owner references. Pinned to kmock 0.8: it leans on its internals.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import json
import secrets
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
from kmock._internal import apps, enums, parsing, rendering
from kmock._internal.k8s import KubernetesEmulator, KubernetesError

_parse_path = parsing.parse_path


def _parse_core_namespaces(path: str) -> parsing.ParsedPath:
    """kmock 0.8 reads `/api/v1/namespaces[/NAME]` as a namespace prefix and fails (a 500), which an
    operator watching named namespaces (kopf's namespace observer) trips over; read it as the resource."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        return parsing.ParsedPath("", "v1", "namespaces", None, parts[3] if len(parts) == 4 else None, None)
    return _parse_path(path)


parsing.parse_path = _parse_core_namespaces
OWN_ACTIONS = (enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE, enums.action.FETCH)
VERBS = {
    enums.action.LIST: "list",
    enums.action.WATCH: "watch",
    enums.action.FETCH: "get",
    enums.action.CREATE: "create",
    enums.action.UPDATE: "patch",
    enums.action.DELETE: "delete",
}


@dataclass(frozen=True)
class Request:
    """One request the emulator served, as RBAC sees it: verb, API group, resource[/subresource]."""

    verb: str
    group: str
    resource: str  # plural, with "/status" for the subresource; "" for discovery
    namespace: str | None
    user_agent: str


_versions = itertools.count(1000)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 add/replace/remove/test; a failed test raises a 422."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1] if parts else ""
        if op["op"] == "test":
            actual = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if actual != op.get("value"):
                raise KubernetesError(status=422, reason="Invalid", message=f"test of {op['path']} failed")
        elif op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                parent[index : index + (op["op"] == "replace")] = [op["value"]]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
    return doc


def _wants_table(request: rendering.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _cell(obj: dict[str, Any], column: dict[str, Any]) -> Any:
    value: Any = obj
    for part in column["jsonPath"].strip(".").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is not None and column["type"] == "date":
        then = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
        seconds = int((datetime.datetime.now(datetime.UTC) - then).total_seconds())
        return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"
    return value


class KubeEmulator(KubernetesEmulator):
    """KubernetesEmulator with the realism layer described in the module docstring (and Tables)."""

    printer_columns: dict[str, list[dict[str, Any]]] = {}  # plural -> the CRD's additionalPrinterColumns

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.resource is None or request.action not in OWN_ACTIONS:
            return await super()._handle(request)
        try:
            async with self._lock:
                status, body = await self._own(request)
        except KubernetesError as exc:
            return await self._render_error(exc)
        return aiohttp.web.json_response(body, status=status)

    async def _own(self, request: rendering.Request) -> tuple[int, Any]:
        if request.action == enums.action.CREATE:
            return await self._create(request)
        key = (request.resource, request.namespace, request.name)
        if key not in self._objects or self._objects[key].deleted:
            plural = request.resource.plural if request.resource else "object"
            raise KubernetesError(status=404, reason="NotFound", message=f'{plural} "{request.name}" not found')
        obj = self._objects[key]
        current = copy.deepcopy(obj.raw)
        if request.action == enums.action.FETCH:
            return 200, self._maybe_table(request, [current]) if _wants_table(request) else current
        if request.action == enums.action.DELETE:
            if current.get("metadata", {}).get("finalizers"):
                if not current["metadata"].get("deletionTimestamp"):
                    current["metadata"]["deletionTimestamp"] = _now()
                    await self._store(request, obj, current, "MODIFIED")
                return 200, current
            obj.delete()
            await self._buses[request.resource].put({"type": "DELETED", "object": current})
            return 200, current
        return await self._patch(request, obj, current)

    async def _create(self, request: rendering.Request) -> tuple[int, Any]:
        data = copy.deepcopy(request.data)
        meta = data.setdefault("metadata", {})
        if request.namespace:
            meta["namespace"] = request.namespace
        if not meta.get("name") and meta.get("generateName"):
            # a fresh name, tried again on a clash, as API servers do since Kubernetes 1.32 (RetryGenerateName)
            for _ in range(8):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)
                clash = (request.resource, meta.get("namespace"), meta["name"])
                if clash not in self._objects or self._objects[clash].deleted:
                    break
        key = (request.resource, meta.get("namespace"), meta.get("name"))
        if key in self._objects and not self._objects[key].deleted:
            raise KubernetesError(status=409, reason="AlreadyExists", message=f'"{meta.get("name")}" already exists')
        meta.update(uid=str(uuid.uuid4()), resourceVersion=str(next(_versions)), generation=1, creationTimestamp=_now())
        if key in self._objects:
            self._objects[key].create(data)
        else:
            self._objects[key] = data
        await self._buses[request.resource].put({"type": "ADDED", "object": copy.deepcopy(data)})
        return 201, data

    async def _patch(self, request: rendering.Request, obj: Any, current: dict[str, Any]) -> tuple[int, Any]:
        kind = request.headers.get("Content-Type", "")
        if "apply-patch" in kind:
            raise KubernetesError(
                status=415, reason="UnsupportedMediaType", message="server-side apply is not emulated"
            )
        patched = json_patch(current, request.data) if "json-patch" in kind else merge_patch(current, request.data)
        meta = patched.setdefault("metadata", {})
        for fixed in ("uid", "creationTimestamp", "generation", "namespace", "name"):
            if fixed in current["metadata"]:
                meta[fixed] = current["metadata"][fixed]
        info = self._resources.get(request.resource, None)
        separate = info is None or "status" in (info.subresources or set())  # without the subresource: one object
        if request.subresource == "status":
            new = {**current, "status": patched.get("status")}
            if new["status"] is None:
                del new["status"]
        else:
            new = {k: v for k, v in patched.items() if k != "status" or not separate}
            if "status" in current and separate:
                new["status"] = current["status"]
            if new.get("spec") != current.get("spec"):
                meta["generation"] = current["metadata"].get("generation", 1) + 1
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            obj.delete()
            await self._buses[request.resource].put({"type": "DELETED", "object": new})
            return 200, new
        await self._store(request, obj, new, "MODIFIED")
        return 200, new

    async def _store(self, request: rendering.Request, obj: Any, new: dict[str, Any], event: str) -> None:
        new["metadata"]["resourceVersion"] = str(next(_versions))
        obj.clear()
        obj.update(copy.deepcopy(new))
        await self._buses[request.resource].put({"type": event, "object": copy.deepcopy(new)})

    async def _serve_list(self, request: rendering.Request) -> Any:
        listing = await super()._serve_list(request)
        if _wants_table(request):
            return self._maybe_table(request, listing["items"])
        info = self._resources.get(request.resource, None)
        kind = info.kind if info is not None and info.kind else "List"
        return {
            "apiVersion": "v1",
            "kind": f"{kind}List",
            **listing,
            "metadata": {"resourceVersion": str(next(_versions))},
        }

    def _maybe_table(self, request: rendering.Request, objects: list[dict[str, Any]]) -> dict[str, Any]:
        """Server-side printing (kubectl get): NAME, the CRD's printer columns, AGE as a duration."""
        plural = request.resource.plural if request.resource else ""
        columns = self.printer_columns.get(plural or "") or [
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
        ]
        definitions = [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}]
        definitions += [
            {"name": c["name"], "type": c["type"], "format": "", "description": "", "priority": c.get("priority", 0)}
            for c in columns
        ]
        rows = [
            {
                "cells": [o["metadata"]["name"], *(_cell(o, c) for c in columns)],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
            }
            for o in objects
        ]
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(next(_versions))},
            "columnDefinitions": definitions,
            "rows": rows,
        }


# kopf's namespaced peering resource, for replicas of one shard that stand by for each other.
PEERING_CRD = {
    "spec": {
        "group": "kopf.dev",
        "scope": "Namespaced",
        "names": {"plural": "kopfpeerings", "singular": "kopfpeering", "kind": "KopfPeering"},
        "versions": [{"name": "v1"}],
    }
}


def declare(emulator: KubeEmulator, crd_docs: list[dict[str, Any]]) -> None:
    """Serve our CRDs' resources plus what kopf and the operator need from the core."""
    verbs = ["create", "delete", "get", "list", "patch", "watch"]
    for doc in crd_docs:
        spec = doc["spec"]
        version = spec["versions"][0]
        info = emulator.resources[f"{spec['group']}/{version['name']}/{spec['names']['plural']}"]
        info.kind, info.singular = spec["names"]["kind"], spec["names"]["singular"]
        info.namespaced = spec["scope"] == "Namespaced"
        info.verbs, info.shortnames = set(verbs), set(spec["names"].get("shortNames", []))
        info.categories = set(spec["names"].get("categories", []))
        info.subresources = set(version.get("subresources", {}))
        emulator.printer_columns[spec["names"]["plural"]] = version.get("additionalPrinterColumns", [])
    for key, kind, namespaced in (
        ("apiextensions.k8s.io/v1/customresourcedefinitions", "CustomResourceDefinition", False),
        ("v1/namespaces", "Namespace", False),
        ("v1/events", "Event", True),
        ("v1/configmaps", "ConfigMap", True),
    ):
        info = emulator.resources[key]
        info.kind, info.namespaced, info.verbs = kind, namespaced, set(verbs)


class EmulatorThread:
    """Runs the emulator over real HTTP on 127.0.0.1 in a background thread with its own loop."""

    def __init__(self, crd_docs: list[dict[str, Any]]) -> None:
        self.crd_docs = crd_docs
        self.url = ""
        self.emulator: KubeEmulator | None = None
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with KubeEmulator() as emulator, apps.Server(emulator) as server:
            declare(emulator, self.crd_docs)
            self.emulator, self.url = emulator, str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Kubernetes API emulator did not start")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def requests(self) -> list[Request]:
        """Every resource request served so far (discovery included, with an empty resource)."""
        assert self.emulator is not None
        made = []
        for request in list(self.emulator._requests):  # kmock 0.8 keeps them here
            if request.resource is None or request.action not in VERBS:
                continue
            plural = request.resource.plural or ""
            resource = plural + (f"/{request.subresource}" if plural and request.subresource else "")
            made.append(
                Request(
                    verb=VERBS[request.action],
                    group=request.resource.group or "",
                    resource=resource,
                    namespace=request.namespace,
                    user_agent=request.headers.get("User-Agent", ""),
                )
            )
        return made

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "emulator",
                    "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                    "users": [{"name": "nobody", "user": {}}],
                    "contexts": [
                        {
                            "name": "emulator",
                            "context": {"cluster": "emulator", "user": "nobody", "namespace": "default"},
                        }
                    ],
                }
            )
        )
        return path
