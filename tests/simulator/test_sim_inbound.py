"""Inbound messages on demand: Twilio's webhook request, its signature, keywords and TwiML replies."""

import requests
from twilio.request_validator import RequestValidator

from tests.simulator.conftest import Receiver
from textrelay.simulator.testing import SimulatorServer

HANDSET = "+14155552671"
NUMBER = "+14155550123"
MG = "MG" + "f" * 32


def _inbound(sim: SimulatorServer, **payload: object) -> dict:
    response = requests.post(f"{sim.url}/_sim/inbound", json={"account_sid": sim.account_sid, **payload}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_inbound_reaches_webhook_signed_with_twilio_fields(simulator: SimulatorServer, receiver: Receiver) -> None:
    url = f"{receiver.url}/hooks/twilio/inbound?sandbox=prod"
    result = _inbound(simulator, **{"from": HANDSET, "to": NUMBER, "body": "Hi there", "url": url})
    assert result["status"] == 200 and result["content_type"] == "text/xml" and result["body"] == "<Response/>"
    [request] = receiver.requests
    params = {k: v[0] for k, v in request.form.items()}
    assert RequestValidator(simulator.auth_token).validate(url, params, request.headers["X-Twilio-Signature"])
    assert request.headers["I-Twilio-Idempotency-Token"]
    sid = result["message_sid"]
    assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"] == sid and sid.startswith("SM")
    assert (params["From"], params["To"], params["Body"], params["AccountSid"]) == (
        HANDSET, NUMBER, "Hi there", simulator.account_sid)
    assert (params["NumMedia"], params["NumSegments"], params["SmsStatus"], params["ApiVersion"]) == (
        "0", "1", "received", "2010-04-01")
    assert params["FromCountry"] == params["ToCountry"] == "US"
    assert {"FromCity", "FromState", "FromZip", "ToCity", "ToState", "ToZip"} <= set(params)
    assert "MessagingServiceSid" not in params
    stored = simulator.control("GET", f"/_sim/messages/{sid}")["resource"]
    assert (stored["direction"], stored["status"], stored["body"]) == ("inbound", "received", "Hi there")


def test_inbound_media_and_service_fields(simulator: SimulatorServer, receiver: Receiver) -> None:
    simulator.control("POST", "/_sim/accounts", {
        "account_sid": simulator.account_sid, "auth_token": simulator.auth_token,
        "messaging_services": [{"sid": MG, "phone_numbers": [NUMBER]}],
    })
    result = _inbound(simulator, **{
        "from": HANDSET, "to": NUMBER, "body": "", "url": f"{receiver.url}/in",
        "media_urls": ["https://media.example/cat.png", {"url": "https://media.example/v", "content_type": "video/mp4"}],
        "extra": {"OptOutType": "HELP"},
    })
    form = receiver.requests[0].form
    assert result["message_sid"].startswith("MM")
    assert form["NumMedia"] == ["2"] and form["MessagingServiceSid"] == [MG] and form["OptOutType"] == ["HELP"]
    assert (form["MediaUrl0"], form["MediaContentType0"]) == (["https://media.example/cat.png"], ["image/png"])
    assert (form["MediaUrl1"], form["MediaContentType1"]) == (["https://media.example/v"], ["video/mp4"])


def test_redelivering_same_message_sid(simulator: SimulatorServer, receiver: Receiver) -> None:
    first = _inbound(simulator, **{"from": HANDSET, "to": NUMBER, "body": "again", "url": receiver.url})
    second = _inbound(simulator, **{"from": HANDSET, "to": NUMBER, "body": "again", "url": receiver.url,
                                    "message_sid": first["message_sid"]})
    assert second["message_sid"] == first["message_sid"]
    assert [r.form["MessageSid"] for r in receiver.requests] == [[first["message_sid"]]] * 2
    assert len(simulator.control("GET", "/_sim/messages?direction=inbound")["messages"]) == 1


def test_stop_opts_the_sender_out_and_start_back_in(simulator: SimulatorServer, receiver: Receiver) -> None:
    _inbound(simulator, **{"from": HANDSET, "to": NUMBER, "body": " stop ", "url": receiver.url})
    create = f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json"
    auth = (simulator.account_sid, simulator.auth_token)
    refused = requests.post(create, data={"To": HANDSET, "From": "+15005550006", "Body": "x"}, auth=auth, timeout=10)
    assert refused.json()["code"] == 21610
    _inbound(simulator, **{"from": HANDSET, "to": NUMBER, "body": "START", "url": receiver.url})
    accepted = requests.post(create, data={"To": HANDSET, "From": "+15005550006", "Body": "x"}, auth=auth, timeout=10)
    assert accepted.status_code == 201


def test_twiml_message_becomes_outbound_reply(simulator: SimulatorServer, receiver: Receiver) -> None:
    receiver.body = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks!</Message></Response>'
    result = _inbound(simulator, **{"from": HANDSET, "to": NUMBER, "body": "hello", "url": receiver.url})
    [reply] = result["replies"]
    assert (reply["to"], reply["from"], reply["body"]) == (HANDSET, NUMBER, "Thanks!")
    simulator.wait_idle()
    stored = simulator.control("GET", f"/_sim/messages/{reply['sid']}")
    assert stored["direction"] == "outbound-reply" and stored["status"] == "delivered"


def test_webhook_failure_is_reported(simulator: SimulatorServer, receiver: Receiver) -> None:
    receiver.status, receiver.body, receiver.content_type = 403, "forbidden", "text/plain"
    result = _inbound(simulator, **{"from": HANDSET, "to": NUMBER, "body": "x", "url": receiver.url})
    assert (result["status"], result["body"], result["replies"]) == (403, "forbidden", [])
    unreachable = _inbound(simulator, **{"from": HANDSET, "to": NUMBER, "body": "x", "url": "http://127.0.0.1:9/"})
    assert unreachable["status"] is None and unreachable["error"]


def test_inbound_uses_number_webhook_when_no_url_given(simulator: SimulatorServer, receiver: Receiver) -> None:
    simulator.control("POST", "/_sim/accounts", {
        "account_sid": simulator.account_sid, "auth_token": simulator.auth_token,
        "incoming_numbers": [{"phone_number": NUMBER, "sms_url": f"{receiver.url}/number-hook"}],
    })
    _inbound(simulator, **{"from": HANDSET, "to": NUMBER, "body": "x"})
    assert receiver.requests[0].path == "/number-hook"
    missing = requests.post(f"{simulator.url}/_sim/inbound",
                            json={"account_sid": simulator.account_sid, "from": HANDSET, "to": "+14155550199"},
                            timeout=10)
    assert missing.status_code == 400
