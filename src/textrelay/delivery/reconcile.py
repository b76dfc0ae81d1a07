"""Reconciliation: a message whose send had an unknown outcome is looked up at the provider
before anything else happens to it.

Found → it is ``sent`` with the provider's id (never sent twice). Certainly not found → it may be
sent again. The lookup itself failed → ask again later; the message keeps ``outcome_unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import aiohttp

from textrelay.delivery import outbox
from textrelay.providers.base import OutboundMessage, Outcome, SendResult
from textrelay.services.context import Context

# Our clock and the provider's may disagree a little.
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class Lookup:
    provider_message_id: str | None = None  # found: the provider has it
    failure: SendResult | None = None  # the lookup could not be made
    unsupported: bool = False  # the provider offers no lookup: the outcome stays unknown

    @property
    def found(self) -> bool:
        return self.provider_message_id is not None


async def look_up(ctx: Context, http: aiohttp.ClientSession, job: outbox.Job, message: OutboundMessage,
                  timeout: float) -> Lookup:
    """Ask the provider whether it already has ``job``'s message."""
    account = job.route.account if job.route else None
    if account is None:
        return Lookup(failure=SendResult(Outcome.RETRY, error_code="no_route",
                                         error_message="the message's credential cannot be used to look it up"))
    if not hasattr(account, "find_candidates"):
        return Lookup(unsupported=True)
    found = await account.find_candidates(http, message, timeout, not_before=job.created_at - CLOCK_SKEW)
    if isinstance(found, SendResult):
        return Lookup(failure=found)
    if not found:
        return Lookup()
    sids = [item.get("sid") for item in found if item.get("sid")]
    # The same text to the same number may be another message of ours: skip sids we already hold.
    taken = await outbox.run(ctx, outbox.known_provider_ids, sids, job.id)
    for sid in sids:
        if sid not in taken:
            return Lookup(provider_message_id=sid)
    return Lookup()
