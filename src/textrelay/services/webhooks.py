"""Webhooks: endpoints of ours that a provider calls (inbound messages, delivery feedback)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from textrelay.domain.keywords import CATEGORIES, normalize
from textrelay.domain.numbers import normalize_sender, sender_kind
from textrelay.errors import Conflict, NotFound, ValidationFailed
from textrelay.secrets import KeyRing
from textrelay.services import webhook_secrets
from textrelay.services.webhook_secrets import WebhookAuth
from textrelay.store.models import Credential, Sandbox, Webhook, utcnow

DEFAULT_KEYWORDS: dict[str, list[str]] = {
    "opt_out": ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"],
    "opt_in": ["START", "YES", "UNSTOP", "SUBSCRIBE"],
    "double_opt_in": [],
    "help": ["HELP", "INFO"],
    "custom": [],
}
DEFAULT_REPLIES: dict[str, str] = {
    "opt_out": "You have been unsubscribed and will receive no more messages from this number. "
    "Reply START to resubscribe.",
    "opt_in": "You have been re-subscribed to messages from this number. Reply HELP for help, "
    "STOP to unsubscribe. Msg&Data rates may apply.",
    "double_opt_in": "Reply YES to confirm your subscription.",
    "help": "Reply STOP to unsubscribe. Msg&Data rates may apply.",
    "custom": "",
}


def default_inbound_settings() -> dict[str, Any]:
    return {
        "keywords": {k: list(v) for k, v in DEFAULT_KEYWORDS.items()},
        "replies": dict(DEFAULT_REPLIES),
        "default_reply": None,
        "revocation_policy": "opt_out",
        "revocation_reply": None,
    }


def create_defaults(session: Session, credential: Credential, keyring: KeyRing | None = None,
                    auth: dict[str, Any] | None = None, secret: str | None = None) -> list[Webhook]:
    """A ready inbound webhook (default keywords) and feedback webhook for a new credential.

    A custom credential's webhooks each get their own secret (``webhook_secrets``): ``secret`` when
    the credential's ``webhook_auth`` named one, else a generated one per webhook."""
    hooks = [
        Webhook(sandbox_id=credential.sandbox_id, credential_id=credential.id, type="inbound",
                name=f"{credential.name} inbound"[:100], settings=default_inbound_settings()),
        Webhook(sandbox_id=credential.sandbox_id, credential_id=credential.id, type="feedback",
                name=f"{credential.name} feedback"[:100], settings={}),
    ]
    if credential.vendor == "custom" and keyring is not None:
        for hook in hooks:
            webhook_secrets.configure(hook, auth)
            webhook_secrets.issue(hook, keyring, secret, session)
    session.add_all(hooks)
    session.flush()
    return hooks


def for_credential(session: Session, credential_id: str) -> list[Webhook]:
    return list(session.scalars(
        select(Webhook).where(Webhook.credential_id == credential_id).order_by(Webhook.type, Webhook.created_at)
    ))


def feedback_webhook(session: Session, credential_id: str) -> Webhook | None:
    return session.scalar(
        select(Webhook).where(Webhook.credential_id == credential_id, Webhook.type == "feedback")
        .order_by(Webhook.created_at).limit(1)
    )


def public_url(webhook: Webhook, base_url: str, vendor: str) -> str:
    return f"{base_url.rstrip('/')}/hooks/{vendor}/{webhook.id}"


# --- The webhooks resource: CRUD with validation ---------------------------------------------

WEBHOOK_TYPES = ("inbound", "feedback")
MAX_KEYWORDS_PER_CATEGORY = 50
MAX_KEYWORD_CHARS = 40
MAX_REPLY_CHARS = 1500
DEFAULT_REVOCATION_REPLY = "To stop receiving messages from this number, reply {keyword}."

