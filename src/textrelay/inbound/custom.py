"""Custom providers' webhooks: JSON in, authenticated by each webhook's own secret.

``POST /hooks/custom/{webhook_id}`` (see ``api.routes.hooks``). The call is authenticated first,
with the webhook's own scheme and secret (``services.webhook_secrets``; a webhook without one
falls back to the credential's ``webhook_auth``) —
``hmac``: the header (default ``X-Signature``) holds the hex HMAC-SHA256 of the raw body, with or
without a ``sha256=`` prefix, compared in constant time; ``bearer``/``basic``: the
``Authorization`` header — and a bad or missing one gets 403 with nothing stored. Then fields are
read by the credential's JSON-path mappings; a missing mapped field is a 400.

- inbound: message, profile number, request id, origin timestamp and inbound number; keywords,
  consent and the stored inbound message go through ``inbound.service`` exactly as for Twilio. The
  reply is queued as an outbound message (``inbound.custom_replies``), once per inbound message. The
  answer is JSON: ``{"received": true, "reply": <text or null>, "reply_message_id": <id or null>}``.
- feedback: client reference (our message id), status (mapped through the status table), error
  code, and optionally the provider's message id; applied like a Twilio status callback (duplicates
  ignored, statuses never move backwards).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from textrelay.api.routes.hooks import WebhookInfo, load_webhook
from textrelay.domain import jsonpath
from textrelay.domain.numbers import normalize_e164, normalize_inbound_number
from textrelay.errors import BadRequest, Forbidden, ValidationFailed
from textrelay.inbound import custom_replies, service
from textrelay.services import custom_credentials, webhook_secrets
from textrelay.services.custom_credentials import FeedbackMapping, InboundMapping
from textrelay.store.models import Credential, Message, utcnow

CACHE_SECONDS = 30.0
MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class CustomHookConfig:
    auth: dict[str, Any]  # webhook_auth with secrets in clear
    inbound: InboundMapping
    feedback: FeedbackMapping


_configs: dict[str, tuple[float, CustomHookConfig]] = {}


def forget(credential_id: str | None = None) -> None:
    if credential_id is None:
        _configs.clear()
    else:
        _configs.pop(credential_id, None)


def _config(ctx: Any, credential_id: str) -> CustomHookConfig:
    now = time.monotonic()
    hit = _configs.get(credential_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    with ctx.db.session() as session:
        cred = session.get(Credential, credential_id)
        if cred is None:
            raise Forbidden("the webhook's credential is gone")
        full = custom_credentials.effective(cred, ctx.keyring)
    config = CustomHookConfig(auth=full.get("webhook_auth") or {},
                              inbound=InboundMapping.model_validate(full.get("inbound_mapping") or {}),
                              feedback=FeedbackMapping.model_validate(full.get("feedback_mapping") or {}))
    _configs[credential_id] = (now + CACHE_SECONDS, config)
    return config


def authentic(auth: dict[str, Any], headers: Headers, body: bytes) -> bool:
    """Whether the call carries the webhook's credentials (constant-time comparisons)."""
    kind = auth.get("type", "hmac")
    if kind == "hmac":
        secret = auth.get("secret") or ""
        given = (headers.get(auth.get("header") or "X-Signature") or "").strip()
        given = given.removeprefix("sha256=")
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return bool(secret) and hmac.compare_digest(given.lower().encode(), expected.encode())
    header = headers.get("authorization") or ""
    if kind == "bearer":
        token = auth.get("token") or ""
        return bool(token) and hmac.compare_digest(header.encode(), f"Bearer {token}".encode())
    if kind == "basic":
        pair = f"{auth.get('username') or ''}:{auth.get('password') or ''}".encode()
        expected = "Basic " + base64.b64encode(pair).decode()
        return bool(auth.get("password")) and hmac.compare_digest(header.encode(), expected.encode())
    return False


def _field(payload: Any, path: str, name: str, required: bool = True) -> Any:
    value = jsonpath.read(payload, path)
    if required and (value is None or value == ""):
        raise BadRequest(f"{name}: no value at {path}", errors=[{"field": name, "message": f"no value at {path}"}])
    return value


async def handle(ctx: Any, webhook_id: str, headers: Headers, body: bytes) -> Response:
    info = load_webhook(ctx, webhook_id, "custom")
    config = _config(ctx, info.credential_id)
    if len(body) > MAX_BODY:
        raise BadRequest("the request body is too large")
    auth = webhook_secrets.check_settings(info.settings, info.signing_secret) if info.signing_secret \
        else config.auth
    if not authentic(auth, headers, body):
        raise Forbidden("the webhook signature or credentials are missing or wrong")
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest("the request body is not JSON (custom webhooks take JSON only)") from None
    if info.type == "feedback":
        return await _feedback(ctx, info, config.feedback, payload)
    return await _inbound(ctx, info, config.inbound, payload)


