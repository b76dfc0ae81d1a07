"""Campaign expansion: turns a running campaign's audience into queued messages, a slice at a time.

Durable and crash-safe: a campaign's ``messages_created`` is a watermark over its audience
(members are numbered by ``seq``). One slice is rendered in memory, then its messages, their
first history events and the advanced watermark are written in one transaction. The watermark
moves with a compare-and-set, so two workers expanding the same campaign cannot both write the
same slice, and a worker killed mid-slice leaves nothing behind: the slice is simply done again.

Fast: no ORM objects per row, bulk ``insert()`` (executemany), one query for the members, one for
the numbers of the slice that have any consent record (only those go through the consent rule).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.orm import Session

from textrelay.domain import templates
from textrelay.domain.segments import MAX_BODY_CHARACTERS, count_segments
from textrelay.services import consent
from textrelay.services.context import Context
from textrelay.services.messages import DEFAULT_VALIDITY, senders
from textrelay.store.models import (
    AudienceMember,
    Campaign,
    ChannelConfiguration,
    Consent,
    ConsentSenderBlock,
    Credential,
    Message,
    MessageEvent,
    utcnow,
)

UNFINISHED = ("queued", "sending")


def expand_some(ctx: Context, limit: int = 1000) -> int:
    """Create up to ``limit`` messages for one running campaign; returns how many were created."""
    with ctx.db.session() as session:
        campaign = session.execute(
            select(Campaign.id, Campaign.sandbox_id, Campaign.channel_configuration_id, Campaign.body,
                   Campaign.media_urls, Campaign.messages_created)
            .where(Campaign.status == "running", Campaign.messages_created < Campaign.audience_size)
            .order_by(Campaign.started_at, Campaign.id).limit(1)).first()
        if campaign is None:
            return 0
        config = session.get(ChannelConfiguration, campaign.channel_configuration_id)
        credential = session.get(Credential, config.credential_id) if config else None
        members = session.execute(
            select(AudienceMember.seq, AudienceMember.phone_number, AudienceMember.attributes)
            .where(AudienceMember.campaign_id == campaign.id, AudienceMember.seq >= campaign.messages_created)
            .order_by(AudienceMember.seq).limit(limit)).all()
        if not members or config is None:
            return 0
        identities = senders(config, credential)
        excluded = _exclusions(session, campaign.sandbox_id, {m.phone_number for m in members}, config.sms_type,
                               identities)

    watermark = campaign.messages_created
    # Members are numbered without gaps, so the slice ends where its last member is.
    new_watermark = members[-1].seq + 1
    message_rows, event_rows = _render(campaign, config, members, excluded)

    with ctx.db.session() as session:
        claimed = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == "running",
                   Campaign.messages_created == watermark)
            .values(messages_created=new_watermark)).rowcount
        if not claimed:
            # Another worker took this slice, or the campaign was canceled meanwhile.
            session.rollback()
            return 0
        session.execute(insert(Message), message_rows)
        session.execute(insert(MessageEvent), event_rows)
    return len(message_rows)


def _exclusions(session: Session, sandbox_id: str, numbers: set[str], sms_type: str,
                identities: list[str]) -> dict[str, str]:
    """Why each number of the slice is excluded (absent: it may be sent).

    One query finds the numbers that have any consent record at all; only those (usually few)
    go through ``consent.exclusion_reason``, so the rule lives in one place.
    """
    if not numbers:
        return {}
    listed = list(numbers)
    if sms_type == "marketing":
        candidates = set(session.scalars(select(Consent.phone_number).where(
            Consent.sandbox_id == sandbox_id, Consent.phone_number.in_(listed),
            Consent.status != consent.OPTED_IN)))
    elif identities:
        candidates = set(session.scalars(select(ConsentSenderBlock.phone_number).where(
            ConsentSenderBlock.sandbox_id == sandbox_id, ConsentSenderBlock.phone_number.in_(listed),
            ConsentSenderBlock.sender_number.in_(identities))))
    else:
        candidates = set()
    reasons = {}
    for number in candidates:
        reason = consent.exclusion_reason(session, sandbox_id, number, sms_type, identities)
        if reason:
            reasons[number] = reason
    return reasons


def _render(campaign: Any, config: ChannelConfiguration, members: list[Any],
            excluded: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = utcnow()
    valid_until = now + timedelta(seconds=DEFAULT_VALIDITY)
    media = list(campaign.media_urls or [])
    field = config.execution_field
    source = campaign.body
    try:
        templates.compile_template(source)
        broken = None
    except templates.TemplateError as exc:
        broken = str(exc)
    static = None if broken or templates.uses_variables(source) else source
    costs: dict[str, Any] = {}
    common = {
        "sandbox_id": campaign.sandbox_id, "channel_configuration_id": config.id, "campaign_id": campaign.id,
        "channel": config.channel, "sms_type": config.sms_type, "from_number": config.sender_number,
        "media_urls": media, "content": None, "provider_message_id": None, "error_code": None, "attempts": 0,
        "lease_expires_at": None, "outcome_unknown": False, "valid_until": valid_until, "idempotency_key": None,
        "request_hash": None, "created_at": now, "updated_at": now, "sent_at": None,
    }
    messages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for member in members:
        number = member.phone_number
        problem = broken
        text = ""
        if problem is None:
            if static is not None:
                text = static
            else:
                profile = dict(member.attributes or {})
                profile.setdefault(field, number)
                try:
                    text = templates.render(source, profile)
                except templates.TemplateError as exc:
                    problem = str(exc)
        info = costs.get(text)
        if info is None:
            info = costs[text] = count_segments(text)
        if problem is None:
            if info.characters > MAX_BODY_CHARACTERS:
                problem = (f"body is {info.characters} characters after personalisation; "
                           f"at most {MAX_BODY_CHARACTERS}")
            elif not text.strip() and not media:
                problem = "the message is empty after personalisation"
        message_id = uuid.uuid4().hex
        row = dict(common, id=message_id, to_number=number, body=text, segments=info.segments,
                   encoding=info.encoding)
        if problem is not None:
            row.update(status="failed", error_code="template", error_message=problem, next_attempt_at=None,
                       final_at=now)
            events.append({"message_id": message_id, "status": "failed", "source": "campaign", "detail": problem,
                           "error_code": "template", "at": now})
        elif number in excluded:
            row.update(status="excluded", error_message=excluded[number], next_attempt_at=None, final_at=now)
            events.append({"message_id": message_id, "status": "excluded", "source": "campaign",
                           "detail": excluded[number], "error_code": None, "at": now})
        else:
            row.update(status="queued", error_message=None, next_attempt_at=now, final_at=None)
            events.append({"message_id": message_id, "status": "queued", "source": "campaign", "detail": None,
                           "error_code": None, "at": now})
        messages.append(row)
    return messages, events


def finish_campaigns(ctx: Context) -> int:
    """Mark ``completed`` every running campaign whose messages all exist and none is left to send."""
    done = 0
    with ctx.db.session() as session:
        candidates = list(session.scalars(select(Campaign.id).where(
            Campaign.status == "running", Campaign.messages_created >= Campaign.audience_size)))
        for campaign_id in candidates:
            pending = session.scalar(select(Message.id).where(
                and_(Message.campaign_id == campaign_id, Message.status.in_(UNFINISHED))).limit(1))
            if pending is not None:
                continue
            done += session.execute(update(Campaign).where(
                Campaign.id == campaign_id, Campaign.status == "running",
                Campaign.messages_created >= Campaign.audience_size)
                .values(status="completed", finished_at=utcnow())).rowcount
    return done
