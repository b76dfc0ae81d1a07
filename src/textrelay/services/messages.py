"""Sending one message: validate, personalise, check consent, and queue it for the delivery worker.

A message accepted here is committed (status ``queued``, with its first history event and
``next_attempt_at = now``) before the caller gets its 202; the delivery worker takes it from there.
A message that consent excludes is stored as ``excluded`` with the reason and is never queued.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from textrelay.domain import templates
from textrelay.domain.numbers import normalize_e164
from textrelay.domain.segments import MAX_BODY_CHARACTERS, SegmentInfo, count_segments
from textrelay.errors import NotFound, ValidationFailed
from textrelay.services import channel_configurations as configs
from textrelay.services import consent
from textrelay.store.models import ChannelConfiguration, Credential, Message, MessageEvent, Sandbox, utcnow

STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "excluded", "canceled", "read")
FINAL_STATUSES = ("delivered", "undelivered", "failed", "excluded", "canceled", "read")
MAX_MEDIA = 10
DEFAULT_VALIDITY = 36000


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_configuration: str = Field(min_length=1, max_length=100, description="Id or name.")
    to: str | None = Field(default=None, max_length=32,
                           description="E.164 number; else taken from the profile's execution field.")
    profile: dict[str, Any] | None = Field(default=None, description="Exposed to the body as `profile`.")
    body: str = Field(default="", max_length=20_000,
                      description="A template: `Hi {{profile.firstName}}`; at most 1,500 characters rendered.")
    media_urls: list[str] | None = Field(default=None, description="MMS only; at most 10 http(s) URLs.")
    validity_period: int = Field(default=DEFAULT_VALIDITY, ge=1, le=36000,
                                 description="Seconds the message may wait to be sent.")
    rcs: dict[str, Any] | None = Field(default=None, description="RCS only: content (type text, media, card, "
                                       "carousel or location; suggestions; fallback_text required).")


@dataclass(frozen=True)
class SendAnswer:
    body: dict[str, Any]
    replayed: bool
    status_code: int = 202


# ---- rules shared by single sends and campaigns -------------------------------------------------

def check_media(channel: str, urls: list[str] | None, field: str = "media_urls") -> list[str]:
    """The media URLs, checked: MMS only, at most 10, each an absolute http(s) URL."""
    urls = list(urls or [])
    if not urls:
        return []
    if channel != "mms":
        raise ValidationFailed.field(field, f"media can only be sent on an mms channel, not {channel}")
    if len(urls) > MAX_MEDIA:
        raise ValidationFailed.field(field, f"at most {MAX_MEDIA} media URLs, got {len(urls)}")
    for i, url in enumerate(urls):
        parts = urlsplit(url.strip()) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
            raise ValidationFailed.field(f"{field}.{i}", "must be an absolute http(s) URL")
    return [u.strip() for u in urls]


def check_template(source: str, field: str = "body") -> None:
    """A 422 naming the line when the template does not compile."""
    try:
        templates.compile_template(source)
    except templates.TemplateError as exc:
        raise ValidationFailed.field(field, str(exc)) from None


def render_body(source: str, profile: dict[str, Any], has_media: bool,
                field: str = "body") -> tuple[str, SegmentInfo]:
    """The personalised text and its cost; a 422 naming ``field`` when it cannot be sent."""
    try:
        text = templates.render(source, profile)
    except templates.MissingVariable as exc:
        raise ValidationFailed(f"{field}: {exc}", errors=[{"field": field, "message": str(exc)}],
                               variable=exc.name) from None
    except templates.TemplateError as exc:
        raise ValidationFailed.field(field, str(exc)) from None
    return text, check_text(text, has_media, field)


def check_text(text: str, has_media: bool, field: str = "body") -> SegmentInfo:
    info = count_segments(text)
    if info.characters > MAX_BODY_CHARACTERS:
        raise ValidationFailed.field(field, f"is {info.characters} characters after personalisation; "
                                            f"at most {MAX_BODY_CHARACTERS}")
    if not text.strip() and not has_media:
        raise ValidationFailed.field(field, "the message is empty (give a body, or media on an mms channel)")
    return info


def senders(config: ChannelConfiguration, credential: Credential | None) -> list[str]:
    """The identities a message of ``config`` goes out from (for per-sender consent)."""
    service = (credential.settings or {}).get("messaging_service_sid") if credential else None
    return [s for s in (config.sender_number, service) if s]


def _recipient(config: ChannelConfiguration, to: str | None, profile: dict[str, Any] | None) -> str:
    if to:
        return normalize_e164(to, "to")
    field = config.execution_field
    value = (profile or {}).get(field)
    if value in (None, ""):
        if profile is None:
            raise ValidationFailed.field("to", f"give `to`, or a `profile` with the execution field '{field}'")
        raise ValidationFailed.field(f"profile.{field}", "the profile has no phone number in the configuration's "
                                                         f"execution field '{field}' (or give `to`)")
    return normalize_e164(str(value), f"profile.{field}")


def ordered_id(now: datetime) -> str:
    """A message id that sorts by creation time (like UUIDv7: milliseconds, then 80 random bits), so
    new rows append to the primary key's index instead of landing all over it."""
    return f"{int(now.timestamp() * 1000):012x}{secrets.randbits(80):020x}"


