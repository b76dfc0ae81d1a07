"""RFC 9457 problem details: the one place where errors become HTTP answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from textrelay.errors import TextrelayError

log = logging.getLogger("textrelay.api")
PROBLEM = "application/problem+json"
UNION_TAGS = frozenset({"twilio", "custom"})
_UNION_TAGS = frozenset({"twilio", "custom"})  # credential bodies are a union tagged by vendor


def problem(status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        where, rest = parts[0], parts[1:]
        if where == "body":
            if len(rest) > 1 and rest[0] in _UNION_TAGS:  # a vendor-tagged body: name the field itself
                rest = rest[1:]
            return ".".join(rest) or "body"
        return f"{where}.{'.'.join(rest)}" if rest else where
    return ".".join(parts) or "body"


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "field required"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def validation_problem(exc: RequestValidationError) -> JSONResponse:
    errs = exc.errors()
    for err in errs:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return problem(400, "Malformed JSON", f"the request body is not valid JSON: {ctx.get('error', '')}".strip(),
                           [{"field": "body", "message": "malformed JSON"}])
    errors = [{"field": _field(tuple(e.get("loc", ()))), "message": _message(e)} for e in errs]
    # Union members report the same field once per member; keep each (field, message) once.
    seen: set[tuple[str, str]] = set()
    unique = [e for e in errors if not ((e["field"], e["message"]) in seen or seen.add((e["field"], e["message"])))]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in unique[:5])
    return problem(422, "Validation failed", detail, unique)


def install(app: FastAPI) -> None:
    @app.exception_handler(TextrelayError)
    async def _service_error(_request: Request, exc: TextrelayError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.errors, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large", 415: "Unsupported media type"}
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail),
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # Input guards refuse what they can name; this is the net for the rest (forms, CSV cells).
        log.warning("refused a value the database cannot store on %s %s: %s", request.method, request.url.path,
                    type(exc.orig).__name__ if exc.orig is not None else "DataError")
        return problem(422, "Validation failed",
                       "a value is out of range or holds characters that cannot be stored (such as NUL)")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "the server hit an unexpected error; it has been logged")
