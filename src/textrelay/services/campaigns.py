"""Campaigns: one template sent to a whole audience, streamed, with progress and a report.

A campaign is created as a ``draft``; its audience is uploaded (CSV streamed in chunks, or an
inline JSON list) into ``audience_members`` in batches, so memory does not grow with the audience.
``start`` checks the template against the first member and marks it ``running``; the delivery
worker then expands it into messages a slice at a time (``textrelay.delivery.campaigns``) and marks
it ``completed`` when no message is left to send. ``cancel`` stops it and cancels what is queued.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from textrelay.domain.numbers import normalize_e164
from textrelay.errors import Conflict, NotFound, ValidationFailed
from textrelay.services import channel_configurations as configs
from textrelay.services import messages
from textrelay.store.db import Database
from textrelay.store.models import (
    AudienceMember,
    Campaign,
    ChannelConfiguration,
    Message,
    MessageEvent,
    Sandbox,
    utcnow,
)

STATUSES = ("draft", "running", "completed", "canceled")
BATCH = 1000
SAMPLE_REJECTIONS = 10


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel_configuration: str = Field(min_length=1, max_length=100, description="Id or name.")
    body: str = Field(default="", max_length=20_000, description="A template, rendered per audience member.")
    media_urls: list[str] | None = Field(default=None, description="MMS only; at most 10 http(s) URLs.")


class AudienceMemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(default=None, max_length=64)
    profile: dict[str, Any] | None = None


class AudienceJson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[AudienceMemberIn] = Field(max_length=100_000)


# ---- campaigns -----------------------------------------------------------------------------------

def create(session: Session, sandbox: Sandbox, data: CampaignCreate) -> Campaign:
    config = configs.find(session, sandbox, data.channel_configuration)
    if config.channel == "rcs":
        # A campaign renders one text template; RCS needs rich content per message.
        raise ValidationFailed.field("channel_configuration", "campaigns send sms or mms; for rcs send each "
                                                              "message with POST /api/v1/messages and its rcs content")
    media = messages.check_media(config.channel, data.media_urls)
    messages.check_template(data.body)
    if not data.body.strip() and not media:
        raise ValidationFailed.field("body", "the message is empty (give a body, or media on an mms channel)")
    campaign = Campaign(sandbox_id=sandbox.id, name=data.name.strip(), channel_configuration_id=config.id,
                        body=data.body, media_urls=media, status="draft")
    session.add(campaign)
    session.flush()
    return campaign


def get(session: Session, sandbox: Sandbox, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.sandbox_id != sandbox.id:
        raise NotFound(f"campaign {campaign_id} does not exist in sandbox '{sandbox.name}'")
    return campaign


def list_query(sandbox: Sandbox, status: str | None = None) -> Any:
    query = select(Campaign).where(Campaign.sandbox_id == sandbox.id)
    if status:
        if status not in STATUSES:
            raise ValidationFailed.field("query.status", f"must be one of {', '.join(STATUSES)}")
        query = query.where(Campaign.status == status)
    return query


def _member_profile(member: AudienceMember | Any, execution_field: str) -> dict[str, Any]:
    profile = dict(member.attributes or {})
    profile.setdefault(execution_field, member.phone_number)
    return profile


def start(session: Session, sandbox: Sandbox, campaign_id: str) -> Campaign:
    """Check the template against the first member, then mark the campaign ``running``."""
    campaign = get(session, sandbox, campaign_id)
    if campaign.status != "draft":
        raise Conflict(f"campaign '{campaign.name}' is {campaign.status}; only a draft can be started",
                       errors=[{"field": "status", "message": campaign.status}])
    if campaign.audience_size == 0:
        raise ValidationFailed.field("audience", "the campaign has no audience yet; upload one first")
    config = configs.find_active(session, sandbox, campaign.channel_configuration_id)
    first = session.scalar(select(AudienceMember).where(AudienceMember.campaign_id == campaign.id)
                           .order_by(AudienceMember.seq).limit(1))
    assert first is not None
    try:
        messages.render_body(campaign.body, _member_profile(first, config.execution_field),
                             bool(campaign.media_urls))
    except ValidationFailed as exc:
        raise ValidationFailed(f"{exc.detail} (checked against the first audience member, "
                               f"{first.phone_number})", errors=exc.errors, **exc.extra) from None
    now = utcnow()
    changed = session.execute(update(Campaign).where(Campaign.id == campaign.id, Campaign.status == "draft")
                              .values(status="running", started_at=now)).rowcount
    if not changed:
        raise Conflict(f"campaign '{campaign.name}' changed while starting; try again")
    session.refresh(campaign)
    return campaign


def cancel(session: Session, sandbox: Sandbox, campaign_id: str) -> int:
    """Stop the campaign; every still-queued message becomes ``canceled``. Returns how many."""
    campaign = get(session, sandbox, campaign_id)
    if campaign.status not in ("draft", "running"):
        raise Conflict(f"campaign '{campaign.name}' is already {campaign.status}",
                       errors=[{"field": "status", "message": campaign.status}])
    now = utcnow()
    changed = session.execute(update(Campaign).where(Campaign.id == campaign.id,
                                                     Campaign.status.in_(("draft", "running")))
                              .values(status="canceled", finished_at=now)).rowcount
    if not changed:
        raise Conflict(f"campaign '{campaign.name}' changed while canceling; try again")
    canceled = [row[0] for row in session.execute(
        update(Message).where(Message.campaign_id == campaign.id, Message.status == "queued")
        .values(status="canceled", final_at=now, updated_at=now, next_attempt_at=None,
                error_message="campaign canceled")
        .returning(Message.id))]
    for start_at in range(0, len(canceled), BATCH):
        session.execute(insert(MessageEvent), [
            {"message_id": mid, "status": "canceled", "source": "campaign", "detail": "campaign canceled", "at": now}
            for mid in canceled[start_at:start_at + BATCH]])
    session.refresh(campaign)
    return len(canceled)


def counts(session: Session, campaign_id: str) -> dict[str, int]:
    return {status: n for status, n in session.execute(
        select(Message.status, func.count()).where(Message.campaign_id == campaign_id).group_by(Message.status))}


def progress(session: Session, campaign: Campaign, config: ChannelConfiguration | None = None) -> dict[str, Any]:
    per_status = counts(session, campaign.id)
    unfinished = per_status.get("queued", 0) + per_status.get("sending", 0)
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "channel_configuration": campaign.channel_configuration_id,
        "channel_configuration_name": config.name if config else None,
        "body": campaign.body,
        "media_urls": campaign.media_urls or [],
        "audience_size": campaign.audience_size,
        "audience_rejected": campaign.audience_rejected,
        "messages_created": campaign.messages_created,
        "messages_finished": campaign.messages_created - unfinished,
        "counts": per_status,
        "error": campaign.error,
        "created_at": campaign.created_at.isoformat(),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }


def _minute(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%dT%H:%M:00Z", column)
    return func.to_char(func.date_trunc("minute", column), 'YYYY-MM-DD"T"HH24:MI:00"Z"')


def report(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Counts per status, errors by code and message, exclusions by reason, and a per-minute timeline."""
    cid = campaign.id
    errors = [
        {"code": code, "message": message, "count": n}
        for code, message, n in session.execute(
            select(Message.error_code, Message.error_message, func.count())
            .where(Message.campaign_id == cid, Message.status.in_(("failed", "undelivered")))
            .group_by(Message.error_code, Message.error_message).order_by(func.count().desc()))
    ]
    exclusions = [
        {"reason": reason, "count": n}
        for reason, n in session.execute(
            select(Message.error_message, func.count())
            .where(Message.campaign_id == cid, Message.status == "excluded")
            .group_by(Message.error_message).order_by(func.count().desc()))
    ]
    at = func.coalesce(Message.final_at, Message.updated_at)
    minute = _minute(session, at).label("minute")
    timeline: dict[str, dict[str, Any]] = {}
    for stamp, status, n in session.execute(
            select(minute, Message.status, func.count())
            .where(Message.campaign_id == cid, Message.status.in_(("delivered", "read", "failed", "undelivered")))
            .group_by(minute, Message.status).order_by(minute)):
        point = timeline.setdefault(stamp, {"minute": stamp, "delivered": 0, "failed": 0})
        point["delivered" if status in ("delivered", "read") else "failed"] += n
    return {
        "id": cid,
        "name": campaign.name,
        "status": campaign.status,
        "audience_size": campaign.audience_size,
        "audience_rejected": campaign.audience_rejected,
        "messages_created": campaign.messages_created,
        "counts": counts(session, cid),
        "errors": errors,
        "exclusions": exclusions,
        "timeline": [timeline[k] for k in sorted(timeline)],
    }


