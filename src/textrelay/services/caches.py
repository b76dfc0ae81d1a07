"""In-process caches of configuration read on hot paths (webhooks, inbound routes, custom webhook
settings), and the one call that drops them after a change.

Each cache also expires by itself within 30 s, which bounds how long another process (a second
``serve`` or a ``worker``) may act on the old configuration.
"""

from __future__ import annotations


def forget_configuration() -> None:
    """Drop every cached view of credentials and webhooks in this process."""
    from textrelay.api.routes import hooks
    from textrelay.inbound import custom, service

    hooks.forget()
    service.forget_routes()
    custom.forget()
