"""Custom API credentials (``vendor: custom``): validation, encrypted storage, the provider object.

Called through :mod:`textrelay.services.credentials`, which dispatches by vendor. Every secret
(tokens, passwords, MAC and JWT secrets, OAuth2 client secrets, private keys, the mTLS key, header
values marked secret, webhook secrets) is encrypted with the key ring and shown masked; an update
that omits a secret keeps it. An update is applied to the full stored configuration and the
result validated as a whole, so a credential is never half-changed.
"""

from __future__ import annotations

import secrets as pysecrets
from dataclasses import fields as dc_fields
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from textrelay.domain import jsonpath
from textrelay.domain.payloads import compile_template
from textrelay.errors import ValidationFailed
from textrelay.providers.custom import RESERVED_HEADERS, CustomProvider, CustomProviderSettings
from textrelay.providers.custom_auth import AuthError, AuthSettings, JwtAuth, MtlsSettings, build_ssl_context
from textrelay.secrets import KeyRing, mask
from textrelay.store.models import Credential

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
SecretText = Annotated[str, StringConstraints(min_length=1, max_length=20000)]

# Secret fields, by the dotted name used in the API and in ``Credential.secrets``.
AUTH_SECRETS = ("token", "password", "secret", "client_secret", "private_key")
MTLS_SECRETS = ("client_key",)
WEBHOOK_SECRETS = ("secret", "token", "password")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomAuth(_Strict):
    """How requests to the provider are authenticated; the fields each type needs are checked."""

    type: Literal["none", "api_key", "basic", "bearer", "mac", "oauth2", "jwt"] = "none"
    header_name: Short | None = Field(default=None, description="api_key: the header (default X-API-Key).")
    token: SecretText | None = Field(default=None, description="api_key, bearer: secret.")
    username: Short | None = None
    password: SecretText | None = Field(default=None, description="basic: secret.")
    key_id: Short | None = Field(default=None, description="mac: key id.")
    secret: SecretText | None = Field(default=None, description="mac, jwt HS256: secret.")
    token_url: str | None = Field(default=None, max_length=2048, description="oauth2: token endpoint.")
    client_id: Short | None = None
    client_secret: SecretText | None = Field(default=None, description="oauth2: secret.")
    scope: Short | None = None
    token_params: dict[str, str] = Field(default_factory=dict, description="oauth2: extra form fields.")
    algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    private_key: SecretText | None = Field(default=None, description="jwt RS256/ES256: PEM; secret.")
    issuer: Short | None = None
    subject: Short | None = None
    audience: Short | None = None
    lifetime_seconds: int = Field(default=300, ge=10, le=86400)


class CustomMtls(_Strict):
    client_cert: str | None = Field(default=None, max_length=20000, description="PEM certificate.")
    client_key: SecretText | None = Field(default=None, description="PEM private key; secret.")
    ca_bundle: str | None = Field(default=None, max_length=100000, description="PEM CA certificates.")


