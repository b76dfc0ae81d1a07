"""Webhooks: endpoints of ours that a provider calls (inbound messages, delivery feedback)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from textrelay.store.models import Credential, Webhook

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
    }


def create_defaults(session: Session, credential: Credential) -> list[Webhook]:
    """A ready inbound webhook (default keywords) and feedback webhook for a new credential."""
    hooks = [
        Webhook(sandbox_id=credential.sandbox_id, credential_id=credential.id, type="inbound",
                name=f"{credential.name} inbound"[:100], settings=default_inbound_settings()),
        Webhook(sandbox_id=credential.sandbox_id, credential_id=credential.id, type="feedback",
                name=f"{credential.name} feedback"[:100], settings={}),
    ]
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
