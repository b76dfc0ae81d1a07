"""Routing by the To number across sandboxes, and signatures behind a TLS-terminating proxy."""

from __future__ import annotations

import pytest

from tests.inbound.helpers import make_line, reply_of
from tests.support import start_service, twilio_sid
from textrelay.services.webhooks import DEFAULT_REPLIES

HANDSET = "+14155550199"


def test_one_account_in_two_sandboxes_routes_each_number_to_its_own_sandbox(service, api):
    assert api.post("/api/v1/sandboxes", json={"name": "dev"}).status_code == 201
    dev_api = service.client(sandbox="dev")
    account = twilio_sid("AC")
    prod = make_line(api, "+14155550100", account_sid=account)
    dev = make_line(dev_api, "+14155550200", account_sid=account)

    # Through each sandbox's own webhook, and also crossed: a shared URL routes by To.
    assert reply_of(prod.text("STOP", HANDSET)) == DEFAULT_REPLIES["opt_out"]
    assert dev.consent(HANDSET)["status"] == "unknown"
    assert reply_of(prod.text("HELP", HANDSET, url=dev.url, to=dev.number)) == DEFAULT_REPLIES["help"]
    assert reply_of(dev.text("START", "+14155550188", url=prod.url)) == DEFAULT_REPLIES["opt_in"]

    assert prod.consent(HANDSET)["status"] == "opted_out"
    assert dev.consent(HANDSET)["status"] == "unknown"
    assert dev.consent("+14155550188")["status"] == "opted_in"
    assert prod.consent("+14155550188")["status"] == "unknown"
    prod_bodies = [m["body"] for m in api.get("/api/v1/inbound-messages").json()["items"]]
    dev_bodies = [m["body"] for m in dev_api.get("/api/v1/inbound-messages").json()["items"]]
    assert prod_bodies == ["STOP"]
    assert sorted(dev_bodies) == ["HELP", "START"]


def test_another_accounts_number_is_not_routed(service, api):
    make_line(api, "+14155550100")
    other = make_line(api, "+14155550300", name="other account")
    resp = other.text("STOP", HANDSET, to="+14155550100")
    assert resp.status_code == 404
    assert api.get("/api/v1/inbound-messages").json()["items"] == []


def test_webhook_bound_to_a_sender_number_takes_that_numbers_messages(service, api):
    line = make_line(api, "+14155550100")
    resp = api.post("/api/v1/webhooks", json={
        "name": "promo line", "type": "inbound", "credential_id": line.credential["id"],
        "sender_number": "+1 415 555 0111", "keywords": {"custom": ["PROMO"]},
        "replies": {"custom": "Promo codes: none today."}})
    assert resp.status_code == 201, resp.text
    assert reply_of(line.text("promo", HANDSET, to="+14155550111")) == "Promo codes: none today."
    # The credential's own number keeps its default webhook (no PROMO keyword there).
    assert reply_of(line.text("promo", HANDSET)) is None


@pytest.mark.parametrize("signed_base", ["https://sms.example.test", "https://sms.example.test:443"])
def test_configured_public_url_validates_signatures_behind_a_tls_proxy(context, signed_base):
    context.settings.public_url = "https://sms.example.test"
    live = start_service(context)
    try:
        api = live.client()
        line = make_line(api)
        assert line.url.startswith("https://sms.example.test/hooks/twilio/")
        path = line.url.removeprefix("https://sms.example.test")
        local = live.url + path
        assert reply_of(line.text("STOP", url=local, sign_url=signed_base + path)) == DEFAULT_REPLIES["opt_out"]
        # Signed for the internal http URL: not what Twilio signs, refused.
        assert line.text("HELP", url=local, sign_url=local).status_code == 403
    finally:
        live.stop()


@pytest.mark.parametrize("host", ["sms.example.test", "sms.example.test:443"])
def test_trusted_forwarded_headers_rebuild_the_public_url(context, host):
    context.settings.trust_proxy_headers = True
    live = start_service(context)
    context.settings.public_url = None  # rebuild from the request, as behind a proxy
    try:
        api = live.client()
        line = make_line(api)
        path = "/hooks/twilio/" + line.inbound_webhook["id"]
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": host}
        resp = line.text("STOP", url=live.url + path, sign_url=f"https://{host}{path}", headers=headers)
        assert reply_of(resp) == DEFAULT_REPLIES["opt_out"]
        other = "sms.example.test" if ":" in host else "sms.example.test:443"
        assert reply_of(line.text("HELP", url=live.url + path, sign_url=f"https://{other}{path}",
                                  headers=headers)) == DEFAULT_REPLIES["help"]
    finally:
        live.stop()


def test_forwarded_headers_are_ignored_unless_trusted(context):
    live = start_service(context)
    context.settings.public_url = None
    try:
        line = make_line(live.client())
        path = "/hooks/twilio/" + line.inbound_webhook["id"]
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sms.example.test"}
        resp = line.text("STOP", url=live.url + path, sign_url=f"https://sms.example.test{path}", headers=headers)
        assert resp.status_code == 403
        assert line.consent()["status"] == "unknown"
    finally:
        live.stop()
