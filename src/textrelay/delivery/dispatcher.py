"""Dispatching one claimed message: reconcile it if its last send had an unknown outcome, else
send it, and decide what follows (``retry``)."""

from __future__ import annotations

import logging
import random

import aiohttp

from textrelay.delivery import custom_route, reconcile, retry
from textrelay.delivery.outbox import Job, Outcome
from textrelay.delivery.retry import Decision
from textrelay.providers.base import OutboundMessage, SendResult
from textrelay.providers.base import Outcome as SendOutcome
from textrelay.services.context import Context
from textrelay.store.models import utcnow

log = logging.getLogger("textrelay.delivery")
_rng = random.Random()


def outbound(job: Job) -> OutboundMessage:
    route = job.route
    remaining = int((job.valid_until - utcnow()).total_seconds())
    return OutboundMessage(message_id=job.id, to=job.to, sender=route.sender if route else None, body=job.body,
                           media_urls=job.media_urls, status_callback=route.status_callback if route else None,
                           validity_seconds=max(1, min(36000, remaining)), content=job.content)


async def dispatch(ctx: Context, http: aiohttp.ClientSession, job: Job, timeout: float) -> Outcome:
    """Reconcile or send ``job``; never raises."""
    try:
        return await _dispatch(ctx, http, job, timeout)
    except Exception as exc:  # a bug must not lose the message: treat the outcome as unknown
        log.exception("dispatching message %s failed", job.id)
        result = SendResult(SendOutcome.UNKNOWN, error_code="internal",
                            error_message=f"internal error while sending ({type(exc).__name__})")
        return Outcome(job, retry.after_send(result, job.attempts + 1, utcnow(), job.valid_until), True, utcnow())


async def _dispatch(ctx: Context, http: aiohttp.ClientSession, job: Job, timeout: float) -> Outcome:
    message = outbound(job)
    if job.outcome_unknown:
        lookup = await reconcile.look_up(ctx, http, job, message, timeout)
        now = utcnow()
        if lookup.found:
            return Outcome(job, Decision("sent", f"reconciliation: found at the provider as "
                                                 f"{lookup.provider_message_id}; not sent again",
                                         provider_message_id=lookup.provider_message_id), False, now)
        if lookup.unsupported:
            return Outcome(job, custom_route.await_feedback(job, now, "reconciliation"), False, now)
        if lookup.failure is not None:
            return Outcome(job, retry.after_failed_lookup(lookup.failure, job.attempts + 1, now, job.valid_until,
                                                          _rng), False, now)
        if job.valid_until <= now:
            return Outcome(job, Decision("failed", f"reconciliation: not at the provider; {retry.EXPIRED}",
                                         error_code="expired", error_message=retry.EXPIRED), False, now)
    if job.route is None or job.route.account is None:
        problem = (job.route.problem if job.route else None) or "no way to send this message"
        return Outcome(job, Decision("failed", problem, error_code="no_route", error_message=problem), False,
                       utcnow())
    result = await job.route.account.send(http, message, timeout=timeout)
    now = utcnow()
    if result.outcome is SendOutcome.UNKNOWN and not hasattr(job.route.account, "find_candidates"):
        # No lookup to reconcile with: never resend; the provider's feedback settles it.
        return Outcome(job, custom_route.await_feedback(job, now, f"attempt {job.attempts + 1}",
                                                        result.error_message), True, now)
    return Outcome(job, retry.after_send(result, job.attempts + 1, now, job.valid_until, _rng), True, now)