def view(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id, "name": campaign.name, "status": campaign.status,
        "channel_configuration": campaign.channel_configuration_id, "audience_size": campaign.audience_size,
        "audience_rejected": campaign.audience_rejected, "messages_created": campaign.messages_created,
        "created_at": campaign.created_at.isoformat(),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }


# ---- audience upload -----------------------------------------------------------------------------

@dataclass
class ImportReport:
    accepted: int = 0
    rejected: int = 0
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    audience_size: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected, "rejected_rows": self.rejected_rows,
                "audience_size": self.audience_size}


class AudienceImport:
    """Adds members to a draft campaign's audience, committing every ``batch`` rows.

    CSV arrives in chunks of bytes of any size (``feed``); records are cut at line ends outside
    quotes, so a quoted field may hold newlines and a chunk may end anywhere. Memory holds one
    chunk and one batch, whatever the audience size. Bad rows are counted and the first few are
    reported with their line number; they do not stop the import.
    """

    def __init__(self, db: Database, sandbox: Sandbox, campaign_id: str, phone_column: str | None = None,
                 batch: int = BATCH) -> None:
        self.db = db
        self.batch = batch
        self.phone_column = phone_column.strip() if phone_column else None
        with db.session() as session:
            campaign = get(session, sandbox, campaign_id)
            _require_draft(campaign)
            config = session.get(ChannelConfiguration, campaign.channel_configuration_id)
            self.execution_field = config.execution_field if config else "mobilePhone"
        self.campaign_id = campaign_id
        self.report = ImportReport()
        self._pending: list[dict[str, Any]] = []
        self._pending_rejected = 0
        # CSV state
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._partial = ""  # text after the last line end
        self._record: list[str] = []  # lines of a record still inside quotes
        self._record_quotes = 0
        self._line = 0  # physical lines consumed
        self._record_line = 1
        self._header: list[str] | None = None
        self._phone_index = -1

    # -- CSV -------------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError:
            raise ValidationFailed.field("body", f"the CSV is not UTF-8 text (near line {self._line + 1})") from None
        if not text:
            return
        text = self._partial + text
        lines = text.splitlines(keepends=True)
        # The last piece has no line end yet (or ends in a bare '\r' that may precede '\n').
        if lines and not lines[-1].endswith("\n"):
            self._partial = lines.pop()
        else:
            self._partial = ""
        self._take_lines(lines)

    def finish_csv(self) -> ImportReport:
        try:
            tail = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ValidationFailed.field("body", "the CSV ends in the middle of a UTF-8 character") from None
        rest = self._partial + tail
        self._partial = ""
        if rest:
            self._take_lines([rest])
        if self._record:
            self._rows_from([("".join(self._record), self._record_line)], unterminated=True)
            self._record = []
        if self._header is None:
            raise ValidationFailed.field("body", "the CSV is empty: it needs a header line with a phone column")
        self._flush()
        return self.report

    def _take_lines(self, lines: list[str]) -> None:
        records: list[tuple[str, int]] = []
        for line in lines:
            self._line += 1
            if not self._record:
                self._record_line = self._line
                self._record_quotes = 0
            self._record.append(line)
            self._record_quotes += line.count('"')
            if self._record_quotes % 2 == 0:
                records.append(("".join(self._record), self._record_line))
                self._record = []
        if records:
            self._rows_from(records)

    def _rows_from(self, records: list[tuple[str, int]], unterminated: bool = False) -> None:
        texts = [text for text, _ in records]
        for (_, line), row in zip(records, csv.reader(texts), strict=True):
            if self._header is None:
                if not any(cell.strip() for cell in row):
                    continue
                self._set_header(row)
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if unterminated:
                self._reject(line, "a quoted field is never closed")
            elif len(row) != len(self._header):
                self._reject(line, f"has {len(row)} fields; the header has {len(self._header)}")
            else:
                self._add(line, row[self._phone_index],
                          {k: v for i, (k, v) in enumerate(zip(self._header, row, strict=True))
                           if i != self._phone_index})

    def _set_header(self, row: list[str]) -> None:
        header = [cell.strip() for cell in row]
        if any(not h for h in header):
            raise ValidationFailed.field("body", "the CSV header has an empty column name")
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise ValidationFailed.field("body", f"the CSV header repeats column(s) {', '.join(dupes)}")
        if self.phone_column:
            if self.phone_column not in header:
                raise ValidationFailed.field("query.phone_column", f"no column '{self.phone_column}' in the CSV "
                                                                   f"header ({', '.join(header)})")
            phone = self.phone_column
        elif "phone" in header:
            phone = "phone"
        elif self.execution_field in header:
            phone = self.execution_field
        else:
            raise ValidationFailed.field(
                "query.phone_column", f"the CSV has no 'phone' or '{self.execution_field}' column; name the "
                f"phone column with ?phone_column= (columns: {', '.join(header)})")
        self._header = header
        self._phone_index = header.index(phone)

    # -- JSON ------------------------------------------------------------------------------------
    def add_members(self, members: list[AudienceMemberIn]) -> ImportReport:
        for i, member in enumerate(members):
            profile = dict(member.profile or {})
            number = member.to if member.to else profile.get(self.execution_field)
            if number in (None, ""):
                self._reject(i, f"no `to` and no '{self.execution_field}' in the profile", key="index")
                continue
            self._add(i, str(number), profile, key="index")
        self._flush()
        return self.report

    # -- common ----------------------------------------------------------------------------------
    def _add(self, where: int, raw_number: str, attributes: dict[str, Any], key: str = "line") -> None:
        try:
            number = normalize_e164(raw_number, "phone")
        except ValidationFailed as exc:
            self._reject(where, exc.errors[0]["message"] if exc.errors else exc.detail, key=key)
            return
        self._pending.append({"campaign_id": self.campaign_id, "phone_number": number, "attributes": attributes})
        self.report.accepted += 1
        if len(self._pending) >= self.batch:
            self._flush()

    def _reject(self, where: int, reason: str, key: str = "line") -> None:
        self.report.rejected += 1
        self._pending_rejected += 1
        if len(self.report.rejected_rows) < SAMPLE_REJECTIONS:
            self.report.rejected_rows.append({key: where, "reason": reason})

    def _flush(self) -> None:
        rows, self._pending = self._pending, []
        rejected, self._pending_rejected = self._pending_rejected, 0
        with self.db.session() as session:
            # Reserve the sequence numbers first, atomically: concurrent uploads to one campaign
            # get disjoint ranges, and members stay numbered without gaps (expansion relies on it).
            reserved = session.execute(
                update(Campaign).where(Campaign.id == self.campaign_id, Campaign.status == "draft")
                .values(audience_size=Campaign.audience_size + len(rows),
                        audience_rejected=Campaign.audience_rejected + rejected)
                .returning(Campaign.audience_size)).first()
            if reserved is None:
                campaign = session.get(Campaign, self.campaign_id)
                if campaign is None:
                    raise NotFound(f"campaign {self.campaign_id} no longer exists")
                _require_draft(campaign)
                raise Conflict("the campaign changed during the upload; try again")
            size = reserved[0]
            for seq, row in enumerate(rows, start=size - len(rows)):
                row["seq"] = seq
            if rows:
                session.execute(insert(AudienceMember), rows)
            self.report.audience_size = size


