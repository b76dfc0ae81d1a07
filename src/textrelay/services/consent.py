"""Consent per sandbox and phone number, with its full history.

Rules (SPEC §3): a ``marketing`` message goes only to a number that has not opted out (nor is
waiting for double opt-in confirmation); a ``transactional`` message is excluded only when the
number opted out of that same sender, because the provider would block it anyway.

Every change is appended to the number's history (source: keyword, provider error, API, import;
sender number; time) and, when the sandbox forwards events, queued as a ``consent.changed`` event
in the same transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from textrelay.domain.numbers import normalize_e164, normalize_sender
from textrelay.errors import ValidationFailed
from textrelay.store.models import Consent, ConsentEvent, ConsentSenderBlock, Sandbox, utcnow

OPTED_IN = "opted_in"
OPTED_OUT = "opted_out"
PENDING = "pending"
STATUSES = (OPTED_IN, OPTED_OUT, PENDING)
SOURCES = ("keyword", "provider_error", "api", "import")
CSV_COLUMNS = ("phone_number", "status", "source", "sender_number", "updated_at")
MAX_IMPORT_ERRORS = 20


def get(session: Session, sandbox_id: str, number: str) -> Consent | None:
    return session.scalar(select(Consent).where(Consent.sandbox_id == sandbox_id, Consent.phone_number == number))


def record(session: Session, sandbox_id: str, number: str, status: str, source: str,
           sender: str | None = None, detail: str | None = None) -> Consent:
    """Set a number's consent and append the change to its history.

    An opt-out through a sender also blocks that sender for transactional messages; an opt-in
    through a sender (or with no sender: everywhere) lifts the block.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown consent status {status!r}")
    now = utcnow()
    row = get(session, sandbox_id, number)
    previous = row.status if row is not None else None
    if row is None:
        row = Consent(sandbox_id=sandbox_id, phone_number=number, status=status, source=source,
                      sender_number=sender, updated_at=now)
        session.add(row)
    else:
        row.status, row.source, row.sender_number, row.updated_at = status, source, sender, now
    session.add(ConsentEvent(sandbox_id=sandbox_id, phone_number=number, status=status, source=source,
                             sender_number=sender, detail=detail, at=now))
    if status == OPTED_OUT and sender:
        exists = session.scalar(select(ConsentSenderBlock.id).where(
            ConsentSenderBlock.sandbox_id == sandbox_id, ConsentSenderBlock.phone_number == number,
            ConsentSenderBlock.sender_number == sender))
        if exists is None:
            session.add(ConsentSenderBlock(sandbox_id=sandbox_id, phone_number=number, sender_number=sender))
    elif status == OPTED_IN and previous is not None:
        q = delete(ConsentSenderBlock).where(ConsentSenderBlock.sandbox_id == sandbox_id,
                                             ConsentSenderBlock.phone_number == number)
        if sender:
            q = q.where(ConsentSenderBlock.sender_number == sender)
        session.execute(q)
    from textrelay.inbound import events

    events.enqueue(session, sandbox_id, events.CONSENT_CHANGED, {
        "phone_number": number, "status": status, "previous_status": previous, "source": source,
        "sender_number": sender, "detail": detail, "at": now.isoformat()})
    session.flush()
    return row


def history(session: Session, sandbox_id: str, number: str) -> list[ConsentEvent]:
    return list(session.scalars(
        select(ConsentEvent).where(ConsentEvent.sandbox_id == sandbox_id, ConsentEvent.phone_number == number)
        .order_by(ConsentEvent.at, ConsentEvent.id)))


def exclusion_reason(session: Session, sandbox_id: str, number: str, sms_type: str,
                     senders: list[str]) -> str | None:
    """Why a message to ``number`` must not be sent, or None when it may be.

    ``senders`` are the identities the message goes out from (sender number, messaging service).
    """
    if sms_type == "marketing":
        row = get(session, sandbox_id, number)
        if row is not None and row.status == OPTED_OUT:
            return f"opted out ({row.source}{', via ' + row.sender_number if row.sender_number else ''})"
        if row is not None and row.status == PENDING:
            return "double opt-in not confirmed"
        return None
    senders = [s for s in senders if s]
    if not senders:
        return None
    blocked = session.scalar(select(ConsentSenderBlock.sender_number).where(
        ConsentSenderBlock.sandbox_id == sandbox_id, ConsentSenderBlock.phone_number == number,
        ConsentSenderBlock.sender_number.in_(senders)).limit(1))
    return f"opted out of sender {blocked}" if blocked else None


