"""The custom-provider branch of delivery: routes through custom API credentials, and the SMS
fallback of RCS messages whose recipient cannot take RCS.

When a provider says the recipient cannot take RCS (``SendResult.fallback``), the RCS message is
closed as failed and a new SMS message with the RCS content's ``fallback_text`` is queued on the
RCS configuration's fallback channel configuration. Both histories name the other message.

A custom provider has no message lookup, so a send whose outcome is unknown (no answer after the
request went out) is never resent: the message stays ``sent`` with ``outcome_unknown`` set and our
id standing in for the provider's (feedback names it as the client reference). Feedback settles
it; when its validity period ends without any, ``settle_unconfirmed`` fails it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import Session

from textrelay.domain.segments import count_segments
from textrelay.services import custom_credentials
from textrelay.store.models import ChannelConfiguration, Credential, Message, MessageEvent, new_id, utcnow

NEVER_CONFIRMED = "outcome unknown: the provider never confirmed the message"


def route(outbox: Any, ctx: Any, config: ChannelConfiguration, cred: Credential) -> Any:
    """The outbox ``Route`` of a channel configuration whose credential is custom."""
    from textrelay.delivery import ratelimit

    sender = config.sender_number or cred.inbound_number
    try:
        provider = custom_credentials.provider(cred, ctx.keyring)
    except Exception as exc:  # an undecryptable secret or a stale template must not stop the worker
        return outbox.Route(config.id, config.sandbox_id, cred.vendor, sender, None, None,
                            problem=f"the custom credential cannot be used ({type(exc).__name__}: {exc})")
    limits = []
    if config.rate_limit_mps and sender:
        limits.append(ratelimit.Limit(ratelimit.sender_key(cred.account_key, sender), float(config.rate_limit_mps)))
    if provider.rate_limit_mps:
        limits.append(ratelimit.Limit(ratelimit.credential_key(cred.id), float(provider.rate_limit_mps)))
    return outbox.Route(config.id, config.sandbox_id, cred.vendor, sender, provider, None, tuple(limits),
                        fallback_configuration_id=config.fallback_configuration_id)


def queue_fallback(session: Session, job: Any, decision: Any, now: datetime) -> str | None:
    """Queue the SMS fallback of an RCS message the recipient cannot take; returns its id."""
    content = job.content or {}
    text = ((content.get("rcs") or {}).get("fallback_text") or "").strip()
    fallback_id = job.route.fallback_configuration_id if job.route else None
    config = session.get(ChannelConfiguration, fallback_id) if fallback_id else None
    if not text or config is None or config.sandbox_id != job.sandbox_id:
        why = "no fallback text" if not text else "no fallback channel configuration"
        session.execute(insert(MessageEvent.__table__), [{
            "message_id": job.id, "status": "failed", "source": "worker", "error_code": decision.error_code,
            "detail": f"the recipient cannot take RCS and there is {why}: no SMS fallback sent", "at": now}])
        return None
    info = count_segments(text)
    message_id = new_id()
    session.execute(insert(Message.__table__), [{
        "id": message_id, "sandbox_id": job.sandbox_id, "channel_configuration_id": config.id,
        "campaign_id": None, "channel": config.channel, "sms_type": config.sms_type, "to_number": job.to,
        "from_number": config.sender_number, "body": text, "media_urls": [], "content": {"fallback_of": job.id},
        "status": "queued", "segments": info.segments, "encoding": info.encoding, "attempts": 0,
        "valid_until": job.valid_until, "next_attempt_at": now, "outcome_unknown": False, "rate_reserved": False,
        "created_at": now, "updated_at": now}])
    session.execute(insert(MessageEvent.__table__), [
        {"message_id": job.id, "status": "failed", "source": "worker", "error_code": decision.error_code,
         "detail": f"the recipient cannot take RCS: SMS fallback queued as message {message_id} "
                   f"on channel configuration {config.name}", "at": now},
        {"message_id": message_id, "status": "queued", "source": "worker", "error_code": None,
         "detail": f"SMS fallback of RCS message {job.id}", "at": now},
    ])
    return message_id


def await_feedback(job: Any, now: datetime, step: str, why: str | None = None) -> Any:
    """The decision for an unknown outcome at a provider without lookup: wait for its feedback."""
    from textrelay.delivery.retry import Decision

    if job.valid_until <= now:
        return Decision("failed", f"{step}: {NEVER_CONFIRMED}", error_code="outcome_unknown",
                        error_message=NEVER_CONFIRMED)
    cause = f" ({why})" if why else ""
    return Decision("sent", f"{step}: outcome unknown{cause}; the provider offers no lookup, so it is not sent "
                    "again: its feedback will settle it", provider_message_id=job.id, outcome_unknown=True)


def settle_unconfirmed(ctx: Any, limit: int = 500) -> int:
    """Fail messages left ``sent`` with an unknown outcome whose validity ended without feedback."""
    now = utcnow()
    table = Message.__table__
    events = MessageEvent.__table__
    heard = exists().where(events.c.message_id == table.c.id, events.c.source == "provider")
    with ctx.db.session() as session:
        ids = list(session.scalars(select(table.c.id).where(
            table.c.status == "sent", table.c.outcome_unknown.is_(True), table.c.valid_until < now, ~heard)
            .limit(limit)))
        if not ids:
            return 0
        done = [row for row in session.execute(
            update(table).where(table.c.id.in_(ids), table.c.status == "sent")
            .values(status="failed", error_code="outcome_unknown", error_message=NEVER_CONFIRMED, final_at=now,
                    updated_at=now).returning(table.c.id))]
        if done:
            session.execute(insert(events), [{
                "message_id": row.id, "status": "failed", "source": "worker", "error_code": "outcome_unknown",
                "detail": f"{NEVER_CONFIRMED} before the validity period ended", "at": now} for row in done])
        return len(done)


def fallback_from_feedback(ctx: Any, sandbox_id: str, message_id: str, error_code: str | None) -> str | None:
    """Feedback says the recipient of RCS message ``message_id`` cannot take RCS: close it as failed
    and queue its SMS fallback, once. Only the call that moves the message to ``failed`` queues it,
    so duplicate feedback, or a send answer that already said so, queues nothing more."""
    from types import SimpleNamespace

    now = utcnow()
    table = Message.__table__
    with ctx.db.session() as session:
        message = session.get(Message, message_id)
        if message is None or message.sandbox_id != sandbox_id or message.channel != "rcs":
            return None
        config = session.get(ChannelConfiguration, message.channel_configuration_id)
        moved = session.execute(update(table).where(
            table.c.id == message_id, table.c.status.in_(("queued", "sending", "sent")))
            .values(status="failed", error_code=(error_code or "rcs_unavailable")[:32],
                    error_message="the recipient cannot take RCS", final_at=now, updated_at=now,
                    lease_expires_at=None)).rowcount
        if not moved:
            return None
        job = SimpleNamespace(id=message.id, sandbox_id=message.sandbox_id, to=message.to_number,
                              content=message.content or {}, valid_until=message.valid_until,
                              route=SimpleNamespace(fallback_configuration_id=getattr(
                                  config, "fallback_configuration_id", None)))
        return queue_fallback(session, job, SimpleNamespace(error_code=error_code), now)
