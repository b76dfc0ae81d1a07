"""Each custom webhook has its own secret: generated at creation, shown once, masked after,
rotatable; calls are checked against the webhook's own secret, over real HTTP."""

from __future__ import annotations

import base64
import json

import requests

from textrelay.simulator.custom import CustomSimConfig, CustomSimulatorServer, sign_body

TEMPLATE = '{"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "{{message}}", "reference": "{{messageId}}"}'


def _custom(api, name="per-hook", **extra):
    resp = api.post("/api/v1/credentials", json={
        "name": name, "vendor": "custom", "provider_url": "http://127.0.0.1:9/v1/messages",
        "payload_template": TEMPLATE, "inbound_number": "+14155550100", **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def _inbound(text: str, request_id: str) -> bytes:
    return json.dumps({"messageId": request_id, "from": "+14155550123", "to": "+14155550100", "text": text,
                       "receivedAt": "2026-01-01T00:00:00Z"}).encode()


def test_each_default_webhook_gets_its_own_secret_shown_once_then_masked(api):
    cred = _custom(api)
    hooks = {h["type"]: h for h in cred["webhooks"]}
    inbound_secret, feedback_secret = hooks["inbound"]["auth"]["secret"], hooks["feedback"]["auth"]["secret"]
    assert len(inbound_secret) >= 32 and len(feedback_secret) >= 32
    assert inbound_secret != feedback_secret
    again = api.get(f"/api/v1/credentials/{cred['id']}").json()
    for hook in again["webhooks"]:
        assert hook["auth"]["secret"].startswith("••••")
        assert inbound_secret not in json.dumps(again) and feedback_secret not in json.dumps(again)
    listed = api.get("/api/v1/webhooks", params={"credential_id": cred["id"]}).json()["items"]
    assert {h["auth"]["secret"] for h in listed} == {"••••" + inbound_secret[-4:], "••••" + feedback_secret[-4:]}


def test_a_webhook_refuses_the_other_webhooks_secret_and_accepts_its_own(api):
    cred = _custom(api)
    hooks = {h["type"]: h for h in cred["webhooks"]}
    body = _inbound("STOP", "in-own-1")
    wrong = requests.post(hooks["inbound"]["url"], data=body, timeout=5,
                          headers={"X-Signature": sign_body(hooks["feedback"]["auth"]["secret"], body)})
    assert wrong.status_code == 403
    assert api.get("/api/v1/consent/+14155550123").json()["status"] != "opted_out"
    right = requests.post(hooks["inbound"]["url"], data=body, timeout=5,
                          headers={"X-Signature": sign_body(hooks["inbound"]["auth"]["secret"], body)})
    assert right.status_code == 200, right.text
    assert api.get("/api/v1/consent/+14155550123").json()["status"] == "opted_out"


def test_rotating_a_secret_shows_the_new_one_once_and_the_old_one_stops_working(api):
    cred = _custom(api)
    hook = next(h for h in cred["webhooks"] if h["type"] == "inbound")
    old = hook["auth"]["secret"]
    rotated = api.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["auth"]["secret"]
    assert new != old and len(new) >= 32
    assert api.get(f"/api/v1/webhooks/{hook['id']}").json()["auth"]["secret"] == "••••" + new[-4:]
    body = _inbound("hello", "in-rot-1")
    assert requests.post(hook["url"], data=body, timeout=5,
                         headers={"X-Signature": sign_body(old, body)}).status_code == 403
    assert requests.post(hook["url"], data=body, timeout=5,
                         headers={"X-Signature": sign_body(new, body)}).status_code == 200
    chosen = api.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", json={"secret": "short"})
    assert chosen.status_code == 422 and "secret" in chosen.text


def test_bearer_and_basic_webhooks_check_their_own_secret(api):
    cred = _custom(api)
    made = api.post("/api/v1/webhooks", json={"name": "bearer feedback", "type": "feedback",
                                              "credential_id": cred["id"], "auth": {"type": "bearer"}})
    assert made.status_code == 201, made.text
    bearer = made.json()
    token = bearer["auth"]["secret"]
    body = json.dumps({"clientReference": "nope", "status": "DELIVERED"}).encode()
    assert requests.post(bearer["url"], data=body, timeout=5,
                         headers={"Authorization": "Bearer not-it"}).status_code == 403
    known = requests.post(bearer["url"], data=body, timeout=5, headers={"Authorization": f"Bearer {token}"})
    assert known.status_code == 400 and "client_reference" in known.text  # authenticated, then mapped

    no_user = api.post("/api/v1/webhooks", json={"name": "basic inbound", "type": "inbound",
                                                 "credential_id": cred["id"], "sender_number": "+14155550177",
                                                 "auth": {"type": "basic"}})
    assert no_user.status_code == 422 and "auth.username" in no_user.text
    basic = api.post("/api/v1/webhooks", json={"name": "basic inbound", "type": "inbound",
                                               "credential_id": cred["id"], "sender_number": "+14155550177",
                                               "auth": {"type": "basic", "username": "provider"}}).json()
    password = basic["auth"]["secret"]
    good = "Basic " + base64.b64encode(f"provider:{password}".encode()).decode()
    bad = "Basic " + base64.b64encode(b"provider:guess").decode()
    body = _inbound("hi", "in-basic-1")
    assert requests.post(basic["url"], data=body, timeout=5, headers={"Authorization": bad}).status_code == 403
    assert requests.post(basic["url"], data=body, timeout=5, headers={"Authorization": good}).status_code == 200


def test_twilio_webhooks_have_no_secret_of_their_own(api):
    cred = api.post("/api/v1/credentials", json={
        "name": "tw", "vendor": "twilio", "account_sid": "AC" + "1" * 32, "auth_token": "a" * 32}).json()
    hook = cred["webhooks"][0]
    assert "auth" not in hook
    resp = api.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret")
    assert resp.status_code == 422
    refused = api.post("/api/v1/webhooks", json={"name": "x", "type": "feedback", "credential_id": cred["id"],
                                                 "auth": {"type": "hmac"}})
    assert refused.status_code == 422 and "auth" in refused.text


def test_the_simulator_signs_each_webhook_with_its_own_secret(api):
    cred = _custom(api)
    hooks = {h["type"]: h for h in cred["webhooks"]}
    config = CustomSimConfig(inbound_url=hooks["inbound"]["url"],
                             inbound_auth={"type": "hmac", "secret": hooks["inbound"]["auth"]["secret"]},
                             feedback_auth={"type": "hmac", "secret": hooks["feedback"]["auth"]["secret"]})
    with CustomSimulatorServer(config) as sim:
        played = requests.post(sim.url + "/_sim/custom/inbound", timeout=10,
                               json={"from": "+14155550123", "to": "+14155550100", "text": "STOP"}).json()
    assert played["status"] == 200, played
    assert api.get("/api/v1/consent/+14155550123").json()["status"] == "opted_out"
