"""Field errors: every problem of a spec, with the path of the field and the reason. Pure."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class FieldError:
    """One problem of a spec: where it is and what is wrong."""

    path: str
    message: str
    reason: str = "InvalidSpec"  # the Invalid condition's reason when this error decides it

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def from_validation_error(exc: ValidationError, prefix: str) -> list[FieldError]:
    """Turn pydantic's errors into FieldErrors with Kubernetes-style paths (spec.context.cpu)."""
    errors = []
    for err in exc.errors():
        path = prefix
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "is required"
        errors.append(FieldError(path, message))
    return errors


def validate_all(model: type[M], data: Any, prefix: str) -> tuple[M | None, list[FieldError]]:
    """Validate, and on errors validate again without the offending fields, so that the caller
    can go on checking the rest (merge rules, limits) and report every problem at once."""
    try:
        return model.model_validate(data, by_alias=True, by_name=False), []
    except ValidationError as exc:
        errors = from_validation_error(exc, prefix)
        cleaned = copy.deepcopy(data)
        for loc in sorted((e["loc"] for e in exc.errors()), key=lambda loc: [str(p) for p in loc], reverse=True):
            _drop(cleaned, loc)
        try:
            return model.model_validate(cleaned, by_alias=True, by_name=False), errors
        except ValidationError:
            return None, errors


def _drop(data: Any, loc: tuple[int | str, ...]) -> None:
    for part in loc[:-1]:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(data, dict):
        data.pop(loc[-1], None)
    elif isinstance(data, list) and isinstance(loc[-1], int) and loc[-1] < len(data):
        del data[loc[-1]]


def render(errors: list[FieldError]) -> str:
    """One line per error."""
    return "; ".join(str(e) for e in errors)
