"""The same scenarios on the embedded local backend, with real processes, through `ecsjob run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "manifests" / "samples" / "local-hello.yaml"


def manifest(tmp_path: Path, script: str, count: int = 1, uid: str | None = None, **context: Any) -> Path:
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["spec"]["command"]["taskDefinition"]["containerDefinitions"][0]["command"] = ["sh", "-c", script]
    doc["spec"]["command"].update(taskCount=count, maxFailCount=context.pop("maxFailCount", 1))
    doc["spec"]["context"] = {**doc["spec"]["context"], **context}
    if uid:
        doc["metadata"]["uid"] = uid
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run(path: Path, state: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecsjob_operator.cli", "run", "-f", str(path), "--backend", "local"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "ECSJOB_LOCAL_DIR": str(state)},
    )


def start_running(path: Path, state: Path) -> subprocess.Popen[str]:
    """`ecsjob run` in the background, returned once it reports its tasks running (an event, not a sleep)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecsjob_operator.cli", "run", "-f", str(path)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ECSJOB_LOCAL_DIR": str(state)},
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Running:" in line:
            break
    return proc


def wait_for_results(state: Path, count: int, timeout: float = 10) -> int:
    """Poll (0.05 s) until `count` tasks have written their result, as a stopped ECS task reaches STOPPED."""
    deadline = time.monotonic() + timeout
    while len(found := list(state.glob("tasks/*/result.json"))) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(found)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_sample_succeeds_and_prints_logs_on_stdout(state: Path) -> None:
    done = run(SAMPLE, state)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("=== ecs/main/")
    assert "Greeting: hello from ecsjob" in done.stdout
    assert "Task name: heimdall-job-" in done.stdout
    assert "Completed: all 3 task(s) succeeded" in done.stderr


def test_task_env_has_merged_values_and_task_name_last(tmp_path: Path, state: Path) -> None:
    script = 'echo "$ENVIRONMENT $GREETING $TASK_NAME $TASK_NUM"'
    done = run(manifest(tmp_path, script), state)
    assert done.returncode == 0, done.stderr
    line = done.stdout.splitlines()[2]
    assert line.split("] ", 1)[1].startswith("local hello from ecsjob heimdall-job-")
    assert line.endswith(" 0")


def test_fails_twice_then_succeeds(tmp_path: Path, state: Path) -> None:
    # a counter file beside the task dirs makes attempts 1 and 2 fail, attempt 3 succeed
    counter = tmp_path / "count"
    script = f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; echo attempt $n; [ $n -ge 3 ]"
    done = run(manifest(tmp_path, script, maxFailCount=2), state)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("TaskFailed:") == 2 and done.stderr.count("Retrying:") == 2
    assert "attempt 3" in done.stdout


def test_exhausted_retries_fail_with_logs_on_stderr_and_stop_the_others(tmp_path: Path, state: Path) -> None:
    script = 'if [ "$TASK_NUM" = 0 ]; then echo boom; exit 4; fi; sleep 30'
    done = run(manifest(tmp_path, script, count=3, maxFailCount=1), state)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "=== ecs/main/" in done.stderr and "] boom" in done.stderr
    assert "MaxFailCountExceeded" in done.stderr and "2 running task(s) stopped" in done.stderr
    # two failed attempts of index 0, two stopped tasks (StopTask is asynchronous, as on ECS)
    assert wait_for_results(state, 4) == 4


def test_max_fail_count_zero(tmp_path: Path, state: Path) -> None:
    done = run(manifest(tmp_path, "exit 1", maxFailCount=0), state)
    assert done.returncode == 1 and "failed after no retries" in done.stderr


def test_timeout_exits_3_and_stops_tasks(tmp_path: Path, state: Path) -> None:
    done = run(manifest(tmp_path, "echo waiting; sleep 60", count=2, timeout="2s"), state)
    assert done.returncode == 3, done.stderr
    assert "Timeout" in done.stderr and "] waiting" in done.stderr
    assert wait_for_results(state, 2) == 2
    assert all('"UserInitiated"' in p.read_text() for p in state.glob("tasks/*/result.json"))


