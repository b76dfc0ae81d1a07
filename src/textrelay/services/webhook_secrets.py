"""Each custom webhook's own secret: how a custom provider authenticates its calls to one webhook.

A custom webhook (``/hooks/custom/{id}``) has its own scheme in ``settings["auth"]`` — ``hmac``
(HMAC-SHA256 of the raw body, hex, in ``header``), ``bearer`` (the secret is the token) or
``basic`` (``username`` + the secret as password) — and its own secret, encrypted with the key
ring in ``Webhook.secrets["secret"]``. The secret is generated when the webhook is created, shown
in clear once (in that create answer, or the answer of ``rotate``), and masked everywhere else; a
secret the caller chose (the credential's ``webhook_auth``, or a rotation's body) is never echoed.

Twilio webhooks have no secret of their own: Twilio signs with the credential's auth token.
"""

from __future__ import annotations

import secrets as pysecrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy.orm import Session

from textrelay.errors import ValidationFailed
from textrelay.secrets import KeyRing, mask
from textrelay.store.models import Webhook, utcnow

SECRET_FIELD = "secret"
_ISSUED = "_textrelay_issued_secret"  # the clear secret, on the instance only, for one answer
MIN_SECRET_CHARS = 16

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class WebhookAuth(BaseModel):
    """How the provider authenticates its calls to this custom webhook (the secret is separate)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["hmac", "bearer", "basic"] = "hmac"
    header: Short = "X-Signature"
    username: Short | None = None


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: Annotated[str, StringConstraints(min_length=MIN_SECRET_CHARS, max_length=500)] | None = None


def _check(auth: WebhookAuth) -> None:
    if auth.type == "basic" and not auth.username:
        raise ValidationFailed.field("auth.username", "basic webhook auth needs a username")


def configure(hook: Webhook, auth: WebhookAuth | dict[str, Any] | None) -> None:
    """Set the webhook's scheme (type, header, username), keeping its secret."""
    current = dict((hook.settings or {}).get("auth") or {})
    given = auth if isinstance(auth, WebhookAuth) else WebhookAuth.model_validate(
        {k: v for k, v in {**current, **(auth or {})}.items() if k in WebhookAuth.model_fields})
    _check(given)
    hint = current.get("secret_hint")
    hook.settings = {**(hook.settings or {}), "auth": {**given.model_dump(), "secret_hint": hint}}


def issue(hook: Webhook, keyring: KeyRing, secret: str | None = None, session: Session | None = None) -> str:
    """Give the webhook a new secret (generated unless given); the old one stops working at once.

    With ``session``, the session holds the webhook until it closes, so the answer built from it
    (after the commit) still sees the clear secret."""
    value = secret or pysecrets.token_urlsafe(32)
    auth = dict((hook.settings or {}).get("auth") or WebhookAuth().model_dump())
    auth["secret_hint"] = mask(value)
    hook.settings = {**(hook.settings or {}), "auth": auth}
    hook.secrets = {**(hook.secrets or {}), SECRET_FIELD: keyring.encrypt(value)}
    hook.updated_at = utcnow()
    if secret is None:  # a generated secret is shown once; one the caller chose is not echoed
        setattr(hook, _ISSUED, value)
    if session is not None and secret is None:
        session.info.setdefault(_ISSUED, []).append(hook)
    return value


def has_own_secret(hook: Webhook) -> bool:
    return SECRET_FIELD in (hook.secrets or {})


def clear_secret(hook: Webhook, keyring: KeyRing) -> str | None:
    if not has_own_secret(hook):
        return None
    return keyring.decrypt(hook.secrets[SECRET_FIELD])


def check_settings(settings: dict[str, Any], secret: str) -> dict[str, Any]:
    """The auth dict ``inbound.custom.authentic`` takes: the scheme with the secret in its place."""
    auth = dict(settings.get("auth") or {})
    kind = auth.get("type", "hmac")
    field = {"hmac": "secret", "bearer": "token", "basic": "password"}.get(kind, "secret")
    return {"type": kind, "header": auth.get("header") or "X-Signature", "username": auth.get("username"),
            field: secret}


def view(hook: Webhook) -> dict[str, Any]:
    """The webhook's auth as the API shows it: the secret masked, or in clear right after issue."""
    auth = dict((hook.settings or {}).get("auth") or {})
    out = {"type": auth.get("type", "hmac"), "header": auth.get("header") or "X-Signature",
           "username": auth.get("username"), "secret": auth.get("secret_hint")}
    issued = getattr(hook, _ISSUED, None)
    if issued:
        out["secret"] = issued
        out["secret_shown_once"] = True
    return out
