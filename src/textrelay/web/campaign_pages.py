"""Campaigns: list, create, audience upload (CSV file, streamed into the importer, or a pasted
list), start and cancel, and the campaign page: progress, a delivery chart and the report.

Every rule lives in :mod:`textrelay.services.campaigns`; the chart and the progress bar are
presentation only (geometry computed here, drawn as inline SVG / CSS by the template).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from textrelay.api.pagination import page
from textrelay.errors import NotFound, TextrelayError
from textrelay.services import campaigns
from textrelay.services import channel_configurations as configs
from textrelay.services.campaigns import AudienceImport, AudienceMemberIn, CampaignCreate
from textrelay.store.models import Campaign, ChannelConfiguration, Sandbox
from textrelay.web.forms import FormErrors, form_errors
from textrelay.web.render import PageNotFound, redirect, render
from textrelay.web.session import CsrfForm, current_sandbox, flash, require_user

BASE = "/ui/campaigns"
router = APIRouter(prefix=BASE, include_in_schema=False, dependencies=[Depends(require_user)])

PAGE_SIZE = 50
FIELDS = ("name", "channel_configuration", "body", "media_urls")
CHUNK = 1 << 16
MAX_PASTED = 10_000
STATUS_LABELS = {"draft": "Draft", "running": "Running", "completed": "Completed", "canceled": "Canceled"}
# The progress bar's parts, in order: (css class, label, message statuses).
PROGRESS_PARTS = (
    ("delivered", "Delivered", ("delivered", "read")),
    ("sent", "Sent", ("sent",)),
    ("pending", "Queued / sending", ("queued", "sending")),
    ("failed", "Failed", ("failed", "undelivered")),
    ("excluded", "Excluded", ("excluded",)),
    ("canceled", "Canceled", ("canceled",)),
)
SERIES = (("delivered", "Delivered"), ("failed", "Failed"), ("excluded", "Excluded"))


def _load(session: Session, sandbox: Sandbox, campaign_id: str) -> Campaign:
    try:
        return campaigns.get(session, sandbox, campaign_id)
    except NotFound:
        raise PageNotFound(f"There is no campaign {campaign_id} in sandbox '{sandbox.name}'.") from None


# ---- presentation: progress bar and delivery chart -----------------------------------------------

def progress_bar(progress: dict[str, Any]) -> dict[str, Any]:
    """The parts of the progress bar as percentages of the audience, with their counts."""
    counts = progress["counts"]
    total = max(progress["audience_size"], progress["messages_created"], 1)
    parts = []
    for css, label, statuses in PROGRESS_PARTS:
        n = sum(counts.get(s, 0) for s in statuses)
        parts.append({"css": css, "label": label, "count": n, "pct": round(100 * n / total, 3)})
    waiting = max(progress["audience_size"] - progress["messages_created"], 0)
    done = progress["messages_finished"]
    return {"parts": parts, "waiting": waiting, "total": progress["audience_size"],
            "done_pct": int(100 * done / total) if progress["audience_size"] else 0}


def _parse_minute(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:00Z").replace(tzinfo=UTC)


def _nice_max(value: int) -> int:
    """A round axis maximum at or above ``value`` (1, 2, 5 × 10^n)."""
    if value <= 5:
        return 5
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def delivery_chart(timeline: list[dict[str, Any]], exclusions: list[dict[str, Any]],
                   width: int = 1000, height: int = 260, max_bars: int = 60) -> dict[str, Any] | None:
    """Stacked bars per minute (delivered, failed, excluded) as SVG geometry; None when empty.

    Minutes without events are drawn as gaps; long campaigns are grouped into buckets of several
    minutes so that at most ``max_bars`` bars are drawn.
    """
    per_minute: dict[str, dict[str, int]] = {}
    for point in timeline:
        row = per_minute.setdefault(point["minute"], {})
        for key, _ in SERIES:
            row[key] = row.get(key, 0) + int(point.get(key, 0) or 0)
    for point in exclusions:
        row = per_minute.setdefault(point["minute"], {})
        row["excluded"] = row.get("excluded", 0) + int(point["excluded"])
    if not per_minute:
        return None
    stamps = sorted(per_minute)
    first, last = _parse_minute(stamps[0]), _parse_minute(stamps[-1])
    minutes = int((last - first).total_seconds() // 60) + 1
    bucket = max(1, -(-minutes // max_bars))
    buckets: list[dict[str, Any]] = []
    for i in range(-(-minutes // bucket)):
        start = first + timedelta(minutes=i * bucket)
        buckets.append({"start": start, **{key: 0 for key, _ in SERIES}})
    for stamp, row in per_minute.items():
        index = int((_parse_minute(stamp) - first).total_seconds() // 60) // bucket
        for key, _ in SERIES:
            buckets[index][key] += row.get(key, 0)

    left, right, top, bottom = 48, 12, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(sum(b[key] for key, _ in SERIES) for b in buckets)
    y_max = _nice_max(peak)
    slot = plot_w / len(buckets)
    bar_w = max(2.0, min(48.0, slot * 0.7))
    bars = []
    for i, b in enumerate(buckets):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        segments = []
        for key, label in SERIES:
            n = b[key]
            if not n:
                continue
            h = plot_h * n / y_max
            y -= h
            segments.append({"css": key, "label": label, "n": n, "y": round(y, 2), "h": round(h, 2)})
        end = b["start"] + timedelta(minutes=bucket)
        title = f"{b['start']:%H:%M}–{end:%H:%M} UTC: " + ", ".join(
            f"{b[key]} {label.lower()}" for key, label in SERIES)
        bars.append({"x": round(x, 2), "w": round(bar_w, 2), "segments": segments, "title": title})
    # y_max is 5, 10, 20, 50, 100…: five equal steps are whole numbers.
    ticks = [{"y": round(top + plot_h - plot_h * v / y_max, 2), "value": v}
             for v in range(0, y_max + 1, y_max // 5)]
    label_every = max(1, -(-len(buckets) // 8))
    x_labels = [{"x": round(left + i * slot + slot / 2, 2), "text": f"{b['start']:%H:%M}"}
                for i, b in enumerate(buckets) if i % label_every == 0]
    totals = {key: sum(b[key] for b in buckets) for key, _ in SERIES}
    return {"width": width, "height": height, "left": left, "right": width - right, "top": top,
            "bottom": top + plot_h, "bars": bars, "ticks": ticks, "x_labels": x_labels,
            "bucket_minutes": bucket, "series": [{"css": k, "label": lbl, "total": totals[k]} for k, lbl in SERIES]}


# ---- pages ---------------------------------------------------------------------------------------

def _config_choices(session: Session, sandbox: Sandbox) -> list[dict[str, Any]]:
    return [{"id": c.id, "name": c.name, "channel": c.channel, "status": c.status, "sms_type": c.sms_type}
            for c in configs.list_all(session, sandbox)]


@router.get("")
def list_page(request: Request, cursor: str | None = None) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        try:
            rows, next_cursor = page(session, campaigns.list_query(sandbox), Campaign, PAGE_SIZE, cursor or None)
        except TextrelayError:
            rows, next_cursor = page(session, campaigns.list_query(sandbox), Campaign, PAGE_SIZE, None)
        names = {c.id: c.name for c in configs.list_all(session, sandbox)}
        items = []
        for c in rows:
            progress = campaigns.progress(session, c)
            items.append({**progress, "config_name": names.get(c.channel_configuration_id),
                          "bar": progress_bar(progress)})
    return render(request, "campaigns_list.html", items=items, status_labels=STATUS_LABELS,
                  next_url=f"{BASE}?cursor={next_cursor}" if next_cursor else None,
                  first_url=BASE if cursor else None)


def _form_page(request: Request, values: dict[str, str], errors: FormErrors | None = None,
               status_code: int = 200) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        choices = _config_choices(session, current_sandbox(request, session))
    return render(request, "campaigns_form.html", status_code=status_code, values=values,
                  errors=errors or FormErrors(), configurations=choices)


@router.get("/new")
def new_page(request: Request) -> HTMLResponse:
    return _form_page(request, {k: "" for k in FIELDS})


@router.post("/new")
def create(request: Request, form: CsrfForm) -> HTMLResponse:
    ctx = request.app.state.context
    values = {k: form.get(k, "") for k in FIELDS}
    media = [line.strip() for line in values["media_urls"].splitlines() if line.strip()]
    try:
        data = CampaignCreate(name=values["name"], channel_configuration=values["channel_configuration"],
                              body=values["body"], media_urls=media or None)
        with ctx.db.session() as session:
            campaign = campaigns.create(session, current_sandbox(request, session), data)
            campaign_id, name = campaign.id, campaign.name
    except (ValidationError, TextrelayError) as exc:
        errors = form_errors(exc, set(FIELDS), CampaignCreate)
        # "media_urls.3: must be an absolute http(s) URL" belongs to the media field.
        moved = [m for m in errors.general if m.startswith("media_urls.")]
        if moved and "media_urls" not in errors.fields:
            errors.fields["media_urls"] = moved[0].replace("media_urls.", "line ", 1)
        errors.general = [m for m in errors.general if m not in moved]
        return _form_page(request, values, errors, status_code=422)
    flash(request, f"Campaign '{name}' created. Add its audience, then start it.")
    return redirect(f"{BASE}/{campaign_id}")


@router.get("/{campaign_id}")
def campaign_page(request: Request, campaign_id: str) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        campaign = _load(session, sandbox, campaign_id)
        config = session.get(ChannelConfiguration, campaign.channel_configuration_id)
        progress = campaigns.progress(session, campaign, config)
        report = campaigns.report(session, campaign)
        exclusions = campaigns.exclusion_timeline(session, campaign)
        config_view = {"id": config.id, "name": config.name, "channel": config.channel,
                       "sms_type": config.sms_type, "status": config.status} if config else None
    imported = request.session.pop("audience_import", None)
    if imported and imported.get("id") != campaign_id:
        imported = None
    return render(request, "campaigns_detail.html", campaign=progress, report=report, config=config_view,
                  bar=progress_bar(progress), chart=delivery_chart(report["timeline"], exclusions),
                  imported=imported, status_labels=STATUS_LABELS, refresh=progress["status"] == "running",
                  counts=sorted(report["counts"].items(), key=lambda kv: -kv[1]))


def _remember_import(request: Request, campaign_id: str, report: Any = None, error: str | None = None) -> None:
    outcome: dict[str, Any] = {"id": campaign_id}
    if report is not None:
        rows = [{k: (str(v)[:160] if k == "reason" else v) for k, v in r.items()} for r in report.rejected_rows]
        outcome.update(accepted=report.accepted, rejected=report.rejected, rejected_rows=rows,
                       audience_size=report.audience_size)
    if error:
        outcome["error"] = error[:500]
    # Shown once by the campaign page (POST/redirect/GET).
    request.session["audience_import"] = outcome


@router.post("/{campaign_id}/audience")
async def upload_audience(request: Request, campaign_id: str, form: CsrfForm) -> RedirectResponse:
    """A CSV file (multipart): read in chunks from its spooled upload and fed to the same importer
    as ``POST /api/v1/campaigns/{id}/audience``; memory holds one chunk and one batch."""
    ctx = request.app.state.context
    upload = (await request.form()).get("file")  # the form is parsed once; this is the cached copy
    with ctx.db.session() as session:
        sandbox = current_sandbox(request, session)
        _load(session, sandbox, campaign_id)
    if not isinstance(upload, UploadFile) or not upload.filename:
        _remember_import(request, campaign_id, error="Choose a CSV file to upload.")
        return redirect(f"{BASE}/{campaign_id}#audience")
    try:
        importer = await run_in_threadpool(AudienceImport, ctx.db, sandbox, campaign_id,
                                           form.get("phone_column") or None)
        while chunk := await upload.read(CHUNK):
            await run_in_threadpool(importer.feed, chunk)
        report = await run_in_threadpool(importer.finish_csv)
    except TextrelayError as exc:
        message = exc.errors[0]["message"] if exc.errors else exc.detail
        if exc.errors and exc.errors[0].get("field") == "query.phone_column":
            message = message.replace("with ?phone_column=", "in “Phone column”")
        _remember_import(request, campaign_id, error=message)
        return redirect(f"{BASE}/{campaign_id}#audience")
    finally:
        await upload.close()
    _remember_import(request, campaign_id, report)
    return redirect(f"{BASE}/{campaign_id}#audience")


@router.post("/{campaign_id}/audience/paste")
def paste_audience(request: Request, campaign_id: str, form: CsrfForm) -> RedirectResponse:
    """A pasted list: one phone number per line (commas and semicolons also separate)."""
    ctx = request.app.state.context
    raw = form.get("numbers", "").replace(",", "\n").replace(";", "\n")
    numbers = [line.strip() for line in raw.splitlines() if line.strip()]
    with ctx.db.session() as session:
        sandbox = current_sandbox(request, session)
        _load(session, sandbox, campaign_id)
    if not numbers:
        _remember_import(request, campaign_id, error="Paste at least one phone number.")
    elif len(numbers) > MAX_PASTED:
        _remember_import(request, campaign_id, error=f"At most {MAX_PASTED:,} pasted numbers; upload a CSV file "
                                                     "for a larger audience.")
    else:
        try:
            importer = AudienceImport(ctx.db, sandbox, campaign_id)
            report = importer.add_members([AudienceMemberIn(to=n[:64]) for n in numbers])
        except TextrelayError as exc:
            _remember_import(request, campaign_id, error=exc.detail)
        else:
            # The importer numbers pasted rows from 0; people count lines from 1.
            for row in report.rejected_rows:
                row["line"] = row.pop("index", 0) + 1
            _remember_import(request, campaign_id, report)
    return redirect(f"{BASE}/{campaign_id}#audience")


@router.post("/{campaign_id}/start")
def start(request: Request, campaign_id: str, _form: CsrfForm) -> RedirectResponse:
    ctx = request.app.state.context
    try:
        with ctx.db.session() as session:
            sandbox = current_sandbox(request, session)
            _load(session, sandbox, campaign_id)
            name = campaigns.start(session, sandbox, campaign_id).name
    except TextrelayError as exc:
        flash(request, f"Campaign not started: {exc.detail}", "error")
    else:
        flash(request, f"Campaign '{name}' started.")
    return redirect(f"{BASE}/{campaign_id}")


@router.post("/{campaign_id}/cancel")
def cancel(request: Request, campaign_id: str, _form: CsrfForm) -> RedirectResponse:
    ctx = request.app.state.context
    try:
        with ctx.db.session() as session:
            sandbox = current_sandbox(request, session)
            _load(session, sandbox, campaign_id)
            canceled = campaigns.cancel(session, sandbox, campaign_id)
    except TextrelayError as exc:
        flash(request, f"Campaign not canceled: {exc.detail}", "error")
    else:
        flash(request, f"Campaign canceled; {canceled} queued message(s) will not be sent.", "info")
    return redirect(f"{BASE}/{campaign_id}")