def test_container_without_command_never_starts(tmp_path: Path, state: Path) -> None:
    path = manifest(tmp_path, "true", maxFailCount=0)
    doc = yaml.safe_load(path.read_text())
    del doc["spec"]["command"]["taskDefinition"]["containerDefinitions"][0]["command"]
    path.write_text(yaml.safe_dump(doc))
    done = run(path, state)
    assert done.returncode == 1 and "has no exit code: CannotStartContainerError" in done.stderr


def test_invalid_manifest_exits_2_and_launches_nothing(tmp_path: Path, state: Path) -> None:
    done = run(manifest(tmp_path, "true", cpu=300, timeout="1 hour"), state)
    assert done.returncode == 2
    assert 'spec.context.timeout: "1 hour" is not a valid duration' in done.stderr
    assert not list(state.glob("tasks/*"))


def test_ctrl_c_stops_tasks_and_exits_130(tmp_path: Path, state: Path) -> None:
    path = manifest(tmp_path, "sleep 60", count=2)
    proc = start_running(path, state)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 130
    assert wait_for_results(state, 2) == 2
    results = [p.read_text() for p in state.glob("tasks/*/result.json")]
    assert len(results) == 2 and all("interrupted" in r for r in results)


def test_rerun_after_crash_adopts_running_tasks(tmp_path: Path, state: Path) -> None:
    flag = tmp_path / "go"
    script = f"while [ ! -f {flag} ]; do sleep 0.05; done; echo done"
    path = manifest(tmp_path, script, count=2, uid="0b9c7e6a-crash-test")
    first = start_running(path, state)
    first.kill()  # a crash: no chance to stop anything
    first.wait()
    assert len(list(state.glob("tasks/*/task.json"))) == 2
    flag.write_text("")
    done = run(path, state)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("TaskAdopted:") == 2 and "TaskLaunched:" not in done.stderr
    assert len(list(state.glob("tasks/*/task.json"))) == 2


def test_converted_seed_examples_run_end_to_end(tmp_path: Path, state: Path) -> None:
    data = ROOT / "tests" / "data" / "heimdall"
    files = [str(data / n) for n in ("commands.yaml", "clusters.yaml", "job.json")]
    converted = subprocess.run(
        [sys.executable, "-m", "ecsjob_operator.cli", "convert", *files], capture_output=True, text=True, timeout=30
    )
    assert converted.returncode == 0, converted.stderr
    path = tmp_path / "converted.yaml"
    path.write_text(converted.stdout.replace("pollingInterval: 30s", "pollingInterval: 1s"))
    done = run(path, state)
    assert done.returncode == 0, done.stderr
    assert "Task name: heimdall-job-" in done.stdout and "Completed: all 2 task(s) succeeded" in done.stderr


def test_run_refuses_a_suspended_job(tmp_path: Path, state: Path) -> None:
    path = manifest(tmp_path, "true")
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["suspend"] = True
    path.write_text(yaml.safe_dump(doc))
    done = run(path, state)
    assert done.returncode == 2 and "spec.suspend" in done.stderr and not list(state.glob("tasks/*"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: EcsJob\nmetadata: {name: x}\nspec: 5\n", "spec must be a mapping"),
        ("kind: EcsJob\nmetadata: 7\nspec: {}\n", "metadata must be a mapping"),
        ("kind: EcsJob\nmetadata: {name: x}\nspec: {}\nextra: 1\n", "unknown top-level field(s) ['extra']"),
        ("- a\n- b\n", "holds no EcsJob document"),
        ("kind: EcsJob\nspec: {\n", "cannot read the manifest"),
        (
            "kind: EcsCommand\nmetadata: {name: c}\nspec: {context: {}, bogus: 1}\n---\nkind: EcsJob\nspec: {}\n",
            "EcsCommand.spec.bogus: unknown field",
        ),
        (
            "kind: EcsJob\nmetadata: {name: x}\nspec:\n  command: {taskDefinitionFile: nope.json}\n  cluster: {clusterName: c}\n",
            "spec.command.taskDefinitionFile: cannot load the task definition from nope.json",
        ),
    ],
)
def test_bad_manifests_exit_2_and_launch_nothing(tmp_path: Path, state: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    done = run(path, state)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert not list(state.glob("tasks/*"))
