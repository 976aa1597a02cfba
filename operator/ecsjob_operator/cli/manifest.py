"""The documents of one multi-document YAML file for `ecsjob run`: one EcsJob and what it refers to.

Read as the API server would read them: UTF-8, JSON values only, each document a mapping with
the one apiVersion of its kind, metadata a mapping, specs validated strictly (camelCase only,
no type coercion). Every problem becomes a FieldError with where it is; nothing raises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ecsjob_operator.api.models import API_VERSION, EcsCluster, EcsCommand
from ecsjob_operator.core.errors import FieldError, validate_all
from ecsjob_operator.core.taskdef import TemplateError, json_problems, parse_template

KINDS = {"EcsJob": API_VERSION, "EcsCommand": API_VERSION, "EcsCluster": API_VERSION, "ConfigMap": "v1"}
MAX_BYTES = 4 * 1024 * 1024  # a manifest larger than this is not one a person wrote
METADATA_STRINGS = ("name", "namespace", "uid")


def read_documents(path: Path) -> tuple[list[Any], list[FieldError]]:
    """The YAML documents of a file, or the one reason they cannot be read."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [FieldError(where, f"cannot read the manifest: {exc.strerror or exc}")]
    if len(raw) > MAX_BYTES:
        return [], [FieldError(where, f"is larger than {MAX_BYTES // (1024 * 1024)} MiB")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [FieldError(where, f"cannot read the manifest: not UTF-8 text (byte {exc.start})")]
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [], [FieldError(where, f"cannot read the manifest: not valid YAML: {' '.join(str(exc).split())}")]
    except RecursionError:
        return [], [FieldError(where, "cannot read the manifest: nested too deeply")]
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        return [], [FieldError(where, f"cannot read the manifest: not valid YAML: {exc}")]
    problems = [p for i, doc in enumerate(docs) for p in json_problems(doc, f"{path.name}[{i}]")]
    return docs, problems


class Manifest:
    """One EcsJob and the EcsCommands, EcsClusters and ConfigMaps beside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.job: dict[str, Any] = {}
        self.commands: list[EcsCommand] = []
        self.clusters: list[EcsCluster] = []
        self.config_maps: dict[str, dict[str, str]] = {}
        self.errors: list[FieldError] = []
        docs, self.errors = read_documents(path)
        if not self.errors:
            for i, doc in enumerate(docs):
                self._add(doc, f"{path.name}[{i}]")
            if not self.job:
                self.errors.append(FieldError(str(path), "holds no EcsJob document (kind: EcsJob)"))

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.job.get("metadata")
        return meta if isinstance(meta, dict) else {}

    def _add(self, doc: Any, where: str) -> None:
        if not isinstance(doc, dict):
            self.errors.append(FieldError(where, "must be a mapping (a Kubernetes object)"))
            return
        kind = doc.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            wanted = ", ".join(KINDS)
            self.errors.append(FieldError(f"{where}.kind", f"{kind!r} is not one of {wanted}"))
            return
        where = f"{where} {kind}"
        if doc.get("apiVersion", KINDS[kind]) != KINDS[kind]:  # a missing one means the current version
            got = doc.get("apiVersion")
            self.errors.append(FieldError(f"{where}.apiVersion", f"{got!r} is not {KINDS[kind]}"))
        problems = _metadata_problems(doc.get("metadata"), f"{where}.metadata", required=kind == "ConfigMap")
        self.errors += problems
        if problems:
            return
        if kind == "EcsJob":
            self._add_job(doc, where)
        elif kind == "EcsCommand":
            self._add_parsed(EcsCommand, doc, where, self.commands)
        elif kind == "EcsCluster":
            self._add_parsed(EcsCluster, doc, where, self.clusters)
        else:
            self._add_config_map(doc, where)

    def _add_job(self, doc: dict[str, Any], where: str) -> None:
        if self.job:
            self.errors.append(FieldError(where, "a manifest holds one EcsJob; this is a second one"))
            return
        extra = sorted(set(doc) - {"apiVersion", "kind", "metadata", "spec", "status"})
        if extra:
            self.errors.append(FieldError(where, f"unknown top-level field(s) {extra}"))
        if not isinstance(doc.get("spec"), dict):
            self.errors.append(FieldError(where, "spec must be a mapping"))
        self.job = doc

    def _add_parsed(self, model: type[Any], doc: dict[str, Any], where: str, into: list[Any]) -> None:
        parsed, errors = validate_all(model, doc, where)
        self.errors += errors
        if parsed is not None and not errors:
            into.append(parsed)

    def _add_config_map(self, doc: dict[str, Any], where: str) -> None:
        data = doc.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            self.errors.append(FieldError(f"{where}.data", "must map keys to strings"))
            return
        self.config_maps[doc["metadata"]["name"]] = data

    def load_template(self, kind: str, value: str) -> dict[str, Any]:
        """taskDefinitionFile (relative to the manifest) or taskDefinitionRef (a ConfigMap in the file)."""
        if kind == "file":
            try:
                return parse_template((self.path.parent / value).read_bytes(), "the file")
            except OSError as exc:
                raise TemplateError(f"cannot load the task definition from {value}: {exc.strerror or exc}") from None
            except TemplateError as exc:
                raise TemplateError(f"cannot load the task definition from {value}: {exc}") from None
        name, key = value.split("/", 1)
        if name not in self.config_maps or key not in self.config_maps[name]:
            raise TemplateError(f"ConfigMap {name} with key {key} is not in {self.path.name}")
        return parse_template(self.config_maps[name][key], f"ConfigMap {name} key {key!r}")


def _metadata_problems(meta: Any, where: str, required: bool) -> list[FieldError]:
    if meta is None:
        return [FieldError(f"{where}.name", "is required")] if required else []
    if not isinstance(meta, dict):
        return [FieldError(where.rsplit(".", 1)[0], "metadata must be a mapping")]
    errors = [
        FieldError(f"{where}.{key}", "must be a string")
        for key in METADATA_STRINGS
        if key in meta and (not isinstance(meta[key], str) or not meta[key])
    ]
    if required and "name" not in meta:
        errors.append(FieldError(f"{where}.name", "is required"))
    return errors
