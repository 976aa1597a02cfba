"""Logs never show environment values (docs/reference.md, "Security boundaries"), whatever the level.

Debug logs of kopf and botocore print whole objects and request bodies (task definitions,
container overrides). A filter on the root handlers masks every `"value": ...` pair of such
dumps, and the AWS SDK's wire logs stay off unless asked for.
"""

from __future__ import annotations

import logging
import re

_VALUE = re.compile(r"""(\\?["']value\\?["']\s*:\s*)(\\?["'])(.*?)(?<!\\)\2""")
MASK = "***"


# Control characters a task could use to drive the user's terminal (ANSI/OSC escapes, NUL, bells):
# C0 except tab, DEL and C1. Shown as \xNN; everything else is kept as it is.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """A task's log line made safe for a terminal: control characters (tab aside) escaped as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def redact_text(text: str) -> str:
    """Mask the value of every JSON/Python-repr `value` key (environment variables, tag values)."""
    return _VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text)


class RedactValues(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "value" in message:
            record.msg, record.args = redact_text(message), None
        return True


def install(wire_logs: bool = False) -> None:
    """Add the filter to every root handler; keep botocore/urllib3 wire dumps off by default."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactValues) for f in handler.filters):
            handler.addFilter(RedactValues())
    if not wire_logs:
        for name in ("botocore", "boto3", "urllib3", "s3transfer"):
            logging.getLogger(name).setLevel(logging.WARNING)
