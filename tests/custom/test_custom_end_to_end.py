"""RCS through a custom credential, end to end over HTTP: API → worker → simulator → signed JSON
feedback and inbound → our /hooks/custom webhooks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support import LiveService, start_service
from textrelay.simulator.custom import CustomSimConfig, CustomSimulatorServer, sign_body

TEMPLATE = ('{"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "{{message}}", '
            '"reference": "{{messageId}}", "rcs": {{rcs}}}')
HOOK_SECRET = "hook-secret-0123456789abcdef"
NO_RCS = "+14155550199"
CARD = {"type": "card", "fallback_text": "Sale today: 50% off",
        "card": {"title": "Sale", "description": "50% off", "media": {"url": "https://cdn.test/a.jpg"}},
        "suggestions": [{"type": "reply", "label": "Yes"}]}


@pytest.fixture
def live(context) -> Iterator[LiveService]:
    service = start_service(context, run_worker=True)
    yield service
    service.stop()


@pytest.fixture
def setup(live) -> Iterator[dict[str, Any]]:
    api = live.client()
    # Feedback a little after the answer, as real providers do, so the worker has recorded the send.
    with CustomSimulatorServer(CustomSimConfig(no_rcs_numbers=[NO_RCS], feedback_delay=0.2,
                                               webhook_auth={"type": "hmac", "secret": HOOK_SECRET})) as sim:
        cred = api.post("/api/v1/credentials", json={
            "name": "rcs-provider", "vendor": "custom", "provider_url": sim.messages_url,
            "payload_template": TEMPLATE, "response_id_path": "$.messages[0].id", "inbound_number": "+14155550100",
            "auth": {"type": "bearer", "token": "bearer-token-123456"},
            "webhook_auth": {"type": "hmac", "secret": HOOK_SECRET}}).json()
        sim.state.config.auth = {"type": "bearer", "token": "bearer-token-123456"}
        hooks = {h["type"]: h["url"] for h in cred["webhooks"]}
        sim.state.config.feedback_url, sim.state.config.inbound_url = hooks["feedback"], hooks["inbound"]
        sms = api.post("/api/v1/channel-configurations", json={
            "name": "sms-fallback", "channel": "sms", "sms_type": "transactional", "credential_id": cred["id"],
            "sender_number": "+14155550100", "status": "active"})
        assert sms.status_code == 201, sms.text
        rcs = api.post("/api/v1/channel-configurations", json={
            "name": "rcs-main", "channel": "rcs", "sms_type": "transactional", "credential_id": cred["id"],
            "sender_number": "+14155550100", "fallback_configuration_id": "sms-fallback", "status": "active"})
        assert rcs.status_code == 201, rcs.text
        yield {"api": api, "sim": sim, "cred": cred, "hooks": hooks}


def wait_status(api, message_id: str, wanted: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = api.get(f"/api/v1/messages/{message_id}").json()
        if message["status"] == wanted or time.monotonic() > deadline:
            return message
        time.sleep(0.05)


def test_rcs_card_is_delivered_then_read_through_signed_json_feedback(setup):
    api, sim = setup["api"], setup["sim"]
    resp = api.post("/api/v1/messages", json={"channel_configuration": "rcs-main", "to": "+14155550123",
                                              "rcs": CARD})
    assert resp.status_code == 202, resp.text
    message = wait_status(api, resp.json()["id"], "read")
    assert message["status"] == "read", message
    sent = sim.state.messages[0]
    assert sent["payload"]["rcs"]["richCard"]["standaloneCard"]["cardContent"]["title"] == "Sale"
    assert sent["payload"]["reference"] == resp.json()["id"]
    statuses = [e["status"] for e in message["history"]]
    assert "delivered" in statuses and "read" in statuses


def test_recipient_without_rcs_gets_the_sms_fallback_and_history_shows_both(setup):
    api, sim = setup["api"], setup["sim"]
    resp = api.post("/api/v1/messages", json={"channel_configuration": "rcs-main", "to": NO_RCS, "rcs": CARD})
    rcs_id = resp.json()["id"]
    rcs_message = wait_status(api, rcs_id, "failed")
    assert rcs_message["status"] == "failed" and rcs_message["error_code"] == "RCS_NOT_SUPPORTED"
    note = next(e["detail"] for e in rcs_message["history"] if "SMS fallback queued" in (e["detail"] or ""))
    fallback_id = note.split("message ")[1].split()[0]
    fallback = wait_status(api, fallback_id, "delivered")
    assert fallback["status"] == "delivered", fallback
    assert any(rcs_id in (e["detail"] or "") for e in fallback["history"])
    sms_payload = sim.state.messages[-1]["payload"]
    assert sms_payload["text"] == "Sale today: 50% off" and sms_payload["rcs"] is None


def test_custom_inbound_stop_opts_the_number_out(setup):
    api = setup["api"]
    body = json.dumps({"messageId": "in-1", "from": "+14155550123", "to": "+14155550100", "text": "Stop!",
                        "receivedAt": "2026-01-01T00:00:00Z"}).encode()
    ok = requests.post(setup["hooks"]["inbound"], data=body, timeout=5,
                       headers={"Content-Type": "application/json", "X-Signature": sign_body(HOOK_SECRET, body)})
    assert ok.status_code == 200, ok.text
    assert ok.json()["reply"]
    assert api.get("/api/v1/consent/+14155550123").json()["status"] == "opted_out"


def test_custom_webhooks_refuse_bad_signatures_and_missing_fields(setup):
    body = json.dumps({"messageId": "in-2", "from": "+14155550123", "to": "+14155550100", "text": "STOP",
                        "receivedAt": "2026-01-01T00:00:00Z"}).encode()
    forged = requests.post(setup["hooks"]["inbound"], data=body, timeout=5,
                           headers={"X-Signature": sign_body("not-the-secret", body)})
    assert forged.status_code == 403
    api = setup["api"]
    assert api.get("/api/v1/consent/+14155550123").json()["status"] != "opted_out"
    partial = json.dumps({"from": "+14155550123", "text": "hi"}).encode()
    missing = requests.post(setup["hooks"]["inbound"], data=partial, timeout=5,
                            headers={"X-Signature": sign_body(HOOK_SECRET, partial)})
    assert missing.status_code == 400 and "request_id" in missing.text
    feedback = json.dumps({"status": "DELIVERED"}).encode()
    no_ref = requests.post(setup["hooks"]["feedback"], data=feedback, timeout=5,
                           headers={"X-Signature": sign_body(HOOK_SECRET, feedback)})
    assert no_ref.status_code == 400 and "client_reference" in no_ref.text


def test_rcs_feedback_saying_no_rcs_sends_the_sms_fallback_once(setup):
    api, sim = setup["api"], setup["sim"]
    sim.state.config.rcs_feedback_statuses = ["SENT", "RCS_NOT_SUPPORTED"]
    resp = api.post("/api/v1/messages", json={"channel_configuration": "rcs-main", "to": "+14155550124",
                                              "rcs": CARD})
    rcs_id = resp.json()["id"]
    rcs_message = wait_status(api, rcs_id, "failed")
    assert rcs_message["status"] == "failed", rcs_message
    sim.wait_idle()
    record = next(m for m in sim.state.messages if m["reference"] == rcs_id)
    again = requests.post(sim.url + "/_sim/custom/feedback", timeout=5,
                          json={"id": record["id"], "status": "RCS_NOT_SUPPORTED"}).json()
    assert again["status"] == 200, again  # a duplicate is accepted and changes nothing
    rcs_message = api.get(f"/api/v1/messages/{rcs_id}").json()
    notes = [e["detail"] for e in rcs_message["history"] if "SMS fallback queued" in (e["detail"] or "")]
    assert len(notes) == 1, rcs_message["history"]
    fallback_id = notes[0].split("message ")[1].split()[0]
    fallback = wait_status(api, fallback_id, "delivered")
    assert fallback["status"] == "delivered", fallback
    assert any(rcs_id in (e["detail"] or "") for e in fallback["history"])
    sim.wait_idle()
    texts = [m for m in sim.state.messages if not m["rcs"] and m["to"] == "+14155550124"]
    assert len(texts) == 1 and texts[0]["payload"]["text"] == "Sale today: 50% off"


def test_custom_inbound_stop_reply_is_sent_through_the_provider_once_even_when_retried(setup):
    api, sim = setup["api"], setup["sim"]
    body = json.dumps({"messageId": "in-retry-1", "from": "+14155550125", "to": "+14155550100", "text": "STOP",
                       "receivedAt": "2026-01-01T00:00:00Z"}).encode()
    headers = {"Content-Type": "application/json", "X-Signature": sign_body(HOOK_SECRET, body)}
    answers = [requests.post(setup["hooks"]["inbound"], data=body, headers=headers, timeout=5) for _ in range(3)]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    reply_ids = {a.json()["reply_message_id"] for a in answers}
    assert len(reply_ids) == 1 and None not in reply_ids
    assert api.get("/api/v1/consent/+14155550125").json()["status"] == "opted_out"
    reply = wait_status(api, reply_ids.pop(), "delivered")
    assert reply["status"] == "delivered", reply  # the opt-out confirmation is not held back by consent
    assert reply["body"].startswith("You have been unsubscribed")
    sim.wait_idle()
    sent = [m for m in sim.state.messages if m["to"] == "+14155550125"]
    assert len(sent) == 1
    assert sent[0]["payload"]["from"] == "+14155550100" and sent[0]["payload"]["text"] == reply["body"]
