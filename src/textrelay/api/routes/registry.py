"""Every router of the app, in one list."""

from __future__ import annotations

from fastapi import FastAPI

from textrelay import web
from textrelay.api.routes import campaigns as campaigns_routes
from textrelay.api.routes import channel_configurations as channel_configurations_routes
from textrelay.api.routes import consent as consent_routes
from textrelay.api.routes import credentials, hooks, keys, sandboxes
from textrelay.api.routes import events as events_routes
from textrelay.api.routes import inbound_messages as inbound_messages_routes
from textrelay.api.routes import messages as messages_routes
from textrelay.api.routes import webhooks as webhooks_routes
from textrelay.api.twilio_webhooks import TwilioWebhooks
from textrelay.web import inbound_pages, sending_pages


def install(app: FastAPI) -> None:
    for module in (sandboxes, keys, credentials, hooks):
        app.include_router(module.router)
    app.include_router(webhooks_routes.router)
    app.include_router(consent_routes.router)
    app.include_router(inbound_messages_routes.router)
    app.include_router(events_routes.router)
    app.include_router(channel_configurations_routes.router)
    app.include_router(messages_routes.router)
    app.include_router(campaigns_routes.router)
    web.install(app)
    app.include_router(inbound_pages.router)
    app.include_router(sending_pages.router)
    # Last, so it is outermost: Twilio's webhooks (thousands a second) skip the other layers.
    app.add_middleware(TwilioWebhooks)
