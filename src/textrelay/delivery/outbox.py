"""The durable outbox: claiming due messages for a worker, and writing back what happened.

A message is due when ``status='queued'`` and ``next_attempt_at <= now``. A claim moves a batch to
``sending`` with a lease (``lease_expires_at``) in one statement: on PostgreSQL the candidates are
picked ``FOR UPDATE SKIP LOCKED`` so concurrent workers never share one; on SQLite the single
writer lock does the same. A ``sending`` message whose lease ran out belonged to a worker that died
mid-send: it is taken back with ``outcome_unknown`` set, so it is looked up at the provider before
anything is resent.

Within the claim's transaction, each message is checked again: validity period (expired →
``failed``), consent (an opt-out recorded after acceptance → ``excluded``), the channel
configuration (no way to send → ``failed``), and rate limits (a slot in the future → back to
``queued`` until then). Results are written per batch: one transaction, bulk UPDATE and INSERT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from textrelay.delivery import custom_route, ratelimit, retry
from textrelay.delivery.retry import Decision
from textrelay.providers.twilio import TwilioAccount
from textrelay.services import consent
from textrelay.services import credentials as credential_service
from textrelay.services import webhooks as webhook_service
from textrelay.services.context import Context
from textrelay.store.db import Database
from textrelay.store.models import (
    ChannelConfiguration,
    Consent,
    ConsentSenderBlock,
    Credential,
    Message,
    MessageEvent,
    utcnow,
)

log = logging.getLogger("textrelay.delivery")
T = TypeVar("T")

messages = Message.__table__
events = MessageEvent.__table__
FINAL = ("sent", "delivered", "undelivered", "failed", "excluded", "canceled", "read")

# ---------------------------------------------------------------------------------------------
# Where the store's work runs. PostgreSQL: a small thread pool, so network round trips never block
# the event loop. SQLite: in the event loop's own thread. Its statements take microseconds per
# row, and a separate thread would cost more than it saves: the sqlite3 module hands the GIL back
# and forth on every row it steps through, and each hand-back waits for the busy event loop
# (measured: store steps 2-3x slower, 15% more CPU per message). One thread also means the
# worker and the receipt writer never wait on each other's write locks.

_executors: dict[int, ThreadPoolExecutor] = {}


def executor(db: Database) -> ThreadPoolExecutor:
    pool = _executors.get(id(db))
    if pool is None:
        pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="textrelay-db")
        _executors[id(db)] = pool
    return pool


_quick: dict[int, Context] = {}
QUICK_BUSY_MS = 200


def _quick_context(ctx: Context) -> Context:
    """``ctx`` with its own SQLite engine that waits at most QUICK_BUSY_MS for another writer."""
    quick = _quick.get(id(ctx))
    if quick is None:
        db = Database(ctx.db.url)

        @event.listens_for(db.engine, "connect")
        def _short_wait(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA busy_timeout={QUICK_BUSY_MS}")

        quick = _quick[id(ctx)] = dataclasses.replace(ctx, db=db)
    return quick


async def run(ctx: Context, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(ctx, *args)``, one store transaction of the delivery machinery (see above for where).

    On SQLite another thread of this process (an API request) may hold the write lock while it
    waits for the event loop: so the loop waits only briefly, then hands the step to a thread.
    Each step is one transaction, rolled back on error, so running it again is safe.
    """
    if ctx.db.is_sqlite:
        try:
            return fn(_quick_context(ctx), *args)
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            log.debug("store busy; %s goes to a thread", getattr(fn, "__name__", fn))
    return await asyncio.get_running_loop().run_in_executor(executor(ctx.db), lambda: fn(ctx, *args))


# ---------------------------------------------------------------------------------------------
# Routes: how the messages of one channel configuration go out.

@dataclass(frozen=True)
class Route:
    configuration_id: str
    sandbox_id: str
    vendor: str
    sender: str | None
    account: TwilioAccount | Any | None  # a TwilioAccount or a CustomProvider: both send()
    status_callback: str | None
    limits: tuple[ratelimit.Limit, ...] = ()
    problem: str | None = None  # why nothing can be sent with this configuration
    fallback_configuration_id: str | None = None  # RCS: where the SMS fallback goes


