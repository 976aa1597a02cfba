"""JobRuntime's scheduling: what the operator's 1 s timer does with each job (on the local backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecsjob_operator.engine.engine import Engine
from ecsjob_operator.kube.runtime import JobRuntime, status_patch
from ecsjob_operator.local.backend import LocalBackend


def body(status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "ns", "uid": "u-1", "generation": generation},
        "spec": {
            "command": {
                "taskDefinition": {"family": "f", "containerDefinitions": [{"name": "main", "command": ["true"]}]},
                "cpu": 256,
                "memory": 512,
                "pollingInterval": "1h",
            },
            "cluster": {"clusterName": "local"},
        },
        "status": status or {},
    }


def test_a_prepared_job_is_due_at_once_then_at_its_polling_interval(tmp_path: Path) -> None:
    runtime = JobRuntime(Engine(LocalBackend(tmp_path), "heimdall-job"))
    assert runtime.is_due(body())
    prepared = runtime.sync(body(), [], [])
    assert prepared.status.phase == "Pending"
    status = prepared.status.wire()
    assert runtime.is_due(body(status))  # the first launch does not wait for the polling interval
    launched = runtime.sync(body(status), [], [])
    assert launched.status.phase == "Running"
    running = launched.status.wire()
    assert not runtime.is_due(body(running))  # next poll in an hour
    assert runtime.is_due(body(running, generation=2))  # a spec edit (suspend) is handled at once


def test_status_patch_holds_changes_and_removals_only() -> None:
    old = {"phase": "Running", "active": 2, "logs": {"stream": "s"}, "kopf": {"x": 1}}
    new = {"phase": "Running", "active": 1, "succeeded": 1}
    assert status_patch(old, new) == {"active": 1, "succeeded": 1, "logs": None}


def test_an_unexpected_error_is_shown_once_and_backed_off(tmp_path: Path) -> None:
    runtime = JobRuntime(Engine(LocalBackend(tmp_path), "heimdall-job"))
    corrupt = body({"phase": "Running", "tasks": "written by hand", "observedGeneration": 1})
    first = runtime.sync(corrupt, [], [])
    progressing = next(c for c in first.status.conditions or [] if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("True", "ReconcileError")
    assert "ValidationError" in progressing.message and first.status.phase == "Pending"
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "ReconcileError")]
    assert not runtime.is_due(corrupt)  # backing off, not every tick
    again = runtime.sync(corrupt, [], [])
    assert again.events == [] and again.status.phase == "Pending"  # one Event per run of errors
    assert not list(tmp_path.glob("tasks/*"))


def test_an_edit_after_the_end_is_observed_and_ignored(tmp_path: Path) -> None:
    runtime = JobRuntime(Engine(LocalBackend(tmp_path), "heimdall-job"))
    done = {
        "phase": "Succeeded",
        "observedGeneration": 1,
        "conditions": [
            {"type": "Complete", "status": "True", "reason": "AllTasksSucceeded", "message": "all 1 task(s) succeeded",
             "lastTransitionTime": "2026-11-26T12:00:00Z"},
            {"type": "Progressing", "status": "False", "reason": "AllTasksSucceeded",
             "message": "all 1 task(s) succeeded", "lastTransitionTime": "2026-11-26T12:00:00Z"},
        ],
    }  # fmt: skip
    assert runtime.sync(body(done), [], []).events == []  # unedited: nothing to do
    edited = runtime.sync(body(done, generation=2), [], [])
    assert edited.status.observed_generation == 2 and edited.status.phase == "Succeeded"
    progressing = next(c for c in edited.status.conditions or [] if c.type == "Progressing")
    assert progressing.status == "False" and "edits after the end are ignored (generation 2)" in progressing.message
    assert [e.reason for e in edited.events] == ["EditIgnored"]
    assert not list(tmp_path.glob("tasks/*")) and not list(tmp_path.glob("taskdefs/*"))


def test_a_body_older_than_the_last_write_is_not_acted_on(tmp_path: Path) -> None:
    """The next tick may carry a body that does not show the status just written: no second transition."""
    runtime = JobRuntime(Engine(LocalBackend(tmp_path), "heimdall-job"))
    prepared = runtime.sync(body(), [], [])
    assert [e.reason for e in prepared.events] == ["Prepared"]
    stale = runtime.sync(body(), [], [])  # the status write is not visible yet (in flight)
    assert stale.events == [] and stale.deferred
    assert stale.status.wire() == {}  # nothing decided anew, and nothing to write while it is in flight
    # the write did not land (no API server answers here): the next sync sends it again
    assert not runtime.write_status(body(), prepared.status.wire())
    lost = runtime.sync(body(), [], [])
    assert lost.events == [] and lost.deferred and lost.status.wire() == prepared.status.wire()
    fresh = runtime.sync(body(prepared.status.wire()), [], [])  # now it is
    assert fresh.status.context is not None and "Prepared" not in [e.reason for e in fresh.events]
