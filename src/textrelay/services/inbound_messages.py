"""Reading stored inbound messages (the API, the UI and the CLI list them the same way)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from textrelay.api.pagination import decode_cursor, encode_cursor
from textrelay.domain.keywords import CATEGORIES
from textrelay.domain.numbers import normalize_inbound_number
from textrelay.errors import NotFound, ValidationFailed
from textrelay.store.models import InboundMessage, Sandbox

CONSENT_CHANGES = ("opted_in", "opted_out", "pending", "none")


@dataclass
class Filters:
    from_number: str | None = None
    to_number: str | None = None
    category: str | None = None
    consent_change: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _number(value: str) -> str:
    try:
        return normalize_inbound_number(value.strip())
    except ValidationFailed:
        return value.strip()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def list_page(session: Session, sandbox: Sandbox, filters: Filters, limit: int,
              cursor: str | None) -> tuple[list[InboundMessage], str | None]:
    for name, param in (("from_number", "from"), ("to_number", "to"), ("category", "category"),
                        ("consent_change", "consent_change"), ("text", "q")):
        if "\x00" in (getattr(filters, name) or ""):
            raise ValidationFailed.field(f"query.{param}", "must not contain NUL characters")
    q = select(InboundMessage).where(InboundMessage.sandbox_id == sandbox.id)
    if filters.from_number:
        q = q.where(InboundMessage.from_number == _number(filters.from_number))
    if filters.to_number:
        q = q.where(InboundMessage.to_number == _number(filters.to_number))
    if filters.category:
        if filters.category == "none":
            q = q.where(InboundMessage.matched_category.is_(None))
        elif filters.category in CATEGORIES:
            q = q.where(InboundMessage.matched_category == filters.category)
        else:
            raise ValidationFailed.field("query.category", f"one of {', '.join(CATEGORIES)} or none")
    if filters.consent_change:
        if filters.consent_change not in CONSENT_CHANGES:
            raise ValidationFailed.field("query.consent_change", f"one of {', '.join(CONSENT_CHANGES)}")
        q = q.where(InboundMessage.consent_change.is_(None) if filters.consent_change == "none"
                    else InboundMessage.consent_change == filters.consent_change)
    if filters.text:
        escaped = filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(InboundMessage.body.ilike(f"%{escaped}%", escape="\\"))
    if filters.since:
        q = q.where(InboundMessage.received_at >= _utc(filters.since))
    if filters.until:
        q = q.where(InboundMessage.received_at < _utc(filters.until))
    if cursor:
        at, row_id = decode_cursor(cursor)
        q = q.where(or_(InboundMessage.received_at < at,
                        and_(InboundMessage.received_at == at, InboundMessage.id < row_id)))
    rows = list(session.scalars(
        q.order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].received_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def get(session: Session, sandbox: Sandbox, message_id: str) -> InboundMessage:
    row = session.get(InboundMessage, message_id)
    if row is None or row.sandbox_id != sandbox.id:
        raise NotFound(f"inbound message {message_id} does not exist in sandbox '{sandbox.name}'")
    return row


def view(row: InboundMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "provider_message_id": row.provider_message_id,
        "webhook_id": row.webhook_id,
        "from": row.from_number,
        "to": row.to_number,
        "body": row.body,
        "media": row.media or [],
        "matched_category": row.matched_category,
        "matched_keyword": row.matched_keyword,
        "consent_change": row.consent_change,
        "reply": row.reply,
        "reply_sent": bool(row.reply),
        "received_at": row.received_at.isoformat(),
    }
