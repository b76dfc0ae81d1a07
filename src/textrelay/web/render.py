"""Rendering admin UI pages.

Every page extends ``base.html`` (blocks ``title`` and ``content``) and is rendered with
:func:`render`, which adds what the layout needs::

    from textrelay.web.render import redirect, render
    from textrelay.web.session import CsrfForm, UserDep, current_sandbox, flash

    @router.get("/messages")
    def messages_page(request: Request, user: UserDep) -> HTMLResponse:
        with request.app.state.context.db.session() as session:
            sandbox = current_sandbox(request, session)
            rows = messages.list_all(session, sandbox)
        return render(request, "messages/list.html", rows=rows)

Templates then see, besides the keyword arguments given:

- ``request``, ``user`` (username or None), ``sandbox`` (current sandbox name),
  ``sandboxes`` (all sandbox names, for the switcher);
- ``csrf_token``: put ``{{ csrf_field() }}`` (or a hidden ``csrf_token`` input) in every POST form,
  and take the form with the ``CsrfForm`` dependency, which rejects a missing or wrong token;
- ``flashes``: messages queued with :func:`~textrelay.web.session.flash` (shown by the layout).

After a successful POST, answer with :func:`redirect` (POST/redirect/GET).
Pages are answered with ``Cache-Control: no-store`` and anti-framing headers.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from textrelay.services import sandboxes
from textrelay.web import session as ui_session

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _when(value: datetime | str | None) -> str:
    """A timestamp as ``2025-05-01 14:03 UTC``; empty for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["when"] = _when


class PageNotFound(Exception):
    """Raise from a page to answer 404 with the UI's error page; the message is shown."""


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the layout's context (see the module docstring)."""
    token = ui_session.csrf_token(request)
    user = ui_session.current_user(request)
    names: list[str] = []
    current = None
    if user:
        with request.app.state.context.db.session() as session:
            names = [s.name for s in sandboxes.list_all(session)]
            current = ui_session.current_sandbox(request, session).name
    base = {
        "user": user,
        "sandbox": current,
        "sandboxes": names,
        "csrf_token": token,
        "csrf_field": lambda: Markup('<input type="hidden" name="{}" value="{}">').format(
            ui_session.CSRF_FIELD, escape(token)),
        "flashes": ui_session.pop_flashes(request),
    }
    return templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code,
                                      headers=SECURITY_HEADERS)


def redirect(path: str) -> RedirectResponse:
    """303 See Other to ``path``: the GET after a POST."""
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})
