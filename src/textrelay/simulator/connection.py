"""Closing a client's connection with no HTTP answer at all, for fault injection.

ASGI has no "hang up" message, and uvicorn answers 500 when an app returns or raises without a
response. Uvicorn's ``send`` is a bound method of its request cycle, which holds the TCP
transport, so the outermost middleware keeps that cycle in the scope and :class:`DropConnection`
aborts its transport. Under another server, the fallback starts a response that promises a body
and then abandons it, which any client also sees as a broken connection.
"""

import asyncio
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CYCLE_KEY", "DropConnection", "KeepServerCycle"]

CYCLE_KEY = "textrelay.simulator.server_cycle"


class KeepServerCycle:
    """ASGI middleware (outermost): remember the server's request cycle for :class:`DropConnection`."""

    def __init__(self, app: ASGIApp, state: Any = None) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[CYCLE_KEY] = getattr(send, "__self__", None)
        await self.app(scope, receive, send)


class DropConnection:
    """A "response" that closes the connection without sending a byte."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cycle: Any = scope.get(CYCLE_KEY)
        transport = getattr(cycle, "transport", None)
        if transport is not None and hasattr(cycle, "disconnected"):
            transport.abort()
            # Let the server see connection_lost, so it does not try to answer 500 itself.
            for _ in range(100):
                if cycle.disconnected:
                    return
                await asyncio.sleep(0)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"1000")]})
        raise ConnectionAbortedError("simulated dropped connection")