def _require_draft(campaign: Campaign) -> None:
    if campaign.status != "draft":
        raise Conflict(f"campaign '{campaign.name}' is {campaign.status}; the audience can only change "
                       "while it is a draft", errors=[{"field": "status", "message": campaign.status}])


def import_csv_file(db: Database, sandbox: Sandbox, campaign_id: str, path: str,
                    phone_column: str | None = None, chunk_size: int = 1 << 16) -> ImportReport:
    """The CLI's upload: the same importer, fed from a file."""
    importer = AudienceImport(db, sandbox, campaign_id, phone_column)
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            importer.feed(chunk)
    return importer.finish_csv()



# ---- read model for the admin UI's delivery chart ------------------------------------------------

def exclusion_timeline(session: Session, campaign: Campaign) -> list[dict[str, Any]]:
    """Messages excluded per minute (``{"minute", "excluded"}``), on the same minutes as ``report``'s
    timeline, so a chart can show exclusions beside deliveries and failures."""
    minute = _minute(session, func.coalesce(Message.final_at, Message.updated_at)).label("minute")
    return [{"minute": stamp, "excluded": n} for stamp, n in session.execute(
        select(minute, func.count()).where(Message.campaign_id == campaign.id, Message.status == "excluded")
        .group_by(minute).order_by(minute))]
