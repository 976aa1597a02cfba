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
