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

from sqlalchemy import case, delete, select
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
GATHER_SECONDS = 0.002
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
        sql = outbox.Driver(session)
        fresh = _drop_seen_tokens(sql, receipts)
        unmatched = _apply(sql, fresh)
        sql.executemany(
            "INSERT INTO unmatched_receipts (sandbox_id, provider_message_id, status, error_code, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r.sandbox_id, r.provider_message_id, r.status, r.error_code, sql.time(r.at)) for r in unmatched])
    if unmatched:
        RECEIPTS.labels("twilio", "unmatched").inc(len(unmatched))
        log.info("%d receipt(s) for provider ids not (yet) on any message, kept aside", len(unmatched))
    return len(fresh)


def _drop_seen_tokens(sql: outbox.Driver, receipts: Sequence[Receipt]) -> list[Receipt]:
    tokens = list({r.token for r in receipts if r.token})
    seen = {row[0] for row in sql.execute(
        f"SELECT token FROM receipt_tokens WHERE token IN ({sql.marks(len(tokens))})", tokens)} if tokens else set()
    fresh: list[Receipt] = []
    new: list[tuple[str, Any]] = []
    for r in receipts:
        if r.token:
            if r.token in seen:
                continue
            seen.add(r.token)
            new.append((r.token, sql.time(r.at)))
        fresh.append(r)
    # Another process may have stored the same token meanwhile: that copy wins, this one is a no-op.
    sql.executemany("INSERT INTO receipt_tokens (token, received_at) VALUES (?, ?) ON CONFLICT DO NOTHING", new)
    if len(fresh) < len(receipts):
        RECEIPTS.labels("twilio", "duplicate").inc(len(receipts) - len(fresh))
    return fresh


_RANK_SQL = "CASE status " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in RANK.items()) + " ELSE 9 END"


def _apply(sql: outbox.Driver, receipts: Sequence[Receipt]) -> list[Receipt]:
    """Apply receipts to their messages; returns those whose provider id matches no message."""
    if not receipts:
        return []
    sids = list({r.provider_message_id for r in receipts})
    found = {row[3]: row for row in sql.execute(
        f"SELECT id, sandbox_id, status, provider_message_id FROM messages "
        f"WHERE provider_message_id IN ({sql.marks(len(sids))})", sids)}
    ids = [row[0] for row in found.values()]
    history = {(row[0], row[1]) for row in sql.execute(
        f"SELECT message_id, status FROM message_events WHERE source = 'provider' "
        f"AND message_id IN ({sql.marks(len(ids))})", ids)} if ids else set()
    current = {row[0]: row[2] for row in found.values()}
    changes: dict[str, list[Any]] = {}
    new_events: list[tuple[Any, ...]] = []
    unmatched: list[Receipt] = []
    for r in receipts:
        row = found.get(r.provider_message_id)
        if row is None or row[1] != r.sandbox_id:
            unmatched.append(r)
            continue
        message_id = row[0]
        if (message_id, r.status) in history:
            continue
        history.add((message_id, r.status))
        detail = f"provider status {r.raw_status or r.status}"
        if r.error_code:
            detail += f", error {r.error_code}: {r.error_message}"
        at = sql.time(r.at)
        new_events.append((message_id, r.status, "provider", detail, r.error_code, at))
        if moves_forward(current[message_id], r.status):
            current[message_id] = r.status
            previous = changes.get(message_id)
            error = (r.error_code, r.error_message) if r.error_code else (previous[2:4] if previous else (None, None))
            changes[message_id] = [r.status, at if r.status in FINAL else None, *error, message_id, RANK[r.status]]
    if changes:
        stamp = sql.time(utcnow())
        with_error = [(s, f, c, m, stamp, i, k) for s, f, c, m, i, k in changes.values() if c]
        without = [(s, f, stamp, i, k) for s, f, c, _, i, k in changes.values() if not c]
        # The rank guard keeps a status from moving backwards even if another process got there first.
        sql.executemany(f"UPDATE messages SET status = ?, final_at = ?, error_code = ?, error_message = ?, "
                        f"updated_at = ? WHERE id = ? AND {_RANK_SQL} < ?", with_error)
        sql.executemany(f"UPDATE messages SET status = ?, final_at = ?, updated_at = ? "
                        f"WHERE id = ? AND {_RANK_SQL} < ?", without)
    sql.executemany("INSERT INTO message_events (message_id, status, source, detail, error_code, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", new_events)
    RECEIPTS.labels("twilio", "applied").inc(len(new_events))
    return unmatched


def apply_unmatched(ctx: Context) -> int:
    """Apply receipts kept aside whose provider id now belongs to a message; forget old ones."""
    with ctx.db.session() as session:
        kept = list(session.execute(select(unmatched_table).order_by(unmatched_table.c.id).limit(MAX_BATCH)))
        if not kept:
            return 0
        sql = outbox.Driver(session)
        sids = list({r.provider_message_id for r in kept})
        known = {row[0] for row in sql.execute(
            f"SELECT provider_message_id FROM messages WHERE provider_message_id IN ({sql.marks(len(sids))})", sids)}
        rows = [r for r in kept if r.provider_message_id in known]
        if rows:
            _apply(sql, [Receipt(r.sandbox_id, r.provider_message_id, r.status, None, r.error_code,
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
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                # Let requests already read join this batch (the store may run in this very thread).
                await asyncio.sleep(GATHER_SECONDS)
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                try:
                    await outbox.run(self.ctx, apply, [r for r, _ in batch])
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
