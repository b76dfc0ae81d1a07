"""Administration > Channels > SMS settings > API credentials, vendor Custom: create and edit forms.

The form posts flat, dotted field names (``auth.oauth2.client_id``, ``headers.0.value``) so it
works without JavaScript; a few lines of script only show the chosen auth type's fields and add
header rows. Every rule lives in :mod:`textrelay.services.custom_credentials` (through
:mod:`textrelay.services.credentials`); its 422 errors name dotted fields, shown beside them.
Secrets are never sent back: their inputs are empty, with the masked hint "leave empty to keep".
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from textrelay.api.deps import public_base_url
from textrelay.errors import NotFound, TextrelayError, ValidationFailed
from textrelay.providers.custom import FIXED_CONTENT_TYPE
from textrelay.services import credentials, custom_credentials
from textrelay.services.custom_credentials import CustomCredentialUpdate
from textrelay.web.forms import FormErrors
from textrelay.web.render import PageNotFound, redirect, render
from textrelay.web.session import CsrfForm, current_sandbox, flash, require_user

router = APIRouter(prefix="/custom", dependencies=[Depends(require_user)])  # under /ui/credentials

AUTH_TYPES = [("none", "None"), ("api_key", "API key"), ("basic", "Basic"), ("bearer", "Bearer token"),
              ("mac", "MAC (HMAC signature)"), ("oauth2", "OAuth2 client credentials"), ("jwt", "JWT")]
# The fields of each auth type, as (name, label, secret, kind).
AUTH_FIELDS: dict[str, list[tuple[str, str, bool, str]]] = {
    "none": [],
    "api_key": [("header_name", "Header name", False, "text"), ("token", "API key", True, "password")],
    "basic": [("username", "Username", False, "text"), ("password", "Password", True, "password")],
    "bearer": [("token", "Token", True, "password")],
    "mac": [("key_id", "Key id", False, "text"), ("secret", "Secret", True, "password")],
    "oauth2": [("token_url", "Token URL", False, "text"), ("client_id", "Client id", False, "text"),
               ("client_secret", "Client secret", True, "password"), ("scope", "Scope", False, "text")],
    "jwt": [("algorithm", "Algorithm", False, "select"), ("secret", "HS256 secret", True, "password"),
            ("private_key", "RS256/ES256 private key (PEM)", True, "textarea"),
            ("issuer", "Issuer", False, "text"), ("subject", "Subject", False, "text"),
            ("audience", "Audience", False, "text"), ("lifetime_seconds", "Lifetime (seconds)", False, "text")],
}
MTLS_FIELDS = [("client_cert", "Client certificate (PEM)", False), ("client_key", "Client key (PEM)", True),
               ("ca_bundle", "CA bundle (PEM, optional)", False)]
PLAIN = ("name", "provider_app_id", "provider_name", "provider_url", "inbound_number", "payload_template",
         "response_id_path", "rate_limit_mps")
DEFAULT_TEMPLATE = ('{\n  "from": "{{fromNumber}}",\n  "to": "{{toNumber}}",\n  "text": "{{message}}",\n'
                    '  "reference": "{{messageId}}"\n}')


# -- form ↔ service ----------------------------------------------------------------------------

def _headers(form: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(min(30, int(form.get("header_rows") or 0) if (form.get("header_rows") or "0").isdigit() else 0)):
        name, value = form.get(f"headers.{i}.name", ""), form.get(f"headers.{i}.value", "")
        if name or value:
            rows.append({"name": name, "value": value or None, "secret": form.get(f"headers.{i}.kind") == "secret"})
    return rows


def _auth(form: dict[str, str]) -> dict[str, Any]:
    kind = form.get("auth.type") or "none"
    auth: dict[str, Any] = {"type": kind}
    for name, _label, _secret, _kind in AUTH_FIELDS.get(kind, []):
        value = form.get(f"auth.{kind}.{name}", "")
        if value:
            auth[name] = value
    return auth


def _mtls(form: dict[str, str]) -> dict[str, Any] | None:
    if form.get("mtls.enabled") != "on":
        return None
    return {name: form.get(f"mtls.{name}") or None for name, _label, _secret in MTLS_FIELDS}


def _request(form: dict[str, str], *, editing: bool) -> dict[str, Any]:
    """The API request the form stands for (blank secrets left out: kept on edit)."""
    raw: dict[str, Any] = {k: form.get(k, "") for k in PLAIN}
    for key in ("provider_app_id", "provider_name", "inbound_number", "response_id_path"):
        raw[key] = raw[key] or None
    raw["rate_limit_mps"] = raw["rate_limit_mps"] or "0"
    raw["auth"], raw["mtls"], raw["headers"] = _auth(form), _mtls(form), _headers(form)
    if not editing:
        raw["vendor"] = "custom"
        if raw["mtls"] is None:
            del raw["mtls"]
    return raw


def _errors(exc: ValidationError | TextrelayError, auth_type: str) -> FormErrors:
    """Field messages keyed by the form's input names (``auth.token`` → ``auth.bearer.token``)."""
    if isinstance(exc, ValidationError):
        items = [(".".join(str(p) for p in e["loc"]), str(e["msg"]).removeprefix("Value error, "))
                 for e in exc.errors()]
    else:
        items = [(str(e.get("field", "")), str(e.get("message", ""))) for e in exc.errors]
    out = FormErrors()
    for name, message in items:
        if name.startswith("auth.") and name != "auth.type":
            name = f"auth.{auth_type}.{name.removeprefix('auth.')}"
        out.fields.setdefault(name, message)
    if not items and isinstance(exc, TextrelayError):
        out.general.append(exc.detail)
    known = _known_names()
    for name in list(out.fields):
        if name not in known and not name.startswith("headers."):
            out.general.append(f"{name}: {out.fields.pop(name)}")
    return out


