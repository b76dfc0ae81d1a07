"""Status callbacks: the lifecycle, Twilio's parameters and headers, signatures, failure numbers, options."""

import requests
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.simulator.conftest import Receiver
from textrelay.simulator.testing import SimulatorServer

TO = "+14155552671"
MG = "MG" + "e" * 32


def _send(sim: SimulatorServer, callback: str, to: str = TO, **extra: str) -> dict:
    response = requests.post(
        f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}/Messages.json",
        data={"To": to, "Body": "Hello", "StatusCallback": callback, **extra},
        auth=(sim.account_sid, sim.auth_token), timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def _statuses(receiver: Receiver) -> list[str]:
    return [r.form["MessageStatus"][0] for r in receiver.requests]


def test_callbacks_report_sent_then_delivered_signed_with_auth_token(
    simulator: SimulatorServer, receiver: Receiver
) -> None:
    callback = f"{receiver.url}/hooks/status?message=42&x=a%20b"
    message = _send(simulator, callback, From="+15005550006")
    requests_seen = receiver.wait_for(2)
    simulator.wait_idle()
    assert _statuses(receiver) == ["sent", "delivered"]
    validator = RequestValidator(simulator.auth_token)
    tokens = set()
    for request in requests_seen:
        assert request.path == "/hooks/status?message=42&x=a%20b"
        assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        params = {k: v[0] for k, v in request.form.items()}
        assert validator.validate(callback, params, request.headers["X-Twilio-Signature"])
        assert not validator.validate(callback + "&y=1", params, request.headers["X-Twilio-Signature"])
        tokens.add(request.headers["I-Twilio-Idempotency-Token"])
        assert params["MessageSid"] == params["SmsSid"] == message["sid"]
        assert params["SmsStatus"] == params["MessageStatus"]
        assert (params["AccountSid"], params["From"], params["To"], params["ApiVersion"]) == (
            simulator.account_sid, "+15005550006", TO, "2010-04-01")
        assert "MessagingServiceSid" not in params and "ErrorCode" not in params
    assert len(tokens) == 2
    delivered = requests_seen[1].form
    assert len(delivered["RawDlrDoneDate"][0]) == 10 and delivered["RawDlrDoneDate"][0].isdigit()
    assert "RawDlrDoneDate" not in requests_seen[0].form
    fetched = simulator.control("GET", f"/_sim/messages/{message['sid']}")
    assert fetched["status"] == "delivered"
    assert fetched["status_history"] == ["queued", "sent", "delivered"]
    assert simulator.state.stats()["callbacks_sent"] == 2


def test_messaging_service_message_also_reports_queued(simulator: SimulatorServer, receiver: Receiver) -> None:
    simulator.control("POST", "/_sim/accounts", {
        "account_sid": simulator.account_sid, "auth_token": simulator.auth_token, "messaging_services": [MG],
    })
    _send(simulator, f"{receiver.url}/cb", MessagingServiceSid=MG)
    receiver.wait_for(3)
    assert _statuses(receiver) == ["queued", "sent", "delivered"]
    assert all(r.form["MessagingServiceSid"] == [MG] for r in receiver.requests)


def test_service_status_callback_is_used_without_message_callback(
    simulator: SimulatorServer, receiver: Receiver
) -> None:
    simulator.control("POST", "/_sim/accounts", {
        "account_sid": simulator.account_sid, "auth_token": simulator.auth_token,
        "messaging_services": [{"sid": MG, "status_callback": f"{receiver.url}/service-cb"}],
    })
    client = Client(simulator.account_sid, simulator.auth_token)
    client.api.base_url = simulator.url
    client.messages.create(to=TO, messaging_service_sid=MG, body="x")
    receiver.wait_for(3)
    assert {r.path for r in receiver.requests} == {"/service-cb"}


def test_failure_numbers_end_undelivered_with_error_code(simulator: SimulatorServer, receiver: Receiver) -> None:
    message = _send(simulator, f"{receiver.url}/cb", to="+14155530003", From="+15005550006")
    receiver.wait_for(2)
    assert _statuses(receiver) == ["sent", "undelivered"]
    assert receiver.requests[1].form["ErrorCode"] == ["30003"]
    assert "RawDlrDoneDate" in receiver.requests[1].form
    simulator.wait_idle()
    resource = simulator.control("GET", f"/_sim/messages/{message['sid']}")["resource"]
    assert (resource["status"], resource["error_code"]) == ("undelivered", 30003)
    assert resource["error_message"]


