"""Payload templates of custom providers: validation and injection-proof rendering.

A template is the JSON body a custom provider expects, with placeholders::

    {"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "Hi: {{message}}", "rcs": {{rcs}}}

Rendering is structural, never textual over the whole document: the template is parsed once into
a JSON tree (a bare placeholder such as ``{{rcs}}`` above counts as the string ``"{{rcs}}"``), and
values are substituted *inside* that tree — a string that is exactly one placeholder becomes the
value itself (``{{rcs}}`` becomes an object), a placeholder inside a longer string is replaced
within that one string. The tree is then serialised. Whatever a value contains (quotes,
backslashes, newlines, ``{{``, ``"},"admin":true``), it stays one JSON value: it can neither
break the JSON nor add a field, and it is never scanned for placeholders itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from textrelay.errors import ValidationFailed

FIELD = "payload_template"
REQUIRED = ("fromNumber", "toNumber", "message")
KNOWN = ("fromNumber", "toNumber", "message", "messageId", "rcs")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w]*(?:\.[A-Za-z_][\w-]*)*)\s*\}\}")
_PROFILE = re.compile(r"profile\.[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*")
MAX_TEMPLATE = 64 * 1024


@dataclass(frozen=True)
class PayloadValues:
    """What a rendering fills in. ``profile`` holds the recipient's profile attributes."""

    from_number: str | None
    to_number: str
    message: str
    message_id: str = ""
    rcs: dict[str, Any] | None = None
    profile: dict[str, Any] = field(default_factory=dict)

    def lookup(self, name: str) -> Any:
        if name == "fromNumber":
            return self.from_number
        if name == "toNumber":
            return self.to_number
        if name == "message":
            return self.message
        if name == "messageId":
            return self.message_id
        if name == "rcs":
            return self.rcs
        value: Any = self.profile
        for part in name.split(".")[1:]:
            value = value.get(part) if isinstance(value, dict) else None
        return value


@dataclass(frozen=True)
class PayloadTemplate:
    """A validated template, ready to render many times."""

    source: str
    tree: Any
    placeholders: frozenset[str]

    @property
    def uses_rcs(self) -> bool:
        return "rcs" in self.placeholders

    def render(self, values: PayloadValues) -> bytes:
        """The provider payload as UTF-8 JSON bytes."""
        return json.dumps(_fill(self.tree, values), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def render_object(self, values: PayloadValues) -> Any:
        return _fill(self.tree, values)


def compile_template(source: str, *, field: str = FIELD) -> PayloadTemplate:
    """Validate ``source`` (422 naming ``field``, with line and column for bad JSON)."""
    if not isinstance(source, str) or not source.strip():
        raise ValidationFailed.field(field, "a payload template is required")
    if len(source) > MAX_TEMPLATE:
        raise ValidationFailed.field(field, f"is longer than {MAX_TEMPLATE} characters")
    quoted, inserted = _quote_bare_placeholders(source)
    try:
        tree = json.loads(quoted)
    except json.JSONDecodeError as exc:
        original = exc.pos - 2 * sum(1 for at in inserted if at < exc.pos)
        original = max(0, min(len(source), original))
        line = source.count("\n", 0, original) + 1
        column = original - (source.rfind("\n", 0, original) + 1) + 1
        message = f"is not valid JSON: {exc.msg} at line {line}, column {column}"
        raise ValidationFailed(f"{field}: {message}", errors=[
            {"field": field, "message": message, "line": line, "column": column}]) from None
    if not isinstance(tree, dict | list):
        raise ValidationFailed.field(field, "must be a JSON object or array")
    names: set[str] = set()
    _collect(tree, names, field)
    unknown = sorted(n for n in names if n not in KNOWN and not _PROFILE.fullmatch(n))
    if unknown:
        raise ValidationFailed.field(field, "unknown placeholder(s) " + ", ".join(_braced(n) for n in unknown)
                                     + "; use {{fromNumber}}, {{toNumber}}, {{message}}, {{messageId}}, "
                                       "{{rcs}} or {{profile.<attribute>}}")
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise ValidationFailed.field(field, "must reference " + ", ".join(_braced(n) for n in missing))
    return PayloadTemplate(source=source, tree=tree, placeholders=frozenset(names))


def _braced(name: str) -> str:
    return "{{" + name + "}}"


def _quote_bare_placeholders(source: str) -> tuple[str, list[int]]:
    """Wrap placeholders that stand outside JSON strings in quotes; return where quotes went."""
    out: list[str] = []
    inserted: list[int] = []
    in_string = False
    escaped = False
    i = 0
    length = 0
    while i < len(source):
        ch = source[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{" and source.startswith("{{", i):
            match = PLACEHOLDER.match(source, i)
            if match:
                inserted.append(length)
                token = '"' + match.group(0) + '"'
                out.append(token)
                length += len(token)
                i = match.end()
                continue
        out.append(ch)
        length += 1
        i += 1
    return "".join(out), inserted


def _collect(node: Any, names: set[str], field: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if PLACEHOLDER.search(key):
                raise ValidationFailed.field(field, f"placeholders are not allowed in keys ('{key}')")
            _collect(value, names, field)
    elif isinstance(node, list):
        for item in node:
            _collect(item, names, field)
    elif isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        for match in PLACEHOLDER.finditer(node):
            name = match.group(1)
            if name == "rcs" and not whole:
                raise ValidationFailed.field(field, "{{rcs}} must stand alone as a value (it inserts a JSON object)")
            names.add(name)


def _fill(node: Any, values: PayloadValues) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole:
            return _as_value(values.lookup(whole.group(1)))
        if "{{" in node:
            # One pass: substituted text is never scanned again, so "{{" in a message stays text.
            return PLACEHOLDER.sub(lambda m: _as_text(values.lookup(m.group(1))), node)
    return node


def _as_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)