def _known_names() -> set[str]:
    names = set(PLAIN) | {"auth.type", "mtls", *(f"mtls.{n}" for n, _l, _s in MTLS_FIELDS)}
    for kind, fields in AUTH_FIELDS.items():
        names.update(f"auth.{kind}.{n}" for n, _l, _s, _k in fields)
    return names


def _values_from_view(cred: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], list[dict[str, Any]]]:
    """Form values and masked hints of a stored credential (secrets never in values)."""
    values: dict[str, str] = {k: "" if cred.get(k) is None else str(cred.get(k)) for k in PLAIN}
    hints: dict[str, str] = {}
    auth = cred.get("auth") or {}
    kind = auth.get("type", "none")
    values["auth.type"] = kind
    for name, _label, secret, _kind in AUTH_FIELDS.get(kind, []):
        if secret:
            if auth.get(name):
                hints[f"auth.{kind}.{name}"] = str(auth[name])
        elif auth.get(name) is not None:
            values[f"auth.{kind}.{name}"] = str(auth[name])
    mtls = cred.get("mtls") or {}
    if mtls:
        values["mtls.enabled"] = "on"
        for name, _label, secret in MTLS_FIELDS:
            if secret:
                if mtls.get(name):
                    hints[f"mtls.{name}"] = str(mtls[name])
            elif mtls.get(name):
                values[f"mtls.{name}"] = str(mtls[name])
    headers = [{"name": h["name"], "value": "" if h.get("secret") else (h.get("value") or ""),
                "secret": bool(h.get("secret")), "hint": h.get("value") if h.get("secret") else None}
               for h in cred.get("headers") or []]
    return values, hints, headers


