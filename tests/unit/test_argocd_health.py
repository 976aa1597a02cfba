"""The Argo CD health check, executed as Argo CD does: Lua with a global `obj`, returning a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

lupa = pytest.importorskip("lupa")

ROOT = Path(__file__).parents[2]
KEY = "resource.customizations.health.ecsjob.io_EcsJob"
SCRIPT = yaml.safe_load((ROOT / "manifests" / "argocd" / "argocd-cm-patch.yaml").read_text())["data"][KEY]


def health(obj: dict[str, Any]) -> dict[str, Any]:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return dict(result)


def job(phase: str | None, generation: int = 1, observed: int | None = 1, message: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase is not None:
        status = {"phase": phase, "message": message or f"the job is {phase}"}
        if observed is not None:
            status["observedGeneration"] = observed
    return {
        "apiVersion": "ecsjob.io/v1alpha1",
        "kind": "EcsJob",
        "metadata": {"name": "j", "generation": generation},
        "status": status,
    }


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Succeeded", "Healthy"),
        ("Failed", "Degraded"),
        ("Invalid", "Degraded"),
        ("Suspended", "Suspended"),
        ("Running", "Progressing"),
        ("Pending", "Progressing"),
    ],
)
def test_each_phase(phase: str, expected: str) -> None:
    result = health(job(phase, message="2/3 task(s) succeeded"))
    assert result == {"status": expected, "message": "2/3 task(s) succeeded"}


def test_no_status_yet_is_progressing() -> None:
    assert health(job(None))["status"] == "Progressing"


def test_a_newer_generation_not_yet_observed_is_progressing() -> None:
    result = health(job("Invalid", generation=2, observed=1))
    assert result["status"] == "Progressing" and "generation 2" in result["message"]


def test_a_finished_job_edited_later_stays_healthy_or_degraded(tmp_path: Path) -> None:
    """The operator observes the new generation of a finished job, so health does not hang in Progressing."""
    from ecsjob_operator.engine.engine import Engine
    from ecsjob_operator.kube.runtime import JobRuntime, status_patch
    from ecsjob_operator.local.backend import LocalBackend

    runtime = JobRuntime(Engine(LocalBackend(tmp_path), "heimdall-job"))
    for phase, condition, expected in (("Succeeded", "Complete", "Healthy"), ("Failed", "Failed", "Degraded")):
        obj = job(phase, generation=2, observed=1)
        obj["metadata"].update(uid=f"u-{phase}", namespace="ns")
        obj["spec"] = {"suspend": True}
        obj["status"]["conditions"] = [
            {
                "type": condition,
                "status": "True",
                "reason": "R",
                "message": "m",
                "lastTransitionTime": "2026-11-26T12:00:00Z",
            }
        ]
        assert health(obj)["status"] == "Progressing"  # before the operator saw the edit
        result = runtime.sync(obj, [], [])
        obj["status"].update(status_patch(obj["status"], result.status.wire()))
        assert health(obj)["status"] == expected
