"""Checks a Create Message request the way Twilio does, magic test numbers included.

Order of checks (first failure wins): ``To`` present (21604), a sender (21603), the Messaging
Service (21705 bad pattern, 21701 not this account's), content (21602), parameter types
(20001/21624/21655), body length (21617), media count (21623), ``StatusCallback`` (21609),
scheduling (35118/35111/35114), ``To`` (21211, then the magic ``To`` numbers), ``From`` (21212,
the magic ``From`` numbers, 21606), and the account's opt-outs (21610).

Sender ownership (21606): when an account has incoming numbers or Messaging Service senders
registered, a phone-number ``From`` must be one of them; an account with none registered accepts
any valid ``From`` so that a bare ``accounts=[(sid, token)]`` simulator is usable at once.
``+15005550006`` is always accepted, as with Twilio's test credentials.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import phonenumbers

from textrelay.domain.segments import count_segments
from textrelay.simulator.state import Account, MessagingService
from textrelay.simulator.twilio.errors import TwilioError

__all__ = ["CREATE_PARAMETERS", "MAGIC_FROM", "MAGIC_TO", "ValidatedMessage", "validate_create"]

# The properties of ``CreateMessageRequest`` in twilio_api_v2010.json; Twilio ignores any other.
CREATE_PARAMETERS = frozenset({
    "To", "StatusCallback", "ApplicationSid", "MaxPrice", "ProvideFeedback", "Attempt",
    "ValidityPeriod", "ForceDelivery", "ContentRetention", "AddressRetention", "SmartEncoded",
    "PersistentAction", "TrafficType", "ShortenUrls", "ScheduleType", "SendAt", "SendAsMms",
    "ContentVariables", "RiskCheck", "From", "FallbackFrom", "MessagingServiceSid", "Body",
    "MediaUrl", "ContentSid",
})

_BOOLEANS = ("ProvideFeedback", "ForceDelivery", "SmartEncoded", "ShortenUrls", "SendAsMms")
_INTEGERS = ("Attempt",)
_ENUMS = {
    "ContentRetention": ("retain", "discard"),
    "AddressRetention": ("retain", "obfuscate"),
    "TrafficType": ("free",),
    "ScheduleType": ("fixed",),
    "RiskCheck": ("enable", "disable"),
}

# Twilio's test-credential numbers (twilio.md section 10).
MAGIC_FROM: dict[str, int | None] = {
    "+15005550006": None,
    "+15005550001": 21212,
    "+15005550007": 21606,
    "+15005550008": 21611,
}
MAGIC_FROM_PREFIX = "+1500555000"
MAGIC_TO: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}

MAX_BODY = 1600
MAX_MEDIA = 10
MAX_CALLBACK_URL = 4000
_MG = re.compile(r"^MG[0-9a-fA-F]{32}$")
_HX = re.compile(r"^HX[0-9a-fA-F]{32}$")
_AP = re.compile(r"^AP[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_CHANNELS = ("whatsapp:", "rcs:", "messenger:")


@dataclass(slots=True)
class ValidatedMessage:
    to: str
    from_: str
    """The sender: the given ``From`` or the one the Messaging Service will pick."""
    sender_given: bool
    body: str
    media_urls: list[str]
    messaging_service_sid: str | None
    status_callback: str | None
    num_segments: int
    scheduled: bool = False
    unknown_params: list[str] = field(default_factory=list)


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def valid_phone_number(value: str) -> bool:
    """E.164 and a number phonenumbers considers valid (so 555-01xx fiction is refused, as Twilio does)."""
    if not _E164.match(value):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value))
    except phonenumbers.NumberParseException:
        return False


def _strip_channel(address: str) -> tuple[str, str]:
    for prefix in _CHANNELS:
        if address.startswith(prefix):
            return prefix, address[len(prefix):]
    return "", address


def _mask(number: str) -> str:
    return number[:-4] + "XXXX" if len(number) > 4 else number


def valid_callback_url(url: str) -> bool:
    if len(url) > MAX_CALLBACK_URL:
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme in ("http", "https") and bool(host) and "_" not in host and " " not in url


def _check_types(params: dict[str, list[str]]) -> None:
    for name in _BOOLEANS:
        value = _one(params, name)
        if value is not None and value.lower() not in ("true", "false"):
            raise TwilioError(20001, detail=f"Invalid value '{value}' for {name}: must be true or false")
    for name in _INTEGERS:
        value = _one(params, name)
        if value is not None and not re.fullmatch(r"-?\d+", value):
            raise TwilioError(20001, detail=f"Invalid value '{value}' for {name}: must be an integer")
    for name, allowed in _ENUMS.items():
        value = _one(params, name)
        if value is not None and value not in allowed:
            raise TwilioError(20001, detail=f"Invalid value '{value}' for {name}: must be one of {list(allowed)}")
    max_price = _one(params, "MaxPrice")
    if max_price is not None:
        try:
            float(max_price)
        except ValueError:
            raise TwilioError(20001, detail=f"Invalid value '{max_price}' for MaxPrice") from None
    application = _one(params, "ApplicationSid")
    if application is not None and not _AP.match(application):
        raise TwilioError(20001, detail=f"Invalid value '{application}' for ApplicationSid")
    validity = _one(params, "ValidityPeriod")
    if validity is not None and (not validity.isdigit() or not 1 <= int(validity) <= 36000):
        raise TwilioError(21624)
    content_sid = _one(params, "ContentSid")
    if content_sid is not None and not _HX.match(content_sid):
        raise TwilioError(21655)


def _check_schedule(params: dict[str, list[str]], service_sid: str | None) -> bool:
    if _one(params, "ScheduleType") is None:
        return False
    if service_sid is None:
        raise TwilioError(35118)
    send_at = _one(params, "SendAt")
    if not send_at:
        raise TwilioError(35111)
    try:
        moment = datetime.fromisoformat(send_at.replace("Z", "+00:00"))
    except ValueError:
        raise TwilioError(35114) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ahead = moment - datetime.now(UTC)
    if not timedelta(seconds=300) <= ahead <= timedelta(days=35):
        raise TwilioError(35114)
    return True


def validate_create(account: Account, params: dict[str, list[str]]) -> ValidatedMessage:
    """Accept or refuse a Create Message request; raises :class:`TwilioError` on refusal."""
    to = _one(params, "To")
    if not to:
        raise TwilioError(21604)
    from_ = _one(params, "From") or None
    service_sid = _one(params, "MessagingServiceSid") or None
    if from_ and from_.startswith("MG") and service_sid is None:
        service_sid, from_ = from_, None  # ``From`` may carry a Messaging Service SID
    if not from_ and not service_sid:
        raise TwilioError(21603)
    service = None
    if service_sid is not None:
        if not _MG.match(service_sid):
            raise TwilioError(21705, value=service_sid)
        service = account.messaging_services.get(service_sid)
        if service is None:
            raise TwilioError(21701, value=service_sid)

    body = _one(params, "Body")
    media_urls = params.get("MediaUrl", [])
    content_sid = _one(params, "ContentSid")
    if not body and not media_urls and not content_sid:
        raise TwilioError(21602)
    _check_types(params)
    body = body or ""
    if len(body) > MAX_BODY:
        raise TwilioError(21617)
    if len(media_urls) > MAX_MEDIA:
        raise TwilioError(21623)
    status_callback = _one(params, "StatusCallback") or None
    if status_callback is not None and not valid_callback_url(status_callback):
        raise TwilioError(21609, value=status_callback)
    scheduled = _check_schedule(params, service_sid)

    channel, to_number = _strip_channel(to)
    if not valid_phone_number(to_number):
        raise TwilioError(21211, masked=_mask(to))
    if to_number in MAGIC_TO:
        code = MAGIC_TO[to_number]
        raise TwilioError(code, value=to, masked=_mask(to))

    sender_given = bool(from_)
    if from_:
        _check_from(account, from_, service)
    elif service is not None:
        from_ = service.phone_numbers[0] if service.phone_numbers else _default_sender(account)
        if channel:
            from_ = channel + _strip_channel(from_)[1]

    if to_number in account.opted_out:
        raise TwilioError(21610)

    if media_urls:
        segments = 1  # an MMS is one message whatever the body's length
    else:
        segments = count_segments(body).segments or 1
    return ValidatedMessage(
        to=to,
        from_=from_,
        sender_given=sender_given,
        body=body,
        media_urls=list(media_urls),
        messaging_service_sid=service_sid,
        status_callback=status_callback,
        num_segments=segments,
        scheduled=scheduled,
        unknown_params=sorted(set(params) - CREATE_PARAMETERS),
    )


def _default_sender(account: Account) -> str:
    return next(iter(account.incoming_numbers), "+15005550006")


def _check_from(account: Account, from_: str, service: MessagingService | None) -> None:
    _, number = _strip_channel(from_)
    if number in MAGIC_FROM:
        code = MAGIC_FROM[number]
        if code is not None:
            raise TwilioError(code, value=from_)
        return
    if number.startswith(MAGIC_FROM_PREFIX) and len(number) == len("+15005550006"):
        raise TwilioError(21606, value=from_)
    is_phone = _E164.match(number) is not None
    if is_phone:
        if not valid_phone_number(number):
            raise TwilioError(21212, value=from_)
    elif not (_SHORT_CODE.match(number) or _ALPHANUMERIC.match(number)):
        raise TwilioError(21212, value=from_)
    if not (is_phone or _SHORT_CODE.match(number)):
        return
    if service is not None and service.phone_numbers and number not in service.phone_numbers:
        raise TwilioError(21606, value=from_)
    if account.has_senders() and not account.owns_sender(number):
        raise TwilioError(21606, value=from_)
