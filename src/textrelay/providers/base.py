"""The contract every provider module fulfils, in the service's own terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the provider took the message; ``provider_message_id`` is set
    RETRY = "retry"  # not taken, safe to send again later (429, 5xx, no connection made)
    FAILED = "failed"  # refused for good (4xx with a provider code)
    UNKNOWN = "unknown"  # sent, but no usable answer: reconcile before any resend


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    status: str | None = None  # our status word, when the answer carries one
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    opt_out: bool = False  # the provider says the recipient opted out (Twilio 21610)
    fallback: bool = False  # the recipient cannot take this channel (no RCS): send the SMS fallback


@dataclass(frozen=True)
class OutboundMessage:
    """What a provider needs to send one message."""

    message_id: str
    to: str
    sender: str | None
    body: str
    media_urls: list[str] = field(default_factory=list)
    status_callback: str | None = None
    validity_seconds: int | None = None
    content: dict[str, Any] | None = None


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery receipt, parsed."""

    provider_message_id: str
    status: str
    error_code: str | None = None
    idempotency_token: str | None = None
    raw_status: str | None = None


@dataclass
class VerifyReport:
    ok: bool
    checks: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail})
        self.ok = self.ok and ok
