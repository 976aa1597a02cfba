"""Pure merge of job + command + cluster + template into one frozen context (docs/reference.md, "Merge rules").

`merge()` returns every problem at once, each with its field path, or the merged context and the
task definition to register. No I/O: the caller loads the template.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ecsjob_operator.api.durations import format_duration, parse_duration
from ecsjob_operator.api.models import (
    ClusterContext,
    CommandContext,
    ContainerOverride,
    JobContext,
    LogConfig,
    MergedCluster,
    MergedContainer,
    MergedContext,
    NamedValue,
)
from ecsjob_operator.core.ecs_limits import FARGATE_SIZES, MAX_TAGS, READ_ONLY_KEYS, TAG_KEY_MAX, TAG_VALUE_MAX
from ecsjob_operator.core.errors import FieldError
from ecsjob_operator.core.identity import RESERVED_ENV, RESERVED_TAG_PREFIX, TASK_TAG_KEYS
from ecsjob_operator.core.indexes import index_ranges
from ecsjob_operator.core.taskdef import check_task_definition
from ecsjob_operator.core.tenancy import namespaced_family

DEFAULT_TASK_COUNT = 1
DEFAULT_POLLING = "30s"
DEFAULT_TIMEOUT = "1h"
DEFAULT_MAX_FAIL = 3


@dataclass
class MergeInput:
    job: JobContext
    command: CommandContext
    cluster: ClusterContext
    template: dict[str, Any]
    template_source: str
    template_path: str = "taskDefinition"
    job_path: str = "spec.context"
    command_path: str = "spec.command"
    cluster_path: str = "spec.cluster"
    default_region: str | None = None
    require_network: bool = False
    namespace: str = "default"
    family_prefix: str | None = None  # multi-tenant: register in the namespace's family
    roles_from_cluster_only: bool = False  # multi-tenant: the template's roles never reach AWS


@dataclass
class MergeResult:
    context: MergedContext | None = None
    task_definition: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)


def merge(inp: MergeInput) -> MergeResult:
    """Merge the layers; return the merged context and task definition, or every error found."""
    errors = check_task_definition(inp.template, inp.template_path)
    if errors:  # the rest needs a well-formed template
        return MergeResult(errors=errors)
    errors += _check_contexts(inp)
    cpu, memory, size_errors = _size(inp)
    errors += size_errors
    task_count = _pick(inp.job.task_count, inp.command.task_count, DEFAULT_TASK_COUNT)
    if inp.cluster.max_task_count is not None and task_count > inp.cluster.max_task_count:
        errors.append(
            FieldError(
                _where(inp, "taskCount", inp.job.task_count, inp.command.task_count),
                f"{task_count} exceeds the cluster's maxTaskCount {inp.cluster.max_task_count}",
            )
        )
    tags = {**(inp.job.tags or {}), **(inp.command.tags or {}), **(inp.cluster.tags or {})}  # admin tags win
    if len(tags) + len(TASK_TAG_KEYS) > MAX_TAGS:
        errors.append(
            FieldError(
                f"{inp.job_path}.tags",
                f"{len(tags)} tags after merging; ECS allows {MAX_TAGS - len(TASK_TAG_KEYS)} besides ours",
            )
        )
    if inp.require_network and not (inp.cluster.vpc_config and inp.cluster.vpc_config.subnets):
        errors.append(
            FieldError(f"{inp.cluster_path}.vpcConfig", "is required on AWS: give subnets and securityGroups")
        )
    errors += _check_semantics(inp, task_count)
    if errors:
        return MergeResult(errors=errors)
    task_definition = build_task_definition(inp, cpu, memory)
    context = MergedContext(
        task_definition_source=inp.template_source,
        family=task_definition["family"],
        task_count=task_count,
        cpu=cpu,
        memory=memory,
        polling_interval=_norm(_pick(inp.job.polling_interval, inp.command.polling_interval, DEFAULT_POLLING)),
        timeout=_norm(_pick(inp.job.timeout, inp.command.timeout, DEFAULT_TIMEOUT)),
        max_fail_count=_pick(inp.job.max_fail_count, inp.command.max_fail_count, DEFAULT_MAX_FAIL),
        parallelism=min(task_count, _pick(inp.job.parallelism, inp.command.parallelism, task_count)),
        tags=tags,
        **_semantics(inp),
        containers=[_summary(c, inp.template) for c in task_definition["containerDefinitions"]],
        cluster=_merged_cluster(inp.cluster, inp.default_region),
    )
    return MergeResult(context=context, task_definition=task_definition)


def build_task_definition(inp: MergeInput, cpu: int, memory: int) -> dict[str, Any]:
    """The template with cpu/memory, roles, commands and environments replaced; all else kept."""
    td = strip_read_only(inp.template)
    td["cpu"], td["memory"] = str(cpu), str(memory)
    td.setdefault("networkMode", "awsvpc")
    td.setdefault("requiresCompatibilities", ["FARGATE"])
    if inp.family_prefix is not None:
        td["family"] = namespaced_family(inp.family_prefix, inp.namespace, td["family"])
    if inp.roles_from_cluster_only:  # none on the cluster means none at all, whatever the template says
        td.pop("executionRoleArn", None)
        td.pop("taskRoleArn", None)
    if inp.cluster.execution_role_arn:
        td["executionRoleArn"] = inp.cluster.execution_role_arn
    if inp.cluster.task_role_arn:
        td["taskRoleArn"] = inp.cluster.task_role_arn
    layers = [inp.command.container_overrides or [], inp.job.container_overrides or []]
    for container in td["containerDefinitions"]:
        overrides = [o for layer in layers for o in layer if o.name == container["name"]]
        command = _merged_command(container.get("command"), overrides)
        if command is not None:
            container["command"] = command
        environment = merge_environment(container.get("environment") or [], overrides)
        if environment:
            container["environment"] = environment
    return td


def strip_read_only(template: dict[str, Any]) -> dict[str, Any]:
    """A deep copy without the keys DescribeTaskDefinition adds and RegisterTaskDefinition refuses."""
    return {k: v for k, v in copy.deepcopy(template).items() if k not in READ_ONLY_KEYS}


def merge_environment(base: list[dict[str, str]], overrides: list[ContainerOverride]) -> list[dict[str, str]]:
    """Merge by variable name, later layers winning, keeping first-seen order."""
    merged: dict[str, str] = {e["name"]: e.get("value", "") for e in base}
    for override in overrides:
        for var in override.environment or []:
            merged[var.name] = var.value
    return [{"name": k, "value": v} for k, v in merged.items()]


def content_hash(task_definition: dict[str, Any]) -> str:
    """A stable hash of a task definition, used to reuse an identical registered revision."""
    blob = json.dumps(task_definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def redact(task_definition: dict[str, Any]) -> dict[str, Any]:
    """A copy with every environment value removed (status and logs never show them)."""
    td = copy.deepcopy(task_definition)
    for container in td.get("containerDefinitions", []):
        container["environment"] = [{"name": e["name"]} for e in container.get("environment", [])]
    return td


# --- helpers --------------------------------------------------------------------------------


def _pick(*values: Any) -> Any:
    """The first value given (the last argument is the default; None when every one is None)."""
    return next((v for v in values if v is not None), None)


def _norm(duration: str) -> str:
    return format_duration(parse_duration(duration))


def _where(inp: MergeInput, name: str, job_value: object, command_value: object = None) -> str:
    """The path of the most specific layer that set a field (the job's when none did)."""
    if job_value is None and command_value is not None:
        return f"{inp.command_path}.{name}"
    return f"{inp.job_path}.{name}"


def _semantics(inp: MergeInput) -> dict[str, Any]:
    """Job semantics beyond Heimdall (docs/reference.md, "Job semantics"): job > command; a list the job
    gives replaces the command's."""
    job, command = inp.job, inp.command
    jf, cf = job.failure_policy, command.failure_policy
    rules = jf.rules if jf is not None and jf.rules is not None else (cf.rules if cf is not None else None)
    attempt = _pick(job.attempt_timeout, command.attempt_timeout, None)
    return {
        "failure_rules": list(rules or []),
        "max_ignored_relaunches": _pick(
            jf.max_ignored_relaunches if jf else None, cf.max_ignored_relaunches if cf else None, 10
        ),
        "attempt_timeout": _norm(attempt) if attempt is not None else None,
        "on_index_failure": _pick(job.on_index_failure, command.on_index_failure, "StopJob"),
        "max_failed_indexes": _pick(job.max_failed_indexes, command.max_failed_indexes, None),
        "success_policy": _pick(job.success_policy, command.success_policy, None),
    }


def _check_semantics(inp: MergeInput, task_count: int) -> list[FieldError]:
    """What one field cannot say alone: attemptTimeout within timeout, indexes within taskCount."""
    errors: list[FieldError] = []
    sem = _semantics(inp)
    timeout = parse_duration(_pick(inp.job.timeout, inp.command.timeout, DEFAULT_TIMEOUT))
    attempt = sem["attempt_timeout"]
    if attempt is not None and parse_duration(attempt) > timeout:
        where = _where(inp, "attemptTimeout", inp.job.attempt_timeout, inp.command.attempt_timeout)
        errors.append(FieldError(where, f"{attempt} exceeds the job's timeout of {format_duration(timeout)}"))
    policy = sem["success_policy"]
    if policy is not None:
        where = _where(inp, "successPolicy", inp.job.success_policy, inp.command.success_policy)
        if policy.succeeded_indexes is not None:
            high = max((b for _, b in index_ranges(policy.succeeded_indexes)), default=-1)
            if high >= task_count:
                errors.append(
                    FieldError(f"{where}.succeededIndexes", f"index {high} is not below taskCount {task_count}")
                )
            elif any(a > b for a, b in index_ranges(policy.succeeded_indexes)):
                errors.append(FieldError(f"{where}.succeededIndexes", "a range must go up, e.g. 2-4"))
        if policy.succeeded_count is not None and policy.succeeded_count > task_count:
            errors.append(
                FieldError(f"{where}.succeededCount", f"{policy.succeeded_count} exceeds taskCount {task_count}")
            )
    return errors


def _check_contexts(inp: MergeInput) -> list[FieldError]:
    names = {c["name"] for c in inp.template["containerDefinitions"]}
    errors: list[FieldError] = []
    for path, ctx in ((inp.command_path, inp.command), (inp.job_path, inp.job)):
        errors += _check_overrides(path, ctx.container_overrides or [], names)
        errors += _check_tags(f"{path}.tags", ctx.tags)
    errors += _check_tags(f"{inp.cluster_path}.tags", inp.cluster.tags)
    return errors


def _check_overrides(path: str, overrides: list[ContainerOverride], names: set[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, override in enumerate(overrides):
        where = f"{path}.containerOverrides[{i}]"
        if override.name not in names:
            errors.append(
                FieldError(
                    f"{where}.name",
                    f"container {override.name!r} is not in the task definition (it has {', '.join(sorted(names))})",
                )
            )
        if override.name in seen:
            errors.append(FieldError(f"{where}.name", f"container {override.name!r} is overridden twice"))
        seen.add(override.name)
        for j, var in enumerate(override.environment or []):
            if var.name in RESERVED_ENV:
                errors.append(
                    FieldError(
                        f"{where}.environment[{j}].name",
                        f"{var.name} is set by the operator on every container and cannot be overridden",
                    )
                )
    return errors


def _check_tags(path: str, tags: dict[str, str] | None) -> list[FieldError]:
    errors = []
    for key, value in (tags or {}).items():
        if key.startswith(RESERVED_TAG_PREFIX):
            errors.append(FieldError(f"{path}.{key}", f"keys under {RESERVED_TAG_PREFIX} are reserved"))
        elif not 1 <= len(key) <= TAG_KEY_MAX or len(value) > TAG_VALUE_MAX:
            errors.append(
                FieldError(
                    f"{path}.{key}", f"ECS tag keys are 1-{TAG_KEY_MAX} characters, values at most {TAG_VALUE_MAX}"
                )
            )
    return errors


def _template_int(template: dict[str, Any], key: str) -> int | None:
    value = template.get(key)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _size(inp: MergeInput) -> tuple[int, int, list[FieldError]]:
    cpu = _pick(inp.job.cpu, inp.command.cpu, _template_int(inp.template, "cpu"), 0)
    memory = _pick(inp.job.memory, inp.command.memory, _template_int(inp.template, "memory"), 0)
    cpu_path = _where(inp, "cpu", inp.job.cpu, inp.command.cpu)
    mem_path = _where(inp, "memory", inp.job.memory, inp.command.memory)
    if inp.job.cpu is None and inp.command.cpu is None:
        cpu_path = "taskDefinition.cpu"
    if inp.job.memory is None and inp.command.memory is None:
        mem_path = "taskDefinition.memory"
    errors: list[FieldError] = []
    if cpu not in FARGATE_SIZES:
        valid = ", ".join(str(c) for c in FARGATE_SIZES)
        errors.append(FieldError(cpu_path, f"{cpu or 'missing'} is not a Fargate CPU value; use one of {valid}"))
    elif memory not in FARGATE_SIZES[cpu]:
        allowed = FARGATE_SIZES[cpu]
        hint = (
            ", ".join(str(m) for m in allowed)
            if len(allowed) <= 8
            else f"{allowed[0]} to {allowed[-1]} in steps of {allowed[1] - allowed[0]}"
        )
        errors.append(
            FieldError(mem_path, f"{memory or 'missing'} MiB is not valid with cpu {cpu} on Fargate; use {hint}")
        )
    if inp.cluster.max_cpu is not None and cpu > inp.cluster.max_cpu:
        errors.append(FieldError(cpu_path, f"{cpu} exceeds the cluster's maxCpu {inp.cluster.max_cpu}"))
    if inp.cluster.max_memory is not None and memory > inp.cluster.max_memory:
        errors.append(FieldError(mem_path, f"{memory} exceeds the cluster's maxMemory {inp.cluster.max_memory}"))
    return cpu, memory, errors


def _merged_command(template_command: list[str] | None, overrides: list[ContainerOverride]) -> list[str] | None:
    for override in reversed(overrides):  # job's override is last: most specific first
        if override.command:
            return list(override.command)
    return template_command


def _summary(container: dict[str, Any], template: dict[str, Any]) -> MergedContainer:
    options = (container.get("logConfiguration") or {}).get("options") or {}
    logs = None
    if (container.get("logConfiguration") or {}).get("logDriver") == "awslogs" and options.get("awslogs-group"):
        logs = LogConfig(
            group=options["awslogs-group"],
            stream_prefix=options.get("awslogs-stream-prefix", ""),
            region=options.get("awslogs-region"),
        )
    return MergedContainer(
        name=container["name"],
        essential=container.get("essential", True),
        command=container.get("command"),
        environment=[NamedValue(name=e["name"]) for e in container.get("environment", [])],
        logs=logs,
    )


def _merged_cluster(cluster: ClusterContext, default_region: str | None) -> MergedCluster:
    vpc = cluster.vpc_config
    return MergedCluster(
        cluster_name=cluster.cluster_name,
        region=cluster.region or default_region,
        launch_type=cluster.launch_type or "FARGATE",
        execution_role_arn=cluster.execution_role_arn,
        task_role_arn=cluster.task_role_arn,
        subnets=list(vpc.subnets) if vpc else [],
        security_groups=list(vpc.security_groups) if vpc else [],
        assign_public_ip=vpc.assign_public_ip if vpc else None,
        spot_fallback_after=cluster.spot_fallback.after_interruptions if cluster.spot_fallback else None,
    )
