"""The Kubernetes side's adapter: an EcsJob body in, the engine's result out.

It reads ConfigMaps with the kubernetes client and knows the resource's shape; it imports
neither kopf (handlers.py does) nor boto3 (the engine's backend does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ecsjob_operator import __version__
from ecsjob_operator.api.models import GROUP, VERSION, EcsCluster, EcsCommand, EcsJobStatus, SelectionView
from ecsjob_operator.core.backoff import backoff_seconds
from ecsjob_operator.core.decide import Event, JobRef
from ecsjob_operator.core.lifecycle import (
    is_due,
    is_edited,
    is_finished,
    needs_preparing,
    next_poll_seconds,
    waits_for_catalog,
)
from ecsjob_operator.core.redaction import redact_text
from ecsjob_operator.core.selection import chosen
from ecsjob_operator.core.status import EDIT_IGNORED, mark_reconcile_error, note_ignored_edit
from ecsjob_operator.core.taskdef import TemplateError, parse_template
from ecsjob_operator.engine.engine import Catalog, Engine, LoadTemplate, StepResult, utcnow

log = logging.getLogger(__name__)
USER_AGENT = f"ecsjob-operator/{__version__}"
# How long a body may lag behind the status this process wrote before the write counts as lost
# (a failed patch is retried by kopf; someone else's write wins after this).
EXPECTATION_SECONDS = 60.0
# A write that landed but is not in the body after this long was overwritten by someone: sent again.
RESEND_SECONDS = 10.0


def parse_all(model: type[EcsCommand] | type[EcsCluster], bodies: Iterable[Mapping[str, Any]]) -> list[Any]:
    """Valid EcsCommands / EcsClusters; an invalid one is skipped (and logged), never selected."""
    parsed = []
    for body in bodies:
        try:
            parsed.append(model.model_validate(dict(body)))
        except ValidationError as exc:
            name = body.get("metadata", {}).get("name")
            log.warning("ignoring invalid %s %s: %s", model.__name__, name, exc.errors()[0]["msg"])
    return parsed


def status_patch(old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch from the old status to the new one: changed keys, and null for removed ones."""
    patch = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new and k != "kopf"})
    return patch


def fingerprint(bodies: Iterable[Mapping[str, Any]]) -> str:
    """Identifies a state of the EcsCommand/EcsCluster catalog (names and resourceVersions)."""
    keys = sorted(
        f"{b.get('kind')}/{b['metadata'].get('namespace')}/{b['metadata'].get('name')}@{b['metadata'].get('resourceVersion')}"
        for b in bodies
    )
    return "|".join(keys)


