"""The v1alpha1 API as pydantic models: the single source of truth for CRDs, validation and status.

Field names are snake_case in Python and camelCase on the wire. Specs reject unknown fields;
status tolerates them so that an older operator can read a newer status.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from ecsjob_operator.api.durations import MAX_LENGTH, POLLING_MAX, POLLING_MIN, TIMEOUT_MAX, check_bounds
from ecsjob_operator.api.durations import PATTERN as DURATION_PATTERN

GROUP = "ecsjob.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class Camel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON form as it appears in a manifest or status (camelCase, unset fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Wire(Camel):
    """Base of every spec model: unknown fields rejected and no type coercion ("3" is not 3, "true" is
    not true), exactly as the CRD's structural schema. User input is validated by alias only
    (core.errors.validate_all), so snake_case keys are unknown fields there too."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _cel_duration(low: str | None, high: str) -> dict[str, Any]:
    """The CRD rule that bounds a duration string (Kubernetes CEL parses Go durations)."""
    rule = f"duration(self) <= duration('{high}')"
    if low is not None:
        rule = f"duration(self) >= duration('{low}') && {rule}"
    between = f"between {low} and {high}" if low else f"at most {high}"
    return {"maxLength": MAX_LENGTH, "x-kubernetes-validations": [{"rule": rule, "message": f"must be {between}"}]}


def _polling(value: Any) -> Any:
    return value if value is None else check_bounds(value, POLLING_MIN, POLLING_MAX)


def _timeout(value: Any) -> Any:
    return value if value is None else check_bounds(value, 1, TIMEOUT_MAX)


# --- contexts -------------------------------------------------------------------------------


# Set by the operator on every container (docs/reference.md, "Merge rules"); core.identity uses the same.
RESERVED_ENV_NAMES = ("TASK_NAME", "TASK_NUM", "TASK_ATTEMPT")


class EnvVar(Wire):
    """One variable of a container override."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"!(self.name in {list(RESERVED_ENV_NAMES)})",
                    "message": f"{', '.join(RESERVED_ENV_NAMES)} are set by the operator and cannot be overridden",
                }
            ]
        }
    )
    name: str = Field(description="Environment variable name.", min_length=1, max_length=255)
    value: str = Field(description="Environment variable value.")


class ContainerOverride(Wire):
    name: str = Field(description="Name of a container of the task definition.", min_length=1)
    command: list[str] | None = Field(None, description="Command replacing the container's.")
    environment: list[EnvVar] | None = Field(
        None, description="Variables merged by name over the container's environment."
    )


class ConfigMapKeyRef(Wire):
    config_map_name: str = Field(description="ConfigMap in the job's namespace.", min_length=1)
    key: str = Field(description="Key holding the task definition JSON.", min_length=1)


def _cel_rule(rule: str, message: str) -> ConfigDict:
    """A model's CRD rule (x-kubernetes-validations) for what its fields cannot say alone."""
    return ConfigDict(json_schema_extra={"x-kubernetes-validations": [{"rule": rule, "message": message}]})


INDEX_LIST_PATTERN = r"^[0-9]{1,3}(-[0-9]{1,3})?(,[0-9]{1,3}(-[0-9]{1,3})?)*$"


class ExitCodeMatch(Wire):
    """Matches a failed attempt by the exit code of one container (or of any essential one)."""

    container_name: str | None = Field(None, description="The container whose exit code is read (default: any).")
    operator: Literal["In", "NotIn"] = Field(description="In or NotIn.")
    values: list[int] = Field(min_length=1, max_length=255, description="Exit codes (0..255).")

    @field_validator("values")
    @classmethod
    def _codes(cls, values: list[int]) -> list[int]:
        if any(not 0 <= v <= 255 for v in values):
            raise ValueError("exit codes are 0..255")
        return values


class FailureRule(Wire):
    """One failure rule: when every matcher it gives matches a failed attempt, its action decides."""

    model_config = _cel_rule(
        "has(self.onExitCodes) || has(self.onStopCodes) || has(self.onReasons)",
        "a rule needs at least one of onExitCodes, onStopCodes and onReasons",
    )
    action: Literal["FailJob", "Ignore", "Count"] = Field(
        description="FailJob stops everything now; Ignore relaunches uncounted; Count counts a failure."
    )
    on_exit_codes: ExitCodeMatch | None = Field(None, description="Exit codes of a container.")
    on_stop_codes: list[str] | None = Field(
        None, min_length=1, max_length=20, description="ECS stop codes, e.g. SpotInterruption, TaskFailedToStart."
    )
    on_reasons: list[str] | None = Field(
        None,
        min_length=1,
        max_length=20,
        description='Globs on stoppedReason or a container\'s reason, e.g. "CannotPullContainerError*".',
    )

    @model_validator(mode="after")
    def _matcher(self) -> FailureRule:
        if self.on_exit_codes is None and self.on_stop_codes is None and self.on_reasons is None:
            raise ValueError("a rule needs at least one of onExitCodes, onStopCodes and onReasons")
        return self


