"""Tables. One module, so a reader sees the whole store at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on both SQLite (which keeps naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Sandbox(Base):
    __tablename__ = "sandboxes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    sandbox_id: Mapped[str | None] = mapped_column(ForeignKey("sandboxes.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class User(Base):
    """An admin UI login."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Credential(Base):
    """An API credential: how one sandbox reaches one provider account."""

    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("sandbox_id", "name", name="uq_credentials_sandbox_name"),
        # One inbound number belongs to one sandbox per provider account.
        UniqueConstraint("vendor", "account_key", "inbound_number", name="uq_credentials_inbound_number"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    vendor: Mapped[str] = mapped_column(String(16))
    # The provider account this credential reaches (Twilio: the AccountSid).
    account_key: Mapped[str] = mapped_column(String(255))
    inbound_number: Mapped[str | None] = mapped_column(String(32))
    # Non-secret settings, per vendor.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Secret settings, each encrypted on its own: {"auth_token": "<fernet token>"}.
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What may be shown of each secret (masked tail).
    secret_hints: Mapped[dict[str, Any]] = mapped_column(default=dict)
    verified_at: Mapped[datetime | None]
    verify_result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Webhook(Base):
    """An endpoint of ours that a provider calls: inbound messages or delivery feedback."""

    __tablename__ = "webhooks"
    __table_args__ = (UniqueConstraint("sandbox_id", "name", name="uq_webhooks_sandbox_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id"), index=True)
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))
    sender_number: Mapped[str | None] = mapped_column(String(32))
    # Keyword lists, replies and policies (inbound); mappings (custom).
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelConfiguration(Base):
    __tablename__ = "channel_configurations"
    __table_args__ = (UniqueConstraint("sandbox_id", "name", name="uq_channel_configurations_sandbox_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(8))
    sms_type: Mapped[str] = mapped_column(String(16))
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), index=True)
    sender_number: Mapped[str | None] = mapped_column(String(32))
    execution_field: Mapped[str] = mapped_column(String(100), default="mobilePhone")
    shortening_domain: Mapped[str | None] = mapped_column(String(255))
    rate_limit_mps: Mapped[float | None] = mapped_column(Float)
    fallback_configuration_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    channel_configuration_id: Mapped[str] = mapped_column(ForeignKey("channel_configurations.id"))
    body: Mapped[str] = mapped_column(Text)
    media_urls: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    audience_size: Mapped[int] = mapped_column(Integer, default=0)
    audience_rejected: Mapped[int] = mapped_column(Integer, default=0)
    messages_created: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class AudienceMember(Base):
    """One row of a campaign's audience, stored as uploaded (streamed in chunks)."""

    __tablename__ = "audience_members"
    __table_args__ = (Index("ix_audience_members_campaign_seq", "campaign_id", "seq", unique=True),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    phone_number: Mapped[str] = mapped_column(String(32))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_due", "status", "next_attempt_at"),
        # Sends whose outcome is unknown, looked for every few seconds among many sent messages.
        Index("ix_messages_outcome_unknown", "outcome_unknown", "status"),
        Index("ix_messages_provider_id", "provider_message_id"),
        Index("ix_messages_campaign_status", "campaign_id", "status"),
        Index("ix_messages_sandbox_created", "sandbox_id", "created_at"),
        UniqueConstraint("sandbox_id", "idempotency_key", name="uq_messages_idempotency_key"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id"))
    channel_configuration_id: Mapped[str] = mapped_column(ForeignKey("channel_configurations.id"))
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"))
    channel: Mapped[str] = mapped_column(String(8))
    sms_type: Mapped[str] = mapped_column(String(16))
    to_number: Mapped[str] = mapped_column(String(32))
    from_number: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="")
    media_urls: Mapped[list[Any]] = mapped_column(default=list)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    segments: Mapped[int] = mapped_column(Integer, default=1)
    encoding: Mapped[str] = mapped_column(String(8), default="GSM-7")
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    # Set while a worker holds the message; a lease that runs out means the worker died.
    lease_expires_at: Mapped[datetime | None]
    # True when a send went out and its outcome is unknown: reconcile before any resend.
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    # True while the message holds a rate-limit slot reserved for its next_attempt_at.
    rate_reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_until: Mapped[datetime]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    final_at: Mapped[datetime | None]


class MessageEvent(Base):
    """A message's timestamped history: every status it passed, and every attempt."""

    __tablename__ = "message_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ReceiptToken(Base):
    """Delivery-receipt de-duplication: a provider idempotency token seen once."""

    __tablename__ = "receipt_tokens"
    token: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class UnmatchedReceipt(Base):
    """A delivery receipt whose provider id is not (yet) on any message: applied once it is."""

    __tablename__ = "unmatched_receipts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    sandbox_id: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Consent(Base):
    """The consent state of one phone number in one sandbox."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("sandbox_id", "phone_number", name="uq_consents_number"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id"))
    phone_number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    sender_number: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentSenderBlock(Base):
    """A number opted out of one sender: transactional sends from that sender are excluded too."""

    __tablename__ = "consent_sender_blocks"
    __table_args__ = (
        UniqueConstraint("sandbox_id", "phone_number", "sender_number", name="uq_consent_sender_blocks"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id"))
    phone_number: Mapped[str] = mapped_column(String(32))
    sender_number: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentEvent(Base):
    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_number", "sandbox_id", "phone_number", "at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id"))
    phone_number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    sender_number: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RateLimit(Base):
    """Generic cell rate algorithm state: the theoretical arrival time of the next segment."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[float] = mapped_column(Float, default=0.0)


class InboundMessage(Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("provider_message_id", name="uq_inbound_messages_provider_id"),
        Index("ix_inbound_messages_sandbox_received", "sandbox_id", "received_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id"))
    webhook_id: Mapped[str | None] = mapped_column(ForeignKey("webhooks.id", ondelete="SET NULL"))
    provider_message_id: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[str] = mapped_column(String(64))
    to_number: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list[Any]] = mapped_column(default=list)
    matched_category: Mapped[str | None] = mapped_column(String(32))
    matched_keyword: Mapped[str | None] = mapped_column(String(100))
    consent_change: Mapped[str | None] = mapped_column(String(16))
    reply: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class EventDestination(Base):
    """Where a sandbox's inbound messages and consent changes are forwarded (events out)."""

    __tablename__ = "event_destinations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    # HMAC-SHA256 signing secret, encrypted with the key ring.
    secret: Mapped[str] = mapped_column(Text)
    secret_hint: Mapped[str] = mapped_column(String(16), default="")
    events: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EventDelivery(Base):
    """The events-out outbox: one signed POST to make, retried with backoff until delivered."""

    __tablename__ = "event_deliveries"
    __table_args__ = (Index("ix_event_deliveries_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_id)
    sandbox_id: Mapped[str] = mapped_column(ForeignKey("sandboxes.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
