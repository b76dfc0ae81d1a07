"""Twilio webhooks: ``POST /hooks/twilio/{webhook_id}``, inbound messages and status callbacks.

Both arrive by the thousand per second, so they are served here, ahead of the framework's routing,
dependency and middleware layers (which cost several times the work itself): load the webhook
(cached), read the form (bounded), check ``X-Twilio-Signature`` over the public URL — 403 and
nothing stored when it is missing or wrong — then hand the form to the delivery receipts
(feedback webhooks) or to inbound keyword handling (inbound webhooks). Every other request passes
through to the application unchanged; errors here are problem+json like everywhere else.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from textrelay.api.problems import problem
from textrelay.errors import Forbidden, TextrelayError
from textrelay.providers.twilio_signature import validate_signature

log = logging.getLogger("textrelay.hooks")

PREFIX = "/hooks/twilio/"
MAX_BODY_BYTES = 256 * 1024


class TwilioWebhooks:
    """ASGI middleware serving the Twilio webhook path; installed outermost by the route registry."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            return await self.app(scope, receive, send)
        webhook_id = path[len(PREFIX):]
        try:
            if scope.get("method") != "POST":
                response: Response = problem(405, "Method not allowed", "Twilio webhooks take POST",
                                             headers={"Allow": "POST"})
            else:
                response = await self._handle(scope, receive, webhook_id)
        except TextrelayError as exc:
            response = problem(exc.status, exc.title, exc.detail, exc.errors, **exc.extra)
        except Exception:  # answer a problem, never drop the connection: Twilio retries on errors
            log.exception("Twilio webhook %s failed", webhook_id)
            response = problem(500, "Internal error", "the webhook call could not be handled; it has been logged")
        await response(scope, receive, send)

    async def _handle(self, scope: dict[str, Any], receive: Any, webhook_id: str) -> Response:
        from textrelay.api.routes import hooks

        ctx = scope["app"].state.context if "app" in scope else self._context()
        info = hooks.load_webhook(ctx, webhook_id, "twilio")
        form = hooks.parse_form(await _read_body(receive))
        if not validate_signature(info.signing_secret, _signed_url(ctx, scope), form,
                                  _header(scope, b"x-twilio-signature")):
            raise Forbidden("the X-Twilio-Signature header is missing or wrong")
        if info.type == "feedback":
            from textrelay.delivery import receipts

            return await receipts.twilio_status(ctx, info, form, _header(scope, b"i-twilio-idempotency-token"))
        from textrelay.inbound import twilio as inbound_twilio

        return await inbound_twilio.handle(ctx, info, form)

    def _context(self) -> Any:
        app = self.app
        while not hasattr(app, "state"):
            app = app.app
        return app.state.context


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise TextrelayError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes",
                            errors=[{"field": "body", "message": f"larger than {MAX_BODY_BYTES} bytes"}])
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


class _TooLarge(TextrelayError):
    status = 413
    title = "Payload too large"


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _signed_url(ctx: Any, scope: dict[str, Any]) -> str:
    """The URL Twilio signed. With a configured public URL, plain concatenation; otherwise rebuilt
    from the request (forwarded headers only when trusted), as ``hooks.signed_url`` does."""
    base = ctx.settings.public_url
    if not base:
        from textrelay.api.routes import hooks

        return hooks.signed_url(Request(scope))
    query = scope.get("query_string", b"")
    return base.rstrip("/") + scope["path"] + ("?" + query.decode("latin-1") if query else "")