def test_failed_before_sending_numbers_skip_sent(simulator: SimulatorServer, receiver: Receiver) -> None:
    _send(simulator, f"{receiver.url}/cb", to="+14155530001", From="+15005550006")
    receiver.wait_for(1)
    simulator.wait_idle()
    assert _statuses(receiver) == ["failed"]
    assert receiver.requests[0].form["ErrorCode"] == ["30001"]


def test_duplicate_callbacks_repeat_each_with_same_token(simulator: SimulatorServer, receiver: Receiver) -> None:
    simulator.control("POST", "/_sim/config", {"duplicate_callbacks": True})
    _send(simulator, f"{receiver.url}/cb", From="+15005550006")
    receiver.wait_for(4)
    assert _statuses(receiver) == ["sent", "sent", "delivered", "delivered"]
    tokens = [r.headers["I-Twilio-Idempotency-Token"] for r in receiver.requests]
    assert tokens[0] == tokens[1] and tokens[2] == tokens[3] and tokens[0] != tokens[2]


def test_duplicate_callbacks_can_carry_new_tokens(simulator: SimulatorServer, receiver: Receiver) -> None:
    simulator.control("POST", "/_sim/config", {
        "account_sid": simulator.account_sid, "duplicate_callbacks": True, "duplicate_token": "new",
    })
    _send(simulator, f"{receiver.url}/cb", From="+15005550006")
    receiver.wait_for(4)
    assert len({r.headers["I-Twilio-Idempotency-Token"] for r in receiver.requests}) == 4


def test_reverse_callbacks_send_delivered_before_sent(simulator: SimulatorServer, receiver: Receiver) -> None:
    simulator.control("POST", "/_sim/config", {"reverse_callbacks": True})
    message = _send(simulator, f"{receiver.url}/cb", From="+15005550006")
    receiver.wait_for(2)
    simulator.wait_idle()
    assert _statuses(receiver) == ["delivered", "sent"]
    assert simulator.control("GET", f"/_sim/messages/{message['sid']}")["status"] == "delivered"


def test_disabled_callbacks_still_move_the_message_on(simulator: SimulatorServer, receiver: Receiver) -> None:
    simulator.control("POST", "/_sim/config", {"callbacks_enabled": False})
    message = _send(simulator, f"{receiver.url}/cb", From="+15005550006")
    simulator.wait_idle()
    assert receiver.requests == []
    assert simulator.control("GET", f"/_sim/messages/{message['sid']}")["status"] == "delivered"


def test_unreachable_callback_is_recorded_not_raised(simulator: SimulatorServer) -> None:
    message = _send(simulator, "http://127.0.0.1:9/unreachable", From="+15005550006")
    simulator.wait_idle()
    record = simulator.control("GET", f"/_sim/messages/{message['sid']}")
    assert record["status"] == "delivered"
    assert [c["error"] is not None for c in record["callbacks"]] == [True, True]
    assert simulator.state.stats()["callbacks_failed"] == 2


def test_stats_count_creates_per_status_callback(simulator: SimulatorServer, receiver: Receiver) -> None:
    _send(simulator, f"{receiver.url}/cb?id=1", From="+15005550006")
    _send(simulator, f"{receiver.url}/cb?id=2", From="+15005550006")
    _send(simulator, f"{receiver.url}/cb?id=2", From="+15005550006")
    stats = simulator.control("GET", "/_sim/stats")
    assert stats["creates_by_status_callback"] == {f"{receiver.url}/cb?id=1": 1, f"{receiver.url}/cb?id=2": 2}
    assert stats["duplicate_creates_by_status_callback"] == {f"{receiver.url}/cb?id=2": 2}
    assert stats["duplicate_creates_by_to_body"] == [{"to": TO, "body": "Hello", "count": 3}]
    assert (stats["create_requests"], stats["created"]) == (3, 3)


def test_messaging_service_callbacks_carry_the_picked_sender(simulator: SimulatorServer, receiver: Receiver) -> None:
    simulator.control("POST", "/_sim/accounts", {
        "account_sid": simulator.account_sid, "auth_token": simulator.auth_token,
        "messaging_services": [{"sid": MG, "phone_numbers": ["+14155550123"]}],
    })
    _send(simulator, f"{receiver.url}/cb", MessagingServiceSid=MG)
    receiver.wait_for(3)
    assert {r.form["From"][0] for r in receiver.requests} == {"+14155550123"}
