"""Runs kopf with the handlers of handlers.py: the `kopf run` options `ecsjob operator` accepts."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import kopf

from ecsjob_operator.core import redaction
from ecsjob_operator.kube.handlers import Services
from ecsjob_operator.kube.metrics import Metrics
from ecsjob_operator.kube.runtime import JobRuntime

WORKERS = int(os.environ.get("ECSJOB_WORKERS", "8"))  # threads for engine work (AWS calls)


@dataclass
class KopfOptions:
    """The `kopf run` options that `ecsjob operator` accepts."""

    namespaces: list[str] = field(default_factory=list)
    standalone: bool = False
    priority: int | None = None
    peering: str | None = None
    liveness: str | None = None
    log_format: str = "full"
    verbose: bool = False
    debug: bool = False
    quiet: bool = False


def run_operator(runtime: JobRuntime, options: KopfOptions, metrics: Metrics | None = None) -> int:
    """Run kopf with these handlers until SIGINT/SIGTERM."""
    kopf.configure(
        verbose=options.verbose,
        debug=options.debug,
        quiet=options.quiet,
        log_format=kopf.LogFormat[options.log_format.upper()],
    )
    redaction.install(wire_logs=options.debug)
    kopf.run(
        memo=kopf.Memo(services=Services(runtime, ThreadPoolExecutor(WORKERS, "ecsjob"), metrics)),
        standalone=options.standalone,
        priority=options.priority,
        peering_name=options.peering,
        liveness_endpoint=options.liveness,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
    )
    return 0
