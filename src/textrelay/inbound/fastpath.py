"""A lean ASGI path for Twilio inbound webhooks, the one endpoint that takes bursts of thousands
of requests per second.

It answers ``POST /hooks/twilio/{id}`` for *inbound* webhooks before the framework's routing,
dependency and middleware layers (which cost more than the work itself), with the same steps as
``api.routes.hooks``: load the webhook (cached), read the form, check ``X-Twilio-Signature`` over
the public URL, then ``inbound.twilio.handle``. Anything else — feedback webhooks, unknown ids,
other methods — passes through to the app unchanged, so errors there look as everywhere else.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

from textrelay.api.problems import problem
from textrelay.errors import NotFound, TextrelayError

log = logging.getLogger("textrelay.inbound")

PREFIX = "/hooks/twilio/"
MAX_BODY_BYTES = 256 * 1024


class TwilioInboundFastPath:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.startswith(PREFIX):
            return await self.app(scope, receive, send)
        webhook_id = path[len(PREFIX):]
        if not webhook_id or "/" in webhook_id or len(webhook_id) > 64:
            return await self.app(scope, receive, send)
        from textrelay.api.routes import hooks

        ctx = scope["app"].state.context
        try:
            info = hooks.load_webhook(ctx, webhook_id, "twilio")
        except NotFound:
            return await self.app(scope, receive, send)
        if info.type != "inbound":
            return await self.app(scope, receive, send)
        try:
            response = await self._handle(ctx, info, scope, receive)
        except TextrelayError as exc:
            response = problem(exc.status, exc.title, exc.detail, exc.errors, **exc.extra)
        except Exception:  # answer a problem, never drop the connection
            log.exception("inbound webhook %s failed", webhook_id)
            response = problem(500, "Internal error", "the inbound message could not be handled")
        await response(scope, receive, send)

    async def _handle(self, ctx: Any, info: Any, scope: dict[str, Any], receive: Any) -> Any:
        from textrelay.api.routes import hooks
        from textrelay.inbound import twilio as inbound_twilio
        from textrelay.providers.twilio_signature import validate_signature

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise TextrelayError("the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return problem(413, "Payload too large", f"the body is over {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        form = hooks.parse_form(b"".join(chunks))
        if not validate_signature(info.signing_secret, _signed_url(ctx, scope), form,
                                  _header(scope, b"x-twilio-signature")):
            return problem(403, "Forbidden", "the X-Twilio-Signature header is missing or wrong")
        return await inbound_twilio.handle(ctx, info, form)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _signed_url(ctx: Any, scope: dict[str, Any]) -> str:
    """The URL Twilio signed. With a configured public URL that is plain concatenation; otherwise
    ``hooks.signed_url`` rebuilds it from the request (proxy headers when trusted)."""
    from textrelay.api.routes import hooks

    base = ctx.settings.public_url
    if not base:
        return hooks.signed_url(Request(scope))
    query = scope.get("query_string", b"")
    return base.rstrip("/") + scope["path"] + ("?" + query.decode("latin-1") if query else "")
