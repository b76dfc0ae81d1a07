"""The inbound use case: route a message to the sandbox that owns its number, match keywords,
change consent, choose the reply, store the message — once per provider message id.

Writes go through a :class:`GroupCommitter`: concurrent inbound requests are processed one after
the other in a single transaction per batch (one commit, one fsync for many requests), and each
request awaits its batch's commit before answering. Processing in order inside one transaction
also serialises changes to the same number, so "the opt-out confirmation is sent once" holds
under concurrency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from textrelay.domain import keywords as kw
from textrelay.domain.numbers import sender_kind
from textrelay.errors import NotFound
from textrelay.inbound import events
from textrelay.services import consent
from textrelay.services.webhooks import DEFAULT_REVOCATION_REPLY, default_inbound_settings
from textrelay.store.models import ChannelConfiguration, Credential, InboundMessage, Webhook, new_id, utcnow

log = logging.getLogger("textrelay.inbound")

ROUTE_CACHE_SECONDS = 30.0
MAX_BATCH = 512


@dataclass(frozen=True)
class Route:
    """Where an inbound message to one number goes: the owning sandbox and its inbound webhook."""

    sandbox_id: str
    webhook_id: str
    settings: dict[str, Any]
    keywords: kw.KeywordSet


@dataclass
class Inbound:
    """One inbound message, in the service's own terms (no provider field names)."""

    provider_message_id: str
    from_number: str
    to_number: str
    body: str
    media: list[dict[str, str]] = field(default_factory=list)
    # The provider handled the keyword itself (Twilio's OptOutType): record consent, never reply.
    provider_keyword: str | None = None


@dataclass(frozen=True)
class Outcome:
    inbound_id: str
    reply: str | None
    duplicate: bool = False
    category: str | None = None
    consent_change: str | None = None


# --- Routing ---------------------------------------------------------------------------------

_routes: dict[tuple[str, str, str, str], tuple[float, Route]] = {}


def forget_routes() -> None:
    _routes.clear()


def _route_for(hook: Webhook) -> Route:
    settings = {**default_inbound_settings(), **(hook.settings or {})}
    return Route(hook.sandbox_id, hook.id, settings, kw.KeywordSet.build(settings["keywords"]))


def resolve_route(session: Session, vendor: str, credential_id: str, called_webhook_id: str, to: str) -> Route:
    """The inbound webhook that owns ``to`` among the provider account's credentials.

    The same provider account may be registered in several sandboxes, each with its own inbound
    number, and all of them may share one webhook URL; so the webhook called is only the way in.
    Owner, in order: an inbound webhook bound to ``to`` as its sender number; the inbound webhook
    of the credential whose inbound number is ``to`` (the one called, if it qualifies); the
    inbound webhook of a credential whose channel configuration sends from ``to``.
    """
    cred = session.get(Credential, credential_id)
    if cred is None:
        raise NotFound("no such webhook")
    now = time.monotonic()
    account = (Credential.vendor == vendor, Credential.account_key == cred.account_key)
    base = (select(Webhook).join(Credential, Credential.id == Webhook.credential_id)
            .where(Webhook.type == "inbound", *account))
    hooks = list(session.scalars(base.where(Webhook.sender_number == to).limit(1)))
    if not hooks:
        hooks = list(session.scalars(
            base.where(Credential.inbound_number == to, Webhook.sender_number.is_(None))
            .order_by(Webhook.created_at, Webhook.id)))
    if not hooks:
        hooks = list(session.scalars(
            base.join(ChannelConfiguration, ChannelConfiguration.credential_id == Credential.id)
            .where(ChannelConfiguration.sender_number == to, Webhook.sender_number.is_(None))
            .order_by(Webhook.created_at, Webhook.id)))
    if not hooks:
        raise NotFound(f"no sandbox receives messages on {to} for this provider account",
                       errors=[{"field": "To", "message": "not an inbound number of this account"}])
    chosen = next((h for h in hooks if h.id == called_webhook_id), hooks[0])
    route = _route_for(chosen)
    _routes[(vendor, credential_id, called_webhook_id, to)] = (now + ROUTE_CACHE_SECONDS, route)
    return route


def cached_route(vendor: str, credential_id: str, called_webhook_id: str, to: str) -> Route | None:
    """A route resolved in the last few seconds (unknown numbers are never cached)."""
    hit = _routes.get((vendor, credential_id, called_webhook_id, to))
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


# --- Processing ------------------------------------------------------------------------------

def reply_text(route: Route, found: kw.Match, decision: kw.Decision) -> str | None:
    settings = route.settings
    if decision.reply is None:
        return None
    if decision.reply == "default":
        text = settings.get("default_reply")
    elif decision.reply == "revocation_confirm":
        keyword = found.keyword if found.kind in (kw.WHOLE_WORD, kw.NEAR_MISS) else route.keywords.first("opt_out")
        template = settings.get("revocation_reply") or DEFAULT_REVOCATION_REPLY
        text = template.replace("{keyword}", (keyword or "STOP").upper())
    else:
        text = (settings.get("replies") or {}).get(decision.reply)
    return text or None


