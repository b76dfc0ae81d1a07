"""Custom API credentials through the REST API: validation, masked secrets, updates, verify."""

from __future__ import annotations

from typing import Any

import pytest

from textrelay.simulator.custom import CustomSimConfig, CustomSimulatorServer

TEMPLATE = '{"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "{{message}}", "reference": "{{messageId}}"}'


def custom_payload(url: str = "https://sms.example.com/v1/messages", **kw: Any) -> dict[str, Any]:
    body = {"name": "acme", "vendor": "custom", "provider_name": "Acme SMS", "provider_app_id": "app-1",
            "provider_url": url, "payload_template": TEMPLATE, "response_id_path": "$.messages[0].id",
            "auth": {"type": "oauth2", "token_url": "https://sms.example.com/oauth/token",
                     "client_id": "cid", "client_secret": "client-secret-0123456789"},
            "headers": [{"name": "X-Tenant", "value": "t1"},
                        {"name": "X-Extra-Key", "value": "header-secret-abcdef", "secret": True}],
            "webhook_auth": {"type": "hmac", "secret": "hook-secret-0123456789"},
            "rate_limit_mps": 10}
    body.update(kw)
    return body


def test_custom_credential_is_created_with_every_secret_masked(api):
    resp = api.post("/api/v1/credentials", json=custom_payload())
    assert resp.status_code == 201, resp.text
    cred = resp.json()
    assert cred["vendor"] == "custom" and cred["provider_url"] == "https://sms.example.com/v1/messages"
    assert cred["auth"]["client_secret"] == "••••6789"
    assert cred["headers"] == [{"name": "X-Tenant", "value": "t1", "secret": False},
                               {"name": "X-Extra-Key", "value": "••••cdef", "secret": True}]
    assert cred["webhook_auth"]["secret"] == "••••6789"
    for secret in ("client-secret-0123456789", "header-secret-abcdef", "hook-secret-0123456789"):
        assert secret not in resp.text
        assert secret not in api.get(f"/api/v1/credentials/{cred['id']}").text
    assert all(h["url"].startswith(api.base_url + "/hooks/custom/") for h in cred["webhooks"])


def test_private_keys_and_mtls_keys_are_never_shown(api, pki):
    resp = api.post("/api/v1/credentials", json=custom_payload(
        auth={"type": "jwt", "algorithm": "ES256", "private_key": pki.client.key_pem, "issuer": "me"},
        mtls={"client_cert": pki.client.cert_pem, "client_key": pki.client.key_pem, "ca_bundle": pki.ca.cert_pem}))
    assert resp.status_code == 201, resp.text
    assert "PRIVATE KEY" not in resp.text
    assert resp.json()["auth"]["private_key"] == "•••• (PEM set)"


@pytest.mark.parametrize("change, field, words", [
    ({"provider_url": "ftp://sms.example.com/"}, "provider_url", "http"),
    ({"payload_template": '{"to": "{{toNumber}}"}'}, "payload_template", "{{fromNumber}}"),
    ({"payload_template": '{"from": "{{fromNumber}}",\n "to": }'}, "payload_template", "line 2, column 8"),
    ({"auth": {"type": "basic", "username": "u"}}, "auth.password", "needs"),
    ({"auth": {"type": "jwt", "algorithm": "RS256", "private_key": "not a key"}}, "auth.private_key", "sign"),
    ({"headers": [{"name": "Content-Type", "value": "text/plain"}]}, "headers.0.name", "cannot be changed"),
    ({"response_id_path": "$..[*"}, "response_id_path", "JSON path"),
    ({"mtls": {"client_cert": "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"}},
     "mtls.client_key", "private key"),
    ({"auth": {"type": "kerberos"}}, "auth.type", ""),
])
def test_bad_custom_credentials_are_refused_naming_the_field(api, change, field, words):
    resp = api.post("/api/v1/credentials", json=custom_payload(**change))
    assert resp.status_code == 422, resp.text
    errors = resp.json()["errors"]
    assert field in [e["field"] for e in errors], errors
    assert words in resp.text
    assert api.get("/api/v1/credentials").json()["items"] == []


def test_update_keeps_omitted_secrets_and_changing_auth_type_needs_new_ones(api):
    cred = api.post("/api/v1/credentials", json=custom_payload()).json()
    resp = api.patch(f"/api/v1/credentials/{cred['id']}", json={"auth": {"scope": "sms"}, "rate_limit_mps": 5})
    assert resp.status_code == 200, resp.text
    assert resp.json()["auth"]["client_secret"] == "••••6789" and resp.json()["auth"]["scope"] == "sms"
    assert resp.json()["headers"][1]["value"] == "••••cdef"
    refused = api.patch(f"/api/v1/credentials/{cred['id']}", json={"auth": {"type": "bearer"}})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "auth.token"
    twilio_field = api.patch(f"/api/v1/credentials/{cred['id']}", json={"account_sid": "AC" + "0" * 32})
    assert twilio_field.status_code == 422
    assert api.get(f"/api/v1/credentials/{cred['id']}").json()["auth"]["type"] == "oauth2"


def test_verify_reaches_the_simulator_with_oauth_and_sends_a_test_message(api):
    auth = {"type": "oauth2", "client_id": "cid", "client_secret": "client-secret-0123456789"}
    with CustomSimulatorServer(CustomSimConfig(auth=auth)) as sim:
        cred = api.post("/api/v1/credentials", json=custom_payload(
            url=sim.messages_url, auth={**auth, "token_url": sim.token_url})).json()
        result = api.post(f"/api/v1/credentials/{cred['id']}/verify",
                          json={"to": "+14155550123", "body": "Verify SMS connection"}).json()
        assert result.get("ok"), result
        assert sim.state.messages[0]["payload"]["text"] == "Verify SMS connection"
        assert sim.state.messages[0]["headers"]["x-extra-key"] == "header-secret-abcdef"
        bad = api.post("/api/v1/credentials", json=custom_payload(
            name="wrong", url=sim.messages_url, auth={**auth, "client_secret": "wrong-secret-000000",
                                                       "token_url": sim.token_url})).json()
        refused = api.post(f"/api/v1/credentials/{bad['id']}/verify").json()
    assert not refused["ok"] and "invalid_client" in str(refused["checks"])
    assert "wrong-secret-000000" not in str(refused)
