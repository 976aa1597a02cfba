import json
import logging

import pytest

from ecsjob_operator.core.redaction import RedactValues, redact_text

SECRET = "s3cr3t-v@lue with 'quotes'"


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"environment": [{"name": "TOKEN", "value": SECRET}]}),
        repr({"environment": [{"name": "TOKEN", "value": SECRET}]}),
        json.dumps(json.dumps({"name": "TOKEN", "value": SECRET})),  # JSON inside JSON (annotations)
        "Merge-patching with: " + repr({"value": SECRET, "other": {"value": "x"}}),
    ],
)
def test_values_are_masked_in_every_dump_form(text: str) -> None:
    masked = redact_text(text)
    assert "s3cr3t" not in masked and "***" in masked
    assert ("TOKEN" in masked) == ("TOKEN" in text)  # names stay readable


def test_filter_rewrites_records() -> None:
    record = logging.LogRecord("kopf", logging.DEBUG, __file__, 1, "body: %s", (repr({"value": SECRET}),), None)
    assert RedactValues().filter(record)
    assert "s3cr3t" not in record.getMessage() and "***" in record.getMessage()


def test_task_log_lines_cannot_drive_the_terminal() -> None:
    from datetime import UTC, datetime

    from ecsjob_operator.engine.backend import LogEvent, format_logs

    hostile = "ok\tcol \x1b]0;pwned\x07 \x1b[31mred\x1b[0m nul\x00 bell\x07 c1\x9b é ü"
    text = format_logs("ecs/main/\x1b[2Jid", [LogEvent(datetime(2026, 1, 1, tzinfo=UTC), hostile + "\n")])
    assert not any(ch in text for ch in "\x1b\x07\x00\x9b")
    assert "\\x1b]0;pwned\\x07" in text and "\\x1b[31mred" in text and "nul\\x00" in text and "c1\\x9b" in text
    assert "ok\tcol" in text and "é ü" in text  # tabs and text are kept as they are
    assert text.splitlines()[0] == "=== ecs/main/\\x1b[2Jid ==="
