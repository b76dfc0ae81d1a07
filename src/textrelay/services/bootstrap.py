"""First start: the prod sandbox, and one admin API key and admin UI login, shown once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from textrelay.services import access, sandboxes
from textrelay.store.models import Setting


@dataclass
class FirstStart:
    api_key: str
    username: str
    password: str


def run(session: Session) -> FirstStart | None:
    """Idempotent; returns the new secrets only on the very first run."""
    sandboxes.ensure_default(session)
    if session.scalar(select(Setting).where(Setting.key == "bootstrapped")) is not None:
        return None
    _, token = access.create_key(session, "initial admin key", "admin")
    password = secrets.token_urlsafe(12)
    access.create_user(session, "admin", password)
    session.add(Setting(key="bootstrapped", value="1"))
    session.flush()
    return FirstStart(api_key=token, username="admin", password=password)
