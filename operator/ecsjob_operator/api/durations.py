"""Go-style duration strings ("15s", "45m", "2h15m30s") <-> whole seconds.

Pure: no I/O. Only h, m and s units are accepted, each at most once and in that order, with
whole numbers; the total must be positive. This is the subset the API contract lists.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?$")  # ASCII digits, as the CRD
PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
EXAMPLE = '"30s", "45m", "1h" or "2h15m30s"'
MAX_LENGTH = 32  # longer strings are no duration we accept (and would cost CEL and int() dearly)
# Bounds (docs/reference.md, "Contexts"): with them, every date computed from a status is in range.
POLLING_MIN, POLLING_MAX = 1, 3600
TIMEOUT_MAX = 720 * 3600  # 30 days


class DurationError(ValueError):
    """A duration string that is not of the accepted form."""


def parse_duration(value: object) -> int:
    """Return the number of seconds in a duration string such as "2h15m30s"."""
    if not isinstance(value, str):
        raise DurationError(
            f"{value!r} is not a duration string; write it as {EXAMPLE} (a bare number is not accepted)"
        )
    match = _DURATION.fullmatch(value) if len(value) <= MAX_LENGTH else None  # "$" would allow a final \n
    if not value or match is None:
        raise DurationError(f'"{value}" is not a valid duration; write it as {EXAMPLE}')
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    seconds = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    if seconds <= 0:
        raise DurationError(f'"{value}" is not a positive duration; write it as {EXAMPLE}')
    return seconds


def check_bounds(value: str, low: int, high: int) -> str:
    """A duration string within [low, high] seconds, else DurationError naming the bounds."""
    seconds = parse_duration(value)
    if not low <= seconds <= high:
        raise DurationError(f'"{value}" must be between {format_duration(low)} and {format_duration(high)}')
    return value


def format_duration(seconds: int) -> str:
    """Return the shortest duration string for a positive number of seconds."""
    if seconds <= 0:
        raise DurationError(f"{seconds} is not a positive number of seconds")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs else "")
