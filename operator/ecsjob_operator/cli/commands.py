"""`ecsjob`: run a job without Kubernetes, generate CRDs, run the operator (docs/reference.md, "Command line")."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ecsjob_operator import __version__
from ecsjob_operator.api.durations import DurationError, check_bounds, parse_duration
from ecsjob_operator.api.models import GROUP, VERSION, EcsJobStatus
from ecsjob_operator.cli.manifest import read_documents
from ecsjob_operator.cli.run import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, Events, run, say
from ecsjob_operator.core import redaction
from ecsjob_operator.core.identity import DEFAULT_PREFIX, PrefixError, Shard, check_prefix
from ecsjob_operator.core.seal import new_key
from ecsjob_operator.core.status import logs_pointer
from ecsjob_operator.core.tenancy import DEFAULT_FAMILY_PREFIX, check_family_prefix, operator_policy
from ecsjob_operator.engine.backend import Backend, PermanentError, TransientError, format_logs
from ecsjob_operator.engine.engine import Engine


def make_backend(name: str) -> Backend:
    if name == "local":
        from ecsjob_operator.local.backend import LocalBackend

        return LocalBackend()
    from ecsjob_operator.aws.ecs import EcsBackend

    return EcsBackend()


def task_prefix() -> str:
    return check_prefix(os.environ.get("ECSJOB_TASK_PREFIX", DEFAULT_PREFIX))


def cmd_run(args: argparse.Namespace) -> int:
    return run(args, make_backend(args.backend), task_prefix(), events(args))


def events(args: argparse.Namespace) -> Events | None:
    """With --events-queue: the SQS consumer (started by the caller) and the resync interval."""
    if not args.events_queue:
        return None
    if args.backend != "aws":
        raise PrefixError("--events-queue needs --backend aws (ECS sends the events)")
    from ecsjob_operator.aws.events import EventsConsumer

    try:
        resync = check_bounds(args.resync_interval, RESYNC_MIN, RESYNC_MAX)
    except DurationError as exc:
        raise DurationError(f"--resync-interval: {exc}") from exc

    def start(engine: Engine) -> EventsConsumer:
        engine.describer.resync = float(parse_duration(resync))
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        consumer = EventsConsumer(list(args.events_queue), engine.describer.apply_event, region)
        consumer.start()
        return consumer

    return Events(start)


def cmd_crds(args: argparse.Namespace) -> int:
    from ecsjob_operator.api.crdgen import render_all

    for name, text in sorted(render_all().items()):  # the order of `ls crds/`
        if args.out:
            Path(args.out, name).write_text(text)
        elif name != "kustomization.yaml":
            print("---\n" + text, end="")
    return EXIT_OK


RESYNC_MIN, RESYNC_MAX = 10, 3600  # --resync-interval bounds, seconds


def seal_key() -> bytes:
    """The key of status seals: $ECSJOB_SEAL_KEY (shared by replicas, e.g. from a Secret), else one per process
    (then each running job is checked once against its spec and EcsClusters after a restart)."""
    configured = os.environ.get("ECSJOB_SEAL_KEY", "")
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    return new_key()


def cmd_operator(args: argparse.Namespace) -> int:
    """The composition root of the operator: the backend (AWS side) meets the handlers (kopf side)."""
    from ecsjob_operator.kube.metrics import Metrics
    from ecsjob_operator.kube.runner import KopfOptions, run_operator
    from ecsjob_operator.kube.runtime import JobRuntime

    if kube_config() is None:
        say(f"invalid: {NO_KUBECONFIG}")
        return EXIT_INVALID
    backend = make_backend(args.backend)
    policy = operator_policy(check_family_prefix(args.family_prefix), args.allow_inline_cluster)
    engine = Engine(backend, task_prefix(), policy=policy, durable_status=True, seal_key=seal_key())
    runtime = JobRuntime(engine)
    feed = events(args)
    event_counts = feed.start(engine).counters if feed is not None else None
    metrics = Metrics(
        aws_counts=lambda: (dict(getattr(backend, "calls", {})), dict(getattr(backend, "errors", {}))),
        event_counts=event_counts,
        describe_calls=lambda: engine.describer.calls,
    )
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    shard, priority, peering = sharding(args)
    options = KopfOptions(
        namespaces=args.namespace,
        standalone=args.standalone or args.dev,
        priority=666
        if args.dev and args.priority is None
        else args.priority
        if args.priority is not None
        else priority,
        peering=args.peering or peering,
        liveness=args.liveness,
        log_format=args.log_format,
        verbose=args.verbose,
        debug=args.debug,
        quiet=args.quiet,
    )
    return run_operator(runtime, options, metrics, shard)


def events_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events-queue",
        action="append",
        default=[],
        metavar="URL",
        help="an SQS queue fed by an EventBridge rule on ECS Task State Change (repeatable, e.g. one per "
        "region; one queue per consumer): tasks are seen within about a second, polling becomes a resync",
    )
    parser.add_argument(
        "--resync-interval",
        default=os.environ.get("ECSJOB_RESYNC_INTERVAL", "5m"),
        help="with --events-queue: tasks without an event for this long are described again (10s..1h, default 5m)",
    )


def sharding(args: argparse.Namespace) -> tuple[Shard, int | None, str | None]:
    """This replica's shard, peering priority and peering name: from --shard-index, or from a StatefulSet
    pod name (`--shard-from-pod-name`, `$POD_NAME`/`$HOSTNAME`) with --replicas-per-shard replicas each."""
    if args.shards < 1:
        raise PrefixError(f"--shards must be at least 1, not {args.shards}")
    if args.shard_from_pod_name:
        pod = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or ""
        if not pod.rsplit("-", 1)[-1].isdigit():
            raise PrefixError(f"--shard-from-pod-name needs a StatefulSet pod name (name-N), not {pod!r}")
        shard, priority = Shard.from_pod_name(pod, args.shards, args.replicas_per_shard)
    else:
        shard, priority = Shard(args.shards, args.shard_index), None
    if not 0 <= shard.index < shard.count:
        raise PrefixError(f"shard index {shard.index} is not below --shards {shard.count}")
    peering = f"ecsjob-shard-{shard.index}" if shard.count > 1 and not args.standalone else None
    return shard, priority, peering


def cmd_logs(args: argparse.Namespace) -> int:
    """The representative task's logs (or index I's) of an EcsJob in the cluster, as `run` prints them."""
    import kubernetes

    context_namespace = kube_config()
    if context_namespace is None:
        say(f"invalid: {NO_KUBECONFIG}")
        return EXIT_INVALID
    namespace = args.namespace or context_namespace
    api: Any = kubernetes.client.CustomObjectsApi()
    try:
        body = dict(api.get_namespaced_custom_object(GROUP, VERSION, namespace, "ecsjobs", args.name))
    except kubernetes.client.ApiException as exc:
        say(f"cannot read EcsJob {namespace}/{args.name}: {exc.status} {exc.reason}")
        return EXIT_FAILED
    except Exception as exc:  # urllib3 connection errors: the API server is not reachable
        say(f"cannot reach the Kubernetes API: {type(exc).__name__}")
        return EXIT_FAILED
    status = EcsJobStatus.model_validate(body.get("status") or {})
    pointer, succeeded = status.logs, status.phase == "Succeeded"
    if args.index is not None:
        tasks = status.tasks or []
        if not 0 <= args.index < len(tasks) or status.context is None:
            say(f"EcsJob {namespace}/{args.name} has no task index {args.index}")
            return EXIT_INVALID
        task = tasks[args.index]
        pointer, succeeded = logs_pointer(status.context, task), task.phase == "Succeeded"
    if pointer is None:
        say(
            f"EcsJob {namespace}/{args.name} has no logs yet (phase {status.phase}; "
            "a job points at logs when it finishes, or use --index)"
        )
        return EXIT_FAILED
    try:
        events = make_backend(args.backend).fetch_logs(pointer)
    except (TransientError, PermanentError) as exc:
        say(f"cannot fetch logs of {pointer.stream}: {exc}")
        return EXIT_FAILED
    print(format_logs(pointer.stream, events), end="", file=sys.stdout if succeeded else sys.stderr, flush=True)
    return EXIT_OK


NO_KUBECONFIG = "no Kubernetes configuration: set KUBECONFIG (or ~/.kube/config), or run inside a cluster"


def kube_config() -> str | None:
    """Load the kubeconfig (else the in-cluster configuration); its namespace, or None without either."""
    import kubernetes

    try:
        kubernetes.config.load_kube_config()
        _, active = kubernetes.config.list_kube_config_contexts()
        return str(active.get("context", {}).get("namespace") or "default")
    except Exception:  # ConfigException, a missing or malformed file
        pass
    try:
        kubernetes.config.load_incluster_config()
    except Exception:
        return None
    return "default"


def cmd_convert(args: argparse.Namespace) -> int:
    """Heimdall YAML/JSON files -> multi-document YAML of EcsCommand/EcsCluster/EcsJob on stdout."""
    from ecsjob_operator.cli.convert import convert

    documents, readers = [], {}
    for name in args.files:
        path = Path(name)
        docs, errors = read_documents(path)  # JSON is YAML
        for error in errors:
            say(f"invalid: {error}")
        if errors:
            return EXIT_INVALID
        documents.extend(docs)
        readers[len(documents) - 1] = path.parent

    def read_template(relative: str) -> str | None:
        for folder in readers.values():
            candidate = folder / relative
            if candidate.is_file():
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    return candidate.read_text(encoding="utf-8")
        return None

    result = convert(documents, args.namespace, read_template)
    for warning in result.warnings:
        say(f"warning: {warning}")
    if not result.manifests:
        say("invalid: no Heimdall ECS command, cluster or job found")
        return EXIT_INVALID
    print(yaml.safe_dump_all(result.manifests, sort_keys=False, width=120), end="")
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecsjob", description="Run batch jobs as ECS Fargate tasks.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--debug", dest="trace", action="store_true", help="show a traceback on an internal error")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one EcsJob manifest to completion, without Kubernetes")
    run.add_argument("-f", "--file", required=True, help="multi-document YAML with the EcsJob")
    run.add_argument(
        "--backend",
        choices=("aws", "local"),
        default="local",
        help="where tasks run: local processes (the embedded default) or ECS through boto3",
    )
    events_options(run)
    run.set_defaults(func=cmd_run)
    crds = sub.add_parser("crds", help="print the CRDs generated from the models")
    crds.add_argument("--out", help="write one file per CRD into this folder instead")
    crds.set_defaults(func=cmd_crds)
    logs = sub.add_parser("logs", help="print the CloudWatch logs of an EcsJob in the cluster")
    logs.add_argument("name", help="EcsJob name")
    logs.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    logs.add_argument("--index", type=int, help="this task index's current attempt instead of the representative task")
    logs.add_argument("--backend", choices=("aws", "local"), default=os.environ.get("ECSJOB_BACKEND", "aws"))
    logs.set_defaults(func=cmd_logs)
    conv = sub.add_parser("convert", help="convert Heimdall command/cluster YAML and job JSON to manifests")
    conv.add_argument("files", nargs="+", help="Heimdall YAML (commands, clusters) and JSON (jobs) files")
    conv.add_argument("-n", "--namespace", default="default", help="namespace of the EcsCommands and EcsJobs")
    conv.set_defaults(func=cmd_convert)
    op = sub.add_parser("operator", help="run the operator (kopf) against the current kubeconfig")
    op.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    op.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    op.add_argument("--standalone", action="store_true", help="no peering with other operator replicas")
    op.add_argument("--shards", type=int, default=1, help="split the jobs between this many shards (by uid)")
    op.add_argument("--shard-index", type=int, default=0, help="the shard this replica serves (0-based)")
    op.add_argument(
        "--shard-from-pod-name",
        action="store_true",
        help="take the shard (and peering priority) from a StatefulSet pod name in $POD_NAME or $HOSTNAME",
    )
    op.add_argument("--replicas-per-shard", type=int, default=2, help="with --shard-from-pod-name (default 2)")
    op.add_argument(
        "--allow-inline-cluster",
        action="store_true",
        help="accept an inline spec.cluster (single-team installs); by default only admins' EcsClusters are used",
    )
    op.add_argument(
        "--family-prefix",
        default=os.environ.get("ECSJOB_FAMILY_PREFIX", DEFAULT_FAMILY_PREFIX),
        help=f"task definitions are registered as PREFIX<namespace>_<family> (default {DEFAULT_FAMILY_PREFIX})",
    )
    events_options(op)
    op.add_argument("--peering", help="kopf peering object name (for several replicas)")
    op.add_argument("--liveness", help="health endpoint, e.g. http://0.0.0.0:8080/healthz")
    op.add_argument(
        "--backend",
        choices=("aws", "local"),
        default=os.environ.get("ECSJOB_BACKEND", "aws"),
        help="where tasks run (default aws; local is for demos and tests)",
    )
    op.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("ECSJOB_METRICS_PORT", "9090")),
        help="Prometheus metrics port (default 9090; 0 disables)",
    )
    op.add_argument("--priority", type=int, help="kopf peering priority")
    op.add_argument("--dev", action="store_true", help="kopf's development mode: standalone, priority 666")
    op.add_argument(
        "--log-format",
        choices=("plain", "full", "json"),
        default=os.environ.get("ECSJOB_LOG_FORMAT", "full"),
        help="log lines (default full; json is one object per line; env ECSJOB_LOG_FORMAT)",
    )
    op.add_argument("-v", "--verbose", action="store_true")
    op.add_argument("--debug", action="store_true")
    op.add_argument("-q", "--quiet", action="store_true")
    op.set_defaults(func=cmd_operator)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # a usage error: argparse's one line and exit 2
    trace = args.trace or (args.func is cmd_operator and args.debug)
    if args.func is not cmd_operator:  # kopf configures the operator's logging itself
        logging.basicConfig(level=os.environ.get("ECSJOB_LOG_LEVEL", "WARNING"))
        redaction.install()
    try:
        code: int = args.func(args)
        return code
    except (PrefixError, DurationError) as exc:
        say(f"invalid: {exc}")
        return EXIT_INVALID
    except BrokenPipeError:  # `ecsjob crds | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if trace:
            raise
        say(f"error: {type(exc).__name__}: {redaction.redact_text(str(exc))} (--debug shows the traceback)")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
