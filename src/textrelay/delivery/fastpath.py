"""A lean ASGI path for Twilio status callbacks (delivery receipts), which arrive by the thousand
per second: it answers ``POST /hooks/twilio/{id}`` for *feedback* webhooks in front of the whole
framework stack (routing, dependencies, sessions, telemetry and metrics middleware cost several
times the work itself), with the same steps as ``api.routes.hooks``: load the webhook (cached),
read the form, check ``X-Twilio-Signature`` over the public URL (403 when wrong), then
``receipts.twilio_status``. Everything else goes to the application unchanged.

``serve`` wraps its application with it: ``uvicorn.run(FeedbackFastPath(app))``.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request

from textrelay.errors import NotFound

log = logging.getLogger("textrelay.receipts")

PREFIX = "/hooks/twilio/"
MAX_BODY_BYTES = 64 * 1024


async def _answer(send: Any, status: int, body: bytes = b"", content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class FeedbackFastPath:
    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:  # ``.state`` and friends still reach the application
        return getattr(self.app, name)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.startswith(PREFIX):
            return await self.app(scope, receive, send)
        webhook_id = path[len(PREFIX):]
        if not webhook_id or "/" in webhook_id or len(webhook_id) > 64:
            return await self.app(scope, receive, send)
        from textrelay.api.routes import hooks

        ctx = self.app.state.context
        try:
            info = hooks.load_webhook(ctx, webhook_id, "twilio")
        except NotFound:
            return await self.app(scope, receive, send)
        if info.type != "feedback":
            return await self.app(scope, receive, send)
        try:
            await self._handle(ctx, info, scope, receive, send)
        except Exception:  # answer, never drop the connection: Twilio retries a non-2xx
            log.exception("status callback on webhook %s failed", webhook_id)
            await _answer(send, 500, b"the status callback could not be handled")

    async def _handle(self, ctx: Any, info: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from textrelay.api.routes import hooks
        from textrelay.delivery import receipts
        from textrelay.providers.twilio_signature import validate_signature

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return await _answer(send, 413, b"the body is too large")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        try:
            form = hooks.parse_form(b"".join(chunks))
        except hooks.BadRequest:
            return await _answer(send, 400, b"the request body is not UTF-8 form data")
        headers = {k: v for k, v in scope["headers"] if k in (b"x-twilio-signature", b"i-twilio-idempotency-token")}
        signature = headers.get(b"x-twilio-signature")
        if not validate_signature(info.signing_secret, self._signed_url(ctx, scope), form,
                                  signature.decode("latin-1") if signature else None):
            return await _answer(send, 403, b"the X-Twilio-Signature header is missing or wrong")
        token = headers.get(b"i-twilio-idempotency-token")
        response = await receipts.twilio_status(ctx, info, form, token.decode("latin-1") if token else None)
        await response(scope, receive, send)

    def _signed_url(self, ctx: Any, scope: dict[str, Any]) -> str:
        """As ``hooks.signed_url``, without building a Request when the public URL is configured."""
        base = ctx.settings.public_url
        if not base:
            from textrelay.api.routes import hooks

            scope.setdefault("app", self.app)
            return hooks.signed_url(Request(scope))
        query = scope.get("query_string") or b""
        return base.rstrip("/") + scope["path"] + ("?" + query.decode("latin-1") if query else "")
