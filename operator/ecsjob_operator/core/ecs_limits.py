"""What ECS and Fargate allow, in one place (every number links the AWS page it comes from).

Pure constants: the core validates against them, the engine batches by them, the AWS backend
calls within them. moto enforces none of these, so our code must.
"""

from __future__ import annotations

# DescribeTasks takes at most 100 ARNs per call.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html#ECS-DescribeTasks-request-tasks
DESCRIBE_BATCH = 100
# RunTask `startedBy`: up to 36 letters, numbers, hyphens, forward slashes and underscores.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html#ECS-RunTask-request-startedBy
STARTED_BY_MAX = 36
STARTED_BY_CHARS = r"^[A-Za-z0-9_/-]+$"
# RunTask `clientToken`: up to 64 ASCII characters (same page, clientToken).
CLIENT_TOKEN_MAX = 64
# A task definition family: up to 255 letters, numbers, hyphens and underscores.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html#ECS-RegisterTaskDefinition-request-family
FAMILY_MAX = 255
# StopTask `reason`: up to 255 characters.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html#ECS-StopTask-request-reason
STOP_REASON_MAX = 255
# RunTask is throttled per account and region with a token bucket (burst 100, refill 40/s).
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html
RUN_TASK_BURST, RUN_TASK_RATE = 100.0, 40.0
# ECS allows 50 tags per resource; keys are 1-128 characters, values at most 256.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-using-tags.html#tag-restrictions
MAX_TAGS, TAG_KEY_MAX, TAG_VALUE_MAX = 50, 128, 256
# Valid Fargate task sizes: cpu units -> allowed memory (MiB).
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
FARGATE_SIZES: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}
# Keys that DescribeTaskDefinition returns but RegisterTaskDefinition refuses.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskDefinition.html
READ_ONLY_KEYS = (
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
)
# Stop codes after which the containers' exit codes decide; any other stop is a failure.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html#ECS-Type-Task-stopCode
CLEAN_STOP_CODES = (None, "EssentialContainerExited")
# Stop codes of capacity that AWS took back (Fargate Spot): not the job's fault.
INTERRUPTION_STOP_CODES = ("SpotInterruption", "TerminationNotice")
