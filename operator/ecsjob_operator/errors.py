"""Field errors: every problem of a spec, with the path of the field and the reason. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldError:
    """One problem of a spec: where it is and what is wrong."""

    path: str
    message: str

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


def render(errors: list[FieldError]) -> str:
    """One line per error."""
    return "; ".join(str(e) for e in errors)