class FailurePolicy(Wire):
    rules: list[FailureRule] | None = Field(
        None, max_length=20, description="Ordered; the first rule matching a failed attempt decides (none: Count)."
    )
    max_ignored_relaunches: int | None = Field(
        None, ge=0, le=100, description="Ignore relaunches per index before failures count again (default 10)."
    )


class SuccessPolicy(Wire):
    """The job succeeds as soon as this is met; the remaining tasks are stopped."""

    model_config = _cel_rule(
        "has(self.succeededIndexes) || has(self.succeededCount)", "give succeededIndexes, succeededCount or both"
    )
    succeeded_indexes: str | None = Field(
        None, pattern=INDEX_LIST_PATTERN, max_length=4096, description='Indexes that must succeed, e.g. "0,2-4".'
    )
    succeeded_count: int | None = Field(None, ge=1, le=1000, description="How many indexes must succeed.")

    @model_validator(mode="after")
    def _something(self) -> SuccessPolicy:
        if self.succeeded_indexes is None and self.succeeded_count is None:
            raise ValueError("give succeededIndexes, succeededCount or both")
        return self


class JobContext(Wire):
    """What a job may set: sizing, overrides, timing, retries and tags (never roles/network)."""

    task_count: int | None = Field(None, ge=1, le=1000, description="Tasks run in parallel (1..1000).")
    cpu: int | None = Field(None, description="Task CPU units; a valid Fargate pair with memory.")
    memory: int | None = Field(None, description="Task memory in MiB; a valid Fargate pair with cpu.")
    container_overrides: list[ContainerOverride] | None = Field(
        None, description="Per-container command and environment overrides, merged by name."
    )
    polling_interval: str | None = Field(
        None,
        pattern=DURATION_PATTERN,
        description='How often ECS is polled, "1s" to "1h" (default "30s").',
        json_schema_extra=_cel_duration("1s", "1h"),
    )
    timeout: str | None = Field(
        None,
        pattern=DURATION_PATTERN,
        description='Wall-clock limit from the first attempt to reach AWS, at most "720h" (default "1h").',
        json_schema_extra=_cel_duration(None, "720h"),
    )
    max_fail_count: int | None = Field(
        None, ge=0, le=100, description="Retries allowed per task index (0..100, default 3)."
    )
    parallelism: int | None = Field(
        None, ge=1, le=1000, description="At most this many tasks of the job running at once (default taskCount)."
    )
    tags: dict[str, str] | None = Field(None, description="ECS tags for the tasks; keys under ecsjob.io/ are reserved.")
    failure_policy: FailurePolicy | None = Field(None, description="How failed attempts count (rules, first match).")
    attempt_timeout: str | None = Field(
        None,
        pattern=DURATION_PATTERN,
        description="Limit of one attempt, at most timeout; a longer attempt is stopped and counted as failed.",
        json_schema_extra=_cel_duration("1s", "720h"),
    )
    on_index_failure: Literal["StopJob", "Continue"] | None = Field(
        None, description="What an index out of retries does to the others: StopJob (default) or Continue."
    )
    max_failed_indexes: int | None = Field(
        None, ge=0, le=1000, description="With Continue: more failed indexes than this stops the rest (none: no limit)."
    )
    success_policy: SuccessPolicy | None = Field(None, description="Succeed early once these indexes succeeded.")

    _check_polling = field_validator("polling_interval", mode="before")(classmethod(lambda cls, v: _polling(v)))
    _check_timeout = field_validator("timeout", "attempt_timeout", mode="before")(
        classmethod(lambda cls, v: _timeout(v))
    )


class CommandContext(JobContext):
    """A reusable command: the task definition source plus defaults for the job context."""

    task_definition: dict[str, Any] | None = Field(
        None, description="A complete ECS task definition (RegisterTaskDefinition JSON)."
    )
    task_definition_ref: ConfigMapKeyRef | None = Field(
        None, description="The task definition JSON kept in a ConfigMap of the job's namespace."
    )
    task_definition_arn: str | None = Field(None, description="An existing registered task definition, used as is.")
    task_definition_file: str | None = Field(
        None, description="`ecsjob run` only: a JSON file relative to the manifest."
    )


