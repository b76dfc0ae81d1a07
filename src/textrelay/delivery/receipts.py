"""Delivery receipts: provider status callbacks applied to our messages.

Rules (SPEC §3, §5): duplicates change nothing (same provider idempotency token, or the same
provider id and status already in the message's history); a status never moves backwards
(queued < sending < sent < delivered | undelivered | failed | canceled < read), though a late
receipt is still kept in the history; error codes are recorded. A receipt for a provider id we do
not know (yet: the worker may not have written it) is kept aside and applied once it appears.

Throughput: each request hands its receipt to one writer task per process and waits; the writer
commits whatever has gathered in one transaction (group commit), then answers them all. So a
200 means the receipt is durable, and thousands per second cost a handful of transactions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, insert, select, update
from sqlalchemy.orm import Session
from starlette.responses import Response

from textrelay.delivery import outbox
from textrelay.metrics import RECEIPTS
from textrelay.providers import twilio
from textrelay.services.context import Context
from textrelay.store.models import MessageEvent, ReceiptToken, UnmatchedReceipt, utcnow

log = logging.getLogger("textrelay.receipts")

RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3, "canceled": 3,
        "read": 4}
FINAL = {"delivered", "undelivered", "failed", "canceled", "read"}
MAX_BATCH = 2000
UNMATCHED_KEEP = timedelta(days=2)

messages = outbox.messages
events = MessageEvent.__table__
tokens_table = ReceiptToken.__table__
unmatched_table = UnmatchedReceipt.__table__
_rank_of_current = case(RANK, value=messages.c.status, else_=9)


@dataclass(frozen=True, slots=True)
class Receipt:
    sandbox_id: str
    provider_message_id: str
    status: str  # ours
    raw_status: str | None
    error_code: str | None
    error_message: str | None
    token: str | None
    at: datetime


def moves_forward(current: str, new: str) -> bool:
    """Whether a receipt saying ``new`` may replace ``current`` as the message's status."""
    return RANK.get(new, -1) > RANK.get(current, 9)


# ---------------------------------------------------------------------------------------------
# Applying receipts (sync, in the store's thread)

def apply(ctx: Context, receipts: Sequence[Receipt]) -> int:
    """Store a batch of receipts in one transaction; returns how many were not duplicates."""
    with ctx.db.session() as session:
        fresh = _drop_seen_tokens(session, receipts)
        unmatched = _apply(session, fresh)
        if unmatched:
            session.execute(insert(unmatched_table), [
                {"sandbox_id": r.sandbox_id, "provider_message_id": r.provider_message_id, "status": r.status,
                 "error_code": r.error_code, "received_at": r.at} for r in unmatched])
    if unmatched:
        RECEIPTS.labels("twilio", "unmatched").inc(len(unmatched))
        log.info("%d receipt(s) for provider ids not (yet) on any message, kept aside", len(unmatched))
    return len(fresh)


def _drop_seen_tokens(session: Session, receipts: Sequence[Receipt]) -> list[Receipt]:
    tokens = {r.token for r in receipts if r.token}
    seen = set(session.scalars(select(tokens_table.c.token).where(tokens_table.c.token.in_(tokens)))) \
        if tokens else set()
    fresh: list[Receipt] = []
    new: list[dict[str, Any]] = []
    for r in receipts:
        if r.token:
            if r.token in seen:
                continue
            seen.add(r.token)
            new.append({"token": r.token, "received_at": r.at})
        fresh.append(r)
    if new:
        dialect = session.bind.dialect.name  # type: ignore[union-attr]
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            session.execute(pg_insert(tokens_table).on_conflict_do_nothing(), new)
        else:
            session.execute(insert(tokens_table).prefix_with("OR IGNORE"), new)
    if len(fresh) < len(receipts):
        RECEIPTS.labels("twilio", "duplicate").inc(len(receipts) - len(fresh))
    return fresh


