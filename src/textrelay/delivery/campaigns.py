"""Campaign expansion: turns a running campaign's audience into queued messages, a slice at a time.

Durable and crash-safe: a campaign's ``messages_created`` is a watermark over its audience
(members are numbered by ``seq``). One slice is rendered in memory, then its messages, their
first history events and the advanced watermark are written in one transaction. The watermark
moves with a compare-and-set, so two workers expanding the same campaign cannot both write the
same slice, and a worker killed mid-slice leaves nothing behind: the slice is simply done again.
On PostgreSQL the campaign row is also locked (``SKIP LOCKED``) while its slice is rendered, so
workers spread over campaigns instead of racing for the same slice.

Fast: no ORM objects per row, bulk ``insert()`` (executemany), one query for the members, one for
the numbers of the slice that have any consent record (only those go through the consent rule).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Connection, Table, and_, select, update
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
        query = (select(Campaign.id, Campaign.sandbox_id, Campaign.channel_configuration_id, Campaign.body,
                        Campaign.media_urls, Campaign.messages_created)
                 .where(Campaign.status == "running", Campaign.messages_created < Campaign.audience_size)
                 .order_by(Campaign.started_at, Campaign.id).limit(1))
        if not ctx.db.is_sqlite:
            # Workers on other hosts skip a campaign another one is expanding, instead of rendering
            # the same slice only to lose the compare-and-set below.
            query = query.with_for_update(skip_locked=True)
        campaign = session.execute(query).first()
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
        if ctx.db.is_sqlite:
            # SQLite has one writer: render outside any write transaction, then write at once.
            session.commit()

        watermark = campaign.messages_created
        # Members are numbered without gaps, so the slice ends where its last member is.
        new_watermark = members[-1].seq + 1
        message_rows, event_rows, shared = _render(campaign, config, members, excluded)

        claimed = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == "running",
                   Campaign.messages_created == watermark)
            .values(messages_created=new_watermark)).rowcount
        if not claimed:
            # Another worker took this slice, or the campaign was canceled meanwhile.
            session.rollback()
            return 0
        connection = session.connection()
        _insert_many(connection, Message.__table__, message_rows, shared)
        _insert_many(connection, MessageEvent.__table__, event_rows, {"source": "campaign", "at": shared["created_at"]})
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
            excluded: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """The slice's message and event rows (only what varies per row), and the values they share."""
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
    shared = {
        "sandbox_id": campaign.sandbox_id, "channel_configuration_id": config.id, "campaign_id": campaign.id,
        "channel": config.channel, "sms_type": config.sms_type, "from_number": config.sender_number,
        "media_urls": media, "attempts": 0, "outcome_unknown": False, "valid_until": valid_until,
        "created_at": now, "updated_at": now,
    }
    messages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    # Time-ordered ids (like UUIDv7): each slice appends to the primary key's index instead of
    # writing all over it. Milliseconds, 48 random bits per slice, then a serial number.
    prefix = f"{int(now.timestamp() * 1000):012x}{secrets.randbits(48):012x}"
    serial = 0
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
        message_id = f"{prefix}{serial:08x}"
        serial += 1
        row = {"id": message_id, "to_number": number, "body": text, "segments": info.segments,
               "encoding": info.encoding}
        if problem is not None:
            row.update(status="failed", error_code="template", error_message=problem, next_attempt_at=None,
                       final_at=now)
            events.append({"message_id": message_id, "status": "failed", "detail": problem, "error_code": "template"})
        elif number in excluded:
            row.update(status="excluded", error_code=None, error_message=excluded[number], next_attempt_at=None,
                       final_at=now)
            events.append({"message_id": message_id, "status": "excluded", "detail": excluded[number],
                           "error_code": None})
        else:
            row.update(status="queued", error_code=None, error_message=None, next_attempt_at=now, final_at=None)
            events.append({"message_id": message_id, "status": "queued", "detail": None, "error_code": None})
        messages.append(row)
    return messages, events, shared


def _insert_many(connection: Connection, table: Table, rows: list[dict[str, Any]], shared: dict[str, Any]) -> None:
    """One executemany straight to the driver, with SQLAlchemy's own type conversions.

    The values every row shares (dates, JSON, booleans) are converted once per slice, not once per
    row; columns neither given nor shared get their declared default, so a column added to the
    table later is still filled in.
    """
    if not rows:
        return
    dialect = connection.dialect
    varying = list(rows[0])
    columns: list[Column[Any]] = []
    constants: dict[str, Any] = {}
    for column in table.columns:
        if column.name in varying:
            columns.append(column)
            continue
        if column.name in shared:
            value = shared[column.name]
        elif column.default is None and (column.server_default is not None or (
                column.primary_key and column.autoincrement in (True, "auto"))):
            continue  # the database fills it in
        elif column.default is not None and column.default.is_scalar:
            value = column.default.arg
        elif column.default is not None and column.default.is_callable:
            value = column.default.arg(None)
        else:
            value = None
        process = column.type._cached_bind_processor(dialect)
        constants[column.name] = process(value) if process and value is not None else value
        columns.append(column)
    processors = {c.name: c.type._cached_bind_processor(dialect) for c in columns if c.name in varying}
    placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c.name) for c in columns)}) VALUES "
    one = f"({', '.join([placeholder] * len(columns))})"
    names = [c.name for c in columns]
    # Per-row values that need converting are mostly the slice's one timestamp: convert each once.
    converted: dict[tuple[str, Any], Any] = {}
    params = []
    for row in rows:
        values = []
        for name in names:
            if name in constants:
                values.append(constants[name])
                continue
            value = row[name]
            process = processors[name]
            if process is None or value is None:
                values.append(value)
            elif isinstance(value, datetime):
                key = (name, value)
                if key not in converted:
                    converted[key] = process(value)
                values.append(converted[key])
            else:
                values.append(process(value))
        params.append(tuple(values))
    # One executemany: psycopg pipelines it, SQLite loops in C.
    connection.exec_driver_sql(head + one, params)


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
