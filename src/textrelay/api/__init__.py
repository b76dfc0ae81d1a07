"""The HTTP side: REST API, provider webhooks and the admin UI, in one ASGI app."""
