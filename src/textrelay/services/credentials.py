"""API credentials: how a sandbox reaches a provider account."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import aiohttp
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, field_validator
from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from textrelay.domain.numbers import normalize_inbound_number
from textrelay.errors import Conflict, NotFound, ValidationFailed
from textrelay.providers import twilio
from textrelay.secrets import KeyRing, mask
from textrelay.services import caches, custom_credentials, webhook_secrets, webhooks
from textrelay.services.custom_credentials import CustomCredentialCreate, CustomCredentialUpdate
from textrelay.store.models import ChannelConfiguration, Credential, Sandbox, Webhook, utcnow

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
AccountSid = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^AC[0-9a-fA-F]{32}$")]
ServiceSid = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^MG[0-9a-fA-F]{32}$")]
Secret = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TwilioCredentialCreate(_Strict):
    name: Name
    vendor: Literal["twilio"] = "twilio"
    account_sid: AccountSid = Field(description="AC followed by 32 hex digits (Twilio Console, Account Info).")
    auth_token: Secret = Field(description="Secret; stored encrypted, never returned.")
    messaging_service_sid: ServiceSid | None = Field(default=None, description="MG followed by 32 hex digits.")
    inbound_number: str | None = Field(default=None, max_length=32,
                                       description="E.164 number or short code on which this sandbox receives.")
    api_base_url: AnyHttpUrl | None = Field(default=None, description="Default https://api.twilio.com.")
    rate_limit_mps: float | None = Field(default=None, gt=0, le=100_000,
                                         description="Segments per second across all senders of this credential.")

    @field_validator("messaging_service_sid", "inbound_number", "api_base_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class TwilioCredentialUpdate(_Strict):
    name: Name | None = None
    account_sid: AccountSid | None = None
    auth_token: Secret | None = Field(default=None, description="Omit to keep the stored token.")
    messaging_service_sid: ServiceSid | None = None
    inbound_number: str | None = Field(default=None, max_length=32)
    api_base_url: AnyHttpUrl | None = None
    rate_limit_mps: float | None = Field(default=None, gt=0, le=100_000, description="null removes the limit.")

    @field_validator("auth_token", mode="before")
    @classmethod
    def _blank_keeps(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


def _vendor_of(value: Any) -> str:
    raw = value.get("vendor", "twilio") if isinstance(value, dict) else getattr(value, "vendor", "twilio")
    return raw if raw in ("twilio", "custom") else "twilio"


# The create body, by vendor (a body without ``vendor`` is a Twilio credential, as before).
CredentialCreate = Annotated[
    Annotated[TwilioCredentialCreate, Tag("twilio")] | Annotated[CustomCredentialCreate, Tag("custom")],
    Discriminator(_vendor_of),
]
# An update is read as the stored credential's vendor's update (see ``update``).
CredentialUpdate = TwilioCredentialUpdate | CustomCredentialUpdate


class VerifyRequest(_Strict):
    to: str | None = Field(default=None, max_length=32, description="Number to send a test message to.")
    body: str | None = Field(default=None, max_length=1600, description="Text of the test message.")
    sender: str | None = Field(default=None, max_length=32,
                               description="Sender number (else the messaging service).")


def _set_secret(cred: Credential, keyring: KeyRing, field: str, value: str) -> None:
    cred.secrets = {**(cred.secrets or {}), field: keyring.encrypt(value)}
    cred.secret_hints = {**(cred.secret_hints or {}), field: mask(value)}


def secret(cred: Credential, keyring: KeyRing, field: str) -> str:
    return keyring.decrypt(cred.secrets[field])


def _check_inbound_number(session: Session, vendor: str, account_key: str, number: str | None,
                          exclude_id: str | None = None) -> None:
    if not number:
        return
    clash = session.scalar(select(Credential).where(
        Credential.vendor == vendor, Credential.account_key == account_key, Credential.inbound_number == number,
        *( [Credential.id != exclude_id] if exclude_id else [] )))
    if clash is not None:
        raise Conflict(
            f"inbound number {number} already belongs to another credential of this provider account "
            f"(in this or another sandbox); each sandbox needs its own inbound number",
            errors=[{"field": "inbound_number", "message": "already used for this provider account"}])


def _check_name(session: Session, sandbox: Sandbox, name: str, exclude_id: str | None = None) -> None:
    q = select(Credential).where(Credential.sandbox_id == sandbox.id, Credential.name == name)
    if exclude_id:
        q = q.where(Credential.id != exclude_id)
    if session.scalar(q) is not None:
        raise Conflict(f"a credential named '{name}' already exists in this sandbox",
                       errors=[{"field": "name", "message": "already exists in this sandbox"}])


def create(session: Session, keyring: KeyRing, sandbox: Sandbox,
           data: TwilioCredentialCreate | CustomCredentialCreate) -> Credential:
    if isinstance(data, CustomCredentialCreate):
        return _create_custom(session, keyring, sandbox, data)
    inbound = normalize_inbound_number(data.inbound_number) if data.inbound_number else None
    _check_name(session, sandbox, data.name)
    _check_inbound_number(session, "twilio", data.account_sid, inbound)
    cred = Credential(
        sandbox_id=sandbox.id, name=data.name, vendor="twilio", account_key=data.account_sid,
        inbound_number=inbound,
        settings={
            "account_sid": data.account_sid,
            "messaging_service_sid": data.messaging_service_sid,
            "api_base_url": str(data.api_base_url).rstrip("/") if data.api_base_url else twilio.DEFAULT_API_BASE,
            "rate_limit_mps": data.rate_limit_mps,
        },
    )
    _set_secret(cred, keyring, "auth_token", data.auth_token)
    session.add(cred)
    _flush_or_conflict(session)
    webhooks.create_defaults(session, cred)
    return cred


def _create_custom(session: Session, keyring: KeyRing, sandbox: Sandbox, data: CustomCredentialCreate) -> Credential:
    data.inbound_number = normalize_inbound_number(data.inbound_number) if data.inbound_number else None
    custom_credentials.validate(data)
    _check_name(session, sandbox, data.name)
    # The webhooks' scheme comes from webhook_auth; a secret named there seeds both webhooks,
    # otherwise each webhook gets its own generated secret.
    hook_auth = data.webhook_auth
    given_secret = hook_auth.secret or hook_auth.token or hook_auth.password
    cred = Credential(sandbox_id=sandbox.id, name=data.name, vendor="custom")
    custom_credentials.store(cred, keyring, data)
    _check_inbound_number(session, "custom", cred.account_key, cred.inbound_number)
    session.add(cred)
    _flush_or_conflict(session)
    webhooks.create_defaults(session, cred, keyring,
                             {"type": hook_auth.type, "header": hook_auth.header, "username": hook_auth.username},
                             given_secret)
    return cred


def _update_custom(session: Session, keyring: KeyRing, sandbox: Sandbox, cred: Credential,
                   data: TwilioCredentialUpdate | CustomCredentialUpdate) -> Credential:
    if not isinstance(data, CustomCredentialUpdate):
        given = data.model_dump(exclude_unset=True)
        try:
            data = CustomCredentialUpdate.model_validate(given)
        except ValueError:
            wrong = sorted(set(given) - set(CustomCredentialUpdate.model_fields))
            raise ValidationFailed.field(wrong[0] if wrong else "body",
                                         "unknown field for a custom credential") from None
    result = custom_credentials.merged(cred, keyring, data)
    if result.name != cred.name:
        _check_name(session, sandbox, result.name, exclude_id=cred.id)
        cred.name = result.name
    result.inbound_number = normalize_inbound_number(result.inbound_number) if result.inbound_number else None
    custom_credentials.store(cred, keyring, result)
    _check_inbound_number(session, "custom", cred.account_key, cred.inbound_number, exclude_id=cred.id)
    cred.updated_at = utcnow()
    _flush_or_conflict(session)
    return cred


def _flush_or_conflict(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("the credential clashes with another one (name or inbound number)") from exc


def list_all(session: Session, sandbox: Sandbox) -> list[Credential]:
    return list(session.scalars(
        select(Credential).where(Credential.sandbox_id == sandbox.id).order_by(Credential.created_at, Credential.id)
    ))


def get(session: Session, sandbox: Sandbox, credential_id: str) -> Credential:
    cred = session.get(Credential, credential_id)
    if cred is None or cred.sandbox_id != sandbox.id:
        raise NotFound(f"credential {credential_id} does not exist in sandbox '{sandbox.name}'")
    return cred


def update(session: Session, keyring: KeyRing, sandbox: Sandbox, credential_id: str,
           data: TwilioCredentialUpdate | CustomCredentialUpdate) -> Credential:
    cred = get(session, sandbox, credential_id)
    if cred.vendor == "custom":
        return _update_custom(session, keyring, sandbox, cred, data)
    if isinstance(data, CustomCredentialUpdate):
        given = data.model_dump(exclude_unset=True)
        try:
            data = TwilioCredentialUpdate.model_validate(given)
        except ValueError:
            wrong = sorted(set(given) - set(TwilioCredentialUpdate.model_fields))
            raise ValidationFailed.field(wrong[0] if wrong else "body",
                                         "unknown field for a Twilio credential") from None
    given = data.model_fields_set
    if "name" in given and data.name is not None and data.name != cred.name:
        _check_name(session, sandbox, data.name, exclude_id=cred.id)
        cred.name = data.name
    settings = dict(cred.settings)
    if "account_sid" in given and data.account_sid:
        settings["account_sid"] = data.account_sid
        cred.account_key = data.account_sid
    if "messaging_service_sid" in given:
        settings["messaging_service_sid"] = data.messaging_service_sid or None
    if "api_base_url" in given:
        settings["api_base_url"] = (str(data.api_base_url).rstrip("/") if data.api_base_url
                                    else twilio.DEFAULT_API_BASE)
    if "rate_limit_mps" in given:
        settings["rate_limit_mps"] = data.rate_limit_mps
    if "inbound_number" in given:
        cred.inbound_number = normalize_inbound_number(data.inbound_number) if data.inbound_number else None
    _check_inbound_number(session, cred.vendor, cred.account_key, cred.inbound_number, exclude_id=cred.id)
    cred.settings = settings
    if data.auth_token:
        _set_secret(cred, keyring, "auth_token", data.auth_token)
    cred.updated_at = utcnow()
    _flush_or_conflict(session)
    caches.forget_configuration()
    return cred


def delete(session: Session, sandbox: Sandbox, credential_id: str) -> None:
    cred = get(session, sandbox, credential_id)
    users = list(session.scalars(
        select(ChannelConfiguration.name).where(ChannelConfiguration.credential_id == cred.id)))
    if users:
        raise Conflict(
            f"credential '{cred.name}' is used by channel configurations: {', '.join(sorted(users))}",
            errors=[{"field": "channel_configurations", "message": ", ".join(sorted(users))}],
            channel_configurations=sorted(users))
    session.execute(sql_delete(Webhook).where(Webhook.credential_id == cred.id))
    session.delete(cred)
    caches.forget_configuration()


def twilio_account(cred: Credential, keyring: KeyRing) -> twilio.TwilioAccount:
    return twilio.TwilioAccount(
        account_sid=cred.settings["account_sid"], auth_token=secret(cred, keyring, "auth_token"),
        api_base_url=cred.settings.get("api_base_url"),
        messaging_service_sid=cred.settings.get("messaging_service_sid"))


async def verify(cred: Credential, keyring: KeyRing, request: VerifyRequest) -> dict[str, Any]:
    """Check the credential against the provider, and send a test message when asked to."""
    to = None
    if request.to or request.body:
        if not (request.to and request.body):
            raise ValidationFailed.field("to" if not request.to else "body",
                                         "a test message needs both a number and a message")
        from textrelay.domain.numbers import normalize_e164

        to = normalize_e164(request.to, "to")
    account: Any = custom_credentials.provider(cred, keyring) if cred.vendor == "custom" \
        else twilio_account(cred, keyring)
    async with aiohttp.ClientSession() as http:
        report = await account.verify(http, to=to, body=request.body, sender=request.sender or cred.inbound_number)
    return {"ok": report.ok, "checks": [{**c, "detail": account.redact(c["detail"])} for c in report.checks]}


def record_verification(session: Session, sandbox: Sandbox, credential_id: str, result: dict[str, Any]) -> None:
    cred = get(session, sandbox, credential_id)
    cred.verified_at = utcnow() if result["ok"] else cred.verified_at
    cred.verify_result = "; ".join(f"{c['check']}: {'ok' if c['ok'] else 'failed'} ({c['detail']})"
                                   for c in result["checks"])[:2000]


def view(cred: Credential, sandbox: Sandbox, hooks: list[Any], base_url: str) -> dict[str, Any]:
    """The credential as the API and UI show it: secrets masked, webhook URLs included."""
    settings = cred.settings or {}
    if cred.vendor == "custom":
        return {
            "id": cred.id, "name": cred.name, "vendor": cred.vendor, "sandbox": sandbox.name,
            **custom_credentials.view_fields(cred),
            "inbound_number": cred.inbound_number,
            "webhooks": [{"id": h.id, "type": h.type, "name": h.name,
                          "url": webhooks.public_url(h, base_url, cred.vendor),
                          "auth": webhook_secrets.view(h)} for h in hooks],
            "verified_at": cred.verified_at.isoformat() if cred.verified_at else None,
            "verify_result": cred.verify_result,
            "created_at": cred.created_at.isoformat(),
            "updated_at": cred.updated_at.isoformat(),
        }
    return {
        "id": cred.id,
        "name": cred.name,
        "vendor": cred.vendor,
        "sandbox": sandbox.name,
        "account_sid": settings.get("account_sid"),
        "auth_token": (cred.secret_hints or {}).get("auth_token"),
        "messaging_service_sid": settings.get("messaging_service_sid"),
        "inbound_number": cred.inbound_number,
        "api_base_url": settings.get("api_base_url"),
        "rate_limit_mps": settings.get("rate_limit_mps"),
        "webhooks": [
            {"id": h.id, "type": h.type, "name": h.name, "url": webhooks.public_url(h, base_url, cred.vendor)}
            for h in hooks
        ],
        "verified_at": cred.verified_at.isoformat() if cred.verified_at else None,
        "verify_result": cred.verify_result,
        "created_at": cred.created_at.isoformat(),
        "updated_at": cred.updated_at.isoformat(),
    }
