"""The simulator's second mode: a generic JSON provider, for custom API credentials and RCS.

Routes (served by :func:`create_custom_app`, alone or behind a TLS listener that requires client
certificates — see :class:`CustomSimulatorServer`):

- ``POST /v1/messages`` — takes a JSON message. Checks the configured auth (``none``, ``api_key``,
  ``basic``, ``bearer``, ``mac``, ``oauth2`` bearer tokens it issued, ``jwt``); 401 otherwise.
  Answers ``201 {"messages": [{"id": "cm_…", "status": "accepted"}]}`` (so a credential's
  ``response_id_path`` is ``$.messages[0].id``). An RCS message (a JSON object at ``rcs_path``) to
  a number in ``no_rcs_numbers`` gets ``422 {"error": {"code": "RCS_NOT_SUPPORTED", …}}``.
  After acceptance it sends signed JSON feedback (``SENT``, ``DELIVERED``, and ``READ`` for RCS)
  to ``feedback_url``, echoing our id (found at ``reference_path``) as ``clientReference``.
- ``GET /v1/messages`` — the same auth check, for a credential's verify.
- ``POST /oauth/token`` — OAuth2 client credentials; tokens expire after ``token_lifetime`` s.
- ``/_sim/custom/config`` (GET, POST to merge), ``/_sim/custom/messages``, ``/_sim/custom/stats``,
  ``/_sim/custom/faults`` (the next answers: status, body, content type; or
  ``{"drop_after_create": true}``: the message is created, then the connection is closed with no
  answer), ``/_sim/custom/inbound``
  (play an inbound message to ``inbound_url``), ``/_sim/custom/feedback`` (send one status now).

Webhook calls (feedback and inbound) are JSON, authenticated as ``webhook_auth`` says: ``hmac``
(``X-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, header name configurable),
``bearer`` or ``basic``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import ssl
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from textrelay.domain import jsonpath
from textrelay.providers.custom_auth import mac_sign, mac_string
from textrelay.simulator.connection import DropConnection, KeepServerCycle

__all__ = ["CustomSimConfig", "CustomSimState", "CustomSimulatorServer", "create_custom_app", "run",
           "sign_body"]

_MAC = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class CustomSimConfig:
    """What the simulated provider expects and where it calls back. ``auth`` uses the field names
    of :class:`textrelay.providers.custom_auth.AuthSettings` (``public_key`` for RS256/ES256)."""

    auth: dict[str, Any] = field(default_factory=lambda: {"type": "none"})
    token_lifetime: float = 3600.0
    no_rcs_numbers: list[str] = field(default_factory=list)
    to_path: str = "to"
    rcs_path: str = "rcs"
    reference_path: str = "reference"
    feedback_url: str | None = None
    inbound_url: str | None = None
    webhook_auth: dict[str, Any] = field(default_factory=lambda: {"type": "hmac", "secret": "", "header": "X-Signature"})
    # Each webhook's own auth (None: ``webhook_auth``), as textrelay gives each webhook its own secret.
    feedback_auth: dict[str, Any] | None = None
    inbound_auth: dict[str, Any] | None = None
    feedback_delay: float = 0.01
    feedback_statuses: list[str] = field(default_factory=lambda: ["SENT", "DELIVERED"])
    rcs_feedback_statuses: list[str] = field(default_factory=lambda: ["SENT", "DELIVERED", "READ"])


@dataclass
class CustomSimState:
    config: CustomSimConfig = field(default_factory=CustomSimConfig)
    messages: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # access token → expiry (monotonic)
    token_requests: int = 0
    auth_failures: int = 0
    faults: list[dict[str, Any]] = field(default_factory=list)
    token_faults: list[dict[str, Any]] = field(default_factory=list)
    webhook_results: list[dict[str, Any]] = field(default_factory=list)
    seen_nonces: set[str] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def stats(self) -> dict[str, Any]:
        return {"messages": len(self.messages), "token_requests": self.token_requests,
                "auth_failures": self.auth_failures, "pending_tasks": len(self.tasks),
                "webhooks_sent": len(self.webhook_results)}


def sign_body(secret: str, body: bytes) -> str:
    """The ``X-Signature`` value of the hmac webhook scheme."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- auth checks ------------------------------------------------------------------------------

