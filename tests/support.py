"""Helpers shared by tests: the live service on a loopback port and an API client."""

from __future__ import annotations

import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import requests
import uvicorn

from textrelay.services import access
from textrelay.services.context import Context


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def twilio_sid(prefix: str = "AC") -> str:
    return prefix + uuid.uuid4().hex


class ApiClient:
    """requests.Session bound to the service's base URL and one API key."""

    def __init__(self, base_url: str, key: str | None, sandbox: str | None = None) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        if key:
            self.http.headers["Authorization"] = f"Bearer {key}"
        if sandbox:
            self.http.headers["x-sandbox-name"] = sandbox

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.http.request(method, self.base_url + path, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)


@dataclass
class LiveService:
    url: str
    context: Context
    admin_key: str
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, key: str | None = "admin", sandbox: str | None = None) -> ApiClient:
        return ApiClient(self.url, self.admin_key if key == "admin" else key, sandbox)

    def new_key(self, role: str = "admin", sandbox: str | None = None) -> str:
        with self.context.db.session() as session:
            _, token = access.create_key(session, f"test {role}", role, sandbox)
        return token

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_service(context: Context, run_worker: bool = False) -> LiveService:
    """The real app, with or without its worker, served on a loopback port in a thread."""
    from textrelay.api.app import create_app
    from textrelay.simulator.testing import serve_in_thread

    def make_app(port: int) -> Any:
        context.settings.host, context.settings.port = "127.0.0.1", port
        if not context.settings.public_url:
            context.settings.public_url = f"http://127.0.0.1:{port}"
        return create_app(context.settings, context=context, run_worker=run_worker)

    server, thread, port = serve_in_thread(make_app, name="textrelay-service", startup_timeout=20)
    with context.db.session() as session:
        _, key = access.create_key(session, "test admin", "admin")
    return LiveService(url=f"http://127.0.0.1:{port}", context=context, admin_key=key, server=server,
                       thread=thread)
