"""Keyword replies to a custom provider's inbound messages, sent as real outbound messages.

Twilio sends a TwiML reply itself; a custom provider does not, so the reply (opt-out
confirmation, help, opt-in, default reply) is queued as a transactional SMS through the same
credential, from the number the person wrote to, and recorded in the message history like any
other message. It is queued once per inbound message: its idempotency key is the inbound
message's id, which the provider's request id maps to once, so a retried inbound request (same
request id) finds the reply already queued.

Consent does not hold the reply back: an opt-out confirmation goes to a number that has just opted
out, as the keyword rules require, and carries no marketing content.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from textrelay.domain.segments import count_segments
from textrelay.store.models import ChannelConfiguration, Credential, Message, MessageEvent, new_id, utcnow

REPLY_VALIDITY = timedelta(hours=1)


def reply_key(inbound_id: str) -> str:
    return f"inbound-reply:{inbound_id}"


def queued_reply(session: Session, sandbox_id: str, inbound_id: str) -> str | None:
    return session.scalar(select(Message.id).where(Message.sandbox_id == sandbox_id,
                                                   Message.idempotency_key == reply_key(inbound_id)))


def _configuration(session: Session, credential: Credential, inbound_number: str) -> ChannelConfiguration | None:
    """An active SMS channel configuration of the credential that sends from ``inbound_number``."""
    rows = list(session.scalars(select(ChannelConfiguration).where(
        ChannelConfiguration.credential_id == credential.id, ChannelConfiguration.channel == "sms",
        ChannelConfiguration.status == "active").order_by(ChannelConfiguration.created_at)))
    for config in rows:
        if (config.sender_number or credential.inbound_number) == inbound_number:
            return config
    return None


def queue_reply(session: Session, sandbox_id: str, credential_id: str, inbound_id: str, to: str,
                inbound_number: str, text: str) -> tuple[str | None, str]:
    """Queue the reply to inbound message ``inbound_id``; returns (message id or None, why)."""
    existing = queued_reply(session, sandbox_id, inbound_id)
    if existing is not None:
        return existing, "already queued"
    credential = session.get(Credential, credential_id)
    config = _configuration(session, credential, inbound_number) if credential is not None else None
    if config is None:
        return None, (f"no active SMS channel configuration of this credential sends from {inbound_number}: "
                      "the reply is only in the webhook's answer")
    info = count_segments(text)
    now = utcnow()
    message_id = new_id()
    # A concurrent retry of the same inbound request may win the unique key: the flush then raises
    # IntegrityError and the caller finds that reply with ``queued_reply``.
    session.add(Message(
        id=message_id, sandbox_id=sandbox_id, channel_configuration_id=config.id, channel="sms",
        sms_type="transactional", to_number=to, from_number=inbound_number, body=text, media_urls=[],
        content={"keyword_reply": inbound_id}, status="queued", segments=info.segments, encoding=info.encoding,
        valid_until=now + REPLY_VALIDITY, next_attempt_at=now, idempotency_key=reply_key(inbound_id), created_at=now,
        updated_at=now))
    session.flush()
    session.add(MessageEvent(message_id=message_id, status="queued", source="inbound",
                             detail=f"keyword reply to inbound message {inbound_id}", at=now))
    session.flush()
    return message_id, "queued"