# --- The consent resource: lookups, API changes, import and export ---------------------------

class ConsentSet(BaseModel):
    """``PUT /api/v1/consent/{number}``: set a number's consent by API."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["opted_in", "opted_out", "pending"]
    sender_number: str | None = Field(default=None, max_length=32,
                                      description="The sender the change concerns (opt-outs block it).")
    detail: str | None = Field(default=None, max_length=500, description="Why, for the history.")


def number_of(value: str, field: str = "number") -> str:
    return normalize_e164(value, field)


def set_by_api(session: Session, sandbox: Sandbox, number: str, data: ConsentSet,
               actor: str | None = None) -> Consent:
    phone = number_of(number)
    sender = normalize_sender(data.sender_number, "sender_number") if data.sender_number else None
    detail = data.detail or (f"set by {actor}" if actor else None)
    return record(session, sandbox.id, phone, data.status, "api", sender=sender, detail=detail)


def event_view(event: ConsentEvent) -> dict[str, Any]:
    return {"status": event.status, "source": event.source, "sender_number": event.sender_number,
            "detail": event.detail, "at": event.at.isoformat()}


def view(session: Session, sandbox: Sandbox, number: str, row: Consent | None,
         with_history: bool = True) -> dict[str, Any]:
    """A number's consent as the API and UI show it; ``status`` is ``unknown`` when never recorded."""
    out: dict[str, Any] = {
        "phone_number": number,
        "sandbox": sandbox.name,
        "status": row.status if row is not None else "unknown",
        "source": row.source if row is not None else None,
        "sender_number": row.sender_number if row is not None else None,
        "updated_at": row.updated_at.isoformat() if row is not None else None,
    }
    if with_history:
        out["blocked_senders"] = list(session.scalars(
            select(ConsentSenderBlock.sender_number).where(ConsentSenderBlock.sandbox_id == sandbox.id,
                                                           ConsentSenderBlock.phone_number == number)
            .order_by(ConsentSenderBlock.sender_number)))
        out["history"] = [event_view(e) for e in history(session, sandbox.id, number)]
    return out


def lookup(session: Session, sandbox: Sandbox, number: str) -> dict[str, Any]:
    phone = number_of(number)
    return view(session, sandbox, phone, get(session, sandbox.id, phone))


def _cursor(row: Consent) -> str:
    from textrelay.api.pagination import encode_cursor

    return encode_cursor(row.updated_at, row.phone_number)