def _check_auth(state: CustomSimState, request: Request, body: bytes) -> str | None:
    """None when the request is authenticated as configured, else why not."""
    auth = state.config.auth
    kind = auth.get("type", "none")
    header = request.headers.get("authorization", "")
    if kind == "none":
        return None
    if kind == "api_key":
        name = auth.get("header_name") or "X-API-Key"
        return None if _same(request.headers.get(name, ""), auth.get("token", "")) else f"missing or wrong {name}"
    if kind == "basic":
        expected = "Basic " + base64.b64encode(f"{auth.get('username', '')}:{auth.get('password', '')}".encode()).decode()
        return None if _same(header, expected) else "wrong basic credentials"
    if kind == "bearer":
        return None if _same(header, f"Bearer {auth.get('token', '')}") else "wrong bearer token"
    if kind == "oauth2":
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        expiry = state.tokens.get(token)
        if expiry is None:
            return "unknown access token"
        if time.monotonic() >= expiry:
            return "expired access token"
        return None
    if kind == "jwt":
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        algorithm = auth.get("algorithm", "HS256")
        key = auth.get("secret") if algorithm == "HS256" else auth.get("public_key")
        try:
            jwt.decode(token, key, algorithms=[algorithm], audience=auth.get("audience"),
                       issuer=auth.get("issuer"), options={"require": ["exp", "iat"]})
        except jwt.PyJWTError as exc:
            return f"bad JWT: {exc}"
        return None
    if kind == "mac":
        return _check_mac(state, request, body)
    return f"unsupported auth type {kind}"


def _check_mac(state: CustomSimState, request: Request, body: bytes) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("MAC "):
        return "no MAC authorization"
    fields = dict(_MAC.findall(header))
    auth = state.config.auth
    if fields.get("id") != auth.get("key_id"):
        return "unknown MAC key id"
    try:
        ts = int(fields.get("ts", ""))
    except ValueError:
        return "bad MAC timestamp"
    if abs(time.time() - ts) > 300:
        return "MAC timestamp too far from now"
    nonce = fields.get("nonce", "")
    if not nonce or nonce in state.seen_nonces:
        return "MAC nonce missing or replayed"
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    bodyhash, text = mac_string(str(ts), nonce, request.method, path, body)
    if not _same(fields.get("bodyhash", ""), bodyhash) or not _same(fields.get("mac", ""), mac_sign(auth.get("secret", ""), text)):
        return "wrong MAC"
    state.seen_nonces.add(nonce)
    return None


def _same(a: str, b: str) -> bool:
    return bool(b) and hmac.compare_digest(a.encode(), b.encode())


def _state(request: Request) -> CustomSimState:
    return request.app.state.custom


def _unauthorized(state: CustomSimState, reason: str) -> JSONResponse:
    state.auth_failures += 1
    return JSONResponse({"error": {"code": "UNAUTHORIZED", "message": reason}}, 401)


# -- provider routes --------------------------------------------------------------------------

async def messages(request: Request) -> Response:
    state = _state(request)
    body = await request.body()
    reason = _check_auth(state, request, body)
    if reason:
        return _unauthorized(state, reason)
    if request.method == "GET":
        return JSONResponse({"ok": True, "messages": len(state.messages)})
    drop_after_create = False
    if state.faults:
        fault = state.faults[0]
        fault["count"] = fault.get("count", 1) - 1
        if fault["count"] <= 0:
            state.faults.pop(0)
        drop_after_create = bool(fault.get("drop_after_create"))
        if not drop_after_create:
            headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else None
            return Response(fault.get("body", ""), fault.get("status", 500),
                            media_type=fault.get("content_type", "text/plain"), headers=headers)
    if not request.headers.get("content-type", "").startswith("application/json"):
        return JSONResponse({"error": {"code": "BAD_CONTENT_TYPE", "message": "send application/json"}}, 415)
    try:
        payload = json.loads(body)
    except ValueError as exc:
        return JSONResponse({"error": {"code": "BAD_JSON", "message": str(exc)}}, 400)
    cfg = state.config
    to = jsonpath.read(payload, cfg.to_path)
    if not isinstance(to, str) or not to:
        return JSONResponse({"error": {"code": "MISSING_TO", "message": f"no recipient at {cfg.to_path}"}}, 400)
    rcs = jsonpath.read(payload, cfg.rcs_path)
    is_rcs = isinstance(rcs, dict)
    record = {"id": "cm_" + secrets.token_hex(12), "payload": payload, "raw": body.decode("utf-8"),
              "headers": dict(request.headers), "to": to, "rcs": is_rcs,
              "reference": jsonpath.read(payload, cfg.reference_path), "statuses": []}
    if is_rcs and to in cfg.no_rcs_numbers:
        record["refused"] = "RCS_NOT_SUPPORTED"
        state.messages.append(record)
        return JSONResponse({"error": {"code": "RCS_NOT_SUPPORTED",
                                       "message": f"{to} cannot receive RCS messages"}}, 422)
    state.messages.append(record)
    if cfg.feedback_url:
        _spawn(state, _lifecycle(request.app, state, record))
    if drop_after_create:  # created, feedback on its way, but the client never hears an answer
        return DropConnection()  # type: ignore[return-value]
    return JSONResponse({"messages": [{"id": record["id"], "status": "accepted", "to": to}]}, 201)