def _apply(session: Session, receipts: Sequence[Receipt]) -> list[Receipt]:
    """Apply receipts to their messages; returns those whose provider id matches no message."""
    if not receipts:
        return []
    sids = {r.provider_message_id for r in receipts}
    found = {row.provider_message_id: row for row in session.execute(
        select(messages.c.id, messages.c.sandbox_id, messages.c.status, messages.c.provider_message_id)
        .where(messages.c.provider_message_id.in_(sids)))}
    ids = [row.id for row in found.values()]
    history = set(session.execute(select(events.c.message_id, events.c.status).where(
        events.c.message_id.in_(ids), events.c.source == "provider")).tuples()) if ids else set()
    current = {row.id: row.status for row in found.values()}
    changes: dict[str, dict[str, Any]] = {}
    new_events: list[dict[str, Any]] = []
    unmatched: list[Receipt] = []
    for r in receipts:
        row = found.get(r.provider_message_id)
        if row is None or row.sandbox_id != r.sandbox_id:
            unmatched.append(r)
            continue
        if (row.id, r.status) in history:
            continue
        history.add((row.id, r.status))
        detail = f"provider status {r.raw_status or r.status}"
        if r.error_code:
            detail += f", error {r.error_code}: {r.error_message}"
        new_events.append({"message_id": row.id, "status": r.status, "source": "provider", "detail": detail,
                           "error_code": r.error_code, "at": r.at})
        if moves_forward(current[row.id], r.status):
            current[row.id] = r.status
            change = changes.setdefault(row.id, {"b_id": row.id, "b_error_code": None, "b_error_message": None})
            change.update({"b_status": r.status, "b_rank": RANK[r.status],
                           "b_final_at": r.at if r.status in FINAL else None})
            if r.error_code:
                change.update({"b_error_code": r.error_code, "b_error_message": r.error_message})
    if changes:
        now = utcnow()
        guard = (messages.c.id == bindparam("b_id"), _rank_of_current < bindparam("b_rank"))
        with_error = [c for c in changes.values() if c["b_error_code"]]
        without = [c for c in changes.values() if not c["b_error_code"]]
        if with_error:
            session.execute(update(messages).where(*guard).values(
                status=bindparam("b_status"), final_at=bindparam("b_final_at"),
                error_code=bindparam("b_error_code"), error_message=bindparam("b_error_message"),
                updated_at=now), with_error)
        if without:
            session.execute(update(messages).where(*guard).values(
                status=bindparam("b_status"), final_at=bindparam("b_final_at"), updated_at=now),
                [{k: v for k, v in c.items() if k not in ("b_error_code", "b_error_message")} for c in without])
    if new_events:
        session.execute(insert(events), new_events)
    RECEIPTS.labels("twilio", "applied").inc(len(new_events))
    return unmatched


def apply_unmatched(ctx: Context) -> int:
    """Apply receipts kept aside whose provider id now belongs to a message; forget old ones."""
    with ctx.db.session() as session:
        rows = list(session.execute(select(unmatched_table).where(
            unmatched_table.c.provider_message_id.in_(
                select(messages.c.provider_message_id).where(
                    messages.c.provider_message_id.in_(select(unmatched_table.c.provider_message_id)))))
            .order_by(unmatched_table.c.id).limit(MAX_BATCH)))
        if rows:
            _apply(session, [Receipt(r.sandbox_id, r.provider_message_id, r.status, None, r.error_code,
                                     twilio.describe_error(r.error_code) if r.error_code else None, None,
                                     r.received_at) for r in rows])
            session.execute(delete(unmatched_table).where(unmatched_table.c.id.in_([r.id for r in rows])))
        session.execute(delete(unmatched_table).where(unmatched_table.c.received_at < utcnow() - UNMATCHED_KEEP))
        return len(rows)


# ---------------------------------------------------------------------------------------------
# Group commit

class ReceiptWriter:
    """One per process and event loop: gathers receipts and commits them together."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.pending: list[tuple[Receipt, asyncio.Future[None]]] = []
        self.wake = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name="textrelay-receipts")

    async def submit(self, receipt: Receipt) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((receipt, future))
        self.wake.set()
        await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pool = outbox.executor(self.ctx.db)
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                try:
                    await loop.run_in_executor(pool, apply, self.ctx, [r for r, _ in batch])
                except Exception as exc:
                    log.exception("storing %d receipt(s) failed", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)


_writers: dict[tuple[int, int], ReceiptWriter] = {}


def writer(ctx: Context) -> ReceiptWriter:
    key = (id(ctx), id(asyncio.get_running_loop()))
    found = _writers.get(key)
    if found is None or found.task.done():
        found = _writers[key] = ReceiptWriter(ctx)
    return found


# ---------------------------------------------------------------------------------------------
# Twilio

async def twilio_status(ctx: Context, info: Any, form: dict[str, str], idempotency_token: str | None) -> Response:
    """A Twilio status callback (its signature already checked): store it, then answer 200."""
    update_ = twilio.parse_status_callback(form, idempotency_token)
    if update_ is None:
        RECEIPTS.labels("twilio", "ignored").inc()
        log.info("status callback without a message id or a known status ignored: %s",
                 form.get("MessageStatus") or form.get("SmsStatus"))
        return Response(status_code=200)
    receipt = Receipt(
        sandbox_id=info.sandbox_id, provider_message_id=update_.provider_message_id, status=update_.status,
        raw_status=update_.raw_status, error_code=update_.error_code,
        error_message=twilio.describe_error(update_.error_code) if update_.error_code else None,
        token=(idempotency_token or None) and idempotency_token[:128], at=utcnow())
    try:
        await writer(ctx).submit(receipt)
    except Exception:
        # Not stored: a non-2xx answer makes Twilio try again.
        return Response(status_code=503, content=b"receipt not stored, try again", media_type="text/plain")
    return Response(status_code=200)