def list_page(session: Session, sandbox: Sandbox, status: str | None, limit: int,
              cursor: str | None) -> tuple[list[Consent], str | None]:
    """Consents newest change first, with an opaque cursor over (updated_at, phone_number)."""
    q = select(Consent).where(Consent.sandbox_id == sandbox.id)
    if status:
        if status not in STATUSES:
            raise ValidationFailed.field("query.status", f"one of {', '.join(STATUSES)}")
        q = q.where(Consent.status == status)
    if cursor:
        from textrelay.api.pagination import decode_cursor

        at, number = decode_cursor(cursor)
        q = q.where(or_(Consent.updated_at < at, and_(Consent.updated_at == at, Consent.phone_number < number)))
    rows = list(session.scalars(q.order_by(Consent.updated_at.desc(), Consent.phone_number.desc()).limit(limit + 1)))
    next_cursor = _cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def export_csv(session: Session, sandbox: Sandbox, status: str | None = None,
               chunk: int = 1000) -> Iterator[str]:
    """Every consent of the sandbox as CSV text, in chunks (memory does not grow with the table)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    last: str | None = None
    while True:
        q = select(Consent).where(Consent.sandbox_id == sandbox.id)
        if status:
            q = q.where(Consent.status == status)
        if last is not None:
            q = q.where(Consent.phone_number > last)
        rows = list(session.scalars(q.order_by(Consent.phone_number).limit(chunk)))
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow([row.phone_number, row.status, row.source, row.sender_number or "",
                             row.updated_at.isoformat()])
        yield buffer.getvalue()
        last = rows[-1].phone_number
        session.expunge_all()


_STATUS_WORDS = {
    "opted_in": OPTED_IN, "opt_in": OPTED_IN, "in": OPTED_IN, "subscribed": OPTED_IN,
    "opted_out": OPTED_OUT, "opt_out": OPTED_OUT, "out": OPTED_OUT, "unsubscribed": OPTED_OUT,
    "pending": PENDING,
}


class ConsentImport:
    """Import consents from CSV fed in chunks of lines (memory does not grow with the file).

    Columns: ``phone_number``, ``status`` and optionally ``sender_number``, ``detail``. One history
    entry per changed number, source ``import``; rows whose status is already in force are
    skipped. All or nothing: any bad row fails the import with a 422 listing the rows (line
    numbers), and the caller's transaction is rolled back.
    """

    def __init__(self, session: Session, sandbox: Sandbox) -> None:
        self.session, self.sandbox = session, sandbox
        self.header: list[str] | None = None
        self.line = 0
        self.errors: list[dict[str, Any]] = []
        self.bad_rows = 0
        self.counts = {"rows": 0, "changed": 0, "unchanged": 0}

    def feed(self, lines: Iterable[str]) -> None:
        for fields in csv.reader(lines):
            self.line += 1
            if not any(f.strip() for f in fields):
                continue
            if self.header is None:
                self.header = [h.strip().lower().lstrip("\ufeff") for h in fields]
                if "phone_number" not in self.header or "status" not in self.header:
                    raise ValidationFailed("the CSV needs a header with phone_number and status columns",
                                           errors=[{"field": "file",
                                                    "message": "header must name phone_number and status"}])
                continue
            self._row(dict(zip(self.header, fields, strict=False)))

    def _row(self, row: dict[str, str]) -> None:
        self.counts["rows"] += 1
        raw_status = (row.get("status") or "").strip().lower()
        try:
            phone = number_of((row.get("phone_number") or "").strip(), "phone_number")
            status = _STATUS_WORDS.get(raw_status)
            if status is None:
                raise ValidationFailed.field("status", f"'{raw_status}' is not one of {', '.join(STATUSES)}")
            raw_sender = (row.get("sender_number") or "").strip()
            sender = normalize_sender(raw_sender, "sender_number") if raw_sender else None
        except ValidationFailed as exc:
            self.bad_rows += 1
            if len(self.errors) < MAX_IMPORT_ERRORS:
                field = exc.errors[0]["field"] if exc.errors else "row"
                message = exc.errors[0]["message"] if exc.errors else exc.detail
                self.errors.append({"field": f"line {self.line}.{field}", "message": message})
            return
        if self.errors:
            return
        current = get(self.session, self.sandbox.id, phone)
        if current is not None and current.status == status and current.sender_number == sender:
            self.counts["unchanged"] += 1
            return
        detail = (row.get("detail") or "").strip()[:500] or "CSV import"
        record(self.session, self.sandbox.id, phone, status, "import", sender=sender, detail=detail)
        self.counts["changed"] += 1
        if self.counts["changed"] % 500 == 0:
            self.session.expunge_all()

    def finish(self) -> dict[str, Any]:
        if self.header is None:
            raise ValidationFailed("the CSV is empty", errors=[{"field": "file", "message": "no header row"}])
        if self.errors:
            raise ValidationFailed(f"{self.bad_rows} row(s) of the CSV are invalid; nothing was imported",
                                   errors=self.errors)
        return self.counts


def import_csv(session: Session, sandbox: Sandbox, lines: Iterable[str]) -> dict[str, Any]:
    """Import a whole CSV at once (see :class:`ConsentImport`)."""
    job = ConsentImport(session, sandbox)
    job.feed(lines)
    return job.finish()
