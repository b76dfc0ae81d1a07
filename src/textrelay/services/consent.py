"""Consent per sandbox and phone number, with its full history.

Rules (SPEC §3): a ``marketing`` message goes only to a number that has not opted out (nor is
waiting for double opt-in confirmation); a ``transactional`` message is excluded only when the
number opted out of that same sender, because the provider would block it anyway.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from textrelay.store.models import Consent, ConsentEvent, ConsentSenderBlock, utcnow

OPTED_IN = "opted_in"
OPTED_OUT = "opted_out"
PENDING = "pending"
STATUSES = (OPTED_IN, OPTED_OUT, PENDING)
SOURCES = ("keyword", "provider_error", "api", "import")


def get(session: Session, sandbox_id: str, number: str) -> Consent | None:
    return session.scalar(select(Consent).where(Consent.sandbox_id == sandbox_id, Consent.phone_number == number))


def record(session: Session, sandbox_id: str, number: str, status: str, source: str,
           sender: str | None = None, detail: str | None = None) -> Consent:
    """Set a number's consent and append the change to its history.

    An opt-out through a sender also blocks that sender for transactional messages; an opt-in
    through a sender (or with no sender: everywhere) lifts the block.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown consent status {status!r}")
    now = utcnow()
    row = get(session, sandbox_id, number)
    if row is None:
        row = Consent(sandbox_id=sandbox_id, phone_number=number, status=status, source=source,
                      sender_number=sender, updated_at=now)
        session.add(row)
    else:
        row.status, row.source, row.sender_number, row.updated_at = status, source, sender, now
    session.add(ConsentEvent(sandbox_id=sandbox_id, phone_number=number, status=status, source=source,
                             sender_number=sender, detail=detail, at=now))
    if status == OPTED_OUT and sender:
        exists = session.scalar(select(ConsentSenderBlock.id).where(
            ConsentSenderBlock.sandbox_id == sandbox_id, ConsentSenderBlock.phone_number == number,
            ConsentSenderBlock.sender_number == sender))
        if exists is None:
            session.add(ConsentSenderBlock(sandbox_id=sandbox_id, phone_number=number, sender_number=sender))
    elif status == OPTED_IN:
        q = delete(ConsentSenderBlock).where(ConsentSenderBlock.sandbox_id == sandbox_id,
                                             ConsentSenderBlock.phone_number == number)
        if sender:
            q = q.where(ConsentSenderBlock.sender_number == sender)
        session.execute(q)
    session.flush()
    return row


def history(session: Session, sandbox_id: str, number: str) -> list[ConsentEvent]:
    return list(session.scalars(
        select(ConsentEvent).where(ConsentEvent.sandbox_id == sandbox_id, ConsentEvent.phone_number == number)
        .order_by(ConsentEvent.at, ConsentEvent.id)))


def exclusion_reason(session: Session, sandbox_id: str, number: str, sms_type: str,
                     senders: list[str]) -> str | None:
    """Why a message to ``number`` must not be sent, or None when it may be.

    ``senders`` are the identities the message goes out from (sender number, messaging service).
    """
    if sms_type == "marketing":
        row = get(session, sandbox_id, number)
        if row is not None and row.status == OPTED_OUT:
            return f"opted out ({row.source}{', via ' + row.sender_number if row.sender_number else ''})"
        if row is not None and row.status == PENDING:
            return "double opt-in not confirmed"
        return None
    senders = [s for s in senders if s]
    if not senders:
        return None
    blocked = session.scalar(select(ConsentSenderBlock.sender_number).where(
        ConsentSenderBlock.sandbox_id == sandbox_id, ConsentSenderBlock.phone_number == number,
        ConsentSenderBlock.sender_number.in_(senders)).limit(1))
    return f"opted out of sender {blocked}" if blocked else None
