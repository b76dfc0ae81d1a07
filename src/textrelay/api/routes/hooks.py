"""Provider-facing webhooks: ``/hooks/{vendor}/{webhook_id}``. No API key: provider signatures.

Each webhook is looked up once and kept in a small in-process cache (its type, sandbox and the
credential's signing secret), because status callbacks arrive by the thousand per second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from textrelay.api.deps import public_base_url
from textrelay.errors import BadRequest, NotFound
from textrelay.services import credentials as credential_service
from textrelay.services import webhook_secrets
from textrelay.services.context import Context
from textrelay.store.models import Credential, Webhook

router = APIRouter(prefix="/hooks", tags=["provider webhooks"], include_in_schema=False)

CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class WebhookInfo:
    id: str
    type: str
    sandbox_id: str
    credential_id: str
    vendor: str
    inbound_number: str | None
    sender_number: str | None
    signing_secret: str
    settings: dict[str, Any] = field(default_factory=dict)


_cache: dict[str, tuple[float, WebhookInfo]] = {}


def forget(webhook_id: str | None = None) -> None:
    """Drop cached webhook data (after an edit)."""
    if webhook_id is None:
        _cache.clear()
    else:
        _cache.pop(webhook_id, None)


def load_webhook(ctx: Context, webhook_id: str, vendor: str) -> WebhookInfo:
    now = time.monotonic()
    hit = _cache.get(webhook_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    with ctx.db.session() as session:
        row = session.execute(
            select(Webhook, Credential).join(Credential, Credential.id == Webhook.credential_id)
            .where(Webhook.id == webhook_id)).first()
        if row is None or row[1].vendor != vendor:
            raise NotFound("no such webhook")
        hook, cred = row
        if cred.vendor == "twilio":
            secret = credential_service.secret(cred, ctx.keyring, "auth_token") \
                if "auth_token" in (cred.secrets or {}) else ""
        else:  # a custom webhook signs with its own secret (none: the credential's webhook_auth)
            secret = webhook_secrets.clear_secret(hook, ctx.keyring) or ""
        info = WebhookInfo(id=hook.id, type=hook.type, sandbox_id=hook.sandbox_id, credential_id=cred.id,
                           vendor=cred.vendor, inbound_number=cred.inbound_number,
                           sender_number=hook.sender_number, signing_secret=secret,
                           settings=dict(hook.settings or {}))
    _cache[webhook_id] = (now + CACHE_SECONDS, info)
    return info


def signed_url(request: Request) -> str:
    """The URL the provider signed: our public base URL plus the path and query it called."""
    url = public_base_url(request) + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


def parse_form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 form data") from None


@router.post("/custom/{webhook_id}")
async def custom_webhook(webhook_id: str, request: Request) -> Response:
    """A custom provider's JSON inbound or feedback call (see ``inbound.custom``)."""
    from textrelay.inbound import custom as custom_hooks

    return await custom_hooks.handle(request.app.state.context, webhook_id, request.headers, await request.body())
