"""The send API and a campaign, end to end: the service with its worker, sending to the Twilio
simulator over HTTP, delivery receipts back through signed callbacks."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support import ApiClient, LiveService, start_service
from textrelay.services import consent, sandboxes
from textrelay.simulator.testing import SimulatorServer

SENDER = "+15005550006"  # Twilio's magic "valid From"


@pytest.fixture
def live(context) -> Iterator[LiveService]:  # type: ignore[no-untyped-def]
    service = start_service(context, run_worker=True)
    yield service
    service.stop()


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(callback_delay=0.01) as server:
        yield server


def configure(api: ApiClient, sim: SimulatorServer) -> None:
    cred = api.post("/api/v1/credentials", json={"name": "sim", "vendor": "twilio", "account_sid": sim.account_sid,
                                                 "auth_token": sim.auth_token, "api_base_url": sim.url})
    assert cred.status_code == 201, cred.text
    config = api.post("/api/v1/channel-configurations", json={
        "name": "promo", "channel": "sms", "sms_type": "marketing", "credential_id": cred.json()["id"],
        "sender_number": SENDER, "status": "active"})
    assert config.status_code == 201, config.text


def wait_for(check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_sent_message_reaches_delivered_with_its_history(live, sim):
    api = live.client()
    configure(api, sim)
    resp = api.post("/api/v1/messages", json={"channel_configuration": "promo", "to": "+14155550123",
                                              "body": "Hi {{ profile.firstName }}", "profile": {"firstName": "Ann"}})
    assert resp.status_code == 202
    detail = wait_for(lambda: (d := api.get(f"/api/v1/messages/{resp.json()['id']}").json())["status"] == "delivered"
                      and d)
    assert detail["provider_message_id"].startswith("SM") and detail["attempts"] == 1
    steps = [h["status"] for h in detail["history"]]
    assert steps[0] == "queued" and steps[-1] == "delivered"


@pytest.mark.slow
def test_campaign_runs_to_completion_with_a_report(live, sim):
    api = live.client()
    configure(api, sim)
    with live.context.db.session() as session:
        consent.record(session, sandboxes.get_by_name(session, "prod").id, "+14155550002", consent.OPTED_OUT, "api")
    campaign = api.post("/api/v1/campaigns", json={"name": "e2e", "channel_configuration": "promo",
                                                   "body": "Hello {{ profile.name }}"}).json()
    size = 2000
    rows = [f"+1415{555 + i // 10000}{i % 10000:04d},N{i}" for i in range(size)] + ["+15005550001,Invalid"]
    upload = api.post(f"/api/v1/campaigns/{campaign['id']}/audience", data=("phone,name\n" + "\n".join(rows)).encode(),
                      headers={"Content-Type": "text/csv"})
    assert upload.json()["accepted"] == size + 1
    started = time.monotonic()
    assert api.post(f"/api/v1/campaigns/{campaign['id']}/start").status_code == 200
    done = wait_for(lambda: (p := api.get(f"/api/v1/campaigns/{campaign['id']}").json())["status"] == "completed"
                    and p, timeout=120)
    seconds = time.monotonic() - started
    assert done["messages_created"] == size + 1
    assert done["counts"].get("excluded") == 1 and done["counts"].get("failed") == 1
    wait_for(lambda: api.get(f"/api/v1/campaigns/{campaign['id']}/report").json()["counts"].get("delivered")
             == size - 1, timeout=120)
    report = api.get(f"/api/v1/campaigns/{campaign['id']}/report").json()
    assert [e["code"] for e in report["errors"]] == ["21211"]
    assert report["exclusions"][0]["count"] == 1
    assert sum(p["delivered"] for p in report["timeline"]) == size - 1
    assert sum(p["failed"] for p in report["timeline"]) == 1
    print(f"campaign of {size + 1}: completed in {seconds:.1f}s ({(size + 1) / seconds:.0f} messages/s)")