class Routes:
    """Channel configurations resolved to routes, cached for ``ttl`` seconds (secrets decrypted once)."""

    def __init__(self, ctx: Context, ttl: float = 30.0) -> None:
        self.ctx = ctx
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Route]] = {}

    def get_many(self, session: Session, ids: Iterable[str]) -> dict[str, Route]:
        now = time.monotonic()
        found: dict[str, Route] = {}
        missing = []
        for cid in set(ids):
            hit = self._cache.get(cid)
            if hit is not None and hit[0] > now:
                found[cid] = hit[1]
            else:
                missing.append(cid)
        for cid in missing:
            route = self._load(session, cid)
            self._cache[cid] = (now + self.ttl, route)
            found[cid] = route
        return found

    def _load(self, session: Session, configuration_id: str) -> Route:
        config = session.get(ChannelConfiguration, configuration_id)
        if config is None:
            return Route(configuration_id, "", "", None, None, None, problem="channel configuration not found")
        cred = session.get(Credential, config.credential_id)
        if cred is None:
            return Route(config.id, config.sandbox_id, "", None, None, None, problem="API credential not found")
        settings = cred.settings or {}
        limits = []
        if cred.vendor == "custom":
            return custom_route.route(sys.modules[__name__], self.ctx, config, cred)
        if cred.vendor != "twilio":
            return Route(config.id, config.sandbox_id, cred.vendor, config.sender_number, None, None,
                         problem=f"sending through a {cred.vendor} credential is not supported by this worker")
        sender = config.sender_number or settings.get("messaging_service_sid")
        if not sender:
            return Route(config.id, config.sandbox_id, cred.vendor, None, None, None,
                         problem="no sender: the channel configuration has no sender number and the "
                                 "credential no messaging service")
        try:
            account = credential_service.twilio_account(cred, self.ctx.keyring)
        except Exception as exc:  # an undecryptable secret must not stop the worker
            return Route(config.id, config.sandbox_id, cred.vendor, sender, None, None,
                         problem=f"the credential's auth token cannot be read ({type(exc).__name__})")
        callback = None
        hook = webhook_service.feedback_webhook(session, cred.id)
        if hook is not None and self.ctx.settings.public_url:
            callback = webhook_service.public_url(hook, self.ctx.settings.public_url, "twilio")
        elif hook is not None:
            log.warning("no public URL set (TEXTRELAY_PUBLIC_URL): messages go out without a status callback")
        if config.rate_limit_mps:
            limits.append(ratelimit.Limit(ratelimit.sender_key(cred.account_key, sender), float(config.rate_limit_mps)))
        if settings.get("rate_limit_mps"):
            limits.append(ratelimit.Limit(ratelimit.credential_key(cred.id), float(settings["rate_limit_mps"])))
        return Route(config.id, config.sandbox_id, cred.vendor, sender, account, callback, tuple(limits))


# ---------------------------------------------------------------------------------------------
# Claims

@dataclass(slots=True)
class Job:
    """A claimed message, as the worker needs it."""

    id: str
    sandbox_id: str
    configuration_id: str
    to: str
    body: str
    media_urls: list[str]
    segments: int
    sms_type: str
    valid_until: datetime
    attempts: int
    outcome_unknown: bool
    created_at: datetime
    lease: datetime
    route: Route | None = None
    content: dict[str, Any] | None = None  # RCS content and profile, for custom providers


_CLAIM_COLUMNS = ("id", "sandbox_id", "channel_configuration_id", "to_number", "body", "media_urls", "segments",
                  "sms_type", "valid_until", "attempts", "outcome_unknown", "rate_reserved", "created_at", "content")


class Claimed(NamedTuple):
    id: str
    sandbox_id: str
    channel_configuration_id: str
    to_number: str
    body: str
    media_urls: list[str]
    segments: int
    sms_type: str
    valid_until: datetime
    attempts: int
    outcome_unknown: bool
    rate_reserved: bool
    created_at: datetime
    content: dict[str, Any] | None


