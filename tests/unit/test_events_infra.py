"""The shipped events infrastructure (docs/events/): the CloudFormation template passes cfn-lint,
the Terraform declares the same rule, queues and policy, and the consumer's SQS calls are in its
IAM policy."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import hcl2
from cfnlint.api import lint_all, lint_file

from support.cfn import EVENTS, cloudformation

ROOT = Path(__file__).parents[2]
CLUSTERS = ["arn:aws:ecs:us-east-1:123456789012:cluster/batch"]


def terraform() -> dict[str, Any]:
    with (EVENTS / "main.tf").open() as f:
        parsed = hcl2.load(f)
    resources: dict[str, Any] = {}
    for block in parsed["resource"]:
        for kind, named in block.items():
            for name, body in named.items():
                resources[f"{kind.strip(chr(34))}.{name.strip(chr(34))}"] = body
    return resources


def cfn_pattern() -> dict[str, Any]:
    rule = cloudformation()["Resources"]["TaskStateRule"]["Properties"]
    pattern = json.loads(json.dumps(rule["EventPattern"]))
    assert pattern["detail"]["clusterArn"] == {"Ref": "ClusterArns"}
    pattern["detail"]["clusterArn"] = CLUSTERS
    return dict(pattern)


def tf_pattern() -> dict[str, Any]:
    text = terraform()["aws_cloudwatch_event_rule.task_state"]["event_pattern"]
    text = text.replace("${jsonencode(var.cluster_arns)}", json.dumps(CLUSTERS))
    return dict(json.loads(re.sub(r"^\s*<<-?\w+\s*|\s*\w+\s*$", "", text.strip('"'))))


def test_the_cloudformation_template_passes_cfn_lint() -> None:
    assert lint_file(EVENTS / "cloudformation.yaml") == []
    broken = (EVENTS / "cloudformation.yaml").read_text().replace("VisibilityTimeout: 60", "VisibilityTimeout: 99999")
    assert lint_all(broken)  # the linter does find errors (43,200 s is SQS's maximum)


def test_the_rule_matches_ecs_task_state_changes_of_the_named_clusters() -> None:
    assert cfn_pattern() == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {"clusterArn": CLUSTERS},
    }


def test_terraform_declares_the_same_rule_queues_and_policy() -> None:
    tf, cfn = terraform(), cloudformation()["Resources"]
    assert tf_pattern() == cfn_pattern()
    queue = cfn["ShardZeroQueue"]["Properties"]
    events = tf["aws_sqs_queue.events"]
    assert (events["message_retention_seconds"], events["receive_wait_time_seconds"]) == (
        queue["MessageRetentionPeriod"], queue["ReceiveMessageWaitTimeSeconds"],
    )  # fmt: skip
    assert events["visibility_timeout_seconds"] == queue["VisibilityTimeout"]
    assert "maxReceiveCount     = 5" in events["redrive_policy"] or "maxReceiveCount = 5" in events["redrive_policy"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert tf["aws_sqs_queue.dead_letter"]["message_retention_seconds"] == 1209600
    assert cfn["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600
    statement = cfn["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    policy = tf["aws_sqs_queue_policy.events"]["policy"]
    for needle in ('"events.amazonaws.com"', '"sqs:SendMessage"', '"aws:SourceArn"', "ArnEquals"):
        assert needle in policy
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert "aws:SourceArn" in statement["Condition"]["ArnEquals"]
    assert set(tf) >= {"aws_cloudwatch_event_target.events", "aws_sqs_queue_policy.events"}
    assert len(cfn["TaskStateRule"]["Properties"]["Targets"]) == 2  # one queue per consumer


def test_the_consumers_sqs_calls_are_in_its_iam_policy() -> None:
    tree = ast.parse((ROOT / "operator" / "ecsjob_operator" / "aws" / "events.py").read_text())
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    permission = {"receive_message": "sqs:ReceiveMessage", "delete_message_batch": "sqs:DeleteMessage"}
    used = {permission[c] for c in calls if c in permission}
    assert used == {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
    policy = json.loads((EVENTS / "iam-policy-events.json").read_text())
    granted = {a for s in policy["Statement"] for a in s["Action"]}
    assert used <= granted and granted <= used | {"sqs:GetQueueAttributes"}
