"""Administration > Channels > SMS settings > API credentials: list, create, edit, delete, verify.

Every rule lives in :mod:`textrelay.services.credentials`; these pages only turn forms into its
requests and its answers (and errors) into HTML.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from textrelay.api.deps import public_base_url
from textrelay.errors import Conflict, NotFound, TextrelayError
from textrelay.services import credentials, webhooks
from textrelay.services.credentials import TwilioCredentialCreate, TwilioCredentialUpdate, VerifyRequest
from textrelay.store.models import Sandbox
from textrelay.web import custom_credentials
from textrelay.web.forms import FormErrors, form_errors
from textrelay.web.render import PageNotFound, redirect, render
from textrelay.web.session import CsrfForm, current_sandbox, flash, require_user

router = APIRouter(prefix="/credentials", dependencies=[Depends(require_user)])

FIELDS = ("name", "account_sid", "auth_token", "messaging_service_sid", "inbound_number", "api_base_url")
OPTIONAL = ("messaging_service_sid", "inbound_number", "api_base_url")
VENDORS = [
    {"value": "twilio", "label": "Twilio", "available": True},
    {"value": "custom", "label": "Custom", "available": True},
]
VENDOR_LABELS = {v["value"]: v["label"] for v in VENDORS}
CHECK_LABELS = {"account": "Account", "messaging_service": "Messaging service", "test_message": "Test message"}
VERIFY_FIELDS = {"to", "body"}


def _load(session: Session, sandbox: Sandbox, credential_id: str) -> Any:
    try:
        return credentials.get(session, sandbox, credential_id)
    except NotFound:
        raise PageNotFound(f"There is no API credential {credential_id} in sandbox '{sandbox.name}'.") from None


def _view(request: Request, session: Session, sandbox: Sandbox, cred: Any, with_hooks: bool = False) -> dict:
    hooks = webhooks.for_credential(session, cred.id) if with_hooks else []
    return credentials.view(cred, sandbox, hooks, public_base_url(request))


def _form_page(request: Request, *, mode: str, values: dict[str, Any], errors: FormErrors | None = None,
               credential: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    values = {k: v for k, v in values.items() if k != "auth_token"}  # a secret is never sent back
    return render(request, "credentials/form.html", status_code=status_code, mode=mode, values=values,
                  errors=errors or FormErrors(), credential=credential, vendors=VENDORS,
                  vendor_labels=VENDOR_LABELS)


def _not_editable(request: Request, cred: dict[str, Any]) -> HTMLResponse:
    label = VENDOR_LABELS.get(cred["vendor"], cred["vendor"])
    return render(request, "error.html", status_code=409, heading=f"Editing {label} credentials is coming soon",
                  message=f"Change '{cred['name']}' with PATCH /api/v1/credentials/{cred['id']} for now.")


@router.get("")
def list_page(request: Request) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        rows = [_view(request, session, sandbox, c) for c in credentials.list_all(session, sandbox)]
    return render(request, "credentials/list.html", credentials=rows, vendor_labels=VENDOR_LABELS)


@router.get("/new")
def new_page(request: Request) -> HTMLResponse:
    if request.query_params.get("vendor") == "custom":
        return redirect("/ui/credentials/custom/new")  # type: ignore[return-value]
    return _form_page(request, mode="new", values={"vendor": "twilio"})


@router.post("/new")
def create(request: Request, form: CsrfForm) -> HTMLResponse:
    ctx = request.app.state.context
    values = {"vendor": form.get("vendor", "twilio"), **{k: form.get(k, "") for k in FIELDS}}
    if values["vendor"] == "custom":  # chosen without script: on to the custom form
        return redirect("/ui/credentials/custom/new")  # type: ignore[return-value]
    if values["vendor"] != "twilio":
        errors = FormErrors(fields={"vendor": "Choose Twilio or Custom."})
        return _form_page(request, mode="new", values=values, errors=errors, status_code=422)
    try:
        # Blank fields are left out: required ones then read "Required.", optional ones take defaults.
        data = TwilioCredentialCreate(**{k: v for k, v in values.items() if v})
        with ctx.db.session() as session:
            sandbox = current_sandbox(request, session)
            cred = credentials.create(session, ctx.keyring, sandbox, data)
            cred_id, name = cred.id, cred.name
    except (ValidationError, TextrelayError) as exc:
        errors = form_errors(exc, set(FIELDS), TwilioCredentialCreate)
        return _form_page(request, mode="new", values=values, errors=errors, status_code=422)
    flash(request, f"API credential '{name}' created. Paste its webhook URLs into the Twilio Console.")
    return redirect(f"/ui/credentials/{cred_id}")


@router.get("/{credential_id}")
def detail_page(request: Request, credential_id: str) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        cred = _view(request, session, sandbox, _load(session, sandbox, credential_id), with_hooks=True)
    verification = request.session.pop("verification", None)
    if verification and verification.get("id") != credential_id:
        verification = None
    return render(request, "credentials/detail.html", credential=cred, verification=verification,
                  vendor_labels=VENDOR_LABELS, check_labels=CHECK_LABELS)


@router.post("/{credential_id}/verify")
async def verify(request: Request, credential_id: str, form: CsrfForm) -> RedirectResponse:
    ctx = request.app.state.context
    to, body = form.get("to", ""), form.get("body", "")
    outcome: dict[str, Any] = {"id": credential_id, "to": to, "body": body[:300]}
    with ctx.db.session() as session:
        sandbox = current_sandbox(request, session)
        cred = _load(session, sandbox, credential_id)
    try:
        result = await credentials.verify(cred, ctx.keyring, VerifyRequest(to=to or None, body=body or None))
    except (ValidationError, TextrelayError) as exc:
        errors = form_errors(exc, VERIFY_FIELDS, VerifyRequest)
        outcome.update(errors=errors.fields, general=errors.general)
    else:
        with ctx.db.session() as session:
            credentials.record_verification(session, sandbox, credential_id, result)
        outcome.update(ok=result["ok"], checks=[{**c, "detail": str(c["detail"])[:300]} for c in result["checks"]])
    # Shown once by the detail page (POST/redirect/GET).
    request.session["verification"] = outcome
    return redirect(f"/ui/credentials/{credential_id}#verify")


@router.get("/{credential_id}/edit")
def edit_page(request: Request, credential_id: str) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        cred = _view(request, session, sandbox, _load(session, sandbox, credential_id))
    if cred["vendor"] == "custom":
        return redirect(f"/ui/credentials/custom/{credential_id}/edit")  # type: ignore[return-value]
    if cred["vendor"] != "twilio":
        return _not_editable(request, cred)
    values = {k: cred.get(k) or "" for k in FIELDS if k != "auth_token"}
    return _form_page(request, mode="edit", values={**values, "vendor": cred["vendor"]}, credential=cred)


@router.post("/{credential_id}/edit")
def update(request: Request, credential_id: str, form: CsrfForm) -> HTMLResponse:
    ctx = request.app.state.context
    values = {k: form.get(k, "") for k in FIELDS}
    # Every field is sent, so the service applies each; blank optional fields clear, a blank token keeps.
    data_in = {k: (v or None) if k in OPTIONAL else v for k, v in values.items()}
    with ctx.db.session() as session:
        sandbox = current_sandbox(request, session)
        cred = _view(request, session, sandbox, _load(session, sandbox, credential_id))
    if cred["vendor"] != "twilio":
        return _not_editable(request, cred)
    try:
        data = TwilioCredentialUpdate(**data_in)
        with ctx.db.session() as session:
            updated = credentials.update(session, ctx.keyring, current_sandbox(request, session), credential_id, data)
            name = updated.name
    except (ValidationError, TextrelayError) as exc:
        if isinstance(exc, NotFound):
            raise PageNotFound(exc.detail) from None
        errors = form_errors(exc, set(FIELDS), TwilioCredentialCreate)
        return _form_page(request, mode="edit", values={**values, "vendor": cred["vendor"]}, errors=errors,
                          credential=cred, status_code=422)
    flash(request, f"API credential '{name}' updated.")
    return redirect(f"/ui/credentials/{credential_id}")


@router.get("/{credential_id}/delete")
def delete_page(request: Request, credential_id: str) -> HTMLResponse:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        cred = _view(request, session, sandbox, _load(session, sandbox, credential_id), with_hooks=True)
    return render(request, "credentials/delete.html", credential=cred)


@router.post("/{credential_id}/delete")
def delete(request: Request, credential_id: str, _form: CsrfForm) -> RedirectResponse:
    ctx = request.app.state.context
    try:
        with ctx.db.session() as session:
            sandbox = current_sandbox(request, session)
            name = _load(session, sandbox, credential_id).name
            credentials.delete(session, sandbox, credential_id)
    except Conflict as exc:
        flash(request, f"API credential not deleted: {exc.detail}.", "error")
        return redirect(f"/ui/credentials/{credential_id}")
    flash(request, f"API credential '{name}' deleted.")
    return redirect("/ui/credentials")


router.include_router(custom_credentials.router)  # /credentials/custom/...: the Custom vendor's forms
