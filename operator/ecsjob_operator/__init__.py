"""ecsjob-operator: run short-lived batch jobs as AWS ECS Fargate tasks from Kubernetes."""

__version__ = "0.1.0"
