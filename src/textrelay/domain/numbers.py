"""Phone numbers, short codes and alphanumeric sender ids."""

from __future__ import annotations

import re

import phonenumbers

from textrelay.errors import ValidationFailed

_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def normalize_e164(value: str, field: str, *, default_region: str | None = None) -> str:
    """The number in E.164 form, or a 422 naming ``field``.

    Numbers must carry their country code (``+...``) unless ``default_region`` is given.
    """
    raw = (value or "").strip()
    if not raw:
        raise ValidationFailed.field(field, "a phone number is required")
    if len(raw) > 32:
        raise ValidationFailed.field(field, "is too long to be a phone number")
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise ValidationFailed.field(
            field, f"'{raw}' is not a phone number; use E.164 with the country code, e.g. +14155550100"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed.field(field, f"'{raw}' is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_inbound_number(value: str, field: str = "inbound_number") -> str:
    """An inbound number: E.164 or a short code."""
    raw = (value or "").strip()
    if _SHORT_CODE.match(raw):
        return raw
    return normalize_e164(raw, field)


def sender_kind(value: str) -> str:
    """``e164``, ``short_code`` or ``alphanumeric``."""
    if _SHORT_CODE.match(value):
        return "short_code"
    if value.startswith("+"):
        return "e164"
    return "alphanumeric"


def normalize_sender(value: str, field: str = "sender_number") -> str:
    """A sender: E.164 number, short code, or alphanumeric sender id of at most 11 characters."""
    raw = (value or "").strip()
    if _SHORT_CODE.match(raw):
        return raw
    if raw.startswith("+") or raw[:1].isdigit():
        return normalize_e164(raw if raw.startswith("+") else "+" + raw, field)
    if _ALPHANUMERIC.match(raw):
        return raw
    raise ValidationFailed.field(
        field,
        "must be an E.164 number, a short code, or an alphanumeric sender id "
        "(1-11 letters, digits or spaces, at least one letter)",
    )
