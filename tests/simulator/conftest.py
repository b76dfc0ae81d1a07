"""Fixtures for the simulator's tests: a live simulator, an SDK client, and a webhook receiver."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from twilio.rest import Client

from textrelay.simulator.testing import SimulatorServer, new_account, simulator_fixture

simulator_session = simulator_fixture(scope="session", name="simulator_session")


@pytest.fixture
def simulator(simulator_session: SimulatorServer) -> SimulatorServer:
    """One server for the session, wiped (accounts too) and given a fresh account for each test."""
    simulator_session.control("POST", "/_sim/reset", {"accounts": True})
    simulator_session.state.add_account(*new_account())
    return simulator_session


@pytest.fixture
def twilio_client(simulator: SimulatorServer) -> Client:
    client = Client(simulator.account_sid, simulator.auth_token)
    client.api.base_url = simulator.url
    client.messaging.base_url = simulator.url
    return client


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]]


@dataclass
class Receiver:
    """A loopback HTTP server that records every POST and answers as told."""

    url: str
    requests: list[ReceivedRequest] = field(default_factory=list)
    status: int = 200
    content_type: str = "text/xml"
    body: str = "<Response/>"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        import time

        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(self.requests)} requests, wanted {count}")
            time.sleep(0.01)
        return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            rec = state["receiver"]
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with rec.lock:
                rec.requests.append(
                    ReceivedRequest(
                        path=self.path,
                        headers={k: v for k, v in self.headers.items()},
                        body=raw,
                        form=parse_qs(raw.decode("utf-8"), keep_blank_values=True),
                    )
                )
            payload = rec.body.encode("utf-8")
            self.send_response(rec.status)
            self.send_header("Content-Type", rec.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()
