"""`ecsjob`: run a job without Kubernetes, generate CRDs, run the operator (docs/reference.md, "Command line")."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ecsjob_operator.api.models import GROUP, VERSION, EcsCluster, EcsCommand, EcsJobStatus
from ecsjob_operator.core import redaction as logsafety
from ecsjob_operator.core.errors import FieldError, from_validation_error
from ecsjob_operator.core.identity import DEFAULT_PREFIX, PrefixError, check_prefix
from ecsjob_operator.core.lifecycle import next_poll_seconds
from ecsjob_operator.core.status import logs_pointer
from ecsjob_operator.engine.backend import Backend, TemplateError, format_logs
from ecsjob_operator.engine.engine import Catalog, Engine, StepResult, utcnow

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class Manifest:
    """The documents of one multi-document YAML file: one EcsJob and what it refers to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.job: dict[str, Any] = {}
        self.commands: list[EcsCommand] = []
        self.clusters: list[EcsCluster] = []
        self.config_maps: dict[str, dict[str, str]] = {}
        self.errors: list[FieldError] = []
        self._load()

    def _load(self) -> None:
        try:
            docs = [d for d in yaml.safe_load_all(self.path.read_text()) if d]
        except (OSError, yaml.YAMLError) as exc:
            self.errors.append(FieldError(str(self.path), f"cannot read the manifest: {exc}"))
            return
        for i, doc in enumerate(docs):
            kind = doc.get("kind") if isinstance(doc, dict) else None
            where = f"{self.path.name}[{i}] {kind}"
            try:
                if kind == "EcsJob" and not self.job:
                    self.job = doc
                elif kind == "EcsCommand":
                    self.commands.append(EcsCommand.model_validate(doc))
                elif kind == "EcsCluster":
                    self.clusters.append(EcsCluster.model_validate(doc))
                elif kind == "ConfigMap":
                    self.config_maps[doc["metadata"]["name"]] = dict(doc.get("data") or {})
            except ValidationError as exc:
                self.errors += from_validation_error(exc, where)
        if not self.job:
            self.errors.append(FieldError(str(self.path), "holds no EcsJob document"))

    def load_template(self, kind: str, value: str) -> dict[str, Any]:
        """taskDefinitionFile (relative to the manifest) or taskDefinitionRef (a ConfigMap in the file)."""
        try:
            if kind == "file":
                return dict(json.loads((self.path.parent / value).read_text()))
            name, key = value.split("/", 1)
            if name not in self.config_maps or key not in self.config_maps[name]:
                raise TemplateError(f"ConfigMap {name} with key {key} is not in {self.path.name}")
            return dict(json.loads(self.config_maps[name][key]))
        except (OSError, json.JSONDecodeError) as exc:
            raise TemplateError(f"cannot load the task definition from {value}: {exc}") from exc


def make_backend(name: str) -> Backend:
    if name == "local":
        from ecsjob_operator.local.backend import LocalBackend

        return LocalBackend()
    from ecsjob_operator.aws.ecs import EcsBackend

    return EcsBackend()


def task_prefix() -> str:
    return check_prefix(os.environ.get("ECSJOB_TASK_PREFIX", DEFAULT_PREFIX))


