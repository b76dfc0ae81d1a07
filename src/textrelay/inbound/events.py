"""Events out: inbound messages and consent changes forwarded to a URL the admin sets.

Durable: an event is written to the ``event_deliveries`` outbox in the same transaction as the
change it reports, and a dispatcher (one asyncio task in each ``serve`` process) posts it, signed,
retrying with exponential backoff and jitter until the receiver answers 2xx or the attempts run
out. A lease on each claimed row keeps two processes from posting the same event at once; a
receiver may still see an event twice (after a crash mid-post), so each carries a stable id.

Signature: ``X-Textrelay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import secrets as token_source
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy import delete, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from textrelay.errors import NotFound, ValidationFailed
from textrelay.secrets import KeyRing, mask
from textrelay.store.models import EventDelivery, EventDestination, Sandbox, utcnow

log = logging.getLogger("textrelay.events")

INBOUND_RECEIVED = "inbound.received"
CONSENT_CHANGED = "consent.changed"
EVENT_TYPES = (INBOUND_RECEIVED, CONSENT_CHANGED)
SIGNATURE_HEADER = "X-Textrelay-Signature"

MAX_ATTEMPTS = 15
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 3600.0
LEASE_SECONDS = 60.0
POST_TIMEOUT_SECONDS = 10.0
BATCH = 100
CACHE_SECONDS = 5.0
# Delivered events are kept this long (for GET /api/v1/events/deliveries), then deleted.
RETENTION = timedelta(days=7)
CLEANUP_EVERY_SECONDS = 3600.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance: float = 300.0) -> bool:
    """Check a signature header as a receiver should (constant time, bounded clock skew)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failures: exponential, capped, jittered."""
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2 ** max(0, attempts - 1)))
    return delay * random.uniform(0.5, 1.0)


# --- The destination (one per sandbox) --------------------------------------------------------

class DestinationSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl = Field(description="Where events are POSTed (http or https).")
    secret: str | None = Field(default=None, min_length=16, max_length=256,
                               description="HMAC-SHA256 signing secret; generated when omitted on creation, "
                               "kept when omitted on update. Never returned.")
    events: list[str] = Field(default_factory=lambda: list(EVENT_TYPES), max_length=len(EVENT_TYPES))
    enabled: bool = True


_cache: dict[str, tuple[float, tuple[str, ...] | None]] = {}


def forget(sandbox_id: str | None = None) -> None:
    if sandbox_id is None:
        _cache.clear()
    else:
        _cache.pop(sandbox_id, None)


def _wanted(session: Session, sandbox_id: str) -> tuple[str, ...] | None:
    """The event types the sandbox forwards (None: none), cached briefly: this runs per change."""
    now = time.monotonic()
    hit = _cache.get(sandbox_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = session.execute(select(EventDestination.events, EventDestination.enabled)
                          .where(EventDestination.sandbox_id == sandbox_id)).first()
    wanted = tuple(row[0]) if row is not None and row[1] else None
    _cache[sandbox_id] = (now + CACHE_SECONDS, wanted)
    return wanted


def enqueue(session: Session, sandbox_id: str, event_type: str, data: dict[str, Any]) -> EventDelivery | None:
    """Queue an event in the caller's transaction, if the sandbox forwards that type."""
    wanted = _wanted(session, sandbox_id)
    if not wanted or event_type not in wanted:
        return None
    row = EventDelivery(sandbox_id=sandbox_id, type=event_type, payload=data, next_attempt_at=utcnow())
    session.add(row)
    # Wake the dispatchers once the row is visible to them, not before.
    if not session.info.get("events_wake"):
        session.info["events_wake"] = True
        sa_event.listen(session, "after_commit", _after_commit, once=True)
    return row


def _after_commit(session: Session) -> None:
    session.info.pop("events_wake", None)
    _wake()


def get_destination(session: Session, sandbox: Sandbox) -> EventDestination:
    row = session.scalar(select(EventDestination).where(EventDestination.sandbox_id == sandbox.id))
    if row is None:
        raise NotFound(f"sandbox '{sandbox.name}' forwards no events; PUT a destination first")
    return row


def set_destination(session: Session, keyring: KeyRing, sandbox: Sandbox,
                    data: DestinationSet) -> tuple[EventDestination, str | None]:
    """Create or replace the sandbox's destination. Returns it and, when one was generated, the
    new secret (shown once)."""
    for index, name in enumerate(data.events):
        if name not in EVENT_TYPES:
            raise ValidationFailed.field(f"events[{index}]", f"one of {', '.join(EVENT_TYPES)}")
    row = session.scalar(select(EventDestination).where(EventDestination.sandbox_id == sandbox.id))
    generated = None
    secret = data.secret
    if secret is None and row is None:
        secret = generated = token_source.token_urlsafe(32)
    if row is None:
        row = EventDestination(sandbox_id=sandbox.id, url=str(data.url), secret="", secret_hint="")
        session.add(row)
    row.url = str(data.url)
    row.events = list(dict.fromkeys(data.events))
    row.enabled = data.enabled
    if secret is not None:
        row.secret = keyring.encrypt(secret)
        row.secret_hint = mask(secret) or ""
    row.updated_at = utcnow()
    session.flush()
    forget(sandbox.id)
    return row, generated


def delete_destination(session: Session, sandbox: Sandbox) -> None:
    session.delete(get_destination(session, sandbox))
    session.flush()
    forget(sandbox.id)


