"""Signed Twilio inbound requests for tests, made with the official ``twilio`` package."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from twilio.request_validator import RequestValidator

from tests.support import ApiClient, twilio_sid

TOKEN = "e" * 28 + "70ad"


@dataclass
class Line:
    """A Twilio credential of ours with its inbound webhook: where a handset's texts arrive."""

    api: ApiClient
    credential: dict[str, Any]
    account_sid: str
    token: str
    number: str

    @property
    def inbound_webhook(self) -> dict[str, Any]:
        return next(h for h in self.credential["webhooks"] if h["type"] == "inbound")

    @property
    def url(self) -> str:
        return self.inbound_webhook["url"]

    def params(self, body: str, from_: str = "+14155550199", sid: str | None = None, to: str | None = None,
               **extra: str) -> dict[str, str]:
        return {"MessageSid": sid or twilio_sid("SM"), "SmsSid": sid or "", "AccountSid": self.account_sid,
                "From": from_, "To": to or self.number, "Body": body, "NumMedia": "0", "NumSegments": "1",
                "SmsStatus": "received", "ApiVersion": "2010-04-01", **extra}

    def text(self, body: str, from_: str = "+14155550199", *, sid: str | None = None, to: str | None = None,
             url: str | None = None, sign_url: str | None = None, headers: dict[str, str] | None = None,
             **extra: str) -> requests.Response:
        params = self.params(body, from_, sid, to, **extra)
        return post_signed(url or self.url, params, self.token, sign_url=sign_url, headers=headers)

    def consent(self, number: str = "+14155550199") -> dict[str, Any]:
        resp = self.api.get(f"/api/v1/consent/{number}")
        assert resp.status_code == 200, resp.text
        return resp.json()


def post_signed(url: str, params: dict[str, str], token: str, *, sign_url: str | None = None,
                headers: dict[str, str] | None = None) -> requests.Response:
    signature = RequestValidator(token).compute_signature(sign_url or url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature, **(headers or {})},
                         timeout=30)


def make_line(api: ApiClient, number: str = "+14155550100", *, account_sid: str | None = None,
              token: str = TOKEN, name: str = "Twilio main") -> Line:
    account_sid = account_sid or twilio_sid("AC")
    resp = api.post("/api/v1/credentials", json={
        "name": name, "vendor": "twilio", "account_sid": account_sid, "auth_token": token,
        "inbound_number": number})
    assert resp.status_code == 201, resp.text
    return Line(api, resp.json(), account_sid, token, number)


def reply_of(resp: requests.Response) -> str | None:
    """The text of the TwiML ``<Message>``, or None for an empty ``<Response/>``."""
    from xml.etree import ElementTree

    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(resp.text)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return messages[0].text if messages else None
