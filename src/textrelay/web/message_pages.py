"""Messages: the list (filters, newest first, cursor paging), one message with its history, and a
small "Send a message" form that goes through the same service as ``POST /api/v1/messages``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from textrelay.api.pagination import page
from textrelay.errors import NotFound, TextrelayError
from textrelay.services import campaigns, messages
from textrelay.services import channel_configurations as configs
from textrelay.services.messages import SendRequest
from textrelay.store.models import Campaign, Message, Sandbox, utcnow
from textrelay.web.forms import FormErrors, form_errors
from textrelay.web.render import PageNotFound, redirect, render
from textrelay.web.session import CsrfForm, current_sandbox, flash, require_user

BASE = "/ui/messages"
router = APIRouter(prefix=BASE, include_in_schema=False, dependencies=[Depends(require_user)])

PAGE_SIZE = 50
FILTERS = ("status", "to", "campaign_id", "channel_configuration")
SEND_FIELDS = ("channel_configuration", "to", "body")
# The campaigns offered in the filter: the newest ones (any other can still be given by id).
CAMPAIGN_CHOICES = 200
REFRESH_WINDOW = timedelta(minutes=10)


def stamp(value: datetime | None) -> str:
    """A history timestamp to the millisecond: ``2025-05-01 14:03:07.123 UTC``."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC" if value else ""


def _names(session: Session, sandbox: Sandbox) -> dict[str, str]:
    return {c.id: c.name for c in configs.list_all(session, sandbox)}


def _campaign_choices(session: Session, sandbox: Sandbox) -> list[dict[str, str]]:
    rows = session.scalars(campaigns.list_query(sandbox)
                           .order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(CAMPAIGN_CHOICES))
    return [{"id": c.id, "name": c.name} for c in rows]


@router.get("")
def list_page(request: Request, cursor: str | None = None) -> HTMLResponse:
    filters = {k: (request.query_params.get(k) or "").strip()[:100] for k in FILTERS}
    errors = FormErrors()
    rows: list[Message] = []
    next_cursor = None
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        names = _names(session, sandbox)
        campaign_choices = _campaign_choices(session, sandbox)
        try:
            query = messages.list_query(session, sandbox, **{k: v or None for k, v in filters.items()})
            rows, next_cursor = page(session, query, Message, PAGE_SIZE, cursor or None, newest_first=True)
        except TextrelayError as exc:
            # The service names query fields "query.to"; the form names them "to".
            for e in exc.errors:
                e["field"] = str(e.get("field", "")).removeprefix("query.")
            errors = form_errors(exc, set(FILTERS))
        items = [messages.view(m) for m in rows]
    campaign_names = {c["id"]: c["name"] for c in campaign_choices}
    active = {k: v for k, v in filters.items() if v}
    next_url = f"{BASE}?{urlencode({**active, 'cursor': next_cursor})}" if next_cursor else None
    return render(request, "messages_list.html", status_code=422 if errors else 200, items=items,
                  filters=filters, filtered=bool(active), errors=errors, next_url=next_url,
                  first_url=f"{BASE}?{urlencode(active)}" if cursor else None, statuses=messages.STATUSES,
                  config_names=names, campaign_choices=campaign_choices, campaign_names=campaign_names)


def _send_page(request: Request, values: dict[str, str], errors: FormErrors | None = None,
               status_code: int = 200) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        choices = [{"id": c.id, "name": c.name, "channel": c.channel, "status": c.status}
                   for c in configs.list_all(session, sandbox)]
    return render(request, "messages_send.html", status_code=status_code, values=values,
                  errors=errors or FormErrors(), configurations=choices)


@router.get("/new")
def send_page(request: Request, channel_configuration: str = "") -> HTMLResponse:
    return _send_page(request, {"channel_configuration": channel_configuration[:100], "to": "", "body": ""})


@router.post("/new")
def send(request: Request, form: CsrfForm) -> HTMLResponse:
    ctx = request.app.state.context
    values = {k: form.get(k, "") for k in SEND_FIELDS}
    try:
        data = SendRequest(channel_configuration=values["channel_configuration"], to=values["to"] or None,
                           body=values["body"])
        with ctx.db.session() as session:
            answer = messages.send(session, current_sandbox(request, session), data).body
    except (ValidationError, TextrelayError) as exc:
        return _send_page(request, values, form_errors(exc, set(SEND_FIELDS), SendRequest), status_code=422)
    if answer["status"] == "excluded":
        flash(request, f"Message to {answer['to']} not sent: {answer.get('excluded_reason')}.", "info")
    else:
        flash(request, f"Message to {answer['to']} queued ({answer['segments']} segment(s), {answer['encoding']}).")
    return redirect(f"{BASE}/{answer['id']}")


@router.get("/{message_id}")
def detail_page(request: Request, message_id: str) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        try:
            message = messages.get(session, sandbox, message_id)
        except NotFound:
            raise PageNotFound(f"There is no message {message_id} in sandbox '{sandbox.name}'.") from None
        events = messages.history(session, message.id)
        item = messages.view(message)
        history = [{"status": e.status, "source": e.source, "detail": e.detail, "error_code": e.error_code,
                    "at": stamp(e.at)} for e in events]
        times = {k: stamp(getattr(message, k)) for k in ("created_at", "updated_at", "sent_at", "final_at",
                                                          "next_attempt_at", "valid_until")}
        config_name = _names(session, sandbox).get(message.channel_configuration_id)
        campaign: dict[str, Any] | None = None
        if message.campaign_id:
            try:
                c = campaigns.get(session, sandbox, message.campaign_id)
                campaign = {"id": c.id, "name": c.name}
            except NotFound:
                campaign = None
    # Refresh while the message is on its way (not forever: a receipt may never come).
    recent = utcnow() - message.updated_at < REFRESH_WINDOW
    refresh = item["status"] not in messages.FINAL_STATUSES and recent
    return render(request, "messages_detail.html", message=item, history=history, times=times,
                  config_name=config_name, campaign=campaign, refresh=refresh)
