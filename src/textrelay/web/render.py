"""Rendering admin UI pages: the one helper every page uses.

A page module (say ``web/messages.py``) looks like this::

    from fastapi import APIRouter, Depends, Request
    from fastapi.responses import HTMLResponse, RedirectResponse

    from textrelay.web.render import PageNotFound, redirect, render
    from textrelay.web.session import CsrfForm, current_sandbox, flash, require_user

    router = APIRouter(prefix="/ui/messages", include_in_schema=False,
                       dependencies=[Depends(require_user)])      # signed out: redirect to /ui/login

    @router.get("")
    def messages_page(request: Request) -> HTMLResponse:
        with request.app.state.context.db.session() as session:
            sandbox = current_sandbox(request, session)           # the header switcher's sandbox
            rows = messages.list_all(session, sandbox)             # a service call, never raw SQL here
        return render(request, "messages/list.html", rows=rows)

    @router.post("/{message_id}/cancel")
    def cancel(request: Request, message_id: str, form: CsrfForm) -> RedirectResponse:
        ...                                                        # form: the fields, CSRF already checked
        flash(request, "Message canceled.")                        # kinds: success (default), error, info
        return redirect(f"/ui/messages/{message_id}")              # 303: POST/redirect/GET

and is added with ``app.include_router(router)`` in ``api/routes/registry.py``. Raise
:class:`PageNotFound` (message shown) for a missing item; :func:`~textrelay.web.session.flash`
queues a one-time message shown at the top of the next page.

Templates ``{% extends "base.html" %}`` and fill ``title`` and ``content``; the left navigation
highlights itself from the URL. ``{% from "_macros.html" import field %}`` gives a labelled
input with its hint and error. Besides the keyword arguments given, templates see:

- ``request``; ``user`` (the username, or None); ``sandbox`` (current sandbox name) and
  ``sandboxes`` (all names, for the switcher);
- ``csrf_field()``: the hidden CSRF input, required in every POST form (``csrf_token`` is the
  raw value);
- ``flashes``: the queued messages (the layout shows them);
- the ``when`` filter: a datetime or ISO string as ``2025-05-01 14:03 UTC``.

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
