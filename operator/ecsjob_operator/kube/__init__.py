"""The Kubernetes side: kopf handlers, the runtime adapter between EcsJob bodies and the engine, and the
operator's metrics. Independent of the AWS side; the CLI composes the two."""
