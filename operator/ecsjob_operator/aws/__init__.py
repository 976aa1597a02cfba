"""The AWS backend: ECS and CloudWatch Logs over boto3. Independent of the Kubernetes side."""
