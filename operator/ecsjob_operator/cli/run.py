"""`ecsjob run -f FILE`: one EcsJob to completion without Kubernetes (docs/reference.md, "Command line").

Exit codes: 0 succeeded, 1 failed, 2 invalid input or environment, 3 timed out, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ecsjob_operator.api.models import EcsJobStatus
from ecsjob_operator.cli.manifest import Manifest
from ecsjob_operator.core.decide import JobRef
from ecsjob_operator.core.lifecycle import needs_preparing, next_poll_seconds
from ecsjob_operator.engine.backend import Backend, format_logs
from ecsjob_operator.engine.engine import Catalog, Engine, StepResult, utcnow

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def say(text: str) -> None:
    print(f"ecsjob: {text}", file=sys.stderr, flush=True)


class Feed(Protocol):
    """A running task state events consumer."""

    def counters(self) -> dict[str, float]: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Events:
    """Task state events (--events-queue): `start(engine)` points the engine's refresher at the queue and
    starts the consumer."""

    start: Callable[[Engine], Feed]


def run(args: argparse.Namespace, backend: Backend, prefix: str, events: Events | None = None) -> int:
    manifest = Manifest(Path(args.file))
    if manifest.errors:
        for error in manifest.errors:
            say(f"invalid: {error}")
        return EXIT_INVALID
    meta, spec = manifest.metadata, manifest.job["spec"]
    if spec.get("suspend") is True:
        say("invalid: spec.suspend: true means nothing runs; `ecsjob run` needs it false or absent")
        return EXIT_INVALID
    problem = backend.environment_problem(_regions(spec, manifest))
    if problem is not None:
        say(f"invalid: {problem}")
        return EXIT_INVALID
    engine = Engine(backend, prefix, sole_launcher=not meta.get("uid"))  # a given uid may have run before
    uid = str(meta.get("uid") or uuid.uuid4())
    job = engine.job_ref(str(meta.get("name", "ecsjob")), str(meta.get("namespace", "default")), uid)
    catalog = Catalog(manifest.commands, manifest.clusters, manifest.load_template)
    wake = threading.Event()
    if events is None:
        return drive(engine, job, spec, catalog, backend.name, wake)
    engine.describer.on_event = lambda uids: wake.set()  # an event of this job's tasks: look now
    feed = events.start(engine)
    try:
        return drive(engine, job, spec, catalog, backend.name, wake)
    finally:
        feed.stop()


def _regions(spec: dict[str, Any], manifest: Manifest) -> list[str | None]:
    """The regions the job may run in: its inline cluster's, else those of the EcsClusters given."""
    cluster = spec.get("cluster")
    if isinstance(cluster, dict):
        region = cluster.get("region")
        return [region if isinstance(region, str) else None]
    return [c.spec.context.region for c in manifest.clusters] or [None]


def drive(
    engine: Engine,
    job: JobRef,
    spec: dict[str, Any],
    catalog: Catalog,
    backend: str,
    wake: threading.Event | None = None,
) -> int:
    """Prepare (with backoff) then step the job until it finishes (at once when `wake` is set: a task
    state event); Ctrl-C stops its tasks and exits 130."""
    interrupted, wake = threading.Event(), wake or threading.Event()

    def interrupt(*_: Any) -> None:
        interrupted.set()
        wake.set()

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = EcsJobStatus()
    try:
        while True:
            if needs_preparing(status):
                result = engine.prepare(job, spec, status, catalog)
                if result.status.phase == "Invalid":
                    report(result)
                    return EXIT_INVALID
                if result.status.context is not None:
                    say(f"job {job.name} (jobId {result.status.job_id}) on the {backend} backend")
            else:
                result = engine.step(job, status, bool(spec.get("suspend")))
            status = result.status
            report(result)
            if result.finished:
                break
            wake.wait(max(0.05, next_poll_seconds(status, utcnow())))
            wake.clear()
            if interrupted.is_set():
                engine.stop_all(job, status, f"ecsjob: job {job.label} interrupted")
                say("interrupted: running tasks stopped")
                return EXIT_INTERRUPTED
    except Exception:  # a bug of ours: leave nothing running behind us
        with contextlib.suppress(Exception):
            engine.stop_all(job, status, f"ecsjob: job {job.label} stopped after an internal error")
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return finish(engine, status)


def report(result: StepResult) -> None:
    for event in result.events:
        say(f"{event.reason}: {event.message}")
    st = result.status
    if st.phase in ("Running", "Pending") and st.message:
        say(f"{st.phase}: {st.message}")


def finish(engine: Engine, status: EcsJobStatus) -> int:
    """Print the representative task's logs (stdout on success, stderr otherwise); the exit code."""
    succeeded = status.phase == "Succeeded"
    timed_out = any(
        c.type == "Failed" and c.reason == "Timeout" and c.status == "True" for c in status.conditions or []
    )
    say(f"{status.phase}: {status.message}")
    if status.logs is not None:
        try:
            events = engine.backend.fetch_logs(status.logs)
        except Exception as exc:  # the outcome stands even when logs cannot be read
            say(f"cannot fetch logs of {status.logs.stream}: {exc}")
        else:
            out = sys.stdout if succeeded else sys.stderr
            print(format_logs(status.logs.stream, events), end="", file=out, flush=True)
    return EXIT_OK if succeeded else EXIT_TIMEOUT if timed_out else EXIT_FAILED
