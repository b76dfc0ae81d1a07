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
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from textrelay.domain.numbers import normalize_e164, normalize_sender
from textrelay.errors import ValidationFailed
from textrelay.services.webhooks import NoNul
from textrelay.store.models import Consent, ConsentEvent, ConsentSenderBlock, Sandbox, new_id, utcnow

OPTED_IN = "opted_in"
OPTED_OUT = "opted_out"
PENDING = "pending"
STATUSES = (OPTED_IN, OPTED_OUT, PENDING)
SOURCES = ("keyword", "provider_error", "api", "import")
CSV_COLUMNS = ("phone_number", "status", "source", "sender_number", "updated_at")
MAX_IMPORT_ERRORS = 20


def get(session: Session, sandbox_id: str, number: str) -> Consent | None:
    return session.scalar(select(Consent).where(Consent.sandbox_id == sandbox_id, Consent.phone_number == number))


@dataclass(frozen=True)
class Change:
    """One consent change to record."""

    sandbox_id: str
    number: str
    status: str
    source: str
    sender: str | None = None
    detail: str | None = None


def record(session: Session, sandbox_id: str, number: str, status: str, source: str,
           sender: str | None = None, detail: str | None = None) -> Consent:
    """Set a number's consent and append the change to its history.

    An opt-out through a sender also blocks that sender for transactional messages; an opt-in
    through a sender (or with no sender: everywhere) lifts the block.
    """
    session.flush()
    apply_changes(session, [Change(sandbox_id, number, status, source, sender, detail)])
    row = session.scalar(select(Consent).where(Consent.sandbox_id == sandbox_id, Consent.phone_number == number)
                         .execution_options(populate_existing=True))
    assert row is not None
    return row


def statuses(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Current status of each (sandbox id, number) that has one."""
    by_sandbox: dict[str, set[str]] = {}
    for sandbox_id, number in keys:
        by_sandbox.setdefault(sandbox_id, set()).add(number)
    found: dict[tuple[str, str], str] = {}
    for sandbox_id, numbers in by_sandbox.items():
        for chunk in _chunks(sorted(numbers)):
            for number, status in session.execute(
                    select(Consent.phone_number, Consent.status)
                    .where(Consent.sandbox_id == sandbox_id, Consent.phone_number.in_(chunk))):
                found[(sandbox_id, number)] = status
    return found


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def apply_changes(session: Session, changes: list[Change]) -> None:
    """Record many changes at once, in order (several may concern one number), with a few bulk
    statements: the inbound path groups concurrent requests into one transaction."""
    if not changes:
        return
    for change in changes:
        if change.status not in STATUSES:
            raise ValueError(f"unknown consent status {change.status!r}")
    keys = {(c.sandbox_id, c.number) for c in changes}
    by_sandbox: dict[str, list[str]] = {}
    for sandbox_id, number in keys:
        by_sandbox.setdefault(sandbox_id, []).append(number)
    rows: dict[tuple[str, str], str] = {}
    ids: dict[tuple[str, str], str] = {}
    blocks: set[tuple[str, str, str]] = set()
    for sandbox_id, numbers in by_sandbox.items():
        for chunk in _chunks(sorted(numbers)):
            for row_id, number, status in session.execute(
                    select(Consent.id, Consent.phone_number, Consent.status)
                    .where(Consent.sandbox_id == sandbox_id, Consent.phone_number.in_(chunk))):
                rows[(sandbox_id, number)] = status
                ids[(sandbox_id, number)] = row_id
            for number, sender in session.execute(
                    select(ConsentSenderBlock.phone_number, ConsentSenderBlock.sender_number)
                    .where(ConsentSenderBlock.sandbox_id == sandbox_id,
                           ConsentSenderBlock.phone_number.in_(chunk))):
                blocks.add((sandbox_id, number, sender))
    existed = set(blocks)
    final: dict[tuple[str, str], dict[str, Any]] = {}
    history_rows: list[dict[str, Any]] = []
    from textrelay.inbound import events

    now = utcnow()
    for change in changes:
        key = (change.sandbox_id, change.number)
        previous = final[key]["status"] if key in final else rows.get(key)
        final[key] = {"status": change.status, "source": change.source, "sender_number": change.sender,
                      "updated_at": now}
        history_rows.append({"sandbox_id": change.sandbox_id, "phone_number": change.number,
                             "status": change.status, "source": change.source, "sender_number": change.sender,
                             "detail": change.detail, "at": now})
        if change.status == OPTED_OUT and change.sender:
            blocks.add((change.sandbox_id, change.number, change.sender))
        elif change.status == OPTED_IN:
            blocks = {b for b in blocks if not (b[0] == change.sandbox_id and b[1] == change.number
                                               and (not change.sender or b[2] == change.sender))}
        events.enqueue(session, change.sandbox_id, events.CONSENT_CHANGED, {
            "phone_number": change.number, "status": change.status, "previous_status": previous,
            "source": change.source, "sender_number": change.sender, "detail": change.detail,
            "at": now.isoformat()})
    inserts = [{"id": new_id(), "sandbox_id": k[0], "phone_number": k[1], **v}
               for k, v in final.items() if k not in rows]
    updates = [{"b_id": ids[k], **{f"b_{n}": x for n, x in v.items()}} for k, v in final.items() if k in ids]
    if inserts:
        session.execute(insert(Consent.__table__), inserts)
    if updates:
        session.execute(
            update(Consent.__table__).where(Consent.__table__.c.id == bindparam("b_id"))
            .values(status=bindparam("b_status"), source=bindparam("b_source"),
                    sender_number=bindparam("b_sender_number"), updated_at=bindparam("b_updated_at"))
            , updates)
    session.execute(insert(ConsentEvent.__table__), history_rows)
    added = blocks - existed
    if added:
        session.execute(insert(ConsentSenderBlock.__table__), [
            {"id": new_id(), "sandbox_id": b[0], "phone_number": b[1], "sender_number": b[2], "created_at": now}
            for b in sorted(added)])
    for sandbox_id, number, sender in existed - blocks:
        session.execute(delete(ConsentSenderBlock).where(
            ConsentSenderBlock.sandbox_id == sandbox_id, ConsentSenderBlock.phone_number == number,
            ConsentSenderBlock.sender_number == sender))


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
    sender_number: Annotated[str | None, NoNul] = Field(
        default=None, max_length=32, description="The sender the change concerns (opt-outs block it).")
    detail: Annotated[str | None, NoNul] = Field(default=None, max_length=500, description="Why, for the history.")


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
        detail = (row.get("detail") or "").replace("\x00", "").strip()[:500] or "CSV import"
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
