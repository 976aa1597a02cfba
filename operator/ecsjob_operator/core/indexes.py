"""Index lists as Kubernetes' Indexed Jobs write them: "0,2-4" (successPolicy, status.failedIndexes). Pure."""

from __future__ import annotations


def index_ranges(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        out.append((int(low), int(high or low)))
    return out


def parse_indexes(text: str) -> set[int]:
    """ "0,2-4" -> {0, 2, 3, 4} (the format Kubernetes' Indexed Jobs use)."""
    return {i for low, high in index_ranges(text) for i in range(low, high + 1)}


def format_indexes(indexes: set[int] | list[int]) -> str:
    """{1, 3, 4} -> "1,3-4"."""
    out: list[str] = []
    for i in sorted(set(indexes)):
        if out and out[-1].split("-")[-1] == str(i - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)
