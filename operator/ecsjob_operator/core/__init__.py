"""The pure core: decisions, merge, selection, status, lifecycle predicates, identities and the AWS facts
they rely on. No I/O, no clock, and neither kopf, the kubernetes client nor boto3."""
