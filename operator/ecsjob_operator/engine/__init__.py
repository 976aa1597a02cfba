"""The engine: prepares and steps jobs against a `Backend` (ECS or local processes), calling the pure
core. Shared by `ecsjob run` and the operator; imports no backend and no Kubernetes code."""
