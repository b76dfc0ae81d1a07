"""A custom provider has no lookup API: a send whose outcome is unknown is never resent; the
provider's feedback settles it, or it fails when its validity period ends. Over real HTTP against
the custom simulator, with its "drop after create" fault."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support import LiveService, start_service
from textrelay.simulator.custom import CustomSimConfig, CustomSimulatorServer

TEMPLATE = '{"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "{{message}}", "reference": "{{messageId}}"}'


@pytest.fixture
def live(context) -> Iterator[LiveService]:
    service = start_service(context, run_worker=True)
    yield service
    service.stop()


def _setup(api, sim: CustomSimulatorServer, with_feedback: bool) -> None:
    cred = api.post("/api/v1/credentials", json={
        "name": "no-lookup", "vendor": "custom", "provider_url": sim.messages_url, "payload_template": TEMPLATE,
        "response_id_path": "$.messages[0].id", "inbound_number": "+14155550100"}).json()
    feedback = next(h for h in cred["webhooks"] if h["type"] == "feedback")
    if with_feedback:
        sim.state.config.feedback_url = feedback["url"]
        sim.state.config.feedback_auth = {"type": "hmac", "secret": feedback["auth"]["secret"]}
    made = api.post("/api/v1/channel-configurations", json={
        "name": "sms-custom", "channel": "sms", "sms_type": "transactional", "credential_id": cred["id"],
        "sender_number": "+14155550100", "status": "active"})
    assert made.status_code == 201, made.text


def _wait(api, message_id: str, wanted: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = api.get(f"/api/v1/messages/{message_id}").json()
        if message["status"] == wanted or time.monotonic() > deadline:
            return message
        time.sleep(0.05)


def test_dropped_answer_is_not_resent_and_feedback_settles_the_message(live):
    api = live.client()
    with CustomSimulatorServer(CustomSimConfig(feedback_delay=0.5)) as sim:
        _setup(api, sim, with_feedback=True)
        requests.post(sim.url + "/_sim/custom/faults", json={"drop_after_create": True}, timeout=5)
        sent = api.post("/api/v1/messages", json={"channel_configuration": "sms-custom", "to": "+14155550123",
                                                  "body": "Your code is 1234"})
        assert sent.status_code == 202, sent.text
        message = _wait(api, sent.json()["id"], "delivered")
        assert message["status"] == "delivered", message
        assert len(sim.state.messages) == 1  # created once: never blindly resent
        assert sim.state.messages[0]["reference"] == message["id"]
        details = " ".join(e["detail"] or "" for e in message["history"])
        assert "outcome unknown" in details and "not sent again" in details
        time.sleep(0.5)
        assert len(sim.state.messages) == 1


def test_unconfirmed_message_fails_when_its_validity_period_ends(live):
    api = live.client()
    with CustomSimulatorServer(CustomSimConfig()) as sim:
        _setup(api, sim, with_feedback=False)
        requests.post(sim.url + "/_sim/custom/faults", json={"drop_after_create": True}, timeout=5)
        sent = api.post("/api/v1/messages", json={"channel_configuration": "sms-custom", "to": "+14155550123",
                                                  "body": "Your code is 5678", "validity_period": 2})
        message_id = sent.json()["id"]
        pending = _wait(api, message_id, "sent", timeout=5)
        assert pending["status"] == "sent"
        message = _wait(api, message_id, "failed", timeout=10)
        assert message["status"] == "failed", message
        assert message["error_message"] == "outcome unknown: the provider never confirmed the message"
        assert len(sim.state.messages) == 1
