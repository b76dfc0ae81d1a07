"""Requests textrelay sends and the simulator's answers, checked against Twilio's own OpenAPI spec."""

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jsonschema
import pytest
import requests

from textrelay.simulator.testing import SimulatorServer

SPEC_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs" / "twilio"
API_SPEC = SPEC_DIR / "twilio_api_v2010.json"
MESSAGING_SPEC = SPEC_DIR / "twilio_messaging_v1.json"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"

pytestmark = pytest.mark.skipif(
    not API_SPEC.exists() or not MESSAGING_SPEC.exists(),
    reason=f"Twilio OpenAPI specs not found in {SPEC_DIR.resolve()}",
)


@cache
def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _to_json_schema(node: Any, spec: dict[str, Any]) -> Any:
    """Inline ``$ref``s and turn OpenAPI's ``nullable`` into a JSON-Schema null type."""
    if isinstance(node, list):
        return [_to_json_schema(item, spec) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _to_json_schema(copy.deepcopy(target), spec)
    result = {k: _to_json_schema(v, spec) for k, v in node.items() if k not in ("x-twilio", "description")}
    if result.pop("nullable", False):
        if "type" in result:
            result["type"] = [result["type"], "null"]
        if "enum" in result:
            result["enum"] = [*result["enum"], None]
    return result


def schema(spec_path: Path, name: str) -> dict[str, Any]:
    spec = _load(spec_path)
    return _to_json_schema(spec["components"]["schemas"][name], spec)


def create_request_schema() -> dict[str, Any]:
    spec = _load(API_SPEC)
    body = spec["paths"][MESSAGES_PATH]["post"]["requestBody"]
    result = _to_json_schema(body["content"]["application/x-www-form-urlencoded"]["schema"], spec)
    result["additionalProperties"] = False
    return result


def form_to_typed(form: dict[str, list[str]], request_schema: dict[str, Any]) -> dict[str, Any]:
    """Read form fields with the schema's types, as Twilio's API does."""
    typed: dict[str, Any] = {}
    for key, values in form.items():
        prop = request_schema["properties"].get(key, {})
        kind = prop.get("type")
        if kind == "array":
            typed[key] = values
        elif kind == "integer":
            typed[key] = int(values[-1])
        elif kind == "number":
            typed[key] = float(values[-1])
        elif kind == "boolean":
            typed[key] = {"true": True, "false": False}.get(values[-1].lower(), values[-1])
        else:
            typed[key] = values[-1]
    return typed


def assert_complete(resource: dict[str, Any], resource_schema: dict[str, Any]) -> None:
    """Valid, and carrying exactly the fields Twilio's schema names: no more, no fewer."""
    jsonschema.validate(resource, resource_schema)
    assert set(resource) == set(resource_schema["properties"])


# What textrelay's Twilio provider sends: To, From or MessagingServiceSid, Body, MediaUrl x n,
# StatusCallback, ValidityPeriod.
SERVICE_REQUESTS = [
    [("To", "+14155552671"), ("From", "+15005550006"), ("Body", "Hello"),
     ("StatusCallback", "https://relay.example.com/hooks/twilio/status/abc?m=1"), ("ValidityPeriod", "600")],
    [("To", "+14155552671"), ("MessagingServiceSid", "MG" + "a" * 32), ("Body", "Olá 👋"),
     ("MediaUrl", "https://cdn.example.com/a.jpg"), ("MediaUrl", "https://cdn.example.com/b.png")],
    [("To", "+33612345678"), ("From", "+15005550006"), ("MediaUrl", "https://cdn.example.com/a.gif")],
]


@pytest.mark.parametrize("fields", SERVICE_REQUESTS)
def test_service_create_request_is_valid_create_message_request(fields: list[tuple[str, str]]) -> None:
    request_schema = create_request_schema()
    form = parse_qs(urlencode(fields), keep_blank_values=True)
    jsonschema.validate(form_to_typed(form, request_schema), request_schema)


def test_unknown_parameter_fails_create_message_request_schema() -> None:
    request_schema = create_request_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"To": "+14155552671", "Sender": "x"}, request_schema)


@pytest.mark.parametrize("fields", SERVICE_REQUESTS)
def test_created_message_matches_message_schema(fields: list[tuple[str, str]]) -> None:
    with SimulatorServer(callback_delay=0.01) as sim:
        sim.control("POST", "/_sim/accounts", {
            "account_sid": sim.account_sid, "auth_token": sim.auth_token,
            "messaging_services": ["MG" + "a" * 32],
        })
        response = requests.post(
            f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}/Messages.json",
            data=fields, auth=(sim.account_sid, sim.auth_token), timeout=10,
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert_complete(created, schema(API_SPEC, "api.v2010.account.message"))
        fetched = requests.get(
            f"{sim.url}{created['uri']}", auth=(sim.account_sid, sim.auth_token), timeout=10
        ).json()
        assert_complete(fetched, schema(API_SPEC, "api.v2010.account.message"))


def test_list_account_numbers_and_service_match_their_schemas() -> None:
    service_sid = "MG" + "b" * 32
    with SimulatorServer() as sim:
        sim.control("POST", "/_sim/accounts", {
            "account_sid": sim.account_sid, "auth_token": sim.auth_token,
            "messaging_services": [{"sid": service_sid, "phone_numbers": ["+14155550100"]}],
            "incoming_numbers": ["+14155550100"],
        })
        auth = (sim.account_sid, sim.auth_token)
        requests.post(f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}/Messages.json",
                      data={"To": "+14155552671", "From": "+14155550100", "Body": "hi"}, auth=auth, timeout=10)
        page = requests.get(f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}/Messages.json", auth=auth,
                            timeout=10).json()
        spec = _load(API_SPEC)
        list_schema = _to_json_schema(
            spec["paths"][MESSAGES_PATH]["get"]["responses"]["200"]["content"]["application/json"]["schema"], spec
        )
        jsonschema.validate(page, list_schema)
        assert set(page) == set(list_schema["properties"])

        account = requests.get(f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}.json", auth=auth,
                               timeout=10).json()
        assert_complete(account, schema(API_SPEC, "api.v2010.account"))

        numbers = requests.get(f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}/IncomingPhoneNumbers.json",
                               auth=auth, timeout=10).json()
        assert numbers["incoming_phone_numbers"][0]["phone_number"] == "+14155550100"
        assert_complete(numbers["incoming_phone_numbers"][0],
                        schema(API_SPEC, "api.v2010.account.incoming_phone_number"))

        service = requests.get(f"{sim.url}/v1/Services/{service_sid}", auth=auth, timeout=10).json()
        assert_complete(service, schema(MESSAGING_SPEC, "messaging.v1.service"))
        pool = requests.get(f"{sim.url}/v1/Services/{service_sid}/PhoneNumbers", auth=auth, timeout=10).json()
        assert_complete(pool["phone_numbers"][0], schema(MESSAGING_SPEC, "messaging.v1.service.phone_number"))
        assert pool["meta"]["key"] == "phone_numbers"


def test_simulator_knows_exactly_the_create_message_parameters() -> None:
    from textrelay.simulator.twilio.validation import CREATE_PARAMETERS

    assert set(create_request_schema()["properties"]) == CREATE_PARAMETERS
