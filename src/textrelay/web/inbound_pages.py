"""Admin UI: SMS settings > Webhooks, Consent lookup, and Inbound messages.

Every page calls the same services as ``/api/v1/webhooks``, ``/api/v1/consent`` and
``/api/v1/inbound-messages``; validation errors come back named by field, as in the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from textrelay.api.deps import public_base_url
from textrelay.domain.keywords import CATEGORIES
from textrelay.errors import NotFound, TextrelayError, ValidationFailed
from textrelay.inbound import events
from textrelay.services import consent, inbound_messages, webhooks
from textrelay.store.models import Credential
from textrelay.web.render import PageNotFound, redirect, render
from textrelay.web.session import CsrfForm, csrf_form, current_sandbox, current_user, flash, require_user

router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(require_user)])

CATEGORY_LABELS = {"opt_in": "Opt-in", "opt_out": "Opt-out", "double_opt_in": "Double opt-in", "help": "Help",
                   "custom": "Custom"}
IMPORT_CHUNK = 64 * 1024


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return {".".join(str(p) for p in e["loc"]): str(e["msg"]).removeprefix("Value error, ")
                for e in exc.errors()}
    if isinstance(exc, TextrelayError):
        return {e.get("field", "general"): e.get("message", exc.detail) for e in exc.errors} or {"general": exc.detail}
    raise exc


# --- Webhooks --------------------------------------------------------------------------------

@router.get("/webhooks")
def webhooks_page(request: Request) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        base = public_base_url(request)
        items = [webhooks.view(h, session.get(Credential, h.credential_id), base)
                 for h in webhooks.list_all(session, sandbox)]
        try:
            destination: dict[str, Any] | None = events.destination_view(
                events.get_destination(session, sandbox), sandbox)
        except NotFound:
            destination = None
    return render(request, "webhooks_list.html", items=items, labels=CATEGORY_LABELS, destination=destination,
                  event_types=events.EVENT_TYPES)


@router.post("/webhooks/events")
def events_destination_save(request: Request, form: CsrfForm) -> RedirectResponse:
    """Events out: where inbound messages and consent changes are forwarded."""
    ctx = request.app.state.context
    chosen = [t for t in events.EVENT_TYPES if form.get(f"event.{t}")]
    try:
        data = events.DestinationSet.model_validate({"url": form.get("url", ""), "events": chosen,
                                                     "secret": form.get("secret") or None,
                                                     "enabled": bool(form.get("enabled"))})
        with ctx.db.session() as session:
            sandbox = current_sandbox(request, session)
            _row, generated = events.set_destination(session, ctx.keyring, sandbox, data)
    except (ValidationError, TextrelayError) as exc:
        flash(request, "Events were not saved: " + "; ".join(f"{k}: {v}" for k, v in _errors(exc).items()), "error")
        return redirect("/ui/webhooks")
    flash(request, "Events destination saved." + (f" Signing secret, shown once: {generated}" if generated else ""))
    return redirect("/ui/webhooks")


def _webhook_form(request: Request, view: dict[str, Any], values: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    if values is None:
        values = {"name": view["name"], "sender_number": view["sender_number"] or ""}
        if view["type"] == "inbound":
            for category in CATEGORIES:
                values[f"keywords.{category}"] = ", ".join(view["keywords"][category])
                values[f"replies.{category}"] = view["replies"][category]
            values["default_reply"] = view["default_reply"] or ""
            values["revocation_policy"] = view["revocation_policy"]
            values["revocation_reply"] = view["revocation_reply"] or ""
    return render(request, "webhooks_form.html", status_code=status_code, hook=view, values=values,
                  errors=errors or {}, categories=CATEGORIES, labels=CATEGORY_LABELS)


def _load_view(request: Request, session: Any, webhook_id: str) -> dict[str, Any]:
    sandbox = current_sandbox(request, session)
    try:
        hook = webhooks.get(session, sandbox, webhook_id)
    except NotFound as exc:
        raise PageNotFound(exc.detail) from None
    return webhooks.view(hook, session.get(Credential, hook.credential_id), public_base_url(request))


@router.get("/webhooks/{webhook_id}")
def webhook_page(request: Request, webhook_id: str) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        view = _load_view(request, session, webhook_id)
    return _webhook_form(request, view)


def _split_keywords(text: str) -> list[str]:
    return [w.strip() for w in text.replace("\n", ",").split(",") if w.strip()]


@router.post("/webhooks/{webhook_id}", response_model=None)
def webhook_save(request: Request, webhook_id: str, form: CsrfForm) -> HTMLResponse | RedirectResponse:
    ctx = request.app.state.context
    with ctx.db.session() as session:
        view = _load_view(request, session, webhook_id)
    data: dict[str, Any] = {"name": form.get("name", ""), "sender_number": form.get("sender_number") or None}
    if view["type"] == "inbound":
        data["keywords"] = {c: _split_keywords(form.get(f"keywords.{c}", "")) for c in CATEGORIES}
        data["replies"] = {c: form.get(f"replies.{c}", "") for c in CATEGORIES}
        data["default_reply"] = form.get("default_reply") or None
        data["revocation_policy"] = form.get("revocation_policy") or "opt_out"
        data["revocation_reply"] = form.get("revocation_reply") or None
    try:
        update = webhooks.WebhookUpdate.model_validate(data)
        with ctx.db.session() as session:
            webhooks.update(session, current_sandbox(request, session), webhook_id, update)
    except (ValidationError, TextrelayError) as exc:
        return _webhook_form(request, view, values=form, errors=_errors(exc), status_code=422)
    flash(request, f"Webhook '{update.name or view['name']}' saved.")
    return redirect(f"/ui/webhooks/{webhook_id}")


# --- Consent ---------------------------------------------------------------------------------

@router.get("/consent")
def consent_page(request: Request, number: str = "", status: str = "") -> HTMLResponse:
    found: dict[str, Any] | None = None
    errors: dict[str, str] = {}
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        if number.strip():
            try:
                found = consent.lookup(session, sandbox, number)
            except ValidationFailed:
                errors["number"] = f"'{number}' is not a phone number; use E.164, e.g. +14155550100"
        try:
            rows, _ = consent.list_page(session, sandbox, status or None, 50, None)
        except ValidationFailed:
            rows, status = [], ""
        recent = [consent.view(session, sandbox, r.phone_number, r, with_history=False) for r in rows]
    return render(request, "consent_lookup.html", number=number, found=found, errors=errors, recent=recent,
                  status=status, statuses=consent.STATUSES, import_result=request.session.pop("consent_import", None))


@router.post("/consent/set", response_model=None)
def consent_set(request: Request, form: CsrfForm) -> HTMLResponse | RedirectResponse:
    number = form.get("number", "")
    try:
        data = consent.ConsentSet.model_validate({"status": form.get("status", ""),
                                                  "sender_number": form.get("sender_number") or None,
                                                  "detail": form.get("detail") or None})
        with request.app.state.context.db.session() as session:
            row = consent.set_by_api(session, current_sandbox(request, session), number, data,
                                     actor=f"UI user {current_user(request)}")
            phone = row.phone_number
    except (ValidationError, TextrelayError) as exc:
        flash(request, "; ".join(f"{k}: {v}" for k, v in _errors(exc).items()), "error")
        return redirect(f"/ui/consent?number={quote(number)}")
    flash(request, f"Consent of {phone} set to {data.status.replace('_', ' ')}.")
    return redirect(f"/ui/consent?number={quote(phone)}")


@router.post("/consent/import")
async def consent_import(request: Request) -> RedirectResponse:
    """A CSV file (multipart), read in chunks from its spooled upload into the same importer as the API."""
    import asyncio
    import codecs

    await csrf_form(request)
    upload = (await request.form()).get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        flash(request, "Choose a CSV file to import.", "error")
        return redirect("/ui/consent")
    ctx = request.app.state.context
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        with ctx.db.session() as session:
            job = consent.ConsentImport(session, current_sandbox(request, session))
            pending = ""
            while chunk := await upload.read(IMPORT_CHUNK):
                try:
                    pending += decoder.decode(chunk)
                except UnicodeDecodeError:
                    raise ValidationFailed.field("file", "the CSV is not UTF-8 text") from None
                *lines, pending = pending.split("\n")
                await asyncio.to_thread(job.feed, [line + "\n" for line in lines])
            job.feed([pending] if pending else [])
            counts = job.finish()
    except TextrelayError as exc:
        shown = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors[:5]) or exc.detail
        flash(request, f"Nothing was imported. {exc.detail} {shown}", "error")
        return redirect("/ui/consent")
    finally:
        await upload.close()
    flash(request, f"Imported {counts['rows']} rows: {counts['changed']} changed, {counts['unchanged']} unchanged.")
    return redirect("/ui/consent")


@router.get("/consent/export.csv")
def consent_export(request: Request) -> StreamingResponse:
    ctx = request.app.state.context
    with ctx.db.session() as session:
        sandbox = current_sandbox(request, session)

    def rows() -> Iterator[str]:
        with ctx.db.session() as session:
            yield from consent.export_csv(session, sandbox)

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="consent-{sandbox.name}.csv"',
                                      "Cache-Control": "no-store"})


# --- Inbound messages ------------------------------------------------------------------------

@router.get("/inbound")
def inbound_page(request: Request, from_number: str = "", category: str = "", q: str = "",
                 cursor: str = "") -> HTMLResponse:
    filters = inbound_messages.Filters(from_number=from_number or None, category=category or None, text=q or None)
    errors: dict[str, str] = {}
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        try:
            rows, next_cursor = inbound_messages.list_page(session, sandbox, filters, 50, cursor or None)
        except ValidationFailed as exc:
            errors = _errors(exc)
            rows, next_cursor = [], None
    items = [inbound_messages.view(r) for r in rows]
    return render(request, "inbound_list.html", items=items, next_cursor=next_cursor, errors=errors,
                  filters={"from_number": from_number, "category": category, "q": q},
                  categories=CATEGORIES, labels=CATEGORY_LABELS, filtered=bool(from_number or category or q))