class VpcConfig(Wire):
    subnets: list[str] = Field(description="Subnet ids for the tasks' awsvpc network.")
    security_groups: list[str] = Field(default_factory=list, description="Security group ids.")
    assign_public_ip: Literal["ENABLED", "DISABLED"] | None = Field(
        None, description="Whether tasks get a public IP (default DISABLED)."
    )


class SpotFallback(Wire):
    after_interruptions: int = Field(ge=1, le=100, description="Spot interruptions of one index (1..100).")


class ClusterContext(Wire):
    """An admin-owned cluster: where tasks run, with which roles and network, within which limits."""

    cluster_name: str = Field(description="ECS cluster name or ARN.", min_length=1)
    region: str | None = Field(None, description="AWS region (default: from the environment).")
    launch_type: Literal["FARGATE", "FARGATE_SPOT"] | None = Field(
        None, description="FARGATE (default) or FARGATE_SPOT (capacity provider strategy)."
    )
    max_cpu: int | None = Field(None, ge=1, description="Upper limit of a task's cpu on this cluster.")
    max_memory: int | None = Field(None, ge=1, description="Upper limit of a task's memory (MiB).")
    max_task_count: int | None = Field(None, ge=1, description="Upper limit of taskCount.")
    execution_role_arn: str | None = Field(None, description="Execution role replacing the template's.")
    task_role_arn: str | None = Field(None, description="Task role replacing the template's.")
    vpc_config: VpcConfig | None = Field(None, description="awsvpc network (required on AWS).")
    tags: dict[str, str] | None = Field(None, description="ECS tags for the tasks; they win over command and job tags.")
    allowed_task_definitions: list[str] | None = Field(
        None,
        description="Operator: family globs a taskDefinitionArn may name besides the namespace's own families "
        "({namespace} is replaced by the job's namespace).",
    )
    allowed_secrets: list[str] | None = Field(
        None,
        description="Operator: ARN globs that secrets[].valueFrom and repositoryCredentials may name "
        "({namespace} is replaced).",
    )
    allowed_efs_file_systems: list[str] | None = Field(
        None, description="Operator: EFS file system ids a task definition may mount."
    )
    spot_fallback: SpotFallback | None = Field(
        None, description="With FARGATE_SPOT: relaunch an index on FARGATE after this many Spot interruptions."
    )


# --- resources ------------------------------------------------------------------------------


def _exactly_one(a: str, b: str) -> JsonDict:
    return {"rule": f"has(self.{a}) != has(self.{b})", "message": f"give exactly one of {a} and {b}"}


class EcsJobSpec(Wire):
    """One run: the command and cluster (selected by criteria, or inline), the job's own context, and suspend."""

    # Admission checks what a schema cannot say; the operator checks the same, and what needs the EcsCluster.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _exactly_one("command", "commandCriteria"),
                _exactly_one("cluster", "clusterCriteria"),
            ]
        }
    )
    version: str | None = Field(None, description="Informative version of the job.")
    command_criteria: list[str] | None = Field(
        None, description="Tags selecting an EcsCommand (exclusive with command)."
    )
    command: CommandContext | None = Field(None, description="Inline command context.")
    cluster_criteria: list[str] | None = Field(
        None, description="Tags selecting an EcsCluster (exclusive with cluster)."
    )
    cluster: ClusterContext | None = Field(None, description="Inline cluster context.")
    context: JobContext | None = Field(None, description="Job context: sizing, overrides, timing.")
    suspend: bool | None = Field(None, description="true stops running tasks and launches none.")
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, le=2592000, description="Delete the EcsJob this many seconds after it finished (0..2592000)."
    )


class SelectableSpec(Wire):
    tags: list[str] = Field(default_factory=list, description="Selection tags such as type:ecs.")
    status: Literal["active", "inactive"] = Field("active", description="Only active ones are selected.")
    version: str | None = Field(None, description="Semantic version; the highest match wins.")
    description: str | None = Field(None, description="Human description.")


class EcsCommandSpec(SelectableSpec):
    context: CommandContext = Field(description="The command context.")
    cluster_tags: list[str] = Field(default_factory=list, description="Tags the selected EcsCluster must also carry.")


class EcsClusterSpec(SelectableSpec):
    context: ClusterContext = Field(description="The cluster context.")
    allowed_namespaces: list[str] = Field(
        default_factory=list, description="Namespaces that may use this cluster (empty: all)."
    )


# --- status ---------------------------------------------------------------------------------


