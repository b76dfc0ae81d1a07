"""Characters no store can keep: NUL (PostgreSQL text refuses it) and lone UTF-16 surrogates (not
encodable as UTF-8). JSON may carry both as ``\\u0000`` / ``\\ud800`` escapes and a query string as
``%00``; they are refused here with a 422 naming the field, before any use case sees them."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from textrelay.api.problems import problem

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_field(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) holding an unstorable character, if any."""
    if isinstance(value, str):
        return (path or "body") if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _UNSTORABLE.search(key):
                return path or "body"
            found = unstorable_field(item, here)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_field(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def _refuse(field: str) -> Any:
    message = "contains a NUL character or a lone surrogate, which cannot be stored"
    return problem(422, "Validation failed", f"{field}: {message}", [{"field": field, "message": message}])


class InputGuard:
    """Checks the query string and JSON bodies of ``/api/`` requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if query:
            try:
                pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, errors="surrogateescape")
            except ValueError:
                pairs = []
            for name, value in pairs:
                if _UNSTORABLE.search(name) or _UNSTORABLE.search(value):
                    await _refuse(f"query.{name if not _UNSTORABLE.search(name) else '?'}")(scope, receive, send)
                    return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        if scope.get("method") not in ("POST", "PUT", "PATCH") or b"json" not in content_type:
            await self.app(scope, receive, send)
            return
        # JSON bodies are small here (the body limit stands outside this guard): read, check, replay.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if b"\\u" in body or b"\x00" in body:
            try:
                field = unstorable_field(json.loads(body))
            except ValueError:
                field = None  # malformed JSON: the framework answers 400 for it
            if field:
                await _refuse(field)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