def request_hash(data: SendRequest) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# ---- the use case ----------------------------------------------------------------------------------

def send(session: Session, sandbox: Sandbox, data: SendRequest, idempotency_key: str | None = None) -> SendAnswer:
    """Validate and store one message; the caller commits the session before answering.

    With an ``idempotency_key``, the same key and body give the same answer (nothing new stored);
    the same key with another body is a 422. Concurrent duplicates meet the unique constraint on
    (sandbox, key): the loser rolls back and replays the winner's answer.
    """
    key = _check_key(idempotency_key)
    digest = request_hash(data)
    if key:
        existing = _by_key(session, sandbox, key)
        if existing is not None:
            return _replay(existing, digest)

    config = configs.find_active(session, sandbox, data.channel_configuration)
    media = check_media(config.channel, data.media_urls)
    check_template(data.body)
    to = _recipient(config, data.to, data.profile)
    profile = dict(data.profile or {})
    profile.setdefault(config.execution_field, to)
    content = rcs_content(config.channel, data.rcs, profile)
    if content is not None and not data.body.strip():
        # The RCS text (or the fallback text) is what {{message}} carries and what an SMS fallback costs.
        text = content["rcs"].get("text") or content["rcs"]["fallback_text"]
        info = count_segments(content["rcs"]["fallback_text"])
    else:
        text, info = render_body(data.body, profile, bool(media))
    credential = session.get(Credential, config.credential_id)

    now = utcnow()
    reason = consent.exclusion_reason(session, sandbox.id, to, config.sms_type, senders(config, credential))
    message = Message(
        id=ordered_id(now), sandbox_id=sandbox.id, channel_configuration_id=config.id, channel=config.channel,
        sms_type=config.sms_type, to_number=to, from_number=config.sender_number, body=text, media_urls=media,
        content=content,
        segments=info.segments, encoding=info.encoding, valid_until=now + timedelta(seconds=data.validity_period),
        idempotency_key=key, request_hash=digest if key else None, created_at=now, updated_at=now,
    )
    if reason:
        message.status, message.error_message, message.final_at = "excluded", reason, now
        event = MessageEvent(message_id=message.id, status="excluded", source="api", detail=reason, at=now)
    else:
        message.status, message.next_attempt_at = "queued", now
        event = MessageEvent(message_id=message.id, status="queued", source="api", at=now)
    session.add(message)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = _by_key(session, sandbox, key) if key else None
        if existing is None:
            raise
        return _replay(existing, digest)
    session.add(event)
    session.flush()
    return SendAnswer(answer(message), replayed=False)