def say(text: str) -> None:
    print(f"ecsjob: {text}", file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    manifest = Manifest(Path(args.file))
    if manifest.errors:
        for error in manifest.errors:
            say(f"invalid: {error}")
        return EXIT_INVALID
    engine = Engine(make_backend(args.backend), task_prefix())
    meta, spec = manifest.job.get("metadata") or {}, manifest.job.get("spec") or {}
    extra = set(manifest.job) - {"apiVersion", "kind", "metadata", "spec", "status"}
    problems = [f"unknown top-level field(s) {sorted(extra)}"] if extra else []
    problems += [
        f"{key} must be a mapping" for key, value in (("metadata", meta), ("spec", spec)) if not isinstance(value, dict)
    ]
    if problems:
        for problem in problems:
            say(f"invalid: {problem}")
        return EXIT_INVALID
    uid = str(meta.get("uid") or uuid.uuid4())
    job = engine.job_ref(str(meta.get("name", "ecsjob")), str(meta.get("namespace", "default")), uid)
    if spec.get("suspend") is True:
        say("invalid: spec.suspend: true means nothing runs; `ecsjob run` needs it false or absent")
        return EXIT_INVALID
    catalog = Catalog(manifest.commands, manifest.clusters, manifest.load_template)
    result = engine.prepare(job, spec, EcsJobStatus(), catalog)
    report(result)
    if result.status.phase == "Invalid":
        return EXIT_INVALID
    say(f"job {job.name} (jobId {result.status.job_id}) on the {args.backend} backend")
    return drive(engine, job, result.status, bool(spec.get("suspend")))


def drive(engine: Engine, job: Any, status: EcsJobStatus, suspend: bool) -> int:
    """Step the job until it finishes; Ctrl-C stops its tasks and exits 130."""
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    try:
        while True:
            result = engine.step(job, status, suspend)
            status = result.status
            report(result)
            if result.finished:
                break
            if interrupted.wait(_next_wait(status)):
                engine.stop_all(status, f"ecsjob: job {job.label} interrupted")
                say("interrupted: running tasks stopped")
                return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    return finish(engine, status)


def _next_wait(status: EcsJobStatus) -> float:
    """The polling interval, or less until a RunTask backoff ends or the deadline passes."""
    return max(0.05, next_poll_seconds(status, utcnow()))


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
            print(
                format_logs(status.logs.stream, events),
                end="",
                file=sys.stdout if succeeded else sys.stderr,
                flush=True,
            )
    return EXIT_OK if succeeded else EXIT_TIMEOUT if timed_out else EXIT_FAILED


def cmd_crds(args: argparse.Namespace) -> int:
    from ecsjob_operator.api.crdgen import render_all

    for name, text in sorted(render_all().items()):  # the order of `ls crds/`
        if args.out:
            Path(args.out, name).write_text(text)
        elif name != "kustomization.yaml":
            print("---\n" + text, end="")
    return EXIT_OK


def cmd_operator(args: argparse.Namespace) -> int:
    """The composition root of the operator: the backend (AWS side) meets the handlers (kopf side)."""
    from ecsjob_operator.kube.metrics import Metrics
    from ecsjob_operator.kube.runner import KopfOptions, run_operator
    from ecsjob_operator.kube.runtime import JobRuntime

    backend = make_backend(args.backend)
    runtime = JobRuntime(Engine(backend, task_prefix()))
    metrics = Metrics(aws_counts=lambda: (dict(getattr(backend, "calls", {})), dict(getattr(backend, "errors", {}))))
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    options = KopfOptions(
        namespaces=args.namespace,
        standalone=args.standalone or args.dev,
        priority=666 if args.dev and args.priority is None else args.priority,  # kopf's --dev
        peering=args.peering,
        liveness=args.liveness,
        log_format=args.log_format,
        verbose=args.verbose,
        debug=args.debug,
        quiet=args.quiet,
    )
    return run_operator(runtime, options, metrics)


def cmd_logs(args: argparse.Namespace) -> int:
    """The representative task's logs (or index I's) of an EcsJob in the cluster, as `run` prints them."""
    import kubernetes

    try:
        kubernetes.config.load_kube_config()
        _, active = kubernetes.config.list_kube_config_contexts()
        namespace = args.namespace or active.get("context", {}).get("namespace") or "default"
    except (kubernetes.config.ConfigException, OSError):
        kubernetes.config.load_incluster_config()
        namespace = args.namespace or "default"
    api: Any = kubernetes.client.CustomObjectsApi()
    try:
        body = dict(api.get_namespaced_custom_object(GROUP, VERSION, namespace, "ecsjobs", args.name))
    except kubernetes.client.ApiException as exc:
        say(f"cannot read EcsJob {namespace}/{args.name}: {exc.status} {exc.reason}")
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
    events = make_backend(args.backend).fetch_logs(pointer)
    print(format_logs(pointer.stream, events), end="", file=sys.stdout if succeeded else sys.stderr, flush=True)
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    """Heimdall YAML/JSON files -> multi-document YAML of EcsCommand/EcsCluster/EcsJob on stdout."""
    from ecsjob_operator.cli.convert import convert

    documents, readers = [], {}
    for name in args.files:
        path = Path(name)
        try:
            documents.append(yaml.safe_load(path.read_text()))  # JSON is YAML
        except (OSError, yaml.YAMLError) as exc:
            say(f"invalid: cannot read {path}: {exc}")
            return EXIT_INVALID
        readers[len(documents) - 1] = path.parent

    def read_template(relative: str) -> str | None:
        for folder in readers.values():
            candidate = folder / relative
            if candidate.is_file():
                return candidate.read_text()
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
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one EcsJob manifest to completion, without Kubernetes")
    run.add_argument("-f", "--file", required=True, help="multi-document YAML with the EcsJob")
    run.add_argument(
        "--backend",
        choices=("aws", "local"),
        default="local",
        help="where tasks run: local processes (the embedded default) or ECS through boto3",
    )
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
    args = parser().parse_args(argv)
    if args.func is not cmd_operator:  # kopf configures the operator's logging itself
        logging.basicConfig(level=os.environ.get("ECSJOB_LOG_LEVEL", "WARNING"))
        logsafety.install()
    try:
        code: int = args.func(args)
        return code
    except PrefixError as exc:
        say(str(exc))
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