class Driver:
    """The hot statements, run at the database driver's level: at thousands of messages per second,
    SQLAlchemy's per-row compilation and type processing cost more than the database itself.
    Values are converted here the way the store's column types would (UTC; SQLite keeps text)."""

    def __init__(self, session: Session) -> None:
        self.connection = session.connection()
        self.pg = self.connection.dialect.name == "postgresql"
        self.mark = "%s" if self.pg else "?"

    def time(self, value: datetime | None) -> Any:
        if value is None or self.pg:
            return value
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    @staticmethod
    def parse_time(value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    @staticmethod
    def parse_json(value: Any) -> Any:
        if value is None or value == "[]":  # the common cases, without the parser
            return None if value is None else []
        return json.loads(value) if isinstance(value, (str, bytes)) else value  # noqa: UP038

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.connection.exec_driver_sql(sql.replace("?", self.mark), tuple(params))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        """Run ``sql`` once per row; returns the number of rows changed in all."""
        if not rows:
            return 0
        return self.connection.exec_driver_sql(sql.replace("?", self.mark), rows).rowcount

    def claim(self, where: str, params: Sequence[Any], limit: int, sets: str, set_params: Sequence[Any]
              ) -> list[Claimed]:
        lock = " FOR UPDATE SKIP LOCKED" if self.pg else ""
        result = self.execute(
            f"UPDATE messages SET {sets} WHERE id IN (SELECT id FROM messages WHERE {where} "
            f"ORDER BY next_attempt_at LIMIT ?{lock}) RETURNING {', '.join(_CLAIM_COLUMNS)}",
            [*set_params, *params, limit])
        return [Claimed(r[0], r[1], r[2], r[3], r[4] or "", self.parse_json(r[5]) or [], r[6] or 1, r[7],
                        self.parse_time(r[8]), r[9] or 0, bool(r[10]), bool(r[11]),  # type: ignore[arg-type]
                        self.parse_time(r[12]), self.parse_json(r[13]))  # type: ignore[arg-type]
                for r in result.fetchall()]


@dataclass
class Claim:
    jobs: list[Job] = field(default_factory=list)
    deferred: int = 0
    closed: int = 0  # excluded, expired or unroutable: final without a send


def claim(ctx: Context, routes: Routes, limit: int, lease_seconds: float) -> Claim:
    """Take up to ``limit`` due messages for this worker; see the module docstring."""
    now = utcnow()
    lease = now + timedelta(seconds=lease_seconds)
    with ctx.db.session() as session:
        sql = Driver(session)
        # Leases that ran out first: their worker died mid-send, so the outcome is unknown.
        rows = sql.claim("status = 'sending' AND lease_expires_at < ?", [sql.time(now)], limit,
                         "lease_expires_at = ?, outcome_unknown = ?, updated_at = ?",
                         [sql.time(lease), True, sql.time(now)])
        if len(rows) < limit:
            rows += sql.claim("status = 'queued' AND next_attempt_at <= ?", [sql.time(now)], limit - len(rows),
                              "status = 'sending', lease_expires_at = ?, updated_at = ?",
                              [sql.time(lease), sql.time(now)])
        if not rows:
            return Claim()
        claim = _screen(session, routes, rows, now)
        for job in claim.jobs:
            job.lease = lease
        return claim


def _screen(session: Session, routes: Routes, rows: Sequence[Claimed], now: datetime) -> Claim:
    """Check claimed rows again before sending: validity, route, consent, rate limits."""
    route_of = routes.get_many(session, {r.channel_configuration_id for r in rows})
    closed: list[tuple[str, str, str, str | None]] = []  # (id, status, reason, error_code)
    candidates: list[tuple[Any, Route]] = []
    for row in rows:
        route = route_of[row.channel_configuration_id]
        if row.outcome_unknown:
            # It may already be at the provider: reconciliation decides, whatever else changed.
            candidates.append((row, route))
        elif row.valid_until <= now:
            closed.append((row.id, "failed", retry.EXPIRED, "expired"))
        elif route.problem:
            closed.append((row.id, "failed", route.problem, "no_route"))
        else:
            candidates.append((row, route))
    # Consent, again: an opt-out recorded after the message was accepted still excludes it. One
    # query finds the numbers with any consent record; the rule itself is consent.exclusion_reason.
    with_record = _numbers_with_consent_records(
        session, {(row.sandbox_id, row.to_number) for row, _ in candidates if not row.outcome_unknown})
    sendable: list[tuple[Any, Route]] = []
    for row, route in candidates:
        reason = None
        # A keyword reply (an opt-out confirmation) goes to the number that just opted out.
        if not row.outcome_unknown and (row.sandbox_id, row.to_number) in with_record \
                and not (row.content or {}).get("keyword_reply"):
            reason = consent.exclusion_reason(session, row.sandbox_id, row.to_number, row.sms_type,
                                              [route.sender] if route.sender else [])
        if reason:
            closed.append((row.id, "excluded", reason, "consent"))
        else:
            sendable.append((row, route))
    # Rate limits: one reservation per key for the whole batch; reserved messages skip it.
    wanting = [(i, row, route) for i, (row, route) in enumerate(sendable)
               if route.limits and not row.rate_reserved and not row.outcome_unknown]
    slots: dict[int, float] = {}
    if wanting:
        epoch = now.timestamp()
        reserved = ratelimit.reserve(session, epoch, [(row.segments, route.limits) for _, row, route in wanting])
        slots = {i: slot for (i, _, _), slot in zip(wanting, reserved, strict=True)}
    result = Claim()
    deferred = []
    for i, (row, route) in enumerate(sendable):
        slot = slots.get(i)
        if slot is not None and slot > now.timestamp() + 0.002:
            deferred.append({"b_id": row.id, "b_at": datetime.fromtimestamp(slot, now.tzinfo)})
            continue
        result.jobs.append(Job(
            id=row.id, sandbox_id=row.sandbox_id, configuration_id=row.channel_configuration_id, to=row.to_number,
            body=row.body or "", media_urls=list(row.media_urls or []), segments=row.segments or 1,
            sms_type=row.sms_type, valid_until=row.valid_until, attempts=row.attempts or 0,
            outcome_unknown=bool(row.outcome_unknown), created_at=row.created_at, lease=now,
            route=route, content=row.content))
    if deferred:
        session.execute(update(messages).where(messages.c.id == bindparam("b_id")).values(
            status="queued", next_attempt_at=bindparam("b_at"), rate_reserved=True, lease_expires_at=None,
            updated_at=now), deferred)
    if closed:
        session.execute(update(messages).where(messages.c.id == bindparam("b_id")).values(
            status=bindparam("b_status"), error_message=bindparam("b_reason"), error_code=bindparam("b_code"),
            lease_expires_at=None, final_at=now, updated_at=now),
            [{"b_id": i, "b_status": s, "b_reason": r, "b_code": c} for i, s, r, c in closed])
        session.execute(insert(events), [
            {"message_id": i, "status": s, "source": "worker", "detail": r, "error_code": c, "at": now}
            for i, s, r, c in closed])
    result.deferred = len(deferred)
    result.closed = len(closed)
    return result


def _numbers_with_consent_records(session: Session, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    by_sandbox: dict[str, list[str]] = defaultdict(list)
    for sandbox_id, number in pairs:
        by_sandbox[sandbox_id].append(number)
    found: set[tuple[str, str]] = set()
    for sandbox_id, numbers in by_sandbox.items():
        for table in (Consent.__table__, ConsentSenderBlock.__table__):
            found.update((sandbox_id, n) for n in session.scalars(select(table.c.phone_number).where(
                table.c.sandbox_id == sandbox_id, table.c.phone_number.in_(numbers))))
    return found


# ---------------------------------------------------------------------------------------------
# Results

@dataclass(slots=True)
class Outcome:
    """What became of one claimed job: the decision, and whether a send was attempted."""

    job: Job
    decision: Decision
    attempted: bool
    at: datetime


def record(ctx: Context, outcomes: Sequence[Outcome], worker: str | None = None) -> int:
    """Write a batch of outcomes in one transaction; returns how many were written.

    A job whose lease was taken over by another worker (it ran out) is skipped: that worker
    reconciles it with the provider.
    """
    if not outcomes:
        return 0
    now = utcnow()
    with ctx.db.session() as session:
        sql = Driver(session)
        rows = []
        stamp = sql.time(now)  # also marks, below, which rows this call changed
        for o in outcomes:
            d = o.decision
            sent = d.status == "sent"
            at = sql.time(o.at)
            rows.append((
                d.status, d.provider_message_id, o.job.route.sender if o.job.route and sent else None,
                None if sent else d.error_code, None if sent else d.error_message,
                o.job.attempts + (1 if o.attempted else 0), sql.time(d.next_attempt_at), d.outcome_unknown,
                at if sent else None, at if d.status in FINAL else None, stamp, o.job.id, sql.time(o.job.lease)))
        changed = sql.executemany(
            "UPDATE messages SET status = ?, provider_message_id = ?, from_number = ?, error_code = ?, "
            "error_message = ?, attempts = ?, next_attempt_at = ?, outcome_unknown = ?, rate_reserved = FALSE, "
            "lease_expires_at = NULL, sent_at = ?, final_at = ?, updated_at = ? "
            "WHERE id = ? AND status = 'sending' AND lease_expires_at = ?", rows)
        mine: Sequence[Outcome] = outcomes
        if changed != len(outcomes):
            # Some leases ran out and another worker took those messages back: leave them to it.
            ids = [o.job.id for o in outcomes]
            ours = {row[0] for row in sql.execute(
                f"SELECT id FROM messages WHERE updated_at = ? AND id IN ({sql.marks(len(ids))})", [stamp, *ids])}
            mine = [o for o in outcomes if o.job.id in ours]
            log.warning("%d message(s) were taken back by another worker before their result was written",
                        len(outcomes) - len(mine))
        suffix = f" (worker {worker})" if worker else ""
        sql.executemany("INSERT INTO message_events (message_id, status, source, detail, error_code, at) "
                        "VALUES (?, ?, ?, ?, ?, ?)", [
                            (o.job.id, o.decision.status, "worker", o.decision.detail + suffix,
                             None if o.decision.status == "sent" else o.decision.error_code, sql.time(o.at))
                            for o in mine])
        for o in mine:
            if o.decision.fallback:
                custom_route.queue_fallback(session, o.job, o.decision, o.at)
            if o.decision.opt_out:
                consent.record(session, o.job.sandbox_id, o.job.to, consent.OPTED_OUT, "provider_error",
                               sender=o.job.route.sender if o.job.route else None,
                               detail=f"provider error {o.decision.error_code} on message {o.job.id}")
        return len(mine)


def release(ctx: Context, jobs: Sequence[Job]) -> None:
    """Give unsent claimed jobs back to the outbox at once (a worker stopping cleanly)."""
    if not jobs:
        return
    now = utcnow()
    with ctx.db.session() as session:
        session.execute(update(messages).where(
            messages.c.id == bindparam("b_id"), messages.c.status == "sending",
            messages.c.lease_expires_at == bindparam("b_lease")).values(
            status="queued", lease_expires_at=None, next_attempt_at=now, updated_at=now),
            [{"b_id": j.id, "b_lease": j.lease} for j in jobs])


def known_provider_ids(ctx: Context, ids: Iterable[str], except_message: str) -> set[str]:
    """Which of these provider ids already belong to another of our messages (reconciliation)."""
    ids = [i for i in ids if i]
    if not ids:
        return set()
    with ctx.db.session() as session:
        return set(session.scalars(select(messages.c.provider_message_id).where(
            messages.c.provider_message_id.in_(ids), messages.c.id != except_message)))