def rcs_content(channel: str, raw: dict[str, Any] | None, profile: dict[str, Any]) -> dict[str, Any] | None:
    """The stored content of an RCS message (validated rich content and the profile), else None."""
    from textrelay.domain import rcs

    if channel != "rcs":
        if raw is not None:
            raise ValidationFailed.field("rcs", "rich content needs an rcs channel configuration")
        return None
    if raw is None:
        raise ValidationFailed.field("rcs", "required for an rcs channel configuration (with fallback_text)")
    model = rcs.parse(raw)
    return {"rcs": model.model_dump(mode="json", exclude_none=True), "profile": profile}


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255:
        raise ValidationFailed.field("Idempotency-Key", "1 to 255 characters")
    return key


def _by_key(session: Session, sandbox: Sandbox, key: str) -> Message | None:
    return session.scalar(select(Message).where(Message.sandbox_id == sandbox.id, Message.idempotency_key == key))


def _replay(existing: Message, digest: str) -> SendAnswer:
    if existing.request_hash != digest:
        raise ValidationFailed.field("Idempotency-Key", "this key was already used with a different request body")
    return SendAnswer(answer(existing), replayed=True)


def answer(message: Message) -> dict[str, Any]:
    """The 202 answer to a send. Rebuilt from the row, so a replay is byte-for-byte the same answer:
    the status is the one the message was accepted with."""
    accepted_status = "excluded" if message.status == "excluded" else "queued"
    body: dict[str, Any] = {
        "id": message.id,
        "status": accepted_status,
        "to": message.to_number,
        "segments": message.segments,
        "encoding": message.encoding,
        "characters": count_segments(message.body).characters,
        "channel_configuration": message.channel_configuration_id,
        "created_at": message.created_at.isoformat(),
    }
    if accepted_status == "excluded":
        body["excluded_reason"] = message.error_message
    return body


# ---- reading ---------------------------------------------------------------------------------------

def get(session: Session, sandbox: Sandbox, message_id: str) -> Message:
    message = session.get(Message, message_id)
    if message is None or message.sandbox_id != sandbox.id:
        raise NotFound(f"message {message_id} does not exist in sandbox '{sandbox.name}'")
    return message


def history(session: Session, message_id: str) -> list[MessageEvent]:
    return list(session.scalars(select(MessageEvent).where(MessageEvent.message_id == message_id)
                                .order_by(MessageEvent.at, MessageEvent.id)))


def list_query(session: Session, sandbox: Sandbox, status: str | None = None, to: str | None = None,
               campaign_id: str | None = None, channel_configuration: str | None = None) -> Any:
    query = select(Message).where(Message.sandbox_id == sandbox.id)
    if status:
        if status not in STATUSES:
            raise ValidationFailed.field("query.status", f"must be one of {', '.join(STATUSES)}")
        query = query.where(Message.status == status)
    if to:
        query = query.where(Message.to_number == normalize_e164(to, "query.to"))
    if campaign_id:
        query = query.where(Message.campaign_id == campaign_id)
    if channel_configuration:
        config = configs.find(session, sandbox, channel_configuration, "query.channel_configuration")
        query = query.where(Message.channel_configuration_id == config.id)
    return query


def view(message: Message, events: list[MessageEvent] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": message.id,
        "status": message.status,
        "to": message.to_number,
        "from": message.from_number,
        "body": message.body,
        "media_urls": message.media_urls or [],
        "channel": message.channel,
        "sms_type": message.sms_type,
        "channel_configuration": message.channel_configuration_id,
        "campaign_id": message.campaign_id,
        "provider_message_id": message.provider_message_id,
        "segments": message.segments,
        "encoding": message.encoding,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at.isoformat() if message.next_attempt_at else None,
        "valid_until": message.valid_until.isoformat(),
        "created_at": message.created_at.isoformat(),
        "updated_at": message.updated_at.isoformat(),
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "final_at": message.final_at.isoformat() if message.final_at else None,
    }
    if events is not None:
        body["history"] = [
            {"status": e.status, "source": e.source, "detail": e.detail, "error_code": e.error_code,
             "at": e.at.isoformat()} for e in events
        ]
    return body