async def oauth_token(request: Request) -> Response:
    state = _state(request)
    state.token_requests += 1
    if state.token_faults:
        fault = state.token_faults.pop(0)
        return JSONResponse({"error": fault.get("error", "server_error")}, fault.get("status", 500))
    form = await request.form()
    auth = state.config.auth
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
    if form.get("grant_type") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, 400)
    if auth.get("type") != "oauth2" or client_id != auth.get("client_id") \
            or not _same(str(client_secret or ""), str(auth.get("client_secret", ""))):
        return JSONResponse({"error": "invalid_client"}, 401)
    token = secrets.token_urlsafe(24)
    state.tokens[token] = time.monotonic() + state.config.token_lifetime
    return JSONResponse({"access_token": token, "token_type": "Bearer",
                         "expires_in": state.config.token_lifetime})


# -- outgoing webhooks ------------------------------------------------------------------------

def _spawn(state: CustomSimState, coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def _lifecycle(app: Starlette, state: CustomSimState, record: dict[str, Any]) -> None:
    cfg = state.config
    for status in (cfg.rcs_feedback_statuses if record["rcs"] else cfg.feedback_statuses):
        await asyncio.sleep(cfg.feedback_delay)
        await send_feedback(app, state, record, status)


async def send_feedback(app: Starlette, state: CustomSimState, record: dict[str, Any], status: str,
                        error_code: str | None = None) -> dict[str, Any]:
    body = {"clientReference": record["reference"], "messageId": record["id"], "status": status,
            "errorCode": error_code, "timestamp": datetime.now(UTC).isoformat()}
    record["statuses"].append(status)
    return await _post_webhook(app, state, state.config.feedback_url, body, "feedback")


async def _post_webhook(app: Starlette, state: CustomSimState, url: str | None, payload: dict[str, Any],
                        kind: str) -> dict[str, Any]:
    raw = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    own = state.config.feedback_auth if kind == "feedback" else state.config.inbound_auth
    auth = own or state.config.webhook_auth
    if auth.get("type") == "hmac":
        headers[auth.get("header") or "X-Signature"] = sign_body(auth.get("secret", ""), raw)
    elif auth.get("type") == "bearer":
        headers["Authorization"] = f"Bearer {auth.get('token', '')}"
    elif auth.get("type") == "basic":
        headers["Authorization"] = aiohttp.BasicAuth(auth.get("username", ""), auth.get("password", "")).encode()
    result: dict[str, Any] = {"kind": kind, "url": url, "payload": payload}
    if not url:
        result["error"] = "no URL configured"
    else:
        session: aiohttp.ClientSession = app.state.custom_http
        try:
            async with session.post(url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                result["status"] = resp.status
                result["body"] = await resp.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
    state.webhook_results.append(result)
    return result


# -- control API ------------------------------------------------------------------------------

async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = json.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


async def control_config(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        try:
            data = await _body(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        for key, value in data.items():
            if not hasattr(state.config, key):
                return JSONResponse({"error": f"unknown setting {key}"}, 400)
            setattr(state.config, key, value)
    return JSONResponse(state.config.__dict__)


async def control_messages(request: Request) -> Response:
    return JSONResponse({"messages": _state(request).messages})


async def control_stats(request: Request) -> Response:
    return JSONResponse(_state(request).stats())


async def control_webhooks(request: Request) -> Response:
    return JSONResponse({"webhooks": _state(request).webhook_results})


async def control_faults(request: Request) -> Response:
    state = _state(request)
    data = await _body(request)
    target = state.token_faults if data.pop("target", "messages") == "token" else state.faults
    target.append(data)
    return JSONResponse({"queued": len(target)})


async def control_inbound(request: Request) -> Response:
    state = _state(request)
    data = await _body(request)
    payload = {"messageId": data.get("id") or "in_" + secrets.token_hex(8), "from": data.get("from"),
               "to": data.get("to"), "text": data.get("text", ""),
               "receivedAt": data.get("received_at") or datetime.now(UTC).isoformat()}
    return JSONResponse(await _post_webhook(request.app, state, state.config.inbound_url, payload, "inbound"))


async def control_feedback(request: Request) -> Response:
    state = _state(request)
    data = await _body(request)
    record = next((m for m in state.messages if m["id"] == data.get("id")), None)
    if record is None:
        return JSONResponse({"error": "unknown message id"}, 404)
    return JSONResponse(await send_feedback(request.app, state, record, str(data.get("status", "DELIVERED")),
                                            data.get("error_code")))


routes = [
    Route("/v1/messages", messages, methods=["GET", "POST"]),
    Route("/oauth/token", oauth_token, methods=["POST"]),
    Route("/_sim/custom/config", control_config, methods=["GET", "POST"]),
    Route("/_sim/custom/messages", control_messages, methods=["GET"]),
    Route("/_sim/custom/stats", control_stats, methods=["GET"]),
    Route("/_sim/custom/webhooks", control_webhooks, methods=["GET"]),
    Route("/_sim/custom/faults", control_faults, methods=["POST"]),
    Route("/_sim/custom/inbound", control_inbound, methods=["POST"]),
    Route("/_sim/custom/feedback", control_feedback, methods=["POST"]),
]


def create_custom_app(state: CustomSimState | None = None) -> Starlette:
    state = state if state is not None else CustomSimState()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.custom_http = aiohttp.ClientSession()
        yield
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        await app.state.custom_http.close()

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(KeepServerCycle)])
    app.state.custom = state
    return app


@dataclass
class TlsFiles:
    """Server certificate and key (PEM files); ``client_ca`` makes client certificates required."""

    certfile: Path
    keyfile: Path
    client_ca: Path | None = None


class CustomSimulatorServer:
    """The custom-mode simulator on a free loopback port, in a background thread (a context manager).

    With ``tls``, it listens on HTTPS; with ``tls.client_ca`` it requires a client certificate
    signed by that CA (mTLS), refusing expired or foreign ones in the handshake.
    """

    def __init__(self, config: CustomSimConfig | None = None, *, tls: TlsFiles | None = None,
                 host: str = "127.0.0.1") -> None:
        self.state = CustomSimState(config or CustomSimConfig())
        self.tls = tls
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def messages_url(self) -> str:
        return self.url + "/v1/messages"

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    def start(self) -> CustomSimulatorServer:
        from textrelay.simulator.testing import serve_in_thread

        options: dict[str, Any] = {}
        if self.tls:
            options = {"ssl_certfile": str(self.tls.certfile), "ssl_keyfile": str(self.tls.keyfile)}
            if self.tls.client_ca:
                options.update(ssl_ca_certs=str(self.tls.client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
        self._server, self._thread, self.port = serve_in_thread(
            lambda _port: create_custom_app(self.state), host=self.host, name="textrelay-custom-simulator",
            **options)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> CustomSimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.state.tasks:
            if time.monotonic() > deadline:
                raise TimeoutError("custom simulator still busy")
            time.sleep(0.01)


def run(host: str = "127.0.0.1", port: int = 8098, config: CustomSimConfig | None = None,
        tls: TlsFiles | None = None) -> None:
    """Serve the custom-mode simulator until interrupted (``textrelay simulator --mode custom``)."""
    import sys

    state = CustomSimState(config or CustomSimConfig())
    scheme = "https" if tls else "http"
    print(f"textrelay custom-provider simulator on {scheme}://{host}:{port}/v1/messages "
          f"(auth {state.config.auth.get('type')}; OAuth2 tokens at /oauth/token)", file=sys.stderr)
    options: dict[str, Any] = {}
    if tls:
        options = {"ssl_certfile": str(tls.certfile), "ssl_keyfile": str(tls.keyfile)}
        if tls.client_ca:
            options.update(ssl_ca_certs=str(tls.client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
    uvicorn.run(create_custom_app(state), host=host, port=port, log_level="warning", access_log=False, **options)
