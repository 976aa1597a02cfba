"""The local backend: each task a detached process tree with its state on disk (`ecsjob run`'s default)."""
