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