class Loose(Camel):
    """Base of status models: unknown fields ignored (an older operator reads a newer status)."""

    model_config = ConfigDict(extra="ignore")


class NamedValue(Loose):
    name: str = Field(description="Variable name.")
    value: str | None = Field(None, description="Value; left out of status (never shown).")


class LogConfig(Loose):
    group: str = Field(description="CloudWatch log group.")
    stream_prefix: str = Field(description="awslogs-stream-prefix.")
    region: str | None = Field(None, description="CloudWatch region.")


class MergedContainer(Loose):
    name: str = Field(description="Container name.")
    essential: bool = Field(True, description="Whether its exit decides the task's outcome.")
    command: list[str] | None = Field(None, description="Merged command.")
    environment: list[NamedValue] = Field(default_factory=list, description="Merged environment.")
    logs: LogConfig | None = Field(None, description="awslogs configuration, when present.")


class MergedCluster(Loose):
    cluster_name: str = Field(description="ECS cluster name or ARN.")
    region: str | None = Field(None, description="AWS region.")
    launch_type: str = Field("FARGATE", description="FARGATE or FARGATE_SPOT.")
    execution_role_arn: str | None = Field(None, description="Execution role.")
    task_role_arn: str | None = Field(None, description="Task role.")
    subnets: list[str] = Field(default_factory=list, description="Subnets.")
    security_groups: list[str] = Field(default_factory=list, description="Security groups.")
    assign_public_ip: str | None = Field(None, description="ENABLED or DISABLED.")
    spot_fallback_after: int | None = Field(None, description="Spot interruptions of an index before FARGATE.")


class MergedContext(Loose):
    """The job's frozen, merged context (docs/reference.md, "Merge rules"); environment values are never kept here."""

    task_definition_source: str = Field(description="inline, configMap:NAME/KEY, file:PATH or arn:...")
    family: str = Field(description="Task definition family.")
    task_count: int = Field(description="Tasks run in parallel.")
    cpu: int = Field(description="Task CPU units.")
    memory: int = Field(description="Task memory (MiB).")
    polling_interval: str = Field(description="Polling interval.")
    timeout: str = Field(description="Wall-clock limit from the first launch.")
    max_fail_count: int = Field(description="Retries allowed per index.")
    parallelism: int | None = Field(None, description="At most this many tasks running at once (none: taskCount).")
    tags: dict[str, str] = Field(default_factory=dict, description="User tags on every task.")
    failure_rules: list[FailureRule] = Field(default_factory=list, description="failurePolicy.rules.")
    max_ignored_relaunches: int = Field(10, description="failurePolicy.maxIgnoredRelaunches.")
    attempt_timeout: str | None = Field(None, description="Limit of one attempt.")
    on_index_failure: str = Field("StopJob", description="StopJob or Continue.")
    max_failed_indexes: int | None = Field(None, description="With Continue: the failed indexes tolerated.")
    success_policy: SuccessPolicy | None = Field(None, description="Early success.")
    containers: list[MergedContainer] = Field(description="Merged containers.")
    cluster: MergedCluster = Field(description="Merged cluster context.")


Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Suspended", "Invalid"]
TaskPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Stopped"]


class TaskStatus(Loose):
    index: int = Field(description="Task index (0-based).")
    task_name: str = Field(description="startedBy and TASK_NAME of every attempt.")
    phase: TaskPhase = Field("Pending", description="Pending, Running, Succeeded, Failed or Stopped.")
    arn: str | None = Field(None, description="ARN of the current (or last) attempt.")
    attempts: int = Field(0, description="Attempts launched.")
    last_status: str | None = Field(None, description="ECS lastStatus of the current attempt.")
    exit_code: int | None = Field(None, description="Exit code of the deciding essential container.")
    stop_code: str | None = Field(None, description="ECS stopCode.")
    stopped_reason: str | None = Field(None, description="ECS stoppedReason.")
    failed_arns: list[str] = Field(default_factory=list, description="ARNs of failed attempts.")
    ignored_arns: list[str] = Field(
        default_factory=list, description="ARNs of interrupted attempts (Fargate Spot), relaunched without counting."
    )
    last_failure: str | None = Field(None, description="Why the last failed attempt failed.")
    started_at: str | None = Field(None, description="When the current attempt was launched (attemptTimeout).")
    spot_interruptions: int = Field(0, description="Fargate Spot interruptions of this index (spotFallback).")
    stopped_at: str | None = Field(None, description="When ECS stopped the current attempt.")
    launch_failures: int = Field(0, description="Consecutive RunTask failures (capacity, throttling).")
    next_launch_time: str | None = Field(None, description="Earliest next RunTask after a failure.")
    launch_try: int = Field(0, description="RunTask calls of this attempt answered with failures (each a new token).")
    intent_attempt: int | None = Field(None, description="Attempt whose RunTask may have been sent (written first).")
    intent_time: str | None = Field(None, description="When that launch intent was written.")


