"""Status timestamps: RFC 3339 in UTC to the second, as Kubernetes writes them. Pure."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