def _form_headers(form: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(int(form.get("header_rows") or 0) if (form.get("header_rows") or "0").isdigit() else 0):
        rows.append({"name": form.get(f"headers.{i}.name", ""),
                     "value": "" if form.get(f"headers.{i}.kind") == "secret" else form.get(f"headers.{i}.value", ""),
                     "secret": form.get(f"headers.{i}.kind") == "secret", "hint": form.get(f"headers.{i}.hint")})
    return rows[:30]


_EMPTY_ROW: dict[str, Any] = {"name": "", "value": "", "secret": False, "hint": None}


def _page(request: Request, *, mode: str, values: dict[str, str], hints: dict[str, str] | None = None,
          headers: list[dict[str, Any]] | None = None, errors: FormErrors | None = None,
          credential: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    rows = list(headers or [])
    if not rows or rows[-1]["name"] or rows[-1]["value"]:
        rows.append(dict(_EMPTY_ROW))  # a spare row, for use without JS
    return render(request, "credentials/custom_form.html", status_code=status_code, mode=mode, values=values,
                  hints=hints or {}, headers=rows, errors=errors or FormErrors(), credential=credential,
                  auth_types=AUTH_TYPES, auth_fields=AUTH_FIELDS, mtls_fields=MTLS_FIELDS,
                  fixed_content_type=FIXED_CONTENT_TYPE)


def _secret_values_dropped(form: dict[str, str]) -> dict[str, str]:
    """The posted values to show again: everything but secrets."""
    secret_names = {f"auth.{k}.{n}" for k, fs in AUTH_FIELDS.items() for n, _l, s, _k in fs if s}
    secret_names |= {f"mtls.{n}" for n, _l, s in MTLS_FIELDS if s}

    def shown(key: str) -> bool:
        if key in secret_names:
            return False
        if key.startswith("headers.") and key.endswith(".value"):
            return form.get(key.removesuffix(".value") + ".kind") != "secret"
        return True

    return {k: v for k, v in form.items() if shown(k)}


# -- pages -------------------------------------------------------------------------------------

@router.get("/new")
def new_page(request: Request) -> HTMLResponse:
    return _page(request, mode="new", values={"auth.type": "none", "payload_template": DEFAULT_TEMPLATE,
                                              "rate_limit_mps": "0", "auth.jwt.algorithm": "HS256",
                                              "auth.jwt.lifetime_seconds": "300"})


@router.post("/new")
def create(request: Request, form: CsrfForm) -> HTMLResponse:
    ctx = request.app.state.context
    values = _secret_values_dropped(form)
    if form.get("action") == "add_header":
        return _page(request, mode="new", values=values, headers=[*_form_headers(form), _EMPTY_ROW])
    try:
        data = custom_credentials.parse_create(_request(form, editing=False))
        with ctx.db.session() as session:
            cred = credentials.create(session, ctx.keyring, current_sandbox(request, session), data)
            cred_id, name = cred.id, cred.name
    except (ValidationError, TextrelayError) as exc:
        return _page(request, mode="new", values=values, headers=_form_headers(form),
                     errors=_errors(exc, form.get("auth.type") or "none"), status_code=422)
    flash(request, f"API credential '{name}' created. Give the provider its webhook URLs.")
    return redirect(f"/ui/credentials/{cred_id}")


def _load_view(request: Request, credential_id: str) -> dict[str, Any]:
    with request.app.state.context.db.session() as session:
        sandbox = current_sandbox(request, session)
        try:
            cred = credentials.get(session, sandbox, credential_id)
        except NotFound:
            raise PageNotFound(f"There is no API credential {credential_id} in sandbox '{sandbox.name}'.") from None
        view = credentials.view(cred, sandbox, [], public_base_url(request))
    if view["vendor"] != "custom":
        raise PageNotFound(f"API credential '{view['name']}' is not a custom one.")
    return view


@router.get("/{credential_id}/edit")
def edit_page(request: Request, credential_id: str) -> HTMLResponse:
    cred = _load_view(request, credential_id)
    values, hints, headers = _values_from_view(cred)
    values.setdefault("auth.jwt.algorithm", "HS256")
    values.setdefault("auth.jwt.lifetime_seconds", "300")
    return _page(request, mode="edit", values=values, hints=hints, headers=headers, credential=cred)


@router.post("/{credential_id}/edit")
def update(request: Request, credential_id: str, form: CsrfForm) -> HTMLResponse:
    ctx = request.app.state.context
    cred = _load_view(request, credential_id)
    _values, hints, _headers_ = _values_from_view(cred)
    values = _secret_values_dropped(form)
    if form.get("action") == "add_header":
        return _page(request, mode="edit", values=values, hints=hints, headers=[*_form_headers(form), _EMPTY_ROW],
                     credential=cred)
    try:
        try:
            data = CustomCredentialUpdate.model_validate(_request(form, editing=True))
        except ValidationError as exc:
            raise ValidationFailed("invalid input", errors=[
                {"field": ".".join(str(p) for p in e["loc"]), "message": str(e["msg"])} for e in exc.errors()
            ]) from None
        with ctx.db.session() as session:
            updated = credentials.update(session, ctx.keyring, current_sandbox(request, session), credential_id, data)
            name = updated.name
    except (ValidationError, TextrelayError) as exc:
        if isinstance(exc, NotFound):
            raise PageNotFound(exc.detail) from None
        return _page(request, mode="edit", values=values, hints=hints, headers=_form_headers(form),
                     errors=_errors(exc, form.get("auth.type") or "none"), credential=cred, status_code=422)
    flash(request, f"API credential '{name}' updated.")
    return redirect(f"/ui/credentials/{credential_id}")
