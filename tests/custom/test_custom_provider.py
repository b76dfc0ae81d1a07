"""The custom provider against the custom-mode simulator, over real HTTP and HTTPS on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from textrelay.providers.base import OutboundMessage, Outcome, SendResult
from textrelay.providers.custom import CustomProvider, CustomProviderSettings
from textrelay.providers.custom_auth import AuthSettings, MtlsSettings
from textrelay.simulator.custom import CustomSimConfig, CustomSimulatorServer, TlsFiles

TEMPLATE = ('{"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "{{message}}", '
            '"reference": "{{messageId}}", "rcs": {{rcs}}}')


def run(factory: Callable[[aiohttp.ClientSession], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with aiohttp.ClientSession() as http:
            return await factory(http)
    return asyncio.run(main())


def provider(sim: CustomSimulatorServer, auth: AuthSettings | None = None, **kw: Any) -> CustomProvider:
    return CustomProvider(CustomProviderSettings(provider_url=sim.messages_url, payload_template=TEMPLATE,
                                                 auth=auth or AuthSettings(), response_id_path="$.messages[0].id",
                                                 **kw))


def message(body: str = "Hello", to: str = "+15551234567", content: dict | None = None, n: int = 1) -> OutboundMessage:
    return OutboundMessage(message_id=f"msg_{n}", to=to, sender="+15005550006", body=body, content=content)


def send(p: CustomProvider, m: OutboundMessage | None = None) -> SendResult:
    return run(lambda http: p.send(http, m or message()))


def _pem(key: Any) -> tuple[str, str]:
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


RSA_PRIVATE, RSA_PUBLIC = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PRIVATE, EC_PUBLIC = _pem(ec.generate_private_key(ec.SECP256R1()))
JWT_CLAIMS = {"issuer": "textrelay", "subject": "sandbox-prod", "audience": "sim-provider"}

# (our settings, what the simulator expects, our settings with a wrong secret)
AUTH_CASES: dict[str, tuple[dict, dict, dict]] = {
    "none": ({"type": "none"}, {"type": "none"}, {}),
    "api_key": ({"type": "api_key", "header_name": "X-Api-Token", "token": "key-123456"},
                {"type": "api_key", "header_name": "X-Api-Token", "token": "key-123456"}, {"token": "key-999999"}),
    "basic": ({"type": "basic", "username": "acme", "password": "pa:ss wörd"},
              {"type": "basic", "username": "acme", "password": "pa:ss wörd"}, {"password": "nope-nope"}),
    "bearer": ({"type": "bearer", "token": "tok-abcdef"}, {"type": "bearer", "token": "tok-abcdef"},
               {"token": "tok-zzzzzz"}),
    "mac": ({"type": "mac", "key_id": "k1", "secret": "mac-secret-1"},
            {"type": "mac", "key_id": "k1", "secret": "mac-secret-1"}, {"secret": "mac-secret-2"}),
    "oauth2": ({"type": "oauth2", "client_id": "cid", "client_secret": "csecret-1"},
               {"type": "oauth2", "client_id": "cid", "client_secret": "csecret-1"}, {"client_secret": "csecret-2"}),
    "jwt_hs256": ({"type": "jwt", "algorithm": "HS256", "secret": "jwt-secret-0123456789abcdef0123456789", **JWT_CLAIMS},
                  {"type": "jwt", "algorithm": "HS256", "secret": "jwt-secret-0123456789abcdef0123456789", **JWT_CLAIMS},
                  {"secret": "jwt-secret-9876543210fedcba9876543210"}),
    "jwt_rs256": ({"type": "jwt", "algorithm": "RS256", "private_key": RSA_PRIVATE, **JWT_CLAIMS},
                  {"type": "jwt", "algorithm": "RS256", "public_key": RSA_PUBLIC, **JWT_CLAIMS},
                  {"private_key": _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))[0]}),
    "jwt_es256": ({"type": "jwt", "algorithm": "ES256", "private_key": EC_PRIVATE, **JWT_CLAIMS},
                  {"type": "jwt", "algorithm": "ES256", "public_key": EC_PUBLIC, **JWT_CLAIMS},
                  {"private_key": _pem(ec.generate_private_key(ec.SECP256R1()))[0]}),
}


def auth_settings(sim: CustomSimulatorServer, ours: dict, **override: Any) -> AuthSettings:
    settings = AuthSettings(**{**ours, **override})
    if settings.type == "oauth2":
        settings.token_url = sim.token_url
    return settings


@pytest.mark.parametrize("case", list(AUTH_CASES))
def test_each_auth_type_is_accepted_and_a_wrong_secret_refused(case):
    ours, theirs, wrong = AUTH_CASES[case]
    with CustomSimulatorServer(CustomSimConfig(auth=theirs)) as sim:
        result = send(provider(sim, auth_settings(sim, ours)))
        assert result.outcome is Outcome.ACCEPTED, result
        assert result.provider_message_id == sim.state.messages[0]["id"]
        assert sim.state.messages[0]["payload"]["text"] == "Hello"
        if not wrong:
            return
        refused = send(provider(sim, auth_settings(sim, ours, **wrong)))
        assert refused.outcome is (Outcome.RETRY if case == "oauth2" else Outcome.FAILED)
        assert len(sim.state.messages) == 1
        if case != "oauth2":  # a wrong client secret fails at the token endpoint instead
            assert "refused our credentials" in (refused.error_message or "")
        for secret in wrong.values():
            assert secret not in (refused.error_message or "")


def test_wrong_oauth_client_secret_is_retried_with_the_token_endpoint_reason():
    ours, theirs, _ = AUTH_CASES["oauth2"]
    with CustomSimulatorServer(CustomSimConfig(auth=theirs)) as sim:
        p = provider(sim, auth_settings(sim, ours, client_secret="csecret-2"))
        result = send(p)
    assert result.outcome is Outcome.RETRY
    assert result.error_code == "oauth_token"
    assert "invalid_client" in (result.error_message or "") and "csecret" not in (result.error_message or "")


def test_oauth_token_is_fetched_once_per_lifetime_under_50_concurrent_sends():
    ours, theirs, _ = AUTH_CASES["oauth2"]
    with CustomSimulatorServer(CustomSimConfig(auth=theirs, token_lifetime=2.0)) as sim:
        p = provider(sim, auth_settings(sim, ours))

        async def burst(http: aiohttp.ClientSession) -> list[SendResult]:
            return await asyncio.gather(*(p.send(http, message(n=i)) for i in range(50)))

        first = run(burst)
        assert all(r.outcome is Outcome.ACCEPTED for r in first)
        assert sim.state.token_requests == 1
        time.sleep(2.0)  # past the token's lifetime
        second = run(burst)
        assert all(r.outcome is Outcome.ACCEPTED for r in second)
        assert sim.state.token_requests == 2
        assert len(sim.state.messages) == 100


def test_oauth_token_revoked_by_the_provider_is_refreshed_once_on_401():
    ours, theirs, _ = AUTH_CASES["oauth2"]
    with CustomSimulatorServer(CustomSimConfig(auth=theirs)) as sim:
        p = provider(sim, auth_settings(sim, ours))
        assert send(p).outcome is Outcome.ACCEPTED
        sim.state.tokens.clear()  # the provider forgets every token it issued
        result = send(p, message(n=2))
        assert result.outcome is Outcome.ACCEPTED
        assert sim.state.token_requests == 2
        assert "[redacted]" not in (result.error_message or "")


def test_failing_oauth_token_endpoint_means_retry_with_that_reason():
    ours, theirs, _ = AUTH_CASES["oauth2"]
    with CustomSimulatorServer(CustomSimConfig(auth=theirs)) as sim:
        sim.state.token_faults.append({"status": 503, "error": "temporarily_unavailable"})
        result = send(provider(sim, auth_settings(sim, ours)))
        assert result.outcome is Outcome.RETRY
        assert "token endpoint" in (result.error_message or "")
        assert "temporarily_unavailable" in (result.error_message or "")
        assert sim.state.messages == []


def test_injection_message_reaches_the_provider_as_one_string_with_no_extra_field():
    injection = '"},"admin":true,"x":"'
    with CustomSimulatorServer() as sim:
        assert send(provider(sim), message(body=injection)).outcome is Outcome.ACCEPTED
        received = sim.state.messages[0]
    assert received["payload"]["text"] == injection
    assert set(received["payload"]) == {"from", "to", "text", "reference", "rcs"}
    assert received["headers"]["content-type"] == "application/json; charset=utf-8"


def test_tricky_message_content_arrives_intact():
    body = 'quote " backslash \\ newline \n emoji 🎉 braces {{message}} }}{{'
    with CustomSimulatorServer() as sim:
        send(provider(sim), message(body=body))
        assert sim.state.messages[0]["payload"]["text"] == body


def test_rcs_card_and_carousel_reach_the_provider_exactly():
    card = {"type": "card", "fallback_text": "Sale today",
            "card": {"title": "Sale", "description": "50% off", "media": {"url": "https://cdn.test/a.jpg"}},
            "suggestions": [{"type": "reply", "label": "Yes"},
                            {"type": "open_url", "label": "Shop", "url": "https://shop.test/"}]}
    carousel = {"type": "carousel", "fallback_text": "Picks",
                "carousel": {"card_width": "small", "media_height": "tall", "cards": [
                    {"title": "A", "suggestions": [{"type": "dial", "label": "Call", "phone_number": "+15550001111"}]},
                    {"title": "B", "media": {"url": "https://cdn.test/b.jpg", "thumbnail_url": "https://cdn.test/bt.jpg"}}]}}
    with CustomSimulatorServer() as sim:
        p = provider(sim)
        assert send(p, message(body="Sale today", content={"rcs": card})).outcome is Outcome.ACCEPTED
        assert send(p, message(body="Picks", content={"rcs": carousel}, n=2)).outcome is Outcome.ACCEPTED
        first, second = (m["payload"]["rcs"] for m in sim.state.messages)
    assert first == {
        "richCard": {"standaloneCard": {"cardOrientation": "VERTICAL", "cardContent": {
            "title": "Sale", "description": "50% off",
            "media": {"height": "MEDIUM", "contentInfo": {"fileUrl": "https://cdn.test/a.jpg"}}}}},
        "suggestions": [{"reply": {"text": "Yes", "postbackData": "Yes"}},
                        {"action": {"text": "Shop", "postbackData": "Shop",
                                    "openUrlAction": {"url": "https://shop.test/"}}}]}
    assert second == {"richCard": {"carouselCard": {"cardWidth": "SMALL", "cardContents": [
        {"title": "A", "suggestions": [{"action": {"text": "Call", "postbackData": "Call",
                                                   "dialAction": {"phoneNumber": "+15550001111"}}}]},
        {"title": "B", "media": {"height": "TALL", "contentInfo": {
            "fileUrl": "https://cdn.test/b.jpg", "thumbnailUrl": "https://cdn.test/bt.jpg"}}}]}}}


def test_recipient_without_rcs_asks_for_the_sms_fallback():
    rcs = {"type": "text", "text": "Rich hello", "fallback_text": "Plain hello"}
    with CustomSimulatorServer(CustomSimConfig(no_rcs_numbers=["+15550000000"])) as sim:
        result = send(provider(sim), message(to="+15550000000", content={"rcs": rcs}))
    assert result.outcome is Outcome.FAILED and result.fallback
    assert result.error_code == "RCS_NOT_SUPPORTED"


def test_non_json_answer_fails_the_message_with_a_clear_reason():
    with CustomSimulatorServer() as sim:
        sim.state.faults.append({"status": 200, "body": "<html>OK</html>", "content_type": "text/html"})
        result = send(provider(sim))
    assert result.outcome is Outcome.FAILED
    assert "not JSON" in (result.error_message or "") and "<html>OK</html>" in (result.error_message or "")


@pytest.mark.parametrize("status, outcome", [(429, Outcome.RETRY), (503, Outcome.RETRY), (400, Outcome.FAILED)])
def test_provider_errors_map_to_retry_or_failure(status, outcome):
    with CustomSimulatorServer() as sim:
        sim.state.faults.append({"status": status, "retry_after": 7, "content_type": "application/json",
                                 "body": json.dumps({"error": {"code": "E42", "message": "nope"}})})
        result = send(provider(sim))
    assert result.outcome is outcome
    assert result.error_code == "E42" and result.error_message == "nope"
    if status == 429:
        assert result.retry_after == 7


def test_mtls_with_a_valid_client_certificate_sends_and_verifies(pki):
    tls = TlsFiles(pki.server_cert_file, pki.server_key_file, client_ca=pki.ca_file)
    with CustomSimulatorServer(tls=tls) as sim:
        p = provider(sim, mtls=MtlsSettings(client_cert=pki.client.cert_pem, client_key=pki.client.key_pem,
                                            ca_bundle=pki.ca.cert_pem))
        assert sim.url.startswith("https://")
        assert send(p).outcome is Outcome.ACCEPTED
        report = run(lambda http: p.verify(http))
    assert report.ok, report.checks


def test_mtls_with_an_expired_client_certificate_gives_a_clear_verify_error(pki):
    tls = TlsFiles(pki.server_cert_file, pki.server_key_file, client_ca=pki.ca_file)
    with CustomSimulatorServer(tls=tls) as sim:
        p = provider(sim, mtls=MtlsSettings(client_cert=pki.expired_client.cert_pem,
                                            client_key=pki.expired_client.key_pem, ca_bundle=pki.ca.cert_pem))
        report = run(lambda http: p.verify(http))
        result = send(p)
    assert not report.ok
    assert report.checks[0]["check"] == "client_certificate" and "expired" in report.checks[0]["detail"]
    assert result.outcome is Outcome.FAILED and result.error_code == "tls"


def test_mtls_with_a_foreign_client_certificate_gives_a_clear_verify_error(pki):
    tls = TlsFiles(pki.server_cert_file, pki.server_key_file, client_ca=pki.ca_file)
    with CustomSimulatorServer(tls=tls) as sim:
        p = provider(sim, mtls=MtlsSettings(client_cert=pki.foreign_client.cert_pem,
                                            client_key=pki.foreign_client.key_pem, ca_bundle=pki.ca.cert_pem))
        report = run(lambda http: p.verify(http))
        assert sim.state.messages == []
    assert not report.ok
    assert report.checks[-1]["check"] == "tls"
    assert "TLS handshake with the provider failed" in report.checks[-1]["detail"]


def test_verify_reports_refused_credentials_and_sends_a_test_message():
    ours, theirs, wrong = AUTH_CASES["bearer"]
    with CustomSimulatorServer(CustomSimConfig(auth=theirs)) as sim:
        good = run(lambda http: provider(sim, auth_settings(sim, ours)).verify(http, to="+15551234567",
                                                                                 body="Verify SMS connection"))
        bad = run(lambda http: provider(sim, auth_settings(sim, ours, **wrong)).verify(http))
        assert sim.state.messages[0]["payload"]["text"] == "Verify SMS connection"
    assert good.ok and [c["check"] for c in good.checks] == ["authentication", "test_message"]
    assert not bad.ok and "401" in bad.checks[0]["detail"]
