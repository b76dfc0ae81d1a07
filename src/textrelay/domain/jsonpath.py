"""A small JSON path reader: ``$.messages[0].id``, ``data.id``, ``statuses[0].code``.

Custom providers and custom webhooks name where a value sits in a JSON document. Only member and
index steps are needed for that, so this reader stays tiny instead of bringing in a full JSONPath
library (whose filters and wildcards would return lists where one value is wanted). Quoted members
(``$['odd key'].x``) cover keys with dots or spaces.
"""

from __future__ import annotations

import re
from typing import Any

from textrelay.errors import ValidationFailed

_MISSING = object()
_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_$@-][\w$@-]*)      # .member
      |\[(?P<index>-?\d+)\]                   # [0]
      |\[(?P<quote>['"])(?P<key>(?:(?!(?P=quote)).)*)(?P=quote)\]  # ['member']
    """,
    re.VERBOSE,
)

Path = tuple[str | int, ...]


def parse_path(path: str, field: str = "path") -> Path:
    """Split a path into steps; raise 422 naming ``field`` when it is not one."""
    text = (path or "").strip()
    if not text:
        raise ValidationFailed.field(field, "a JSON path is required")
    if text.startswith("$"):
        text = text[1:]
    elif not text.startswith(("[", ".")):
        text = "." + text
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _STEP.match(text, pos)
        if not match:
            raise ValidationFailed.field(field, f"'{path}' is not a JSON path (problem at character {pos + 1}); "
                                                "use members and indexes such as $.messages[0].id")
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            steps.append(match.group("key"))
        pos = match.end()
    if not steps:
        raise ValidationFailed.field(field, "the path must name at least one member")
    return tuple(steps)


def read(document: Any, path: Path | str, default: Any = None) -> Any:
    """The value at ``path`` in ``document``, or ``default`` when any step is missing."""
    steps = parse_path(path) if isinstance(path, str) else path
    value = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return default
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return default
            value = value[step]
    return value


def has(document: Any, path: Path | str) -> bool:
    return read(document, path, _MISSING) is not _MISSING
