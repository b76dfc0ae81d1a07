"""The admin UI's session: who is signed in, in which sandbox, the CSRF token, flash messages.

The session is Starlette's signed cookie (``SessionMiddleware``); it holds only small values:
``user`` (the username), ``sandbox`` (a sandbox name), ``csrf`` (the per-session token) and
``flash`` (messages waiting to be shown once).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from textrelay.config import Settings
from textrelay.errors import NotFound
from textrelay.services import sandboxes
from textrelay.store.models import Sandbox

CSRF_FIELD = "csrf_token"
SESSION_SECRET_FILE = "session.secret"


class LoginRequired(Exception):
    """Raised by :func:`require_user`; answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A POST form without the session's CSRF token; answered with 403."""


def session_secret(settings: Settings) -> str:
    """The key that signs session cookies.

    ``TEXTRELAY_SESSION_SECRET`` if set; else derived from ``TEXTRELAY_SECRET_KEY`` (so every
    process sharing that key accepts the same cookies); else a random secret kept in
    ``session.secret`` beside the key file (mode 0600), created on first use.
    """
    if settings.session_secret:
        return settings.session_secret
    if settings.secret_key:
        newest = settings.secret_key.split(",")[0].strip()
        return hmac.new(newest.encode(), b"textrelay admin UI session", hashlib.sha256).hexdigest()
    path = settings.resolved_key_file.parent / SESSION_SECRET_FILE
    return _read_or_create_secret(path)


def _read_or_create_secret(path: Path) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process may have just created it; its content is the secret.
        value = path.read_text().strip()
        if value:
            return value
        raise RuntimeError(f"{path} is empty; delete it to have a new session secret generated") from None
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def csrf_form(request: Request) -> dict[str, str]:
    """FastAPI dependency for every POST form: checks the CSRF token, returns the other fields.

    Values are stripped strings; file fields are not expected in UI forms.
    """
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not (isinstance(sent, str) and expected and hmac.compare_digest(sent, expected)):
        raise CsrfRejected()
    return {k: v.strip() for k, v in form.items() if k != CSRF_FIELD and isinstance(v, str)}


CsrfForm = Annotated[dict[str, str], Depends(csrf_form)]


def current_user(request: Request) -> str | None:
    return request.session.get("user")


def require_user(request: Request) -> str:
    """FastAPI dependency: the signed-in username, or a redirect to the login page."""
    user = current_user(request)
    if not user:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path if request.method == "GET" else "/ui")
    return user


UserDep = Annotated[str, Depends(require_user)]


def sign_in(request: Request, username: str) -> None:
    # A fresh session (and CSRF token) at every sign-in; the sandbox choice survives.
    sandbox = request.session.get("sandbox")
    request.session.clear()
    request.session["user"] = username
    if sandbox:
        request.session["sandbox"] = sandbox
    csrf_token(request)


def sign_out(request: Request) -> None:
    request.session.clear()


def current_sandbox(request: Request, session: Session) -> Sandbox:
    """The sandbox chosen in the header switcher; ``prod`` when none was chosen or it is gone."""
    name = request.session.get("sandbox") or sandboxes.DEFAULT_SANDBOX
    try:
        return sandboxes.get_by_name(session, name)
    except NotFound:
        request.session["sandbox"] = sandboxes.DEFAULT_SANDBOX
        return sandboxes.get_by_name(session, sandboxes.DEFAULT_SANDBOX)


def flash(request: Request, text: str, kind: str = "success") -> None:
    """Queue a message shown once on the next rendered page. ``kind``: success, error, info."""
    request.session["flash"] = [*request.session.get("flash", []), {"kind": kind, "text": text[:500]}]


def pop_flashes(request: Request) -> list[dict[str, Any]]:
    return request.session.pop("flash", None) or []


def safe_next(value: str | None, default: str = "/ui") -> str:
    """A redirect target inside the UI; anything else (other hosts, ``//x``) gives ``default``."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return default
