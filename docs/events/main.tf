# ECS task state events for ecsjob-operator (the same as cloudformation.yaml): one EventBridge rule
# on "ECS Task State Change" for the named clusters, one SQS queue per consumer (here two operator
# shards; add a queue, its policy and a target per further consumer), and a dead-letter queue.

variable "cluster_arns" {
  type        = list(string)
  description = "ARNs of the ECS clusters whose task events the operator consumes"
}

variable "name_prefix" {
  type    = string
  default = "ecsjob"
}

variable "consumers" {
  type    = list(string)
  default = ["shard-0", "shard-1"]
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name_prefix}-task-events-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "events" {
  for_each                   = toset(var.consumers)
  name                       = "${var.name_prefix}-task-events-${each.key}"
  message_retention_seconds  = 86400
  receive_wait_time_seconds  = 20
  visibility_timeout_seconds = 60
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = 5
  })
}

resource "aws_cloudwatch_event_rule" "task_state" {
  name        = "${var.name_prefix}-task-state"
  description = "ECS task state changes of the clusters ecsjob-operator runs tasks on"
  state       = "ENABLED"
  event_pattern = <<-PATTERN
    {
      "source": ["aws.ecs"],
      "detail-type": ["ECS Task State Change"],
      "detail": {"clusterArn": ${jsonencode(var.cluster_arns)}}
    }
  PATTERN
}

resource "aws_cloudwatch_event_target" "events" {
  for_each  = aws_sqs_queue.events
  rule      = aws_cloudwatch_event_rule.task_state.name
  target_id = each.key
  arn       = each.value.arn
}

resource "aws_sqs_queue_policy" "events" {
  for_each  = aws_sqs_queue.events
  queue_url = each.value.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeSendsTaskEvents"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = each.value.arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.task_state.arn } }
    }]
  })
}

output "queue_urls" {
  description = "--events-queue of each consumer"
  value       = { for name, queue in aws_sqs_queue.events : name => queue.id }
}
