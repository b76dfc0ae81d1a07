"""Administration > Channels > Channel configurations: list, create, edit, delete.

Every rule lives in :mod:`textrelay.services.channel_configurations`; these pages turn forms into
its requests and its answers (and errors) into HTML. "Save as draft" saves with status ``draft``,
"Submit" with status ``active`` (a configuration messages can be sent with).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from textrelay.errors import Conflict, NotFound, TextrelayError
from textrelay.services import channel_configurations as configs
from textrelay.services import credentials
from textrelay.services.channel_configurations import ChannelConfigurationCreate, ChannelConfigurationUpdate
from textrelay.store.models import Sandbox
from textrelay.web.forms import FormErrors, form_errors
from textrelay.web.render import PageNotFound, redirect, render
from textrelay.web.session import CsrfForm, current_sandbox, flash, require_user

BASE = "/ui/channel-configurations"
router = APIRouter(prefix=BASE, include_in_schema=False, dependencies=[Depends(require_user)])

FIELDS = ("name", "channel", "sms_type", "credential_id", "sender_number", "execution_field",
          "shortening_domain", "rate_limit_mps", "fallback_configuration_id")
OPTIONAL = ("sender_number", "shortening_domain", "rate_limit_mps", "fallback_configuration_id")
CHANNEL_LABELS = {"sms": "SMS", "mms": "MMS", "rcs": "RCS"}
SMS_TYPE_LABELS = {"marketing": "Marketing", "transactional": "Transactional"}
STATUS_LABELS = {"draft": "Draft", "active": "Active"}
LABELS = {"channel_labels": CHANNEL_LABELS, "sms_type_labels": SMS_TYPE_LABELS, "status_labels": STATUS_LABELS}


def _credential_choices(session: Session, sandbox: Sandbox) -> list[dict[str, Any]]:
    return [{"id": c.id, "name": c.name, "vendor": c.vendor,
             "has_service": bool((c.settings or {}).get("messaging_service_sid"))}
            for c in credentials.list_all(session, sandbox)]


def _load(session: Session, sandbox: Sandbox, config_id: str) -> Any:
    try:
        return configs.get(session, sandbox, config_id)
    except NotFound:
        raise PageNotFound(f"There is no channel configuration {config_id} in sandbox '{sandbox.name}'.") from None


def _status_of(form: dict[str, str]) -> str:
    return "active" if form.get("action") == "submit" else "draft"


def _form_page(request: Request, *, mode: str, values: dict[str, Any], errors: FormErrors | None = None,
               config: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    own_id = config["id"] if config else None
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        choices = _credential_choices(session, sandbox)
        # RCS falls back to another configuration, on the SMS channel.
        fallbacks = [{"id": c.id, "name": c.name} for c in configs.list_all(session, sandbox)
                     if c.channel == "sms" and c.id != own_id]
    return render(request, "channel_configurations_form.html", status_code=status_code, mode=mode,
                  values=values, errors=errors or FormErrors(), config=config, credentials=choices,
                  fallbacks=fallbacks, **LABELS)


@router.get("")
def list_page(request: Request) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        rows = configs.list_all(session, sandbox)
        names = configs.credential_names(session, rows)
        items = [configs.view(c, sandbox, names.get(c.credential_id)) for c in rows]
        has_credentials = bool(credentials.list_all(session, sandbox))
    return render(request, "channel_configurations_list.html", configurations=items,
                  has_credentials=has_credentials, **LABELS)


@router.get("/new")
def new_page(request: Request) -> HTMLResponse:
    values = {"channel": "sms", "sms_type": "marketing", "execution_field": "mobilePhone"}
    return _form_page(request, mode="new", values=values)


@router.post("/new")
def create(request: Request, form: CsrfForm) -> HTMLResponse:
    ctx = request.app.state.context
    values = {k: form.get(k, "") for k in FIELDS}
    status = _status_of(form)
    try:
        # Blank fields are left out: required ones read "Required.", optional ones take their defaults.
        data = ChannelConfigurationCreate(**{k: v for k, v in values.items() if v}, status=status)
        with ctx.db.session() as session:
            config = configs.create(session, current_sandbox(request, session), data)
            config_id, name = config.id, config.name
    except (ValidationError, TextrelayError) as exc:
        errors = form_errors(exc, set(FIELDS), ChannelConfigurationCreate)
        return _form_page(request, mode="new", values=values, errors=errors, status_code=422)
    flash(request, f"Channel configuration '{name}' " + ("submitted: it is active." if status == "active"
                                                          else "saved as a draft."))
    return redirect(f"{BASE}/{config_id}")


@router.get("/{config_id}")
def edit_page(request: Request, config_id: str) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        config = configs.view(_load(session, sandbox, config_id), sandbox)
    values = {k: "" if config.get(k) is None else config[k] for k in FIELDS}
    if isinstance(values["rate_limit_mps"], float) and values["rate_limit_mps"].is_integer():
        values["rate_limit_mps"] = int(values["rate_limit_mps"])
    return _form_page(request, mode="edit", values=values, config=config)


@router.post("/{config_id}")
def update(request: Request, config_id: str, form: CsrfForm) -> HTMLResponse:
    ctx = request.app.state.context
    values = {k: form.get(k, "") for k in FIELDS}
    status = _status_of(form)
    with ctx.db.session() as session:
        sandbox = current_sandbox(request, session)
        config = configs.view(_load(session, sandbox, config_id), sandbox)
    # Every field is sent, so the service applies each; blank optional fields clear.
    data_in = {k: (v or None) if k in OPTIONAL else v for k, v in values.items()}
    try:
        data = ChannelConfigurationUpdate(**data_in, status=status)
        with ctx.db.session() as session:
            name = configs.update(session, current_sandbox(request, session), config_id, data).name
    except (ValidationError, TextrelayError) as exc:
        if isinstance(exc, NotFound):
            raise PageNotFound(exc.detail) from None
        errors = form_errors(exc, set(FIELDS), ChannelConfigurationCreate)
        return _form_page(request, mode="edit", values=values, errors=errors, config=config, status_code=422)
    flash(request, f"Channel configuration '{name}' " + ("submitted: it is active." if status == "active"
                                                          else "saved as a draft."))
    return redirect(f"{BASE}/{config_id}")


@router.get("/{config_id}/delete")
def delete_page(request: Request, config_id: str) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        config = configs.view(_load(session, sandbox, config_id), sandbox)
    return render(request, "channel_configurations_delete.html", config=config, error=None, **LABELS)


@router.post("/{config_id}/delete")
def delete(request: Request, config_id: str, _form: CsrfForm) -> HTMLResponse:
    ctx = request.app.state.context
    try:
        with ctx.db.session() as session:
            sandbox = current_sandbox(request, session)
            name = _load(session, sandbox, config_id).name
            configs.delete(session, sandbox, config_id)
    except Conflict as exc:
        with ctx.db.session() as session:
            sandbox = current_sandbox(request, session)
            config = configs.view(_load(session, sandbox, config_id), sandbox)
        return render(request, "channel_configurations_delete.html", status_code=409, config=config,
                      error=f"Not deleted: {exc.detail}.", **LABELS)
    flash(request, f"Channel configuration '{name}' deleted.")
    return redirect(BASE)