async def _inbound(ctx: Any, info: WebhookInfo, mapping: InboundMapping, payload: Any) -> Response:
    text = _field(payload, mapping.message, "message", required=False)
    if text is None:
        raise BadRequest(f"message: no value at {mapping.message}",
                         errors=[{"field": "message", "message": f"no value at {mapping.message}"}])
    request_id = str(_field(payload, mapping.request_id, "request_id"))[:64]
    from_raw = str(_field(payload, mapping.profile_number, "profile_number"))
    to_raw = str(_field(payload, mapping.inbound_number, "inbound_number"))
    _field(payload, mapping.origin_timestamp, "origin_timestamp")
    try:
        from_number = normalize_e164(from_raw, "profile_number")
    except ValidationFailed:
        from_number = from_raw[:32]
    try:
        to_number = normalize_inbound_number(to_raw, "inbound_number")
    except ValidationFailed:
        to_number = to_raw[:32]
    message = service.Inbound(provider_message_id=request_id, from_number=from_number, to_number=to_number,
                              body=str(text).replace("\x00", ""))
    route = service.cached_route(info.vendor, info.credential_id, info.id, to_number)
    if route is None:
        with ctx.db.session() as session:
            route = service.resolve_route(session, info.vendor, info.credential_id, info.id, to_number)
    outcome = await service.receive(ctx, route, message)
    answer: dict[str, Any] = {"received": True, "reply": outcome.reply}
    if outcome.reply:
        # A custom provider sends no reply itself: queue it as a message, once per inbound message.
        answer["reply_message_id"] = await asyncio.get_running_loop().run_in_executor(
            None, _queue_reply, ctx, route.sandbox_id, info.credential_id, outcome.inbound_id, from_number,
            to_number, outcome.reply)
    return JSONResponse(answer)


def _queue_reply(ctx: Any, sandbox_id: str, credential_id: str, inbound_id: str, to: str, inbound_number: str,
                 text: str) -> str | None:
    try:
        with ctx.db.session() as session:
            message_id, _why = custom_replies.queue_reply(session, sandbox_id, credential_id, inbound_id, to,
                                                          inbound_number, text)
            return message_id
    except IntegrityError:  # a concurrent retry of the same inbound request queued it first
        with ctx.db.session() as session:
            return custom_replies.queued_reply(session, sandbox_id, inbound_id)


async def _feedback(ctx: Any, info: WebhookInfo, mapping: FeedbackMapping, payload: Any) -> Response:
    from textrelay.delivery import receipts

    reference = str(_field(payload, mapping.client_reference, "client_reference"))[:64]
    raw_status = str(_field(payload, mapping.status, "status"))
    table = {k.upper(): v for k, v in mapping.statuses.items()}
    status = table.get(raw_status.upper())
    if status is None:
        raise BadRequest(f"status: '{raw_status[:40]}' is not in the webhook's status table",
                         errors=[{"field": "status", "message": "unknown status word"}])
    error_code = _field(payload, mapping.error_code, "error_code", required=False)
    provider_id = _field(payload, mapping.provider_message_id, "provider_message_id", required=False) \
        if mapping.provider_message_id else None
    with ctx.db.session() as session:
        row = session.execute(select(Message.id, Message.provider_message_id).where(
            Message.id == reference, Message.sandbox_id == info.sandbox_id)).first()
    known_id = (row.provider_message_id if row is not None else None) or (str(provider_id) if provider_id else None)
    if known_id is None:
        if row is None:
            raise BadRequest(f"client_reference: no message {reference} in this sandbox",
                             errors=[{"field": "client_reference", "message": "unknown message"}])
        known_id = reference  # accepted without a provider id: our id stands in
    if status == "rcs_unavailable":
        status = "undelivered"
        error_code = error_code or raw_status
        if row is not None:  # the SMS fallback goes out, once (delivery.custom_route)
            from textrelay.delivery import custom_route

            await asyncio.get_running_loop().run_in_executor(
                None, custom_route.fallback_from_feedback, ctx, info.sandbox_id, reference, str(error_code)[:32])
    receipt = receipts.Receipt(
        sandbox_id=info.sandbox_id, provider_message_id=known_id[:64], status=status, raw_status=raw_status[:40],
        error_code=str(error_code)[:32] if error_code not in (None, "") else None,
        error_message=f"provider error {error_code}" if error_code not in (None, "") else None,
        token=None, at=utcnow())
    keys = [receipt]
    if row is not None and row.provider_message_id is None and known_id != reference:
        # The worker has not written the send's result yet: the message will carry either the
        # provider's id or (outcome unknown, no lookup) ours; keep the receipt for both.
        keys.append(replace(receipt, provider_message_id=reference))
    try:
        for one in keys:
            await receipts.writer(ctx).submit(one)
    except Exception:
        return Response(status_code=503, content=b"receipt not stored, try again", media_type="text/plain")
    return JSONResponse({"received": True})
