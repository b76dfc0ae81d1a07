"""Turning service and model errors into messages shown next to form fields."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from textrelay.errors import TextrelayError


@dataclass
class FormErrors:
    """``fields``: one message per form field; ``general``: messages that belong to no field shown."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


def _pydantic_message(err: dict, model: type[BaseModel] | None) -> str:
    kind = err.get("type", "")
    name = str(err["loc"][0]) if err.get("loc") else ""
    if kind == "missing":
        return "Required."
    if kind == "string_pattern_mismatch" and model is not None and name in model.model_fields:
        described = model.model_fields[name].description
        if described:
            # "AC followed by…" keeps its capitals; "A number…" reads "Must be a number…".
            lowered = described[0].lower() + described[1:] if described[1:2].islower() else described
            return f"Must be {lowered}"
    if kind == "string_too_short" and (err.get("ctx") or {}).get("min_length") == 1:
        return "Required."
    return str(err.get("msg", "Invalid.")).removeprefix("Value error, ")


def form_errors(exc: ValidationError | TextrelayError, shown: set[str],
                model: type[BaseModel] | None = None) -> FormErrors:
    """Messages for the fields in ``shown``; anything else goes to ``general``.

    ``model`` lends its field descriptions to pattern errors ("Must be AC followed by 32 hex digits").
    """
    out = FormErrors()
    if isinstance(exc, ValidationError):
        items = [(str(e["loc"][0]) if e.get("loc") else "", _pydantic_message(e, model)) for e in exc.errors()]
    else:
        items = [(str(e.get("field", "")), str(e.get("message", ""))) for e in exc.errors]
        if not items:
            out.general.append(exc.detail)
    for name, message in items:
        if name in shown and name not in out.fields:
            out.fields[name] = message
        elif name not in shown:
            out.general.append(f"{name}: {message}" if name else message)
    if isinstance(exc, TextrelayError) and exc.errors and not out.fields and exc.detail not in out.general:
        out.general.insert(0, exc.detail)
    return out
