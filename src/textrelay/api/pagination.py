"""Cursor pagination over (created_at, id): stable under inserts, opaque to callers."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from textrelay.errors import ValidationFailed


def encode_cursor(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        return datetime.fromisoformat(stamp), row_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed.field("query.cursor", "not a cursor this API gave out") from None


def page(session: Session, query: Select[Any], model: Any, limit: int, cursor: str | None,
         newest_first: bool = True) -> tuple[list[Any], str | None]:
    created, ident = model.created_at, model.id
    if cursor:
        at, row_id = decode_cursor(cursor)
        if newest_first:
            query = query.where(or_(created < at, and_(created == at, ident < row_id)))
        else:
            query = query.where(or_(created > at, and_(created == at, ident > row_id)))
    order = (created.desc(), ident.desc()) if newest_first else (created.asc(), ident.asc())
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor
