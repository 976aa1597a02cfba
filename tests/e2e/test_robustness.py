"""End-to-end: every input and every AWS answer gives an EcsJob a phase, a message and an Event; the
operator survives a status written by hand; a finished job still observes its edits."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from support.fargate import FakeFargate
from support.jobs import TEMPLATE, ecsjob
from support.moto_server import MotoServer
from support.operator_env import Kube, OperatorProcess, wait_for


def name() -> str:
    return f"rob-{uuid.uuid4().hex[:8]}"


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def unique_template() -> dict[str, Any]:
    """A task definition no earlier test registered (the operator reuses identical ones)."""
    template = copy.deepcopy(TEMPLATE)
    template["family"] = f"fam-{uuid.uuid4().hex[:8]}"
    return template


def test_access_denied_fails_the_job_once(
    kube: Kube, operator: OperatorProcess, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    job = name()
    before = moto_server.calls["RegisterTaskDefinition"]
    moto_server.inject("RegisterTaskDefinition", "error:AccessDeniedException:400")
    kube.create("ecsjobs", ecsjob(job, fargate, command={"taskDefinition": unique_template()}))
    status = kube.wait_phase(job, "Failed")
    failed = condition(status, "Failed")
    assert failed["reason"] == "AwsRejected" and "RegisterTaskDefinition" in failed["message"]
    events = wait_for(lambda: [e for e in kube.events(job) if e.reason == "AwsRejected"], what="the Warning")
    assert events[0].type == "Warning"
    kube.patch_job(job, {"metadata": {"labels": {"poke": "1"}}})  # any later tick must not call AWS again
    wait_for(lambda: kube.status(job).get("phase") == "Failed", what="the job to stay Failed")
    assert moto_server.calls["RegisterTaskDefinition"] - before == 1
    assert len([e for e in kube.events(job) if e.reason == "AwsRejected"]) == 1


def test_an_out_of_range_timeout_is_invalid_and_launches_nothing(
    kube: Kube, operator: OperatorProcess, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    job = name()
    runs = moto_server.calls["RunTask"]
    kube.create("ecsjobs", ecsjob(job, fargate, timeout="99999999h"))
    status = kube.wait_phase(job, "Invalid")
    assert 'spec.context.timeout: "99999999h" must be between 1s and 720h' in condition(status, "Invalid")["message"]
    assert moto_server.calls["RunTask"] == runs


def test_a_malformed_task_definition_is_invalid_with_its_path(
    kube: Kube, operator: OperatorProcess, fargate: FakeFargate
) -> None:
    job = name()
    template = unique_template()
    template["containerDefinitions"][0]["environment"] = [{"value": "x"}]
    template["containerDefinitions"][0]["command"] = "echo hi"
    kube.create("ecsjobs", ecsjob(job, fargate, command={"taskDefinition": template}))
    message = condition(kube.wait_phase(job, "Invalid"), "Invalid")["message"]
    assert "spec.command.taskDefinition.containerDefinitions[0].command: must be a list of strings" in message
    assert "spec.command.taskDefinition.containerDefinitions[0].environment[0].name: must be a non-empty" in message


def test_a_status_written_by_hand_gives_reconcile_error_not_silence(
    kube: Kube, operator: OperatorProcess, fargate: FakeFargate
) -> None:
    job = name()
    kube.create("ecsjobs", ecsjob(job, fargate, command={"taskDefinition": unique_template()}))
    # once a poll has seen the task RUNNING the operator has nothing more to write (a write in flight from
    # an older body would otherwise replace the garbage with the right tasks, and heal it silently)
    wait_for(lambda: (kube.status(job).get("tasks") or [{}])[0].get("lastStatus") == "RUNNING", what="a poll")
    kube.custom.patch_namespaced_custom_object_status(
        "ecsjob.io", "v1alpha1", "default", "ecsjobs", job, {"status": {"tasks": "garbage"}}
    )
    status = wait_for(
        lambda: condition(s := kube.status(job), "Progressing").get("reason") == "ReconcileError" and s,
        what="ReconcileError",
    )
    assert status.get("phase") and "ValidationError" in condition(status, "Progressing")["message"]
    warnings = wait_for(lambda: [e for e in kube.events(job) if e.reason == "ReconcileError"], what="the Warning")
    assert len(warnings) == 1 and warnings[0].type == "Warning"


def test_a_finished_job_observes_later_edits(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    kube.create("ecsjobs", ecsjob(job, fargate))
    status = wait_for(lambda: (s := kube.status(job)).get("active") == 1 and s, what="a running task")
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    kube.wait_phase(job, "Succeeded")
    kube.patch_job(job, {"spec": {"context": {"maxFailCount": 5}}})
    status = wait_for(lambda: (s := kube.status(job)).get("observedGeneration") == 2 and s, what="generation 2")
    assert status["phase"] == "Succeeded"
    assert "edits after the end are ignored" in condition(status, "Progressing")["message"]
    assert wait_for(lambda: [e for e in kube.events(job) if e.reason == "EditIgnored"], what="the Event")
