"""The admin web UI: server-rendered pages under ``/ui`` (Jinja2 templates, plain CSS, PRG forms).

:func:`install` adds the signed session cookie, the static files and the pages to the app.
Other pages reuse :mod:`textrelay.web.render` and :mod:`textrelay.web.session`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from textrelay.web.render import STATIC_DIR, PageNotFound, redirect, render
from textrelay.web.session import CsrfRejected, LoginRequired, session_secret

SESSION_COOKIE = "textrelay_session"
SESSION_MAX_AGE = 12 * 3600


def install(app: FastAPI) -> None:
    """Add the session middleware, ``/ui/static`` and the ``/ui`` pages to ``app``."""
    from textrelay.web.routes import router

    settings = app.state.context.settings
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=(settings.public_url or "").lower().startswith("https://"),
    )

    @app.exception_handler(LoginRequired)
    async def _login_required(_request: Request, exc: LoginRequired) -> RedirectResponse:
        from urllib.parse import quote

        return redirect(f"/ui/login?next={quote(exc.next_path, safe='/')}")

    @app.exception_handler(CsrfRejected)
    async def _csrf_rejected(request: Request, _exc: CsrfRejected) -> HTMLResponse:
        return render(request, "error.html", status_code=403, heading="This form has expired",
                      message="The page was open too long or came from elsewhere, so it was not accepted. "
                              "Go back, reload the page and try again.")

    @app.exception_handler(PageNotFound)
    async def _not_found(request: Request, exc: PageNotFound) -> HTMLResponse:
        return render(request, "error.html", status_code=404, heading="Not found", message=str(exc))

    app.mount("/ui/static", StaticFiles(directory=str(STATIC_DIR)), name="ui-static")
    app.include_router(router)
