"""The local backend: each task is a local process tree, its state kept in a directory.

The embedded default of `ecsjob run`, so that a job runs end to end without AWS. Task
definitions, tasks and logs live under ECSJOB_LOCAL_DIR (default ~/.local/state/ecsjob), so a
crashed `ecsjob run` started again adopts the tasks it had launched, as on ECS. Network and
roles are ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecsjob_operator.api.models import LogsPointer, MergedCluster
from ecsjob_operator.core.decide import ContainerResult, Observation
from ecsjob_operator.core.identity import TAG_ATTEMPT, TAG_UID, task_env
from ecsjob_operator.core.merge import content_hash
from ecsjob_operator.core.taskdef import TemplateError
from ecsjob_operator.engine.backend import LaunchRequest, LaunchResult, LogEvent

ACCOUNT, REGION = "000000000000", "local"


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(os.environ.get("ECSJOB_LOCAL_DIR") or Path(base) / "ecsjob")


class LocalBackend:
    name = "local"
    requires_network = False

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_dir()
        (self.root / "taskdefs").mkdir(parents=True, exist_ok=True)
        (self.root / "tasks").mkdir(parents=True, exist_ok=True)
        self.calls: dict[str, int] = {}
        self._children: list[subprocess.Popen[bytes]] = []

    def default_region(self) -> str | None:
        return REGION

    def environment_problem(self, regions: list[str | None]) -> str | None:
        return None  # local processes need no account

    # --- task definitions -------------------------------------------------------------------

    def load_task_definition(self, arn: str, region: str | None) -> dict[str, Any]:
        path = self.root / "taskdefs" / f"{arn.rsplit('/', 1)[-1]}.json"
        if not path.exists():
            raise TemplateError(f"task definition {arn} is not registered on the local backend")
        return dict(json.loads(path.read_text()))

    def ensure_task_definition(self, task_definition: dict[str, Any], region: str | None) -> str:
        family, digest = task_definition["family"], content_hash(task_definition)
        revisions = sorted(self.root.glob(f"taskdefs/{family}:*.json"), key=lambda p: int(p.stem.rsplit(":", 1)[1]))
        for path in revisions:
            if content_hash(json.loads(path.read_text())) == digest:
                return self._td_arn(path.stem)
        revision = len(revisions) + 1
        (self.root / "taskdefs" / f"{family}:{revision}.json").write_text(json.dumps(task_definition))
        return self._td_arn(f"{family}:{revision}")

    def _td_arn(self, name: str) -> str:
        return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{name}"

    # --- tasks ------------------------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> LaunchResult:
        task_id = hashlib.sha256(request.client_token.encode()).hexdigest()[:32]  # clientToken: idempotent
        folder = self.root / "tasks" / task_id
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{request.cluster.cluster_name}/{task_id}"
        if folder.exists():
            return LaunchResult(arn=arn)
        definition = self.load_task_definition(request.task_definition_arn, None)
        extra = task_env(request.task_name, request.index, request.attempt)
        containers = [
            {
                "name": c["name"],
                "essential": c.get("essential", True),
                "command": c.get("command"),
                "environment": {**{e["name"]: e.get("value", "") for e in c.get("environment", [])}, **extra},
            }
            for c in definition["containerDefinitions"]
        ]
        tmp = self.root / "tasks" / f".{task_id}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        meta = {
            "arn": arn,
            "startedBy": request.task_name,
            "cluster": request.cluster.cluster_name,
            "tags": request.tags,
            "containers": containers,
        }
        (tmp / "task.json").write_text(json.dumps(meta))
        tmp.rename(folder)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecsjob_operator.local.runner", str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": _package_root()},
        )
        (folder / "pid").write_text(str(proc.pid))
        self._children.append(proc)  # reaped in describe
        return LaunchResult(arn=arn)

    def describe(self, cluster: MergedCluster, arns: list[str]) -> dict[str, Observation]:
        for proc in self._children:
            proc.poll()
        found = {}
        for arn in arns:
            obs = self._observe(self.root / "tasks" / arn.rsplit("/", 1)[-1])
            if obs is not None:
                found[arn] = obs
        return found

    def find(self, cluster: MergedCluster, started_by: str) -> list[Observation]:
        found = [self._observe(folder) for folder in (self.root / "tasks").iterdir() if not folder.name.startswith(".")]
        mine = [o for o in found if o is not None and o.started_by == started_by]
        return sorted(mine, key=lambda o: o.attempt or 0, reverse=True)

    def _observe(self, folder: Path) -> Observation | None:
        if not (folder / "task.json").exists():
            return None
        meta = json.loads((folder / "task.json").read_text())
        attempt = meta["tags"].get(TAG_ATTEMPT)
        common = {
            "arn": meta["arn"],
            "started_by": meta["startedBy"],
            "attempt": int(attempt) if attempt else None,
            "uid": meta["tags"].get(TAG_UID),
        }
        if (folder / "result.json").exists():
            result = json.loads((folder / "result.json").read_text())
            return Observation(
                last_status="STOPPED",
                containers=tuple(
                    ContainerResult(c["name"], c["exitCode"], c.get("reason")) for c in result["containers"]
                ),
                stop_code=result["stopCode"],
                stopped_reason=result["stoppedReason"],
                stopped_at=datetime.fromtimestamp(result["stoppedAt"], UTC),
                **common,
            )
        if _alive(folder):
            return Observation(last_status="RUNNING", **common)
        return Observation(
            last_status="STOPPED",
            stop_code="TaskFailedToStart",
            stopped_reason="the local task process ended without a result",
            **common,
        )

    def stop(self, cluster: MergedCluster, arn: str, reason: str) -> None:
        folder = self.root / "tasks" / arn.rsplit("/", 1)[-1]
        if not folder.exists() or (folder / "result.json").exists():
            return
        (folder / "stop").write_text(reason)  # a runner still starting sees this file
        if (folder / "ready").exists():
            with contextlib.suppress(OSError, ValueError):  # already gone
                os.kill(int((folder / "pid").read_text()), signal.SIGTERM)

    def fetch_logs(self, pointer: LogsPointer) -> list[LogEvent]:
        """Stream `{prefix}/{container}/{taskId}` maps to tasks/{taskId}/logs/{container}.log."""
        parts = pointer.stream.split("/")
        path = self.root / "tasks" / parts[-1] / "logs" / f"{parts[-2]}.log"
        if not path.exists():
            return []
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            stamp, _, message = line.partition("\t")
            events.append(LogEvent(datetime.fromtimestamp(int(stamp) / 1000, UTC), message))
        return events


def _alive(folder: Path) -> bool:
    try:
        pid = int((folder / "pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return not (folder / "pid").exists()  # between mkdir and pid file: starting
    try:  # a zombie child of ours counts as ended
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def _package_root() -> str:
    here = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
