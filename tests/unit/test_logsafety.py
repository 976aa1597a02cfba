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