class CustomHeader(_Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                           pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")]
    value: Annotated[str, StringConstraints(max_length=2000)] | None = None
    secret: bool = Field(default=False, description="Store the value encrypted and show it masked.")


class CustomWebhookAuth(_Strict):
    """How the provider authenticates its calls to our custom webhooks."""

    type: Literal["hmac", "bearer", "basic"] = "hmac"
    header: Short = Field(default="X-Signature", description="hmac: the header with the signature.")
    secret: SecretText | None = Field(default=None, description="hmac: generated when omitted; secret.")
    token: SecretText | None = Field(default=None, description="bearer: secret.")
    username: Short | None = None
    password: SecretText | None = None


class InboundMapping(_Strict):
    """JSON paths in the provider's inbound call."""

    message: str = "text"
    profile_number: str = "from"
    request_id: str = "messageId"
    origin_timestamp: str = "receivedAt"
    inbound_number: str = "to"


class FeedbackMapping(_Strict):
    """JSON paths in the provider's feedback call, and its status words → ours."""

    client_reference: str = "clientReference"
    status: str = "status"
    error_code: str = "errorCode"
    provider_message_id: str | None = "messageId"
    statuses: dict[str, Literal["sent", "delivered", "undelivered", "failed", "read", "rcs_unavailable"]] = Field(
        default_factory=lambda: {"SENT": "sent", "DELIVERED": "delivered", "READ": "read",
                                 "UNDELIVERED": "undelivered", "FAILED": "failed",
                                 "RCS_NOT_SUPPORTED": "rcs_unavailable"})


class CustomCredentialCreate(_Strict):
    name: Name
    vendor: Literal["custom"]
    provider_app_id: Short | None = None
    provider_name: Short | None = None
    provider_url: str = Field(max_length=2048, description="http(s) URL messages are POSTed to.")
    auth: CustomAuth = Field(default_factory=CustomAuth)
    mtls: CustomMtls | None = None
    headers: list[CustomHeader] = Field(default_factory=list, max_length=30)
    payload_template: str = Field(max_length=64 * 1024, description="JSON referencing {{fromNumber}}, "
                                  "{{toNumber}}, {{message}}; may use {{messageId}}, {{rcs}}, {{profile.x}}.")
    response_id_path: Short | None = Field(default=None, description="e.g. $.messages[0].id")
    rate_limit_mps: float = Field(default=0, ge=0, le=100000, description="0 = unlimited.")
    rcs_unavailable_codes: list[Short] | None = Field(default=None, max_length=50)
    inbound_number: str | None = Field(default=None, max_length=32)
    webhook_auth: CustomWebhookAuth = Field(default_factory=CustomWebhookAuth)
    inbound_mapping: InboundMapping = Field(default_factory=InboundMapping)
    feedback_mapping: FeedbackMapping = Field(default_factory=FeedbackMapping)

    @field_validator("inbound_number", "provider_app_id", "provider_name", "response_id_path", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class CustomCredentialUpdate(_Strict):
    """Any subset of the create fields; nested objects are merged, omitted secrets kept."""

    name: Name | None = None
    provider_app_id: Short | None = None
    provider_name: Short | None = None
    provider_url: str | None = Field(default=None, max_length=2048)
    auth: dict[str, Any] | None = None
    mtls: dict[str, Any] | None = None
    headers: list[CustomHeader] | None = None
    payload_template: str | None = Field(default=None, max_length=64 * 1024)
    response_id_path: Short | None = None
    rate_limit_mps: float | None = Field(default=None, ge=0, le=100000)
    rcs_unavailable_codes: list[Short] | None = None
    inbound_number: str | None = Field(default=None, max_length=32)
    webhook_auth: dict[str, Any] | None = None
    inbound_mapping: dict[str, Any] | None = None
    feedback_mapping: dict[str, Any] | None = None


# -- validation --------------------------------------------------------------------------------

def validate(data: CustomCredentialCreate) -> None:
    """Every rule beyond field types; 422 naming the field."""
    parts = urlsplit(data.provider_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed.field("provider_url", "must be an http:// or https:// URL with a host")
    compile_template(data.payload_template)
    if data.response_id_path:
        jsonpath.parse_path(data.response_id_path, "response_id_path")
    _validate_auth(data.auth)
    if data.mtls is not None:
        if data.mtls.client_cert and not data.mtls.client_key:
            raise ValidationFailed.field("mtls.client_key", "a client certificate needs its private key")
        if data.mtls.client_key and not data.mtls.client_cert:
            raise ValidationFailed.field("mtls.client_cert", "a private key needs its client certificate")
        try:
            build_ssl_context(MtlsSettings(**data.mtls.model_dump()))
        except (ValueError, OSError) as exc:
            field, _, message = str(exc).partition(": ")
            raise ValidationFailed.field(field if message else "mtls", message or str(exc)) from None
    for i, header in enumerate(data.headers):
        if header.name.lower() in RESERVED_HEADERS:
            raise ValidationFailed.field(f"headers.{i}.name", f"{header.name} is set by textrelay and cannot be changed")
        if header.value is None:
            raise ValidationFailed.field(f"headers.{i}.value", "a header needs a value")
    hook = data.webhook_auth
    if hook.type == "bearer" and not hook.token:
        raise ValidationFailed.field("webhook_auth.token", "bearer webhook auth needs a token")
    if hook.type == "basic" and not (hook.username and hook.password):
        raise ValidationFailed.field("webhook_auth.password", "basic webhook auth needs a username and password")
    for prefix, mapping in (("inbound_mapping", data.inbound_mapping), ("feedback_mapping", data.feedback_mapping)):
        for name, path in mapping.model_dump().items():
            if isinstance(path, str):
                jsonpath.parse_path(path, f"{prefix}.{name}")


def _validate_auth(auth: CustomAuth) -> None:
    needs = {"api_key": ("token",), "basic": ("username", "password"), "bearer": ("token",),
             "mac": ("key_id", "secret"), "oauth2": ("token_url", "client_id", "client_secret")}
    for name in needs.get(auth.type, ()):
        if not getattr(auth, name):
            raise ValidationFailed.field(f"auth.{name}", f"{auth.type} authentication needs {name}")
    if auth.type == "oauth2":
        parts = urlsplit(auth.token_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationFailed.field("auth.token_url", "must be an http:// or https:// URL with a host")
    if auth.type == "jwt":
        key_field = "secret" if auth.algorithm == "HS256" else "private_key"
        if not getattr(auth, key_field):
            raise ValidationFailed.field(f"auth.{key_field}", f"JWT {auth.algorithm} needs {key_field}")
        try:
            JwtAuth(_auth_settings(auth.model_dump())).mint()
        except AuthError as exc:
            raise ValidationFailed.field(f"auth.{key_field}", f"{exc.reason} (check the key and algorithm)") from None


def _auth_settings(auth: dict[str, Any]) -> AuthSettings:
    known = {f.name for f in dc_fields(AuthSettings)}
    values = {k: v for k, v in auth.items() if k in known and v is not None}
    return AuthSettings(**values)


# -- storage -----------------------------------------------------------------------------------

def _hint(value: str) -> str | None:
    if "-----BEGIN" in value:
        return "•••• (PEM set)"
    return mask(value)


def _split(data: CustomCredentialCreate) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings without secrets, and the secrets by dotted name."""
    settings = data.model_dump(exclude={"name", "vendor", "inbound_number"})
    found: dict[str, str] = {}
    for group, names in (("auth", AUTH_SECRETS), ("mtls", MTLS_SECRETS), ("webhook_auth", WEBHOOK_SECRETS)):
        part = settings.get(group)
        if not part:
            continue
        for name in names:
            value = part.get(name)
            if value:
                found[f"{group}.{name}"] = value
            part[name] = None
    for i, header in enumerate(settings["headers"]):
        if header["secret"] and header["value"]:
            found[f"headers.{i}"] = header["value"]
            header["value"] = None
    return settings, found


def store(cred: Credential, keyring: KeyRing, data: CustomCredentialCreate) -> None:
    """Write ``data`` into ``cred`` (replacing settings and secrets wholesale)."""
    if data.webhook_auth.type == "hmac" and not data.webhook_auth.secret:
        data.webhook_auth.secret = pysecrets.token_urlsafe(32)
    settings, found = _split(data)
    cred.settings = settings
    cred.secrets = {name: keyring.encrypt(value) for name, value in found.items()}
    cred.secret_hints = {name: _hint(value) for name, value in found.items()}
    cred.account_key = (data.provider_app_id or data.provider_url.strip())[:255]
    cred.inbound_number = data.inbound_number


def effective(cred: Credential, keyring: KeyRing) -> dict[str, Any]:
    """The full configuration with secrets decrypted (never leaves the process)."""
    config: dict[str, Any] = {**(cred.settings or {})}
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    config["headers"] = [dict(h) for h in config.get("headers") or []]
    for name, token in (cred.secrets or {}).items():
        group, _, key = name.partition(".")
        value = keyring.decrypt(token)
        if group == "headers":
            config["headers"][int(key)]["value"] = value
        elif isinstance(config.get(group), dict):
            config[group][key] = value
    config["name"], config["vendor"], config["inbound_number"] = cred.name, "custom", cred.inbound_number
    return config


def parse_create(raw: dict[str, Any]) -> CustomCredentialCreate:
    try:
        return CustomCredentialCreate.model_validate(raw)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body",
                   "message": "unknown field" if e["type"] == "extra_forbidden"
                   else str(e["msg"]).removeprefix("Value error, ")} for e in exc.errors()]
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]), errors=errors) from None


def merged(cred: Credential, keyring: KeyRing, update: CustomCredentialUpdate) -> CustomCredentialCreate:
    """The configuration ``update`` leads to, validated as a whole."""
    config = effective(cred, keyring)
    given = update.model_dump(exclude_unset=True)
    for key, value in given.items():
        if key in ("auth", "mtls", "webhook_auth", "inbound_mapping", "feedback_mapping") and isinstance(value, dict):
            base = config.get(key) or {}
            if key in ("auth", "webhook_auth") and value.get("type") not in (None, base.get("type")):
                base = {}  # another scheme: the old scheme's fields and secrets do not carry over
            config[key] = {**base, **{k: v for k, v in value.items()
                                      if not (v in (None, "") and k in (*AUTH_SECRETS, *MTLS_SECRETS))}}
        elif key == "headers" and value is not None:
            old = {h["name"].lower(): h for h in config.get("headers") or []}
            config["headers"] = [{**h, "value": h["value"] if h.get("value") is not None
                                  else (old.get(h["name"].lower()) or {}).get("value")} for h in value]
        else:
            config[key] = value
    data = parse_create(config)
    validate(data)
    return data


def view_fields(cred: Credential) -> dict[str, Any]:
    """The custom part of the credential's API view: settings plus masked secrets."""
    settings = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (cred.settings or {}).items()}
    hints = cred.secret_hints or {}
    for name, hint in hints.items():
        group, _, key = name.partition(".")
        if group == "headers":
            settings["headers"][int(key)] = {**settings["headers"][int(key)], "value": hint}
        elif isinstance(settings.get(group), dict):
            settings[group][key] = hint
    for group in ("auth", "mtls", "webhook_auth"):
        if isinstance(settings.get(group), dict):
            settings[group] = {k: v for k, v in settings[group].items() if v not in (None, {}, [])}
    return settings


# -- the provider --------------------------------------------------------------------------------

_providers: dict[tuple[str, str], CustomProvider] = {}


def provider(cred: Credential, keyring: KeyRing) -> CustomProvider:
    """The provider object for ``cred``, one per credential version per process, so its OAuth2
    token and TLS context are reused across sends."""
    key = (cred.id, cred.updated_at.isoformat() if cred.updated_at else "")
    found = _providers.get(key)
    if found is None:
        config = effective(cred, keyring)
        mtls = config.get("mtls") or None
        found = CustomProvider(CustomProviderSettings(
            provider_url=config["provider_url"].strip(), payload_template=config["payload_template"],
            auth=_auth_settings(config.get("auth") or {}),
            mtls=MtlsSettings(**{k: mtls.get(k) for k in ("client_cert", "client_key", "ca_bundle")}) if mtls else None,
            headers={h["name"]: h["value"] for h in config.get("headers") or [] if h.get("value") is not None},
            response_id_path=config.get("response_id_path"), rate_limit_mps=float(config.get("rate_limit_mps") or 0),
            provider_name=config.get("provider_name"), provider_app_id=config.get("provider_app_id"),
            **({"rcs_unavailable_codes": tuple(config["rcs_unavailable_codes"])}
               if config.get("rcs_unavailable_codes") else {})))
        for old in [k for k in _providers if k[0] == cred.id]:
            del _providers[old]
        _providers[key] = found
    return found
