"""One local "task": runs every container's command as a process, like a Fargate task would.

Started detached by the local backend with a task directory. Writes each container's output
to logs/{container}.log (one "epoch-ms<TAB>line" per line) and, when the task ends, result.json
with exit codes, stopCode and stoppedReason. When an essential container exits, the others
are stopped (ECS's rule). SIGTERM (StopTask) stops every container.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

GRACE_SECONDS = 5.0  # ECS_CONTAINER_STOP_TIMEOUT is 30 s on ECS; locally shorter


class Task:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.spec: dict[str, Any] = json.loads((folder / "task.json").read_text())
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.reasons: dict[str, str] = {}
        self.stop_reason: str | None = None
        self.done = threading.Event()
        self.pumps: list[threading.Thread] = []

    def start(self) -> None:
        (self.folder / "logs").mkdir(exist_ok=True)
        for c in self.spec["containers"]:
            if not c.get("command"):
                self.reasons[c["name"]] = "CannotStartContainerError: the local backend needs a command"
                continue
            env = {
                **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")},
                **c["environment"],
            }
            try:
                proc = subprocess.Popen(
                    c["command"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.folder,
                    start_new_session=True,
                )
            except OSError as exc:
                self.reasons[c["name"]] = f"CannotStartContainerError: {exc}"
                continue
            self.procs[c["name"]] = proc
            pump = threading.Thread(target=self._pump, args=(c["name"], proc), daemon=True)
            pump.start()
            self.pumps.append(pump)

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with open(self.folder / "logs" / f"{name}.log", "a", encoding="utf-8") as out:
            for raw in proc.stdout:
                out.write(f"{int(time.time() * 1000)}\t{raw.decode(errors='replace').rstrip(chr(10))}\n")
                out.flush()

    def wait(self) -> None:
        essential = {c["name"] for c in self.spec["containers"] if c.get("essential", True)}
        if essential & set(self.reasons):
            self.stop_reason = self.stop_reason or "Essential container failed to start"
            self.terminate()
        while not self.done.is_set():
            if (self.folder / "stop").exists():
                break
            if any(self.procs[n].poll() is not None for n in essential if n in self.procs) or not self.procs:
                self.stop_reason = self.stop_reason or "Essential container in task exited"
                break
            self.done.wait(0.05)
        self.terminate()

    def terminate(self) -> None:
        """Stop every container as Docker would: SIGTERM to its process group, SIGKILL after a grace."""
        for proc in self.procs.values():
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for proc in self.procs.values():  # what a container's main process left behind goes with it
            _signal_group(proc, signal.SIGKILL)

    def result(self) -> dict[str, Any]:
        containers = []
        for c in self.spec["containers"]:
            proc = self.procs.get(c["name"])
            code = None if proc is None else proc.returncode
            if code is not None and code < 0:
                code = 128 - code  # killed by a signal: the shell's convention, as Docker reports it
            containers.append({"name": c["name"], "exitCode": code, "reason": self.reasons.get(c["name"])})
        stopped = (self.folder / "stop").read_text() if (self.folder / "stop").exists() else None
        failed_to_start = any(r for r in self.reasons.values())
        stop_code = (
            "UserInitiated" if stopped else ("TaskFailedToStart" if failed_to_start else "EssentialContainerExited")
        )
        return {
            "containers": containers,
            "stopCode": stop_code,
            "stoppedReason": stopped or self.stop_reason,
            "stoppedAt": time.time(),
        }


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(OSError):  # the group is already gone
        os.killpg(proc.pid, sig)


def main(folder: str) -> None:
    task = Task(Path(folder))

    def on_term(signum: int, frame: object) -> None:
        task.done.set()

    signal.signal(signal.SIGTERM, on_term)
    (task.folder / "ready").write_text("")  # from now on SIGTERM is handled
    if not (task.folder / "stop").exists():
        task.start()
    task.wait()
    for pump in task.pumps:  # every line logged before the task counts as STOPPED
        pump.join(GRACE_SECONDS)
    tmp = task.folder / "result.json.tmp"
    tmp.write_text(json.dumps(task.result()))
    tmp.rename(task.folder / "result.json")


if __name__ == "__main__":
    main(sys.argv[1])