def process_many(session: Session, items: list[tuple[Route, Inbound]]) -> list[Outcome]:
    """Handle inbound messages in order inside the caller's transaction, with a few bulk
    statements: one lookup of known message ids, one of current consents, then bulk inserts."""
    sids = sorted({m.provider_message_id for _, m in items})
    known: dict[str, Outcome] = {}
    for start in range(0, len(sids), 500):
        for row in session.execute(
                select(InboundMessage.provider_message_id, InboundMessage.id, InboundMessage.reply,
                       InboundMessage.matched_category, InboundMessage.consent_change)
                .where(InboundMessage.provider_message_id.in_(sids[start:start + 500]))):
            known[row[0]] = Outcome(row[1], row[2], duplicate=True, category=row[3], consent_change=row[4])
    current = consent.statuses(session, {(r.sandbox_id, m.from_number) for r, m in items})
    outcomes: list[Outcome] = []
    changes: list[consent.Change] = []
    stored: list[dict[str, Any]] = []
    now = utcnow()
    for route, message in items:
        sid = message.provider_message_id
        if sid in known:
            outcomes.append(known[sid])
            continue
        takes_keywords = sender_kind(message.to_number) != "alphanumeric"
        found = kw.match(message.body, route.keywords) if takes_keywords else kw.NO_MATCH
        key = (route.sandbox_id, message.from_number)
        status = current.get(key)
        change: str | None
        reply: str | None
        if message.provider_keyword is not None:
            # The provider already replied; we only keep our consent record in step.
            change = kw.provider_decision(message.provider_keyword)
            change = None if change == status else change
            reply = None
            detail = f"provider handled keyword {message.provider_keyword.upper()[:20]}"
        else:
            decision = kw.decide(found, status, route.settings.get("revocation_policy", "opt_out"))
            change = decision.consent
            reply = reply_text(route, found, decision)
            detail = f"{found.kind} '{found.keyword}'" if found.category else None
        if change is not None:
            changes.append(consent.Change(route.sandbox_id, message.from_number, change, "keyword",
                                          message.to_number, detail))
            current[key] = change
        row = {"id": new_id(), "sandbox_id": route.sandbox_id, "webhook_id": route.webhook_id,
               "provider_message_id": sid, "from_number": message.from_number, "to_number": message.to_number,
               "body": message.body, "media": message.media, "matched_category": found.category,
               "matched_keyword": found.keyword, "consent_change": change, "reply": reply, "received_at": now}
        stored.append(row)
        outcome = Outcome(row["id"], reply, category=found.category, consent_change=change)
        known[sid] = Outcome(row["id"], reply, duplicate=True, category=found.category, consent_change=change)
        outcomes.append(outcome)
        events.enqueue(session, route.sandbox_id, events.INBOUND_RECEIVED, {
            "id": row["id"], "provider_message_id": sid, "from": message.from_number, "to": message.to_number,
            "body": message.body, "media": message.media, "matched_category": found.category,
            "matched_keyword": found.keyword, "match_kind": found.kind, "consent_change": change,
            "reply": reply, "received_at": now.isoformat()})
    consent.apply_changes(session, changes)
    if stored:
        session.execute(insert(InboundMessage.__table__), stored)
    return outcomes


def process_one(session: Session, route: Route, message: Inbound) -> Outcome:
    """Handle one inbound message inside the caller's transaction."""
    return process_many(session, [(route, message)])[0]


def process_batch(ctx: Any, items: list[tuple[Route, Inbound]]) -> list[Outcome | BaseException]:
    """All items in one transaction; if it fails as a whole (a race with another process on a
    message id, say), each item is redone in its own transaction so one cannot sink the others."""
    try:
        with ctx.db.session() as session:
            return list(process_many(session, items))
    except Exception as exc:
        if len(items) == 1:
            return [exc if not isinstance(exc, IntegrityError) else _retry_duplicate(ctx, *items[0])]
        log.warning("inbound batch of %d failed (%s); redoing one by one", len(items), type(exc).__name__)
    results: list[Outcome | BaseException] = []
    for item in items:
        results.extend(process_batch(ctx, [item]))
    return results


def _retry_duplicate(ctx: Any, route: Route, message: Inbound) -> Outcome | BaseException:
    try:
        with ctx.db.session() as session:
            return process_one(session, route, message)
    except Exception as exc:
        return exc


class GroupCommitter:
    """Batches concurrent requests into shared transactions, run one at a time off the event loop."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.queue: list[tuple[Route, Inbound, asyncio.Future[Outcome]]] = []
        self.running = False
        self.loop = asyncio.get_running_loop()

    async def submit(self, route: Route, message: Inbound) -> Outcome:
        future: asyncio.Future[Outcome] = self.loop.create_future()
        self.queue.append((route, message, future))
        if not self.running:
            self.running = True
            self.loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.queue:
                batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
                try:
                    results = await asyncio.to_thread(process_batch, self.ctx, [(r, m) for r, m, _ in batch])
                except BaseException as exc:  # hand the failure to every waiter, never leave one hanging
                    results = [exc] * len(batch)
                for (_, _, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.running = False


_committers: dict[int, GroupCommitter] = {}


def committer(ctx: Any) -> GroupCommitter:
    found = _committers.get(id(ctx))
    if found is None or found.ctx is not ctx or found.loop is not asyncio.get_running_loop():
        found = _committers[id(ctx)] = GroupCommitter(ctx)
    return found


async def receive(ctx: Any, route: Route, message: Inbound) -> Outcome:
    return await committer(ctx).submit(route, message)