class LogsPointer(Loose):
    task_arn: str = Field(description="Representative task.")
    group: str = Field(description="CloudWatch log group.")
    stream: str = Field(description="Log stream.")
    region: str | None = Field(None, description="Region.")


class Condition(Loose):
    type: str = Field(description="Complete, Failed, Progressing, Invalid or Suspended.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason.")
    message: str = Field(description="Human message.")
    last_transition_time: str = Field(description="When status last changed.")


class Resolved(Loose):
    command: str = Field(description='EcsCommand name or "inline".')
    cluster: str = Field(description='EcsCluster name or "inline".')


class EcsJobStatus(Loose):
    phase: Phase | None = Field(None, description="Derived from the conditions.")
    job_id: str | None = Field(None, description="12 hex characters derived from metadata.uid.")
    observed_generation: int | None = Field(None, description="Generation last reconciled.")
    context: MergedContext | None = Field(None, description="Merged, frozen context.")
    resolved: Resolved | None = Field(None, description="Which command and cluster were used.")
    task_definition_arn: str | None = Field(None, description="Registered task definition.")
    start_time: str | None = Field(None, description="First attempt to reach AWS (prepare or launch).")
    completion_time: str | None = Field(None, description="When the job finished.")
    task_count: int | None = Field(None, description="Tasks in the job.")
    active: int | None = Field(None, description="Tasks running now.")
    succeeded: int | None = Field(None, description="Tasks succeeded.")
    retries: int | None = Field(None, description="Failed attempts relaunched.")
    failed_indexes: str | None = Field(None, description='Indexes out of retries, e.g. "1,3-4".')
    progress: str | None = Field(None, description="succeeded/taskCount, e.g. 1/3 (kubectl get).")
    failed_arns: list[str] | None = Field(None, description="ARNs of all failed attempts.")
    tasks: list[TaskStatus] | None = Field(None, description="One entry per index.")
    logs: LogsPointer | None = Field(None, description="Representative task's CloudWatch logs.")
    conditions: list[Condition] | None = Field(None, description="Conditions.")
    message: str | None = Field(None, description="One human sentence on the current state.")
    prepare_failures: int | None = Field(None, description="Consecutive transient AWS errors while preparing.")
    next_retry_time: str | None = Field(None, description="Earliest next attempt to prepare after such an error.")
    seal: str | None = Field(None, description="The operator's signature of context and taskDefinitionArn.")


class Metadata(BaseModel):
    """The subset of ObjectMeta the engine reads."""

    model_config = ConfigDict(extra="allow")
    name: str = "ecsjob"
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    creationTimestamp: str | None = None  # noqa: N815 - Kubernetes wire name


class SelectionSpec(Camel):
    """What selection reads of an EcsCommand or EcsCluster spec (the operator indexes only this)."""

    model_config = ConfigDict(extra="ignore")
    tags: list[str] = Field(default_factory=list)
    status: Literal["active", "inactive"] = "active"
    version: str | None = None
    cluster_tags: list[str] = Field(default_factory=list)
    allowed_namespaces: list[str] = Field(default_factory=list)


class SelectionView(BaseModel):
    """An EcsCommand or EcsCluster as selection sees it: identity, tags, status, version, namespaces."""

    model_config = ConfigDict(extra="ignore")
    kind: str = ""
    metadata: Metadata = Field(default_factory=Metadata)
    spec: SelectionSpec = Field(default_factory=SelectionSpec)


class EcsJob(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: str = Field(API_VERSION, alias="apiVersion")
    kind: Literal["EcsJob"] = "EcsJob"
    metadata: Metadata = Field(default_factory=Metadata)
    spec: EcsJobSpec
    status: EcsJobStatus | None = None


class EcsCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: str = Field(API_VERSION, alias="apiVersion")
    kind: Literal["EcsCommand"] = "EcsCommand"
    metadata: Metadata = Field(default_factory=Metadata)
    spec: EcsCommandSpec


class EcsCluster(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: str = Field(API_VERSION, alias="apiVersion")
    kind: Literal["EcsCluster"] = "EcsCluster"
    metadata: Metadata = Field(default_factory=Metadata)
    spec: EcsClusterSpec
