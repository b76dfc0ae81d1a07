"""The admin UI router, mounted at ``/ui``: sign-in, sign-out, the sandbox switcher, and the pages.

Pages of one resource live in a module of their own (``credentials.py``) and are included here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from textrelay.errors import NotFound, Unauthorized
from textrelay.services import access, sandboxes
from textrelay.web import credentials
from textrelay.web.render import redirect, render
from textrelay.web.session import (
    CsrfForm,
    UserDep,
    current_user,
    flash,
    safe_next,
    sign_in,
    sign_out,
)

HOME = "/ui/credentials"

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("")
@router.get("/")
def home(request: Request) -> RedirectResponse:
    return redirect(HOME if current_user(request) else "/ui/login")


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    if current_user(request):
        return redirect(safe_next(next, HOME))
    return render(request, "login.html", next=safe_next(next, HOME), username="", error=None)


@router.post("/login")
def login(request: Request, form: CsrfForm) -> HTMLResponse:
    username, password = form.get("username", ""), form.get("password", "")
    target = safe_next(form.get("next"), HOME)
    try:
        with request.app.state.context.db.session() as session:
            principal = access.login(session, username, password)
    except Unauthorized:
        # Same words whether the user is unknown or the password wrong.
        return render(request, "login.html", status_code=401, next=target, username=username,
                      error="Wrong username or password.")
    sign_in(request, principal.username or username)
    return redirect(target)


@router.get("/logout")
def logout_page(request: Request) -> HTMLResponse:
    if not current_user(request):
        return redirect("/ui/login")
    return render(request, "logout.html")


@router.post("/logout")
def logout(request: Request, _form: CsrfForm) -> RedirectResponse:
    sign_out(request)
    flash(request, "You have signed out.", "info")
    return redirect("/ui/login")


@router.post("/sandbox")
def switch_sandbox(request: Request, _user: UserDep, form: CsrfForm) -> RedirectResponse:
    name = form.get("sandbox", "")
    try:
        with request.app.state.context.db.session() as session:
            sandboxes.get_by_name(session, name)
    except NotFound:
        flash(request, f"Sandbox '{name}' does not exist.", "error")
    else:
        request.session["sandbox"] = name
    # Back to the same section, not the same item: an item of one sandbox is not in another.
    section = "/".join(safe_next(form.get("next"), HOME).split("?")[0].split("/")[:3])
    return redirect(section if section not in ("/ui", "/ui/") else HOME)


router.include_router(credentials.router)
