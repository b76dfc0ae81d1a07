"""Retry policy (SPEC §5): what happens to a message after one send attempt. Pure: no I/O.

- accepted → ``sent``;
- refused for good (4xx with a provider code) → ``failed`` at once with the provider's code;
- retryable (429, 5xx, no connection made) → ``queued`` again after exponential backoff with full
  jitter (``Retry-After`` wins when longer), until the validity period ends, then ``failed``;
- outcome unknown (no answer after the request went out, 2xx without an id) → ``queued`` with
  ``outcome_unknown`` set: the next claim looks the message up at the provider before any resend.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from textrelay.providers.base import Outcome, SendResult

BASE_DELAY = 1.0
MAX_DELAY = 300.0
# A provider's message list may lag its create: give it a moment before looking a message up.
RECONCILE_DELAY = 1.0
# How long past the validity period an unknown outcome is still looked up before giving up.
RECONCILE_GRACE = timedelta(hours=1)
EXPIRED = "validity period expired"


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base·2^(attempt-1))]."""
    ceiling = min(MAX_DELAY, BASE_DELAY * 2 ** max(0, min(attempt - 1, 30)))
    return (rng or random).uniform(0.0, ceiling)


def retry_delay(attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    delay = backoff(attempt, rng)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay


@dataclass(slots=True)
class Decision:
    """The message's state after an attempt, and the history line that explains it."""

    status: str  # sent | queued | failed
    detail: str
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    next_attempt_at: datetime | None = None
    outcome_unknown: bool = False
    opt_out: bool = False
    fallback: bool = False  # the recipient cannot take RCS: queue the SMS fallback


def after_send(result: SendResult, attempt: int, now: datetime, valid_until: datetime,
               rng: random.Random | None = None) -> Decision:
    """Decide what a send attempt (number ``attempt``, from 1) leads to."""
    if result.outcome is Outcome.ACCEPTED:
        return Decision("sent", f"attempt {attempt}: accepted by the provider as {result.provider_message_id}",
                        provider_message_id=result.provider_message_id)
    if result.outcome is Outcome.FAILED:
        return Decision("failed", f"attempt {attempt}: refused by the provider: {result.error_message}",
                        error_code=result.error_code, error_message=result.error_message, opt_out=result.opt_out,
                        fallback=result.fallback)
    if result.outcome is Outcome.UNKNOWN:
        return Decision("queued", f"attempt {attempt}: outcome unknown ({result.error_message}); "
                        "the provider will be asked before any resend",
                        error_code=result.error_code, error_message=result.error_message,
                        next_attempt_at=now + timedelta(seconds=RECONCILE_DELAY), outcome_unknown=True)
    delay = retry_delay(attempt, result.retry_after, rng)
    at = now + timedelta(seconds=delay)
    if at >= valid_until:
        message = f"{EXPIRED} after {attempt} attempt(s); last error: {result.error_message}"
        return Decision("failed", f"attempt {attempt}: {result.error_message}; {EXPIRED}",
                        error_code=result.error_code, error_message=message)
    return Decision("queued", f"attempt {attempt}: {result.error_message}; retry in {delay:.1f}s",
                    error_code=result.error_code, error_message=result.error_message, next_attempt_at=at)


def after_failed_lookup(result: SendResult, lookups: int, now: datetime, valid_until: datetime,
                        rng: random.Random | None = None) -> Decision:
    """The provider could not be asked whether an unknown-outcome message exists: ask again later."""
    delay = retry_delay(lookups, result.retry_after, rng)
    at = now + timedelta(seconds=delay)
    if at >= valid_until + RECONCILE_GRACE:
        message = f"outcome unknown: the provider could not be asked ({result.error_message})"
        return Decision("failed", f"reconciliation: {result.error_message}; giving up",
                        error_code="outcome_unknown", error_message=message)
    return Decision("queued", f"reconciliation: {result.error_message}; will ask again in {delay:.1f}s",
                    error_code=result.error_code, error_message=result.error_message, next_attempt_at=at,
                    outcome_unknown=True)
