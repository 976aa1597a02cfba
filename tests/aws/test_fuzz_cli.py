"""Property-based fuzzing of `ecsjob run --backend aws` against the moto server.

For every generated manifest: the exit code is 0, 1, 2 or 3; nothing raises or prints a traceback
(nor the catch-all's internal-error line); a manifest refused with 2 launched nothing; and the run
ends within a bound (valid jobs poll every 1-2 s, time out within seconds, and a player ends their
tasks quickly, so a run past the bound is a hang). CI runs ECSJOB_FUZZ_EXAMPLES (default 120)
in-process plus a sample as real subprocesses; `make fuzz` runs thousands.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from ecsjob_operator.cli.commands import main
from support.fargate import FakeFargate
from support.fuzzing import base_manifest, manifest_bytes
from support.moto_server import MotoServer

pytestmark = pytest.mark.fuzz
EXAMPLES = int(os.environ.get("ECSJOB_FUZZ_EXAMPLES", "120"))
BOUND_SECONDS = 30  # the longest valid run: a 4 s timeout, stops and log fetches included
OUTCOMES: Counter[str] = Counter()


class Hang(BaseException):
    """Raised by the watchdog; a BaseException so that no `except Exception` in the CLI swallows it."""


class Player:
    """Ends every RUNNING task at moto shortly after it starts: mostly exit 0, sometimes 1."""

    def __init__(self, fargate: FakeFargate) -> None:
        self.fargate, self.stop = fargate, threading.Event()
        self.random = random.Random(7)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            for task in self.fargate.running():
                with contextlib.suppress(Exception):
                    self.fargate.finish(task.task_arn, 0 if self.random.random() < 0.9 else 1)


@pytest.fixture(scope="module")
def fuzz_cluster(moto_server: MotoServer) -> Iterator[FakeFargate]:
    fake = FakeFargate()
    player = Player(fake)
    player.thread.start()
    yield fake
    player.stop.set()
    fake.close()


def run_once(path: Path) -> tuple[int, str]:
    err = io.StringIO()

    def alarm(*_: Any) -> None:
        raise Hang(f"ecsjob run did not end within {BOUND_SECONDS}s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, BOUND_SECONDS)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(["run", "-f", str(path), "--backend", "aws"])
            except SystemExit as exc:  # argparse
                code = int(exc.code or 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return code, err.getvalue()


def check(code: int, err: str, launched: int) -> None:
    assert code in (0, 1, 2, 3), err
    assert "Traceback" not in err, err
    assert "--debug shows the traceback" not in err, err  # the catch-all hides a bug; the fuzz shows it
    if code == 2:
        assert launched == 0, err


def test_cli_survives_every_manifest(fuzz_cluster: FakeFargate, moto_server: MotoServer) -> None:
    base = base_manifest(fuzz_cluster.subnet, fuzz_cluster.security_group)
    folder = Path(tempfile.mkdtemp(prefix="ecsjob-fuzz-"))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=os.environ.get("ECSJOB_FUZZ_RANDOM") is None,  # CI: the same examples every run
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(manifest_bytes(base))
    def one(content: bytes) -> None:
        path = folder / "job.yaml"
        path.write_bytes(content)
        before = moto_server.calls["RunTask"]
        started = time.monotonic()
        code, err = run_once(path)
        OUTCOMES[f"exit {code}"] += 1
        OUTCOMES["seconds"] += int(time.monotonic() - started)
        check(code, err, moto_server.calls["RunTask"] - before)

    one()
    print(f"\nfuzz outcomes over {EXAMPLES} examples: {dict(OUTCOMES)}")
    assert OUTCOMES["exit 2"] > 0 and OUTCOMES["exit 0"] + OUTCOMES["exit 1"] + OUTCOMES["exit 3"] > 0


def test_a_sample_as_real_processes(fuzz_cluster: FakeFargate, moto_server: MotoServer, tmp_path: Path) -> None:
    """The same property through the installed entry point: exit codes and stderr of real processes."""
    base = base_manifest(fuzz_cluster.subnet, fuzz_cluster.security_group)
    samples: list[bytes] = []

    @settings(max_examples=8, deadline=None, database=None, derandomize=True)
    @given(manifest_bytes(base))
    def collect(content: bytes) -> None:
        samples.append(content)

    collect()
    for i, content in enumerate(samples):
        path = tmp_path / f"job-{i}.yaml"
        path.write_bytes(content)
        before = moto_server.calls["RunTask"]
        done = subprocess.run(
            [sys.executable, "-m", "ecsjob_operator.cli", "run", "-f", str(path), "--backend", "aws"],
            capture_output=True,
            text=True,
            timeout=BOUND_SECONDS,
        )
        check(done.returncode, done.stderr, moto_server.calls["RunTask"] - before)
