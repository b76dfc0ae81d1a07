"""The ASGI application: REST API, provider webhooks, admin UI, docs, health and metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from textrelay import __version__
from textrelay.api import problems
from textrelay.api.input_guard import InputGuard
from textrelay.api.limits import BodyLimit
from textrelay.api.observe import RequestMetrics
from textrelay.api.routes import registry
from textrelay.config import Settings, get_settings
from textrelay.services import bootstrap
from textrelay.services.context import Context

log = logging.getLogger("textrelay")


def announce_first_start(first: bootstrap.FirstStart, base_url: str) -> None:
    print(
        "\n  textrelay is set up. These are shown once; keep them safe.\n"
        f"    admin API key : {first.api_key}\n"
        f"    admin UI      : {base_url}/ui/login  user '{first.username}'  password '{first.password}'\n",
        flush=True,
    )


def create_app(settings: Settings | None = None, context: Context | None = None,
               run_worker: bool | None = None) -> FastAPI:
    settings = settings or (context.settings if context else get_settings())
    ctx = context or Context.from_settings(settings)
    want_worker = settings.run_worker if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.db.upgrade()
        with ctx.db.session() as session:
            first = bootstrap.run(session)
        if first:
            announce_first_start(first, settings.public_url or f"http://{settings.host}:{settings.port}")
        worker = None
        if want_worker:
            from textrelay.delivery import worker as delivery_worker

            worker = await delivery_worker.start_in_process(ctx)
        app.state.worker = worker
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()

    app = FastAPI(
        title="textrelay",
        version=__version__,
        description="Connects customer journeys to SMS, MMS and RCS providers. "
        "Authenticate with `Authorization: Bearer <API key>`; choose the sandbox with `x-sandbox-name`.",
        lifespan=lifespan,
    )
    app.state.context = ctx
    problems.install(app)
    app.add_middleware(InputGuard)  # inside the body limit: it reads bodies already bounded
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, upload_max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestMetrics)
    registry.install(app)

    @app.get("/healthz", tags=["system"])
    def healthz() -> Any:
        try:
            with ctx.db.session() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # the point of a health check is to report any failure
            return JSONResponse({"status": "unhealthy", "database": str(type(exc).__name__)}, status_code=503)
        return {"status": "ok", "version": __version__, "database": ctx.db.engine.dialect.name}

    @app.get("/metrics", tags=["system"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
