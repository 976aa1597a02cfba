"""Helpers of the e2e tier: waiting, the kubernetes client, the operator process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes

from support.moto_server import MotoServer

GROUP, VERSION = "ecsjob.io", "v1alpha1"
T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 30, what: str = "condition") -> T:
    """Poll every 0.1 s until check() is truthy (the operator's status writes are the events here)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Kube:
    """The kubernetes client, as a user's script would use it."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.core = kubernetes.client.CoreV1Api(self.api)

    def create(self, plural: str, body: dict[str, Any], namespace: str | None = "default") -> dict[str, Any]:
        if namespace is None:
            return dict(self.custom.create_cluster_custom_object(GROUP, VERSION, plural, body))
        body.setdefault("metadata", {})["namespace"] = namespace
        return dict(self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body))

    def job(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        try:
            return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "ecsjobs", name))
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def status(self, name: str, namespace: str = "default") -> dict[str, Any]:
        return dict((self.job(name, namespace) or {}).get("status") or {})

    def patch_job(self, name: str, patch: dict[str, Any], namespace: str = "default") -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "ecsjobs", name, patch)

    def delete_job(self, name: str, namespace: str = "default") -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "ecsjobs", name)

    def events(self, name: str, namespace: str = "default") -> list[Any]:
        items = self.core.list_namespaced_event(namespace).items
        return [e for e in items if e.involved_object and e.involved_object.name == name]

    def wait_phase(self, name: str, *phases: str, timeout: float = 30, namespace: str = "default") -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.status(name, namespace)).get("phase") in phases and s,
            timeout,
            f"{name} to reach {phases}",
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """`ecsjob operator` as a subprocess; kill -9 and start again at will."""

    def __init__(
        self,
        kubeconfig: Path,
        moto: MotoServer,
        log_dir: Path,
        *options: str,
        verbose: bool = True,
        standalone: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig, self.moto, self.log_dir = kubeconfig, moto, log_dir
        self.standalone, self.extra_env = standalone, env or {}  # not standalone: kopf peering decides who runs
        self.verbose = verbose  # the tests read kopf's debug lines; a benchmark runs as production does
        # the tier's default: namespace "default", where the tests use inline clusters (a single-team install)
        self.options = options or ("-n", "default", "--allow-inline-cluster")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        port, self.metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "AWS_ENDPOINT_URL": self.moto.url,
            "ECSJOB_TICK_SECONDS": "0.2",
            "ECSJOB_LOG_FORMAT": "json",
            "AWS_MAX_ATTEMPTS": "1",
            **self.extra_env,
        }
        self.log = self.log_dir / f"operator-{self.starts}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ecsjob_operator.cli",
                "operator",
                *(["--standalone"] if self.standalone else []),
                *self.options,
                *(["--verbose"] if self.verbose else []),
                "--liveness",
                f"http://127.0.0.1:{port}/healthz",
                "--metrics-port",
                str(self.metrics_port),
            ],
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

        def healthy() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200
            except OSError:
                return False

        wait_for(healthy, 30, "the operator's liveness endpoint")

    def scrape(self) -> dict[str, float]:
        """The operator's Prometheus metrics, as {'name{labels}': value}."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
