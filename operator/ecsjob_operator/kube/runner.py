"""Runs kopf with the handlers of handlers.py: the `kopf run` options `ecsjob operator` accepts."""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import kopf

from ecsjob_operator.core import redaction
from ecsjob_operator.core.identity import Shard
from ecsjob_operator.kube.handlers import Services
from ecsjob_operator.kube.metrics import Metrics
from ecsjob_operator.kube.runtime import JobRuntime

UNSHARDED = Shard()
WORKERS = int(os.environ.get("ECSJOB_WORKERS", "8"))  # threads for engine work (AWS calls)
# glibc's mallopt(M_MMAP_THRESHOLD): buffers from 64 KiB up get their own mappings, which go back to
# the system when freed. Watch events carry whole EcsCommands (task definitions of 100 KB and more);
# from the heap, their freed buffers fragment it and the RSS grows with the catalog (measured:
# 201 MiB instead of 109 MiB after 1,000 EcsCommands of 100 KiB; tests/bench/bench_tenancy.py).
M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES = -3, 64 * 1024


def bound_heap() -> bool:
    """Ask glibc to map large buffers separately; False where there is no glibc (musl, macOS)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


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


def run_operator(
    runtime: JobRuntime, options: KopfOptions, metrics: Metrics | None = None, shard: Shard = UNSHARDED
) -> int:
    """Run kopf with these handlers until SIGINT/SIGTERM."""
    kopf.configure(
        verbose=options.verbose,
        debug=options.debug,
        quiet=options.quiet,
        log_format=kopf.LogFormat[options.log_format.upper()],
    )
    redaction.install(wire_logs=options.debug)
    bound_heap()
    kopf.run(
        memo=kopf.Memo(services=Services(runtime, ThreadPoolExecutor(WORKERS, "ecsjob"), metrics, shard)),
        standalone=options.standalone,
        priority=options.priority,
        peering_name=options.peering,
        liveness_endpoint=options.liveness,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
    )
    return 0