def destination_view(row: EventDestination, sandbox: Sandbox, secret: str | None = None) -> dict[str, Any]:
    out = {"sandbox": sandbox.name, "url": row.url, "events": list(row.events), "enabled": row.enabled,
           "secret": row.secret_hint, "signature_header": SIGNATURE_HEADER,
           "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}
    if secret:
        out["secret"] = secret
        out["secret_shown_once"] = True
    return out


def delivery_view(row: EventDelivery) -> dict[str, Any]:
    return {"id": row.event_id, "type": row.type, "status": row.status, "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at.isoformat() if row.status == "pending" else None,
            "last_error": row.last_error, "created_at": row.created_at.isoformat(),
            "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None, "data": row.payload}


def list_deliveries(session: Session, sandbox: Sandbox, status: str | None, limit: int) -> list[EventDelivery]:
    q = select(EventDelivery).where(EventDelivery.sandbox_id == sandbox.id)
    if status:
        q = q.where(EventDelivery.status == status)
    return list(session.scalars(q.order_by(EventDelivery.id.desc()).limit(limit)))


# --- The dispatcher --------------------------------------------------------------------------

_wakeups: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def _wake() -> None:
    for loop, event in list(_wakeups):
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # that loop is closed
            _wakeups.discard((loop, event))


class Dispatcher:
    """Posts due events. One per serving process; safe to run several against one store."""

    def __init__(self, ctx: Any, poll_interval: float = 1.0) -> None:
        self.ctx = ctx
        self.poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        self._event = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._entry: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def start(self) -> None:
        self._entry = (asyncio.get_running_loop(), self._event)
        _wakeups.add(self._entry)
        self._task = asyncio.create_task(self._run(), name="events-out")

    async def stop(self) -> None:
        if self._entry is not None:
            _wakeups.discard(self._entry)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._http is not None:
            await self._http.close()

    async def _run(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_SECONDS))
        next_cleanup = time.monotonic() + CLEANUP_EVERY_SECONDS
        while True:
            try:
                if time.monotonic() >= next_cleanup:
                    next_cleanup = time.monotonic() + CLEANUP_EVERY_SECONDS
                    await asyncio.to_thread(self.cleanup)
                posted = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep forwarding after a store hiccup; the rows stay due
                log.exception("events-out pass failed")
                posted = 0
            if posted:
                continue
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), self.poll_interval)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        claimed = await asyncio.to_thread(self._claim)
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._post(*item) for item in claimed))
        await asyncio.to_thread(self._finish, results)
        return len(claimed)

    def cleanup(self) -> int:
        """Delete delivered events older than the retention period; failed ones stay for inspection."""
        with self.ctx.db.session() as session:
            return session.execute(delete(EventDelivery).where(
                EventDelivery.status == "delivered", EventDelivery.delivered_at < utcnow() - RETENTION)).rowcount

    def _claim(self) -> list[tuple[int, str, str, bytes, str, str]]:
        now = utcnow()
        ctx = self.ctx
        with ctx.db.session() as session:
            rows = session.execute(
                select(EventDelivery, EventDestination, Sandbox.name)
                .join(EventDestination, EventDestination.sandbox_id == EventDelivery.sandbox_id)
                .join(Sandbox, Sandbox.id == EventDelivery.sandbox_id)
                .where(EventDelivery.status == "pending", EventDelivery.next_attempt_at <= now,
                       or_(EventDelivery.lease_expires_at.is_(None), EventDelivery.lease_expires_at < now))
                .order_by(EventDelivery.next_attempt_at).limit(BATCH)).all()
            claimed = []
            lease = now + timedelta(seconds=LEASE_SECONDS)
            for delivery, dest, sandbox_name in rows:
                taken = session.execute(
                    update(EventDelivery).where(
                        EventDelivery.id == delivery.id,
                        or_(EventDelivery.lease_expires_at.is_(None), EventDelivery.lease_expires_at < now))
                    .values(lease_expires_at=lease)).rowcount
                if not taken or not dest.enabled:
                    continue
                body = json.dumps({"id": delivery.event_id, "type": delivery.type, "sandbox": sandbox_name,
                                   "created_at": delivery.created_at.isoformat(), "data": delivery.payload},
                                  separators=(",", ":"), ensure_ascii=False).encode()
                claimed.append((delivery.id, delivery.event_id, delivery.type, body, dest.url,
                                ctx.keyring.decrypt(dest.secret)))
            return claimed

    async def _post(self, row_id: int, event_id: str, event_type: str, body: bytes, url: str,
                    secret: str) -> tuple[int, str | None]:
        assert self._http is not None
        headers = {"Content-Type": "application/json", "User-Agent": "textrelay-events",
                   "X-Textrelay-Event": event_type, "X-Textrelay-Delivery": event_id,
                   SIGNATURE_HEADER: sign(secret, int(time.time()), body)}
        try:
            async with self._http.post(url, data=body, headers=headers, allow_redirects=False) as answer:
                await answer.read()
                if 200 <= answer.status < 300:
                    return row_id, None
                return row_id, f"HTTP {answer.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return row_id, f"{type(exc).__name__}: {exc}"[:500]

    def _finish(self, results: list[tuple[int, str | None]]) -> None:
        now = utcnow()
        with self.ctx.db.session() as session:
            for row_id, error in results:
                row = session.get(EventDelivery, row_id)
                if row is None:
                    continue
                row.attempts += 1
                row.lease_expires_at = None
                if error is None:
                    row.status, row.delivered_at, row.last_error = "delivered", now, None
                elif row.attempts >= MAX_ATTEMPTS:
                    row.status, row.last_error = "failed", error
                else:
                    row.last_error = error
                    row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts))


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Runs the dispatcher for as long as the app serves (merged into the app's lifespan)."""
    dispatcher = Dispatcher(app.state.context)
    dispatcher.start()
    app.state.events_dispatcher = dispatcher
    try:
        yield
    finally:
        await dispatcher.stop()
