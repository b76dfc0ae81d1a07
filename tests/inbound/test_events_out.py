"""Events out: inbound messages and consent changes POSTed, signed, retried with backoff."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.inbound.helpers import make_line
from textrelay.inbound import events


class Receiver:
    """A journey system on a loopback port: answers 500 to the first ``failures`` posts."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.posts: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                failed = len(receiver.posts) <= receiver.failures
                self.send_response(500 if failed else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sms"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.posts) >= count, f"{len(self.posts)} posts, wanted {count}"


@pytest.fixture
def fast_retries(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(events, "BACKOFF_BASE_SECONDS", 0.05)


def test_inbound_and_consent_events_are_signed_and_retried_until_delivered(api, service, fast_retries):
    receiver = Receiver(failures=2)
    try:
        resp = api.put("/api/v1/events/destination", json={"url": receiver.url})
        assert resp.status_code == 200, resp.text
        secret = resp.json()["secret"]
        assert resp.json()["secret_shown_once"] and len(secret) > 20
        assert api.get("/api/v1/events/destination").json()["secret"] != secret
        line = make_line(api)
        line.text("STOP")
        receiver.wait_for(4)
        delivered = {}
        for headers, body in receiver.posts:
            assert events.verify(secret, headers["x-textrelay-signature"], body)
            event = json.loads(body)
            assert headers["x-textrelay-event"] == event["type"]
            delivered[event["type"]] = event
        assert delivered[events.CONSENT_CHANGED]["data"]["status"] == "opted_out"
        assert delivered[events.CONSENT_CHANGED]["data"]["source"] == "keyword"
        assert delivered[events.INBOUND_RECEIVED]["data"]["body"] == "STOP"
        assert delivered[events.INBOUND_RECEIVED]["sandbox"] == "prod"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = api.get("/api/v1/events/deliveries").json()["items"]
            if all(r["status"] == "delivered" for r in rows):
                break
            time.sleep(0.1)
        assert sorted(r["type"] for r in rows) == sorted(events.EVENT_TYPES)
        assert all(r["status"] == "delivered" for r in rows)
        assert sum(r["attempts"] for r in rows) == 4
    finally:
        receiver.stop()


def test_only_the_chosen_event_types_are_forwarded(api, service):
    receiver = Receiver()
    try:
        api.put("/api/v1/events/destination", json={"url": receiver.url, "events": ["consent.changed"],
                                                     "secret": "s" * 32})
        api.put("/api/v1/consent/+14155550199", json={"status": "opted_out"})
        receiver.wait_for(1)
        time.sleep(0.3)
        assert [json.loads(b)["type"] for _, b in receiver.posts] == ["consent.changed"]
        assert events.verify("s" * 32, receiver.posts[0][0]["x-textrelay-signature"], receiver.posts[0][1])
    finally:
        receiver.stop()


def test_destination_validation_names_the_field(api):
    bad = api.put("/api/v1/events/destination", json={"url": "ftp://x", "events": ["inbound.received"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "url"
    kinds = api.put("/api/v1/events/destination", json={"url": "https://x.test", "events": ["nope"]})
    assert kinds.status_code == 422 and kinds.json()["errors"][0]["field"] == "events[0]"
    assert api.get("/api/v1/events/destination").status_code == 404


def test_signature_verification_rejects_tampering_and_old_timestamps():
    body = b'{"a":1}'
    header = events.sign("k" * 20, int(time.time()), body)
    assert events.verify("k" * 20, header, body)
    assert not events.verify("k" * 20, header, body + b" ")
    assert not events.verify("other" * 4, header, body)
    assert not events.verify("k" * 20, events.sign("k" * 20, int(time.time()) - 3600, body), body)
    assert not events.verify("k" * 20, "garbage", body)


def test_delivered_events_past_retention_are_cleaned_up(context):
    from datetime import timedelta

    from textrelay.store.models import EventDelivery, utcnow

    with context.db.session() as session:
        from textrelay.services.sandboxes import get_by_name

        box = get_by_name(session, "prod")
        old = utcnow() - events.RETENTION - timedelta(hours=1)
        session.add_all([
            EventDelivery(sandbox_id=box.id, type="consent.changed", payload={}, status="delivered", delivered_at=old),
            EventDelivery(sandbox_id=box.id, type="consent.changed", payload={}, status="delivered",
                          delivered_at=utcnow()),
            EventDelivery(sandbox_id=box.id, type="consent.changed", payload={}, status="failed"),
        ])
    assert events.Dispatcher(context).cleanup() == 1
    with context.db.session() as session:
        from sqlalchemy import select

        assert sorted(session.scalars(select(EventDelivery.status))) == ["delivered", "failed"]
