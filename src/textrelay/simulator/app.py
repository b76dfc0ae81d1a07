"""Assembling and serving the simulator."""

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from textrelay.simulator import control, twilio
from textrelay.simulator.connection import KeepServerCycle
from textrelay.simulator.state import CallbackOptions, SimulatorState
from textrelay.simulator.twilio.errors import TwilioError, error_body
from textrelay.simulator.webhooks import WebhookSender

__all__ = ["DEFAULT_ACCOUNT", "create_app", "run"]

DEFAULT_ACCOUNT = ("AC00000000000000000000000000000001", "0123456789abcdef0123456789abcdef")
"""The account ``run()`` starts with when given none (for demos; tests add their own)."""


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        body = error_body(20404, 404, f"The requested resource {request.url.path} was not found")
    else:
        body = error_body(20000 + exc.status_code, exc.status_code, exc.detail)
    return JSONResponse(body, exc.status_code)


def create_app(state: SimulatorState | None = None) -> KeepServerCycle:
    """The simulator as an ASGI app. ``app.state`` is the live :class:`SimulatorState`."""
    state = state if state is not None else SimulatorState()
    sender = WebhookSender()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sender.close()

    app = Starlette(
        routes=[*twilio.routes, *control.routes],
        exception_handlers={
            TwilioError: twilio.twilio_error_handler,
            control.ControlError: control.control_error_handler,
            HTTPException: _http_error,
        },
        lifespan=lifespan,
    )
    app.state.simulator = state
    app.state.webhook_sender = sender
    # Outermost, so it sees the server's own ``send`` (see connection.py).
    return KeepServerCycle(app, state)


def run(
    host: str = "127.0.0.1",
    port: int = 8099,
    accounts: list[tuple[str, str]] | None = None,
    callback_delay: float = 0.05,
    public_url: str | None = None,
) -> None:
    """Serve the simulator until interrupted. With no (or empty) ``accounts``, :data:`DEFAULT_ACCOUNT` exists."""
    state = SimulatorState(
        accounts or [DEFAULT_ACCOUNT],
        CallbackOptions(callback_delay=callback_delay),
        public_url=public_url or f"http://{host}:{port}",
    )
    print(f"textrelay simulator on {state.public_url}", file=sys.stderr)
    for sid, token in state.accounts.items():
        print(f"  account {sid} auth token {token.auth_token}", file=sys.stderr)
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
