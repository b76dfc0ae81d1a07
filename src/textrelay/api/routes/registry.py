"""Every router of the app, in one list."""

from __future__ import annotations

from fastapi import FastAPI

from textrelay import web
from textrelay.api.routes import credentials, hooks, keys, sandboxes


def install(app: FastAPI) -> None:
    for module in (sandboxes, keys, credentials, hooks):
        app.include_router(module.router)
    web.install(app)