class JobRuntime:
    """Prepares, steps and stops EcsJobs for the operator, one engine for all of them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._client: Any = None  # the kubernetes ApiClient, made on first use
        self._catalogs: dict[str, str] = {}  # uid -> the EcsCommands/EcsClusters it was last resolved against
        self._due: dict[str, float] = {}  # uid -> monotonic time of its next poll
        self._errors: dict[str, int] = {}  # uid -> consecutive unexpected errors
        self._written: dict[str, tuple[dict[str, Any], float]] = {}  # uid -> the status last written, when
        self._unsent: set[str] = set()  # uids whose last write did not land
        self._swept = time.monotonic()

    def ref(self, body: Mapping[str, Any]) -> JobRef:
        meta = body["metadata"]
        return self.engine.job_ref(meta["name"], meta.get("namespace") or "default", meta["uid"])

    def sync(
        self, body: Mapping[str, Any], commands: Iterable[Mapping[str, Any]], clusters: Iterable[Mapping[str, Any]]
    ) -> StepResult:
        """Prepare a new (or re-edited invalid) job, else step it; an unexpected error is shown, not raised.
        A body older than the status this process last wrote is not acted on (expectations, as the Job
        controller keeps them): every transition is decided, and posted as an Event, once. A write in flight
        is waited for; one that failed, or that someone overwrote, is sent again."""
        uid = body["metadata"]["uid"]
        if self._behind(uid, body):
            written, at = self._written[uid]
            if uid not in self._unsent and time.monotonic() - at < RESEND_SECONDS:  # in flight: just wait
                return StepResult(EcsJobStatus.model_validate(dict(body.get("status") or {})), [], deferred=True)
            return StepResult(EcsJobStatus.model_validate(written), [], deferred=True)
        try:
            result = self._sync(body, list(commands), list(clusters))
        except Exception as exc:  # a bug, or a status a user wrote by hand: never a silent retry loop
            return self._failed(body, exc)
        self._errors.pop(uid, None)
        now = time.monotonic()
        self._written[uid] = (result.status.wire(), now)  # finished too: a stale tick must not finish it twice
        if now - self._swept > EXPECTATION_SECONDS:  # expectations past their time are forgotten
            self._written = {k: v for k, v in self._written.items() if now - v[1] <= EXPECTATION_SECONDS}
            self._swept = now
        return result

    def _behind(self, uid: str, body: Mapping[str, Any]) -> bool:
        """Whether the body does not show the status this process wrote last (yet)."""
        written = self._written.get(uid)
        if written is None or time.monotonic() - written[1] > EXPECTATION_SECONDS:  # a lost write: go on
            return False
        raw = body.get("status") or {}
        try:
            seen = EcsJobStatus.model_validate(dict(raw)).wire()
        except (ValidationError, TypeError, ValueError):
            return False  # unreadable: sync reports it
        if seen != written[0]:
            log.debug("%s: the body lags behind our last status write (%s)", uid, sorted(
                k for k in set(seen) | set(written[0]) if seen.get(k) != written[0].get(k)))  # fmt: skip
            return True
        return False

    def _sync(
        self, body: Mapping[str, Any], commands: list[Mapping[str, Any]], clusters: list[Mapping[str, Any]]
    ) -> StepResult:
        meta, raw = body["metadata"], body.get("spec") or {}
        spec = dict(raw) if isinstance(raw, Mapping) else {"invalid": raw}  # reported as an unknown field
        status = EcsJobStatus.model_validate(dict(body.get("status") or {}))
        job, generation = self.ref(body), meta.get("generation")
        catalog = fingerprint(commands + clusters)
        edited = is_edited(generation, status.observed_generation)
        if is_finished(status.phase) and status.phase != "Invalid":
            if not edited:
                return StepResult(status, [])
            noted = note_ignored_edit(status, generation, utcnow())
            return StepResult(noted, [Event("Normal", "EditIgnored", f"generation {generation}: {EDIT_IGNORED}")])
        unchanged = not waits_for_catalog(status) or self._catalogs.get(job.uid) == catalog
        if status.phase == "Invalid" and not edited and unchanged:
            return StepResult(status, [])
        self._catalogs[job.uid] = catalog
        if needs_preparing(status):
            fresh = EcsJobStatus(conditions=status.conditions)
            resolvable = self._selected(job.namespace, spec, commands, clusters)
            fresh.next_retry_time, fresh.prepare_failures = status.next_retry_time, status.prepare_failures
            fresh.start_time = status.start_time
            prepared = self.engine.prepare(job, spec, fresh, resolvable, generation)
            if prepared.status.context is not None:
                self._due[job.uid] = 0.0  # launch at the next tick, not a polling interval later
            else:
                self._schedule(job.uid, prepared)  # a backoff, or finished
            return prepared
        if not self.engine.is_sealed(job, status):  # edited by hand, an older version's, or another key's
            resealed = self.engine.reseal(job, spec, status, self._selected(job.namespace, spec, commands, clusters))
            resealed.status.observed_generation = status.observed_generation  # a spec edit is still seen
            self._schedule(job.uid, resealed)
            return resealed
        result = self.engine.step(job, status, suspend=bool(spec.get("suspend")))
        result.status.observed_generation = generation
        self._schedule(job.uid, result)
        return result

    def _failed(self, body: Mapping[str, Any], exc: Exception) -> StepResult:
        """ReconcileError on Progressing, one Warning Event per run of errors, a backoff before the next try."""
        uid = body["metadata"]["uid"]
        failures = self._errors[uid] = self._errors.get(uid, 0) + 1
        delay = backoff_seconds(failures, uid)
        self._due[uid] = time.monotonic() + delay
        log.error("reconciling %s failed", self.ref(body).label, exc_info=exc)
        try:
            status = EcsJobStatus.model_validate(dict(body.get("status") or {}))
        except (ValidationError, TypeError, ValueError):
            status = EcsJobStatus()  # unreadable: the fields we write replace it
        error = f"{type(exc).__name__}: {redact_text(str(exc))[:300]}"
        st = mark_reconcile_error(status, error, delay, utcnow())
        return StepResult(st, [Event("Warning", "ReconcileError", error)] if failures == 1 else [])

    def is_due(self, body: Mapping[str, Any]) -> bool:
        """Whether the job should be synced now (core.lifecycle.is_due)."""
        return self.due_in(body) <= 0.0

    def due_in(self, body: Mapping[str, Any]) -> float:
        """Seconds until the job is due (0: now): its next poll, a backoff or deadline, at once after an edit."""
        meta, status = body["metadata"], body.get("status") or {}
        now, due_at = time.monotonic(), self._due.get(meta["uid"], 0.0)
        if meta["uid"] in self._errors:  # backing off after an unexpected error
            return max(0.0, due_at - now)
        edited = is_edited(meta.get("generation"), status.get("observedGeneration"))
        return 0.0 if is_due(status.get("phase"), edited, now, due_at) else due_at - now

    def delete_job(self, body: Mapping[str, Any]) -> bool:
        """Delete the EcsJob (ttlSecondsAfterFinished); True when it is gone or going."""
        meta = body["metadata"]
        api = self._kubernetes("CustomObjectsApi")
        try:
            api.delete_namespaced_custom_object(
                GROUP, VERSION, meta.get("namespace") or "default", "ecsjobs", meta["name"]
            )
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return True
            log.warning(
                "cannot delete %s: %s", self.ref(body).label, getattr(exc, "status", None) or type(exc).__name__
            )
            return False
        return True

    def write_status(self, body: Mapping[str, Any], patch: dict[str, Any]) -> bool:
        """Merge-patch the job's status subresource; False when it did not land (sent again: expectations)."""
        meta = body["metadata"]
        api = self._kubernetes("CustomObjectsApi")
        try:
            api.patch_namespaced_custom_object_status(
                GROUP, VERSION, meta.get("namespace") or "default", "ecsjobs", meta["name"], {"status": patch}
            )
        except Exception as exc:  # deleted meanwhile, or the API is unreachable: the next sync sends it again
            why = getattr(exc, "status", None) or type(exc).__name__
            log.warning("cannot write the status of %s: %s", self.ref(body).label, why)
            self._unsent.add(meta["uid"])
            return False
        self._unsent.discard(meta["uid"])
        return True

    def _schedule(self, uid: str, result: StepResult) -> None:
        if result.deferred:
            self._due[uid] = 0.0  # more launches wait: at the next tick, after other jobs' turns
        elif result.finished:
            self._due.pop(uid, None)
            self._catalogs.pop(uid, None)
        else:
            self._due[uid] = time.monotonic() + next_poll_seconds(result.status, utcnow())

    def delete(self, body: Mapping[str, Any]) -> list[Event]:
        """Stop every running task of a job being deleted."""
        status = EcsJobStatus.model_validate(dict(body.get("status") or {}))
        job = self.ref(body)
        events = self.engine.stop_all(job, status, f"ecsjob: job {job.label} deleted")
        self.engine.forget(job)
        self._catalogs.pop(job.uid, None)
        self._due.pop(job.uid, None)
        self._errors.pop(job.uid, None)
        self._written.pop(job.uid, None)
        self._unsent.discard(job.uid)
        return events

    def _loader(self, namespace: str) -> LoadTemplate:
        def load(kind: str, value: str) -> dict[str, Any]:
            if kind == "file":
                raise TemplateError(
                    "taskDefinitionFile works with `ecsjob run` only; in a cluster use "
                    "taskDefinition or taskDefinitionRef"
                )
            name, key = value.split("/", 1)
            try:
                data = self._config_map(name, namespace)
            except Exception as exc:  # the API's 404/403 and connection errors alike
                status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
                why = f"{status} {reason}" if status else type(exc).__name__
                raise TemplateError(f"cannot read ConfigMap {namespace}/{name}: {why}") from exc
            if key not in data or not isinstance(data[key], str):
                raise TemplateError(f"ConfigMap {namespace}/{name} has no key {key!r}")
            return parse_template(data[key], f"ConfigMap {namespace}/{name} key {key!r}")

        return load

    def _config_map(self, name: str, namespace: str) -> Mapping[str, str]:
        api = self._kubernetes("CoreV1Api")
        return dict(api.read_namespaced_config_map(name, namespace).data or {})

    def _full_body(self, view: SelectionView) -> dict[str, Any] | None:
        """The whole EcsCommand / EcsCluster a job selected (the index keeps only selection views)."""
        api = self._kubernetes("CustomObjectsApi")
        name, namespace = view.metadata.name, view.metadata.namespace
        try:
            if view.kind == "EcsCluster":
                return dict(api.get_cluster_custom_object(GROUP, VERSION, "ecsclusters", name))
            return dict(api.get_namespaced_custom_object(GROUP, VERSION, namespace, "ecscommands", name))
        except Exception as exc:  # deleted meanwhile, or the API is unreachable: resolved again later
            log.warning("cannot read %s %s: %s", view.kind, name, getattr(exc, "reason", None) or type(exc).__name__)
            return None

    def _kubernetes(self, api: str) -> Any:
        import kubernetes

        if self._client is None:
            self._client = kubernetes.client.ApiClient()
            self._client.user_agent = USER_AGENT
        return getattr(kubernetes.client, api)(self._client)

    def _selected(self, namespace: str, spec: Mapping[str, Any], commands: list[Any], clusters: list[Any]) -> Catalog:
        """The catalog a job resolves against: the full bodies of the contexts its criteria select."""
        views = [_view(b) for b in commands], [_view(b) for b in clusters]
        command_views = [v for v in views[0] if v is not None]
        cluster_views = [v for v in views[1] if v is not None]
        full: dict[str, list[Any]] = {"EcsCommand": [], "EcsCluster": []}
        while True:  # an invalid body is never selected: choose again without it
            picked = chosen(namespace, _strings(spec.get("commandCriteria")), _strings(spec.get("clusterCriteria")),
                            command_views, cluster_views)  # fmt: skip
            dropped = False
            for view in [*picked[0], *picked[1]]:
                model = EcsCommand if view.kind == "EcsCommand" else EcsCluster
                body = self._full_body(view)
                parsed = parse_all(model, [body] if body is not None else [])
                if parsed:
                    full[view.kind] = parsed
                else:
                    (command_views if view.kind == "EcsCommand" else cluster_views).remove(view)
                    dropped = True
            if not dropped:
                return Catalog(full["EcsCommand"], full["EcsCluster"], self._loader(namespace))


def selection_view(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator's indexes keep of an EcsCommand or EcsCluster (not its task definition)."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    keep_meta = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    keep_spec = ("tags", "status", "version", "clusterTags", "allowedNamespaces")
    return {
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in keep_meta if k in meta},
        "spec": {k: spec[k] for k in keep_spec if k in spec} if isinstance(spec, Mapping) else {},
    }


def _view(body: Mapping[str, Any]) -> SelectionView | None:
    try:
        return SelectionView.model_validate(dict(body))
    except ValidationError:
        return None


def _strings(value: Any) -> list[str] | None:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None
