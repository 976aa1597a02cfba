"""`ecsjob`, the command line: the composition root where a backend meets the engine or the operator."""

from ecsjob_operator.cli.commands import main

__all__ = ["main"]
