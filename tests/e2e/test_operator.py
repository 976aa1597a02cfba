"""End-to-end: EcsJobs created through the kubernetes client, run by the operator process on moto."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

from ecsjob_operator.core.identity import job_id
from support.fargate import FakeFargate
from support.jobs import TEMPLATE, cluster_ctx, ecsjob
from support.operator_env import Kube, OperatorProcess, wait_for


def name() -> str:
    return f"job-{uuid.uuid4().hex[:8]}"


def manifest(job_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "ecsjob.io/v1alpha1", "kind": "EcsJob", "metadata": {"name": job_name}, "spec": spec}


def tasks_of(fargate: FakeFargate, job: dict[str, Any]) -> list[Any]:
    """The moto tasks of one job (the tier shares one moto state), by the startedBy prefix."""
    prefix = f"heimdall-job-{job_id(job['metadata']['uid'])}-"
    return [t for t in fargate.tasks() if (t.started_by or "").startswith(prefix)]


def live(tasks: list[Any]) -> list[Any]:
    return [t for t in tasks if t.last_status != "STOPPED"]


def running_tasks(fargate: FakeFargate, status: dict[str, Any]) -> list[str]:
    return [t["taskName"] for t in status.get("tasks", []) if t.get("phase") == "Running"]


def test_success_with_three_tasks(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    kube.create("ecsjobs", ecsjob(job, fargate, taskCount=3))
    status = wait_for(lambda: len(running_tasks(fargate, s := kube.status(job))) == 3 and s, what="3 running tasks")
    assert status["phase"] == "Running" and status["jobId"] and status["progress"] == "0/3"
    for task in status["tasks"]:
        fargate.finish_index(task["taskName"], 0)
    done = kube.wait_phase(job, "Succeeded", "Failed")
    assert done["phase"] == "Succeeded" and done["succeeded"] == 3 and done["progress"] == "3/3"
    assert {c["type"]: c["status"] for c in done["conditions"]}["Complete"] == "True"
    assert done["logs"]["stream"].startswith("ecs/main/") and done["observedGeneration"] == 1
    assert "production" not in json.dumps(done)  # environment values never reach status
    events = wait_for(lambda: (r := [e.reason for e in kube.events(job)]) and "Completed" in r and r, what="events")
    assert events.count("TaskLaunched") == 3


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def test_retry_then_success(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    kube.create("ecsjobs", ecsjob(job, fargate, taskCount=1, maxFailCount=2))
    status = wait_for(lambda: running_tasks(fargate, s := kube.status(job)) and s, what="a running task")
    first = fargate.finish_index(status["tasks"][0]["taskName"], 1)
    status = wait_for(
        lambda: (s := kube.status(job)).get("retries") == 1 and running_tasks(fargate, s) and s, what="the retry"
    )
    assert status["failedArns"] == [first] and status["tasks"][0]["attempts"] == 2
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    done = kube.wait_phase(job, "Succeeded", "Failed")
    assert done["phase"] == "Succeeded" and done["retries"] == 1 and done["failedArns"] == [first]


def test_retries_exhausted_fail_the_job_and_stop_the_others(
    kube: Kube, operator: OperatorProcess, fargate: FakeFargate
) -> None:
    job = name()
    created = kube.create("ecsjobs", ecsjob(job, fargate, taskCount=2, maxFailCount=0))
    status = wait_for(lambda: len(running_tasks(fargate, s := kube.status(job))) == 2 and s, what="2 running tasks")
    fargate.finish_index(status["tasks"][0]["taskName"], 3)
    done = kube.wait_phase(job, "Succeeded", "Failed")
    assert done["phase"] == "Failed" and condition(done, "Failed")["reason"] == "MaxFailCountExceeded"
    assert live(tasks_of(fargate, created)) == []
    assert done["tasks"][0]["exitCode"] == 3 and done["tasks"][1]["phase"] == "Stopped"
    assert done["logs"]["taskArn"] == done["tasks"][0]["arn"]


def test_timeout(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    created = kube.create("ecsjobs", ecsjob(job, fargate, taskCount=2, timeout="2s"))
    done = kube.wait_phase(job, "Succeeded", "Failed", timeout=20)
    assert done["phase"] == "Failed" and condition(done, "Failed")["reason"] == "Timeout"
    tasks = tasks_of(fargate, created)
    assert len(tasks) == 2 and live(tasks) == []


def test_invalid_spec_then_fixed(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    body = ecsjob(
        job,
        fargate,
        cpu=300,
        timeout="1 hour",
        containerOverrides=[{"name": "main", "environment": [{"name": "TASK_NAME", "value": "x"}]}],
    )
    created = kube.create("ecsjobs", body)
    status = kube.wait_phase(job, "Invalid")
    message = condition(status, "Invalid")["message"]
    assert 'spec.context.timeout: "1 hour" is not a valid duration' in message
    assert status["observedGeneration"] == 1 and tasks_of(fargate, created) == []
    warnings = wait_for(lambda: [e for e in kube.events(job) if e.reason == "InvalidSpec"], what="the Warning")
    assert warnings[0].type == "Warning" and "spec.context.timeout" in warnings[0].message
    kube.patch_job(job, {"spec": {"context": {"cpu": None, "timeout": "1h", "containerOverrides": None}}})
    status = wait_for(lambda: running_tasks(fargate, s := kube.status(job)) and s, what="the fixed job to run")
    assert status["observedGeneration"] == 2 and condition(status, "Invalid") == {}
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    assert kube.wait_phase(job, "Succeeded")["phase"] == "Succeeded"


def test_an_invalid_job_does_not_stop_others(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    bad, good = name(), name()
    kube.create(
        "ecsjobs",
        manifest(bad, {"commandCriteria": ["type:none"], "cluster": {"clusterName": "x"}}),
    )
    kube.create("ecsjobs", ecsjob(good, fargate))
    assert "no active EcsCommand" in condition(kube.wait_phase(bad, "Invalid"), "Invalid")["message"]
    status = wait_for(lambda: running_tasks(fargate, s := kube.status(good)) and s, what="the good job")
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    assert kube.wait_phase(good, "Succeeded")["phase"] == "Succeeded"


def selectable(
    kind: str, obj_name: str, tags: list[str], version: str, context: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "ecsjob.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": obj_name},
        "spec": {"tags": tags, "version": version, "context": context, **spec},
    }


def test_selection_by_criteria_among_versions(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    tag = f"team:{uuid.uuid4().hex[:6]}"
    for version, cpu in (("1.2.0", 512), ("1.10.0", 1024), ("1.9.9", 2048)):
        kube.create(
            "ecscommands",
            selectable(
                "EcsCommand",
                f"cmd-{tag[5:]}-{version.replace('.', '-')}",
                [tag],
                version,
                {"taskDefinition": TEMPLATE, "cpu": cpu, "memory": cpu * 2, "pollingInterval": "1s"},
                clusterTags=["env:test"],
            ),
        )
    kube.create(
        "ecscommands",
        selectable("EcsCommand", f"cmd-{tag[5:]}-off", [tag], "9.0.0", {"taskDefinition": TEMPLATE}, status="inactive"),
    )
    kube.create(
        "ecsclusters",
        # the cluster comes last and carries the job's unique tag: the job resolves only once it is indexed
        selectable("EcsCluster", f"cl-{tag[5:]}", ["type:fargate", "env:test", tag], "1.0.0", cluster_ctx(fargate)),
        namespace=None,
    )
    job = name()
    kube.create(
        "ecsjobs",
        manifest(job, {"commandCriteria": [tag], "clusterCriteria": ["type:fargate", tag]}),
    )
    status = wait_for(lambda: running_tasks(fargate, s := kube.status(job)) and s, what="the selected job")
    assert status["resolved"] == {"command": f"cmd-{tag[5:]}-1-10-0", "cluster": f"cl-{tag[5:]}"}
    assert status["context"]["cpu"] == 1024
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    assert kube.wait_phase(job, "Succeeded")["phase"] == "Succeeded"


def test_allowed_namespaces_refuse_others(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    tag = f"restricted:{uuid.uuid4().hex[:6]}"
    kube.create(
        "ecsclusters",
        selectable("EcsCluster", f"cl-{tag[11:]}", [tag], "1.0.0", cluster_ctx(fargate), allowedNamespaces=["finance"]),
        namespace=None,
    )
    job = name()
    created = kube.create(
        "ecsjobs",
        manifest(job, {"command": {"taskDefinition": TEMPLATE}, "clusterCriteria": [tag]}),
    )
    refusal = f"EcsCluster cl-{tag[11:]} matches but does not allow namespace default"
    # the operator may see the job before the cluster (then: no match), and re-resolves when the cluster appears
    wait_for(lambda: refusal in condition(kube.status(job), "Invalid").get("message", ""), what="the refusal")
    assert kube.status(job)["phase"] == "Invalid"
    assert tasks_of(fargate, created) == []


def test_delete_while_running_stops_tasks(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    created = kube.create("ecsjobs", ecsjob(job, fargate, taskCount=2))
    wait_for(lambda: len(running_tasks(fargate, kube.status(job))) == 2, what="2 running tasks")
    assert "ecsjob.io/stop-tasks" in (kube.job(job) or {})["metadata"]["finalizers"]
    kube.delete_job(job)
    wait_for(lambda: kube.job(job) is None, what="the object to go")
    tasks = tasks_of(fargate, created)
    assert len(tasks) == 2 and live(tasks) == []
    assert all("deleted" in t.stopped_reason for t in tasks)


def test_suspend_and_resume(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    created = kube.create("ecsjobs", ecsjob(job, fargate, taskCount=2))
    wait_for(lambda: len(running_tasks(fargate, kube.status(job))) == 2, what="2 running tasks")
    kube.patch_job(job, {"spec": {"suspend": True}})
    status = kube.wait_phase(job, "Suspended")
    assert live(tasks_of(fargate, created)) == [] and status["failedArns"] == [] and status["retries"] == 0
    kube.patch_job(job, {"spec": {"suspend": False}})
    status = wait_for(lambda: len(running_tasks(fargate, s := kube.status(job))) == 2 and s, what="resumed tasks")
    assert [t["attempts"] for t in status["tasks"]] == [2, 2] and status["retries"] == 0
    for task in status["tasks"]:
        fargate.finish_index(task["taskName"], 0)
    assert kube.wait_phase(job, "Succeeded")["failedArns"] == []


def test_operator_killed_mid_job_and_restarted(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    kube.create("ecsjobs", ecsjob(job, fargate, taskCount=3, maxFailCount=2))
    status = wait_for(lambda: len(running_tasks(fargate, s := kube.status(job))) == 3 and s, what="3 running tasks")
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    fargate.finish_index(status["tasks"][1]["taskName"], 5)
    operator.kill()  # SIGKILL: no cleanup, maybe mid-write
    operator.start()
    status = wait_for(
        lambda: (s := kube.status(job)).get("retries") == 1 and len(running_tasks(fargate, s)) == 2 and s,
        what="the restarted operator to retry task 1",
    )
    for task in status["tasks"][1:]:
        fargate.finish_index(task["taskName"], 0)
    done = kube.wait_phase(job, "Succeeded", "Failed")
    assert done["phase"] == "Succeeded"
    per_index = [len(fargate.by_started_by(t["taskName"])) for t in done["tasks"]]
    assert per_index == [1, 2, 1], "a duplicate task was launched"


def test_finished_jobs_are_not_polled(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job = name()
    uid = kube.create("ecsjobs", ecsjob(job, fargate))["metadata"]["uid"]
    status = wait_for(lambda: running_tasks(fargate, s := kube.status(job)) and s, what="a running task")
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    kube.wait_phase(job, "Succeeded")

    def invocations() -> int:
        lines = operator.log.read_text().splitlines()
        return sum(1 for line in lines if "syncing " in line and uid in line)

    seen = wait_for(lambda: invocations() or None, what="the job's syncs in the log")
    wait_for(lambda: "Daemon 'reconcile' has exited" in operator.log.read_text(), what="its daemon to stop")
    # Nothing can be awaited for an absence: watch a polling interval (1 s) and more.
    time.sleep(1.5)
    assert invocations() <= seen + 1  # at most the sync that was already running when it finished


def test_job_created_before_its_cluster_runs_once_the_cluster_exists(
    kube: Kube, operator: OperatorProcess, fargate: FakeFargate
) -> None:
    tag = f"late:{uuid.uuid4().hex[:6]}"
    job = name()
    kube.create(
        "ecsjobs",
        manifest(job, {"command": {"taskDefinition": TEMPLATE, "pollingInterval": "1s"}, "clusterCriteria": [tag]}),
    )
    invalid = kube.wait_phase(job, "Invalid")
    assert condition(invalid, "Invalid")["reason"] == "NoMatchingContext"
    kube.create(
        "ecsclusters", selectable("EcsCluster", f"cl-{tag[5:]}", [tag], "1.0.0", cluster_ctx(fargate)), namespace=None
    )
    status = wait_for(lambda: running_tasks(fargate, s := kube.status(job)) and s, what="the job to run")
    assert status["resolved"]["cluster"] == f"cl-{tag[5:]}"
    assert condition(status, "Invalid") == {}
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    assert kube.wait_phase(job, "Succeeded")["phase"] == "Succeeded"


def test_environment_values_never_reach_status_events_or_logs(
    kube: Kube, operator: OperatorProcess, fargate: FakeFargate
) -> None:
    job, secret = name(), f"secret-{uuid.uuid4().hex}"
    overrides = [{"name": "main", "environment": [{"name": "API_TOKEN", "value": secret}]}]
    kube.create("ecsjobs", ecsjob(job, fargate, containerOverrides=overrides))
    status = wait_for(lambda: running_tasks(fargate, s := kube.status(job)) and s, what="a running task")
    fargate.finish_index(status["tasks"][0]["taskName"], 3)  # a failure and a retry: more Events, more logs
    status = wait_for(
        lambda: (s := kube.status(job)).get("retries") == 1 and running_tasks(fargate, s) and s, what="the retry"
    )
    fargate.finish_index(status["tasks"][0]["taskName"], 0)
    done = kube.wait_phase(job, "Succeeded")
    assert "API_TOKEN" in json.dumps(done["context"]) and secret not in json.dumps(done)
    assert all(secret not in (e.message or "") for e in kube.events(job))
    log = operator.log.read_text()  # the operator runs with --verbose: kopf's debug dumps included
    assert "API_TOKEN" in log and secret not in log


def test_a_finished_job_is_deleted_after_its_ttl(kube: Kube, operator: OperatorProcess, fargate: FakeFargate) -> None:
    job, kept = name(), name()
    for each, ttl in ((job, 1), (kept, None)):
        body = ecsjob(each, fargate)
        if ttl is not None:
            body["spec"]["ttlSecondsAfterFinished"] = ttl
        kube.create("ecsjobs", body)
    for each in (job, kept):
        status = wait_for(lambda n=each: running_tasks(fargate, s := kube.status(n)) and s, what="a running task")
        fargate.finish_index(status["tasks"][0]["taskName"], 0)
    done = kube.wait_phase(job, "Succeeded")
    gone = wait_for(lambda: kube.job(job) is None, what="the deletion after 1 s") and time.time()
    finished = datetime.fromisoformat(done["completionTime"].replace("Z", "+00:00")).timestamp()
    assert gone - finished >= 1.0  # not before its TTL
    events = [e.reason for e in kube.events(job)]
    assert "Expired" in events
    assert kube.wait_phase(kept, "Succeeded") and kube.job(kept) is not None  # no TTL: kept
