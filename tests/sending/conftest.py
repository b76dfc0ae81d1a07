"""Helpers for sending tests: an API credential and an active channel configuration over the API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import ApiClient, twilio_sid


def make_credential(api: ApiClient, name: str = "Twilio main", messaging_service: bool = True) -> dict[str, Any]:
    body = {"name": name, "vendor": "twilio", "account_sid": twilio_sid("AC"), "auth_token": "f" * 28 + "c0de"}
    if messaging_service:
        body["messaging_service_sid"] = twilio_sid("MG")
    resp = api.post("/api/v1/credentials", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def make_configuration(api: ApiClient, credential_id: str, **over: Any) -> dict[str, Any]:
    body = {"name": "promo", "channel": "sms", "sms_type": "marketing", "credential_id": credential_id,
            "sender_number": "+14155550100", "status": "active"}
    body.update(over)
    resp = api.post("/api/v1/channel-configurations", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture
def credential(api: ApiClient) -> dict[str, Any]:
    return make_credential(api)


@pytest.fixture
def configuration(api: ApiClient, credential: dict[str, Any]) -> dict[str, Any]:
    return make_configuration(api, credential["id"])
