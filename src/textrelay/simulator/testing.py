"""Run the simulator inside a test process: a real uvicorn server on a free loopback port.

    with SimulatorServer() as sim:
        client = Client(sim.account_sid, sim.auth_token)
        client.api.base_url = sim.url
        ...
        assert sim.state.stats()["created"] == 1

For pytest, ``simulator = simulator_fixture()`` in a test module or conftest gives each test (or
each module, with ``scope="module"``) its own server.
"""

import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from textrelay.simulator.app import create_app
from textrelay.simulator.state import CallbackOptions, SimulatorState

__all__ = ["SimulatorServer", "new_account", "simulator_fixture"]


def new_account() -> tuple[str, str]:
    """A random ``(AccountSid, AuthToken)`` pair."""
    return "AC" + secrets.token_hex(16), secrets.token_hex(16)


def serve_in_thread(make_app: Callable[[int], Any], *, host: str = "127.0.0.1", name: str = "textrelay-server",
                    startup_timeout: float = 10.0, **options: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Serve the ASGI app ``make_app(port)`` with uvicorn in a daemon thread on a free port of ``host``.

    The socket is bound first (so no other process can take the port in between, and the app can
    know its own URL); returns the server (set ``should_exit`` to stop it), its thread and the port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    app = make_app(port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.005)
    return server, thread, port


class SimulatorServer:
    """The simulator served by uvicorn in a background thread; a context manager.

    ``accounts`` defaults to one random account, available as :attr:`account_sid` and
    :attr:`auth_token`. ``callback_delay`` defaults to 0.01 s so lifecycles finish quickly.
    """

    def __init__(
        self,
        state: SimulatorState | None = None,
        *,
        accounts: list[tuple[str, str]] | None = None,
        callback_delay: float = 0.01,
        host: str = "127.0.0.1",
        startup_timeout: float = 10.0,
    ) -> None:
        if state is None:
            state = SimulatorState(
                accounts if accounts is not None else [new_account()],
                CallbackOptions(callback_delay=callback_delay),
            )
        self.state = state
        self.host = host
        self.startup_timeout = startup_timeout
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def account_sid(self) -> str:
        return next(iter(self.state.accounts))

    @property
    def auth_token(self) -> str:
        return self.state.accounts[self.account_sid].auth_token

    def start(self) -> "SimulatorServer":
        def make_app(port: int) -> Any:
            self.port = port
            if self.state.public_url is None:
                self.state.public_url = self.url
            return create_app(self.state)

        self._server, self._thread, self.port = serve_in_thread(
            make_app, host=self.host, name="textrelay-simulator", startup_timeout=self.startup_timeout,
            timeout_keep_alive=30)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def control(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """Call the ``/_sim`` control API synchronously; returns the decoded JSON answer."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path} -> {exc.code}: {exc.read().decode()}") from None

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``condition`` until true; raises ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            time.sleep(0.01)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every message lifecycle and callback has finished."""
        self.wait_for(lambda: self.control("GET", "/_sim/stats")["pending_tasks"] == 0, timeout)


def simulator_fixture(scope: str = "function", name: str = "simulator", **kwargs: Any) -> Any:
    """A pytest fixture called ``name`` yielding a started :class:`SimulatorServer` (``kwargs`` go to it)."""
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def simulator() -> Iterator[SimulatorServer]:
        with SimulatorServer(**kwargs) as server:
            yield server

    return simulator
