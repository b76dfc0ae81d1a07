"""Channel configurations: what a message is sent with (channel, SMS type, credential, sender)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from textrelay.domain.numbers import normalize_sender
from textrelay.errors import Conflict, NotFound, ValidationFailed
from textrelay.store.models import Campaign, ChannelConfiguration, Credential, Message, Sandbox, utcnow

CHANNELS = ("sms", "mms", "rcs")
SMS_TYPES = ("marketing", "transactional")
STATUSES = ("draft", "active")
# Messages still waiting for (or in) a send: a configuration they need cannot go away.
PENDING_MESSAGE_STATUSES = ("queued", "sending")

ConfigName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                              pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
FieldName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                             pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")]
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


def _hostname(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be a hostname such as go.example.com")
    host = value.strip().lower().rstrip(".")
    if not host:
        return None
    if not _HOSTNAME.match(host):
        raise ValueError("must be a hostname such as go.example.com (no scheme, path or port)")
    return host


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Cleaned(_Strict):
    """Input clean-up shared by create and update: a lowercase hostname, a blank sender is none."""

    @field_validator("shortening_domain", mode="before", check_fields=False)
    @classmethod
    def _host(cls, value: Any) -> Any:
        return _hostname(value)

    @field_validator("sender_number", mode="before", check_fields=False)
    @classmethod
    def _blank_sender(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class ChannelConfigurationCreate(_Cleaned):
    name: ConfigName = Field(description="Starts with a letter; letters, digits, '_', '.', '-'. Unique per sandbox.")
    channel: Literal["sms", "mms", "rcs"] = "sms"
    sms_type: Literal["marketing", "transactional"] = "marketing"
    credential_id: str = Field(min_length=1, max_length=64, description="An API credential of the same sandbox.")
    sender_number: str | None = Field(default=None, max_length=32,
                                      description="E.164 number, short code or alphanumeric sender id (≤ 11).")
    execution_field: FieldName = Field(default="mobilePhone",
                                       description="The profile attribute that holds the phone number.")
    shortening_domain: str | None = Field(default=None, max_length=253, description="Hostname for short links.")
    rate_limit_mps: float | None = Field(default=None, gt=0, le=100_000,
                                         description="Messages (segments) per second for this sender.")
    fallback_configuration_id: str | None = Field(
        default=None, max_length=64, description="RCS: the SMS channel configuration (id or name) that sends "
                                                 "the fallback text when a recipient cannot take RCS.")
    status: Literal["draft", "active"] = "draft"


class ChannelConfigurationUpdate(_Cleaned):
    name: ConfigName | None = None
    channel: Literal["sms", "mms", "rcs"] | None = None
    sms_type: Literal["marketing", "transactional"] | None = None
    credential_id: str | None = Field(default=None, min_length=1, max_length=64)
    sender_number: str | None = Field(default=None, max_length=32, description="null or \"\" removes it.")
    execution_field: FieldName | None = None
    shortening_domain: str | None = Field(default=None, max_length=253, description="null or \"\" removes it.")
    rate_limit_mps: float | None = Field(default=None, gt=0, le=100_000, description="null removes the limit.")
    fallback_configuration_id: str | None = Field(default=None, max_length=64, description="null removes it.")
    status: Literal["draft", "active"] | None = None


def _credential(session: Session, sandbox: Sandbox, credential_id: str) -> Credential:
    cred = session.get(Credential, credential_id)
    if cred is None or cred.sandbox_id != sandbox.id:
        raise ValidationFailed.field("credential_id", f"no API credential {credential_id} in sandbox '{sandbox.name}'")
    return cred


def _check(session: Session, sandbox: Sandbox, config: ChannelConfiguration) -> None:
    """The rules that span several fields, checked on the configuration as it would be saved."""
    cred = _credential(session, sandbox, config.credential_id)
    _check_rcs(cred, config)
    service_sid = (cred.settings or {}).get("messaging_service_sid")
    if config.channel == "rcs" and cred.vendor == "twilio" and not service_sid:
        raise ValidationFailed.field(
            "channel", "rcs needs a custom credential (or a Twilio credential with a messaging service "
            "that has an RCS sender)")
    if cred.vendor == "twilio" and not config.sender_number and not service_sid:
        raise ValidationFailed.field(
            "sender_number", "required: the Twilio credential has no messaging service, so a sender number "
            "must be given")


def _fallback(session: Session, sandbox: Sandbox, ref: str | None, own_id: str | None = None) -> str | None:
    """The SMS configuration an RCS configuration falls back to (by id or name), checked."""
    if not ref or not ref.strip():
        return None
    target = find(session, sandbox, ref, "fallback_configuration_id")
    if target.id == own_id or target.channel != "sms":
        raise ValidationFailed.field("fallback_configuration_id", "must be another channel configuration "
                                                                  "with channel sms")
    return target.id


def _check_rcs(cred: Credential, config: ChannelConfiguration) -> None:
    if config.channel != "rcs" and config.fallback_configuration_id:
        raise ValidationFailed.field("fallback_configuration_id", "only an rcs channel configuration falls back")
    if config.channel == "rcs" and cred.vendor == "custom" and \
            "{{rcs}}" not in "".join((cred.settings or {}).get("payload_template", "").split()):
        raise ValidationFailed.field("channel", "rcs needs the custom credential's payload template to use {{rcs}}")


def _check_name(session: Session, sandbox: Sandbox, name: str, exclude_id: str | None = None) -> None:
    q = select(ChannelConfiguration.id).where(ChannelConfiguration.sandbox_id == sandbox.id,
                                              ChannelConfiguration.name == name)
    if exclude_id:
        q = q.where(ChannelConfiguration.id != exclude_id)
    if session.scalar(q) is not None:
        raise Conflict(f"a channel configuration named '{name}' already exists in this sandbox",
                       errors=[{"field": "name", "message": "already exists in this sandbox"}])


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"a channel configuration named '{name}' already exists in this sandbox",
                       errors=[{"field": "name", "message": "already exists in this sandbox"}]) from exc


def create(session: Session, sandbox: Sandbox, data: ChannelConfigurationCreate) -> ChannelConfiguration:
    config = ChannelConfiguration(
        sandbox_id=sandbox.id, name=data.name, channel=data.channel, sms_type=data.sms_type,
        credential_id=data.credential_id,
        sender_number=normalize_sender(data.sender_number) if data.sender_number else None,
        execution_field=data.execution_field, shortening_domain=data.shortening_domain,
        rate_limit_mps=data.rate_limit_mps, status=data.status)
    config.fallback_configuration_id = _fallback(session, sandbox, data.fallback_configuration_id)
    _check(session, sandbox, config)
    _check_name(session, sandbox, data.name)
    session.add(config)
    _flush(session, data.name)
    return config


def get(session: Session, sandbox: Sandbox, config_id: str) -> ChannelConfiguration:
    config = session.get(ChannelConfiguration, config_id)
    if config is None or config.sandbox_id != sandbox.id:
        raise NotFound(f"channel configuration {config_id} does not exist in sandbox '{sandbox.name}'")
    return config


def find(session: Session, sandbox: Sandbox, ref: str, field: str = "channel_configuration") -> ChannelConfiguration:
    """A configuration by id or by name; a reference to nothing is a 422 naming ``field``."""
    ref = (ref or "").strip()
    config = None
    if ref:
        # An id wins over a name that happens to look like one.
        config = session.get(ChannelConfiguration, ref)
        if config is None or config.sandbox_id != sandbox.id:
            config = session.scalar(select(ChannelConfiguration).where(
                ChannelConfiguration.sandbox_id == sandbox.id, ChannelConfiguration.name == ref))
    if config is None:
        raise ValidationFailed.field(field, f"no channel configuration '{ref}' (id or name) in sandbox "
                                            f"'{sandbox.name}'")
    return config


def find_active(session: Session, sandbox: Sandbox, ref: str,
                field: str = "channel_configuration") -> ChannelConfiguration:
    config = find(session, sandbox, ref, field)
    if config.status != "active":
        raise ValidationFailed.field(field, f"channel configuration '{config.name}' is {config.status}; "
                                            "activate it before sending")
    return config


def list_query(sandbox: Sandbox) -> Any:
    return select(ChannelConfiguration).where(ChannelConfiguration.sandbox_id == sandbox.id)


def list_all(session: Session, sandbox: Sandbox) -> list[ChannelConfiguration]:
    return list(session.scalars(list_query(sandbox).order_by(ChannelConfiguration.created_at,
                                                             ChannelConfiguration.id)))


def update(session: Session, sandbox: Sandbox, config_id: str,
           data: ChannelConfigurationUpdate) -> ChannelConfiguration:
    config = get(session, sandbox, config_id)
    given = data.model_fields_set
    for field in ("channel", "sms_type", "credential_id", "execution_field", "status"):
        if field in given:
            value = getattr(data, field)
            if value is None:
                raise ValidationFailed.field(field, "cannot be null")
            setattr(config, field, value)
    if "name" in given:
        if data.name is None:
            raise ValidationFailed.field("name", "cannot be null")
        if data.name != config.name:
            _check_name(session, sandbox, data.name, exclude_id=config.id)
            config.name = data.name
    if "sender_number" in given:
        config.sender_number = normalize_sender(data.sender_number) if data.sender_number else None
    if "shortening_domain" in given:
        config.shortening_domain = data.shortening_domain
    if "rate_limit_mps" in given:
        config.rate_limit_mps = data.rate_limit_mps
    if "fallback_configuration_id" in given:
        config.fallback_configuration_id = _fallback(session, sandbox, data.fallback_configuration_id, config.id)
    _check(session, sandbox, config)
    config.updated_at = utcnow()
    _flush(session, config.name)
    return config


def delete(session: Session, sandbox: Sandbox, config_id: str) -> None:
    config = get(session, sandbox, config_id)
    pending = session.scalar(select(func.count()).select_from(Message).where(
        Message.channel_configuration_id == config.id, Message.status.in_(PENDING_MESSAGE_STATUSES)))
    if pending:
        raise Conflict(f"channel configuration '{config.name}' has {pending} queued message(s); "
                       "wait for them or cancel their campaign first",
                       errors=[{"field": "id", "message": f"{pending} queued message(s)"}], queued_messages=pending)
    used = session.scalar(select(func.count()).select_from(Message).where(
        Message.channel_configuration_id == config.id))
    campaigns = session.scalar(select(func.count()).select_from(Campaign).where(
        Campaign.channel_configuration_id == config.id))
    if used or campaigns:
        # The message history keeps pointing at the configuration it was sent with.
        raise Conflict(f"channel configuration '{config.name}' is referenced by {used} message(s) and "
                       f"{campaigns} campaign(s) in their history; set its status to draft instead",
                       errors=[{"field": "id", "message": "has message history"}])
    session.delete(config)
    session.flush()


def view(config: ChannelConfiguration, sandbox: Sandbox, credential_name: str | None = None) -> dict[str, Any]:
    return {
        "id": config.id,
        "name": config.name,
        "sandbox": sandbox.name,
        "channel": config.channel,
        "sms_type": config.sms_type,
        "credential_id": config.credential_id,
        "credential_name": credential_name,
        "sender_number": config.sender_number,
        "execution_field": config.execution_field,
        "shortening_domain": config.shortening_domain,
        "rate_limit_mps": config.rate_limit_mps,
        "fallback_configuration_id": config.fallback_configuration_id,
        "status": config.status,
        "created_at": config.created_at.isoformat(),
        "updated_at": config.updated_at.isoformat(),
    }


def credential_names(session: Session, configs: list[ChannelConfiguration]) -> dict[str, str]:
    ids = {c.credential_id for c in configs}
    if not ids:
        return {}
    return dict(session.execute(select(Credential.id, Credential.name).where(Credential.id.in_(ids))).all())
