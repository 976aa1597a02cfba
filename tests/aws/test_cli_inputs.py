"""Every bad input to `ecsjob` ends in one line on stderr and exit 2, launches nothing, and shows no
traceback; environment problems too. The CLI runs in-process (its `main`) against the moto server."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecsjob_operator import __version__
from ecsjob_operator.cli.commands import main
from support.fargate import FakeFargate
from support.jobs import TEMPLATE, ecsjob
from support.moto_server import MotoServer


def run_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, manifest: str | bytes, *extra: str) -> tuple[int, str]:
    path = tmp_path / "job.yaml"
    if isinstance(manifest, bytes):
        path.write_bytes(manifest)
    else:
        path.write_text(manifest)
    code = main(["run", "-f", str(path), "--backend", "aws", *extra])
    return code, capsys.readouterr().err


def manifest_with(fargate: FakeFargate, **changes: Any) -> dict[str, Any]:
    doc = ecsjob("bad", fargate)
    doc["spec"]["command"]["taskDefinition"] = copy.deepcopy(TEMPLATE)
    for path, value in changes.items():
        target = doc
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[int(keys[-1]) if isinstance(target, list) else keys[-1]] = value
    return doc


def assert_refused(code: int, err: str, expected: str, moto_server: MotoServer) -> None:
    assert code == 2, err
    assert expected in err, err
    assert "Traceback" not in err
    assert moto_server.calls["RunTask"] == 0 and moto_server.calls["RegisterTaskDefinition"] == 0


TD = "spec.command.taskDefinition"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"spec.context.timeout": "99999999h"}, 'spec.context.timeout: "99999999h" must be between 1s and 720h'),
        ({"spec.context.timeout": "9999999999999999999h"}, "spec.context.timeout"),
        ({"spec.context.pollingInterval": "2h"}, 'spec.context.pollingInterval: "2h" must be between 1s and 1h'),
        ({"spec.context.timeout": "9" * 5000 + "s"}, "spec.context.timeout"),
        ({f"{TD}.containerDefinitions.0.name": True}, f"{TD}.containerDefinitions[0].name: must be a non-empty string"),
        ({f"{TD}.containerDefinitions.0.name": ["main"]}, f"{TD}.containerDefinitions[0].name: must be a non-empty"),
        ({f"{TD}.family": 5}, f"{TD}.family: must be a non-empty string"),
        (
            {f"{TD}.containerDefinitions.0.essential": "maybe"},
            "containerDefinitions[0].essential: must be true or false",
        ),
        (
            {f"{TD}.containerDefinitions.0.command": "echo hi"},
            "containerDefinitions[0].command: must be a list of strings",
        ),
        ({f"{TD}.containerDefinitions.0.logConfiguration": "awslogs"}, "logConfiguration: must be an object"),
        ({f"{TD}.containerDefinitions.0.environment": "A=b"}, "containerDefinitions[0].environment: must be a list"),
        ({f"{TD}.containerDefinitions.0.environment": [{"value": "x"}]}, "environment[0].name: must be a non-empty"),
        ({f"{TD}.containerDefinitions": []}, f"{TD}.containerDefinitions: must list at least one container"),
        ({f"{TD}.containerDefinitions.0": "main"}, f"{TD}.containerDefinitions[0]: must be an object"),
        ({"spec.suspend": "true"}, "spec.suspend: Input should be a valid boolean"),
        ({"spec.context.maxFailCount": "3"}, "spec.context.maxFailCount: Input should be a valid integer"),
        ({"spec.context.task_count": 2}, "spec.context.task_count: unknown field"),
        ({"apiVersion": "ecsjob.io/v9"}, "apiVersion: 'ecsjob.io/v9' is not ecsjob.io/v1alpha1"),
        ({"metadata": []}, "metadata must be a mapping"),
        ({"kind": "EcsJobs"}, "kind: 'EcsJobs' is not one of EcsJob, EcsCommand, EcsCluster, ConfigMap"),
    ],
)
def test_bad_specs_exit_2_and_launch_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fargate: FakeFargate,
    moto_server: MotoServer,
    changes: dict[str, Any],
    expected: str,
) -> None:
    code, err = run_cli(capsys, tmp_path, yaml.safe_dump(manifest_with(fargate, **changes)))
    assert_refused(code, err, expected, moto_server)


def test_a_non_string_environment_value_is_refused_without_showing_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    doc = manifest_with(fargate)
    doc["spec"]["command"]["taskDefinition"]["containerDefinitions"][0]["environment"] = [
        {"name": "SECRET", "value": 987654321}
    ]
    code, err = run_cli(capsys, tmp_path, yaml.safe_dump(doc))
    assert_refused(code, err, "containerDefinitions[0].environment[0].value: must be a string", moto_server)
    assert "987654321" not in err


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01", "not a date"),
        ("!!set {a, b}", "not a set"),
        ("!!binary aGVsbG8=", "not a bytes"),
    ],
)
def test_yaml_values_that_are_not_json_are_refused(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fargate: FakeFargate,
    moto_server: MotoServer,
    value: str,
    expected: str,
) -> None:
    text = yaml.safe_dump(manifest_with(fargate, **{f"{TD}.containerDefinitions.0.dockerLabels": {"x": "PLACEHOLDER"}}))
    code, err = run_cli(capsys, tmp_path, text.replace("PLACEHOLDER", value))
    assert_refused(code, err, expected, moto_server)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"kind: EcsJob\nmetadata: {name: \xff\xfe}\n", "not UTF-8 text"),
        (b"[" * 3000, "cannot read the manifest"),
        (
            b"kind: EcsJob\napiVersion: ecsjob.io/v1alpha1\nspec: {}\n---\nkind: ConfigMap\napiVersion: v1\ndata: {}\n",
            "ConfigMap.metadata.name: is required",
        ),
        (
            b"kind: EcsJob\nspec: {}\n---\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: c}\ndata: [1, 2]\n",
            "ConfigMap.data: must map keys to strings",
        ),
        (b"- a\n- b\n", "holds no EcsJob document"),
    ],
)
def test_bad_files_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, moto_server: MotoServer, content: bytes, expected: str
) -> None:
    code, err = run_cli(capsys, tmp_path, content)
    assert_refused(code, err, expected, moto_server)


def test_a_binary_task_definition_file_is_invalid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fargate: FakeFargate, moto_server: MotoServer
) -> None:
    (tmp_path / "td.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    doc = manifest_with(fargate)
    doc["spec"]["command"] = {"taskDefinitionFile": "td.bin", "pollingInterval": "1s"}
    code, err = run_cli(capsys, tmp_path, yaml.safe_dump(doc))
    assert_refused(
        code, err, "spec.command.taskDefinitionFile: cannot load the task definition from td.bin", moto_server
    )


def test_no_region_exits_2_before_calling_aws(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fargate: FakeFargate,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    doc = manifest_with(fargate)
    del doc["spec"]["cluster"]["region"]
    code, err = run_cli(capsys, tmp_path, yaml.safe_dump(doc))
    assert_refused(code, err, "no AWS region: set AWS_REGION", moto_server)
    assert len(err.strip().splitlines()) == 1
    assert sum(moto_server.calls.values()) == 0


def test_no_credentials_exits_2_before_calling_aws(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fargate: FakeFargate,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, err = run_cli(capsys, tmp_path, yaml.safe_dump(manifest_with(fargate)))
    assert_refused(code, err, "no AWS credentials", moto_server)
    assert sum(moto_server.calls.values()) == 0


@pytest.mark.parametrize("command", [["logs", "some-job"], ["operator"]])
def test_no_kubeconfig_is_one_line_and_exit_2(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code = main(command)
    err = capsys.readouterr().err
    assert code == 2 and "no Kubernetes configuration" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"ecsjob {__version__}"


def test_a_closed_pipe_ends_quietly() -> None:
    done = subprocess.run(
        f"{sys.executable} -m ecsjob_operator.cli crds | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "---" and done.stderr == ""