def _no_nul(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL, and no reply or name needs one.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
Reply = Annotated[str, StringConstraints(max_length=MAX_REPLY_CHARS), NoNul]
KeywordList = Annotated[list[Annotated[str, StringConstraints(max_length=MAX_KEYWORD_CHARS)]],
                        Field(max_length=MAX_KEYWORDS_PER_CATEGORY)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Keywords(_Strict):
    """Keyword lists per category. A list given replaces that category's list (custom opt-out
    keywords replace the defaults); a category left out keeps its list."""

    opt_in: KeywordList | None = None
    opt_out: KeywordList | None = None
    double_opt_in: KeywordList | None = None
    help: KeywordList | None = None
    custom: KeywordList | None = None


class Replies(_Strict):
    """The reply per keyword category; empty or null sends no reply."""

    opt_in: Reply | None = None
    opt_out: Reply | None = None
    double_opt_in: Reply | None = None
    help: Reply | None = None
    custom: Reply | None = None


class WebhookCreate(_Strict):
    name: Name
    type: Literal["inbound", "feedback"]
    credential_id: Annotated[str, NoNul] = Field(min_length=1, max_length=32)
    sender_number: Annotated[str | None, NoNul] = Field(
        default=None, max_length=32, description="Only messages to this number (E.164 or short code).")
    keywords: Keywords | None = None
    replies: Replies | None = None
    default_reply: Reply | None = None
    revocation_policy: Literal["opt_out", "confirm"] | None = None
    revocation_reply: Reply | None = Field(default=None, description="Reply under the confirm policy; "
                                           "{keyword} is replaced by the exact opt-out keyword.")
    auth: WebhookAuth | None = Field(default=None, description="Custom providers only: how the provider "
                                     "authenticates its calls (hmac, bearer, basic); the secret is generated.")


class WebhookUpdate(_Strict):
    name: Name | None = None
    sender_number: Annotated[str | None, NoNul] = Field(default=None, max_length=32)
    keywords: Keywords | None = None
    replies: Replies | None = None
    default_reply: Reply | None = None
    revocation_policy: Literal["opt_out", "confirm"] | None = None
    revocation_reply: Reply | None = None
    auth: WebhookAuth | None = None


_KEYWORD_CHARS = re.compile(r"[^\w\s'-]|_")
_INBOUND_ONLY = ("keywords", "replies", "default_reply", "revocation_policy", "revocation_reply")


def get(session: Session, sandbox: Sandbox, webhook_id: str) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.sandbox_id != sandbox.id:
        raise NotFound(f"webhook {webhook_id} does not exist in sandbox '{sandbox.name}'")
    return hook


def list_all(session: Session, sandbox: Sandbox, type_: str | None = None,
             credential_id: str | None = None) -> list[Webhook]:
    q = select(Webhook).where(Webhook.sandbox_id == sandbox.id)
    if type_:
        q = q.where(Webhook.type == type_)
    if credential_id:
        q = q.where(Webhook.credential_id == credential_id)
    return list(session.scalars(q.order_by(Webhook.created_at, Webhook.id)))


def _credential(session: Session, sandbox: Sandbox, credential_id: str) -> Credential:
    cred = session.get(Credential, credential_id)
    if cred is None or cred.sandbox_id != sandbox.id:
        raise ValidationFailed.field("credential_id", f"no credential {credential_id} in sandbox '{sandbox.name}'")
    return cred


def _sender(value: str | None, type_: str) -> str | None:
    if value is None or not value.strip():
        return None
    number = normalize_sender(value, "sender_number")
    if type_ == "inbound" and sender_kind(number) == "alphanumeric":
        raise ValidationFailed.field("sender_number", "an alphanumeric sender is one-way: it receives no "
                                     "messages and takes no keywords")
    return number


def _check_name(session: Session, sandbox: Sandbox, name: str, exclude_id: str | None = None) -> None:
    q = select(Webhook.id).where(Webhook.sandbox_id == sandbox.id, Webhook.name == name)
    if exclude_id:
        q = q.where(Webhook.id != exclude_id)
    if session.scalar(q) is not None:
        raise Conflict(f"a webhook named '{name}' already exists in this sandbox",
                       errors=[{"field": "name", "message": "already exists in this sandbox"}])


def _check_sender_unique(session: Session, cred: Credential, number: str | None, exclude_id: str | None) -> None:
    """One inbound webhook per sender number and provider account: routing must be unambiguous."""
    if not number:
        return
    q = (select(Webhook.name).join(Credential, Credential.id == Webhook.credential_id)
         .where(Webhook.type == "inbound", Webhook.sender_number == number, Credential.vendor == cred.vendor,
                Credential.account_key == cred.account_key))
    if exclude_id:
        q = q.where(Webhook.id != exclude_id)
    clash = session.scalar(q.limit(1))
    if clash is not None:
        raise Conflict(f"sender number {number} already has an inbound webhook ('{clash}') for this provider "
                       "account", errors=[{"field": "sender_number", "message": "already has an inbound webhook"}])


def _merged_settings(current: dict[str, Any], data: WebhookCreate | WebhookUpdate) -> dict[str, Any]:
    settings = {**default_inbound_settings(), **(current or {})}
    keywords = dict(settings["keywords"])
    replies = dict(settings["replies"])
    given = data.model_fields_set
    if data.keywords is not None:
        for category in data.keywords.model_fields_set:
            keywords[category] = [w.strip() for w in (getattr(data.keywords, category) or [])]
    if data.replies is not None:
        for category in data.replies.model_fields_set:
            replies[category] = getattr(data.replies, category) or ""
    settings["keywords"], settings["replies"] = keywords, replies
    if "default_reply" in given:
        settings["default_reply"] = data.default_reply or None
    if "revocation_policy" in given and data.revocation_policy:
        settings["revocation_policy"] = data.revocation_policy
    if "revocation_reply" in given:
        settings["revocation_reply"] = data.revocation_reply or None
    _validate_keywords(keywords)
    return settings


def _validate_keywords(keywords: dict[str, list[str]]) -> None:
    seen: dict[str, str] = {}
    for category in CATEGORIES:
        for index, word in enumerate(keywords.get(category, [])):
            field = f"keywords.{category}[{index}]"
            normal = normalize(word)
            if not normal:
                raise ValidationFailed.field(field, "a keyword needs at least one letter or digit")
            if _KEYWORD_CHARS.search(word):
                raise ValidationFailed.field(field, "a keyword is made of letters, digits, spaces and hyphens")
            if len(normal.split()) > 4:
                raise ValidationFailed.field(field, "a keyword has at most four words")
            if normal in seen:
                other = seen[normal]
                raise ValidationFailed.field(field, f"'{word}' is already a keyword of {other}"
                                             if other != category else f"'{word}' is listed twice")
            seen[normal] = category


def _reject_inbound_fields(data: WebhookCreate | WebhookUpdate) -> None:
    for name in _INBOUND_ONLY:
        if name in data.model_fields_set and getattr(data, name) is not None:
            raise ValidationFailed.field(name, "only inbound webhooks have keywords, replies and policies")


def _check_auth_vendor(cred: Credential, data: WebhookCreate | WebhookUpdate) -> None:
    if data.auth is not None and cred.vendor != "custom":
        raise ValidationFailed.field("auth", "only custom providers' webhooks have their own auth; Twilio signs "
                                     "with the credential's auth token")


def create(session: Session, sandbox: Sandbox, data: WebhookCreate, keyring: KeyRing | None = None) -> Webhook:
    from textrelay.inbound.service import forget_routes

    cred = _credential(session, sandbox, data.credential_id)
    _check_auth_vendor(cred, data)
    _check_name(session, sandbox, data.name)
    sender = _sender(data.sender_number, data.type)
    if data.type == "inbound":
        settings = _merged_settings({}, data)
        _check_sender_unique(session, cred, sender, None)
    else:
        _reject_inbound_fields(data)
        settings = {}
    hook = Webhook(sandbox_id=sandbox.id, credential_id=cred.id, name=data.name, type=data.type,
                   sender_number=sender, settings=settings)
    if cred.vendor == "custom":
        if keyring is None:
            raise ValueError("a custom webhook needs the key ring for its secret")
        webhook_secrets.configure(hook, data.auth)
        webhook_secrets.issue(hook, keyring, session=session)
    session.add(hook)
    session.flush()
    forget_routes()
    return hook


def update(session: Session, sandbox: Sandbox, webhook_id: str, data: WebhookUpdate) -> Webhook:
    from textrelay.api.routes.hooks import forget
    from textrelay.inbound.service import forget_routes

    hook = get(session, sandbox, webhook_id)
    given = data.model_fields_set
    if "name" in given and data.name and data.name != hook.name:
        _check_name(session, sandbox, data.name, exclude_id=hook.id)
        hook.name = data.name
    if "sender_number" in given:
        hook.sender_number = _sender(data.sender_number, hook.type)
    cred = session.get(Credential, hook.credential_id)
    assert cred is not None
    _check_auth_vendor(cred, data)
    if data.auth is not None:
        webhook_secrets.configure(hook, data.auth.model_dump(exclude_unset=True))
    if hook.type == "inbound":
        _check_sender_unique(session, cred, hook.sender_number, hook.id)
        hook.settings = _merged_settings(dict(hook.settings or {}), data)
    else:
        _reject_inbound_fields(data)
    hook.updated_at = utcnow()
    session.flush()
    forget(hook.id)
    forget_routes()
    return hook


def rotate_secret(session: Session, keyring: KeyRing, sandbox: Sandbox, webhook_id: str,
                  secret: str | None = None) -> Webhook:
    """A new secret for a custom webhook (shown once in the answer); the old one stops working."""
    from textrelay.api.routes.hooks import forget

    hook = get(session, sandbox, webhook_id)
    cred = session.get(Credential, hook.credential_id)
    if cred is None or cred.vendor != "custom":
        raise ValidationFailed.field("webhook_id", "only custom providers' webhooks have a secret of their own; "
                                     "Twilio signs with the credential's auth token")
    webhook_secrets.issue(hook, keyring, secret, session)
    session.flush()
    forget(hook.id)
    return hook


def delete(session: Session, sandbox: Sandbox, webhook_id: str) -> None:
    from textrelay.api.routes.hooks import forget
    from textrelay.inbound.service import forget_routes

    hook = get(session, sandbox, webhook_id)
    session.delete(hook)
    session.flush()
    forget(webhook_id)
    forget_routes()


def view(hook: Webhook, credential: Credential | None, base_url: str) -> dict[str, Any]:
    """The webhook as the API and UI show it, with its read-only public URL."""
    vendor = credential.vendor if credential is not None else "twilio"
    out: dict[str, Any] = {
        "id": hook.id,
        "name": hook.name,
        "type": hook.type,
        "credential_id": hook.credential_id,
        "credential_name": credential.name if credential is not None else None,
        "sender_number": hook.sender_number,
        "url": public_url(hook, base_url, vendor),
        "created_at": hook.created_at.isoformat(),
        "updated_at": hook.updated_at.isoformat(),
    }
    if vendor == "custom":
        out["auth"] = webhook_secrets.view(hook)
    if hook.type == "inbound":
        settings = {**default_inbound_settings(), **(hook.settings or {})}
        out.update({
            "keywords": {c: list(settings["keywords"].get(c, [])) for c in CATEGORIES},
            "replies": {c: settings["replies"].get(c) or "" for c in CATEGORIES},
            "default_reply": settings.get("default_reply"),
            "revocation_policy": settings.get("revocation_policy", "opt_out"),
            "revocation_reply": settings.get("revocation_reply") or DEFAULT_REVOCATION_REPLY,
        })
    return out
