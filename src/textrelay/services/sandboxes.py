"""Sandboxes: isolated environments. ``prod`` always exists."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from textrelay.errors import Conflict, NotFound, ValidationFailed
from textrelay.store.models import (
    ApiKey,
    Campaign,
    ChannelConfiguration,
    Consent,
    Credential,
    InboundMessage,
    Message,
    Sandbox,
    Webhook,
)

DEFAULT_SANDBOX = "prod"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def ensure_default(session: Session) -> Sandbox:
    sandbox = session.scalar(select(Sandbox).where(Sandbox.name == DEFAULT_SANDBOX))
    if sandbox is None:
        sandbox = Sandbox(name=DEFAULT_SANDBOX)
        session.add(sandbox)
        session.flush()
    return sandbox


def get_by_name(session: Session, name: str) -> Sandbox:
    sandbox = session.scalar(select(Sandbox).where(Sandbox.name == name))
    if sandbox is None:
        raise NotFound(f"sandbox '{name}' does not exist")
    return sandbox


def list_all(session: Session) -> list[Sandbox]:
    return list(session.scalars(select(Sandbox).order_by(Sandbox.created_at, Sandbox.name)))


def create(session: Session, name: str) -> Sandbox:
    if not _NAME.match(name or ""):
        raise ValidationFailed.field(
            "name", "must start with a lowercase letter; lowercase letters, digits and '-' only; 63 at most"
        )
    if session.scalar(select(Sandbox).where(Sandbox.name == name)) is not None:
        raise Conflict(f"sandbox '{name}' already exists", errors=[{"field": "name", "message": "already exists"}])
    sandbox = Sandbox(name=name)
    session.add(sandbox)
    session.flush()
    return sandbox


def delete(session: Session, name: str) -> None:
    sandbox = get_by_name(session, name)
    if sandbox.name == DEFAULT_SANDBOX:
        raise Conflict("the prod sandbox cannot be deleted")
    for model in (Credential, Webhook, ChannelConfiguration, Message, Campaign, Consent, InboundMessage):
        count = session.scalar(select(func.count()).select_from(model).where(model.sandbox_id == sandbox.id))
        if count:
            raise Conflict(f"sandbox '{name}' is not empty: it holds {count} {model.__tablename__.replace('_', ' ')}")
    for key in session.scalars(select(ApiKey).where(ApiKey.sandbox_id == sandbox.id)):
        session.delete(key)
    session.delete(sandbox)
