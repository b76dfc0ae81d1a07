"""The simulator through Twilio's official Python SDK and plain HTTP: resources, validation, auth."""

import re

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from textrelay.simulator.testing import SimulatorServer, new_account

SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
MG = "MG" + "c" * 32
TO = "+14155552671"


def test_sdk_creates_and_fetches_message(twilio_client: Client, simulator: SimulatorServer) -> None:
    created = twilio_client.messages.create(to=TO, from_="+15005550006", body="Hello from the simulator")
    assert SID.match(created.sid) and created.sid.startswith("SM")
    assert created.status == "queued"
    assert created.direction == "outbound-api"
    assert created.num_segments == "1" and created.num_media == "0"
    assert created.account_sid == simulator.account_sid
    assert created.price is None and created.error_code is None
    fetched = twilio_client.messages(created.sid).fetch()
    assert (fetched.sid, fetched.body, fetched.to) == (created.sid, "Hello from the simulator", TO)


def test_raw_create_answer_is_twilio_shaped(simulator: SimulatorServer) -> None:
    response = requests.post(
        f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json",
        data=[("To", TO), ("From", "+15005550006"), ("Body", "a" * 161),
              ("MediaUrl", "https://x.example/a.jpg"), ("Bogus", "1")],
        auth=(simulator.account_sid, simulator.auth_token), timeout=10,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("MM")
    assert body["num_media"] == "1" and body["num_segments"] == "1"
    assert RFC2822.match(body["date_created"]) and body["date_sent"] is None
    assert body["uri"] == f"/2010-04-01/Accounts/{simulator.account_sid}/Messages/{body['sid']}.json"
    assert body["subresource_uris"] == {
        "media": f"/2010-04-01/Accounts/{simulator.account_sid}/Messages/{body['sid']}/Media.json"
    }
    record = simulator.control("GET", f"/_sim/messages/{body['sid']}")
    assert record["unknown_params"] == ["Bogus"]
    assert record["params"]["MediaUrl"] == ["https://x.example/a.jpg"]


def test_long_gsm_body_counts_segments(twilio_client: Client) -> None:
    assert twilio_client.messages.create(to=TO, from_="+15005550006", body="a" * 161).num_segments == "2"
    assert twilio_client.messages.create(to=TO, from_="+15005550006", body="ж" * 71).num_segments == "2"


def test_messaging_service_message_starts_accepted_with_zero_segments(simulator: SimulatorServer) -> None:
    simulator.control("POST", "/_sim/accounts", {
        "account_sid": simulator.account_sid, "auth_token": simulator.auth_token,
        "messaging_services": [{"sid": MG, "phone_numbers": ["+14155550123"]}],
    })
    client = Client(simulator.account_sid, simulator.auth_token)
    client.api.base_url = simulator.url
    created = client.messages.create(to=TO, messaging_service_sid=MG, body="a" * 200)
    assert (created.status, created.num_segments, created.messaging_service_sid) == ("accepted", "0", MG)
    assert created.from_ is None  # the service has not picked a sender yet
    simulator.wait_idle()
    fetched = client.messages(created.sid).fetch()
    assert (fetched.status, fetched.num_segments, fetched.from_) == ("delivered", "2", "+14155550123")
    assert fetched.price == "-0.01580" and fetched.price_unit == "USD"
    assert fetched.date_sent is not None


@pytest.mark.parametrize(
    ("to", "code"),
    [("+15005550001", 21211), ("+15005550002", 21612), ("+15005550003", 21408),
     ("+15005550004", 21610), ("+15005550009", 21614)],
)
def test_magic_to_numbers_raise_twilio_errors(twilio_client: Client, to: str, code: int) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.messages.create(to=to, from_="+15005550006", body="x")
    assert (caught.value.status, caught.value.code) == (400, code)


@pytest.mark.parametrize(
    ("from_", "code"),
    [("+15005550001", 21212), ("+15005550007", 21606), ("+15005550008", 21611), ("+15005550000", 21606)],
)
def test_magic_from_numbers_raise_twilio_errors(twilio_client: Client, from_: str, code: int) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.messages.create(to=TO, from_=from_, body="x")
    assert (caught.value.status, caught.value.code) == (400, code)


def _post(sim: SimulatorServer, fields: list[tuple[str, str]]) -> requests.Response:
    return requests.post(
        f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}/Messages.json",
        data=fields, auth=(sim.account_sid, sim.auth_token), timeout=10,
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ([("From", "+15005550006"), ("Body", "x")], 21604),
        ([("To", TO), ("Body", "x")], 21603),
        ([("To", TO), ("From", "+15005550006")], 21602),
        ([("To", TO), ("From", "+15005550006"), ("Body", "x" * 1601)], 21617),
        ([("To", TO), ("From", "+15005550006"), *[("MediaUrl", f"https://m.example/{i}.jpg") for i in range(11)]],
         21623),
        ([("To", TO), ("From", "+15005550006"), ("Body", "x"), ("StatusCallback", "ftp://example.com/cb")], 21609),
        ([("To", TO), ("From", "+15005550006"), ("Body", "x"), ("StatusCallback", "https://my_host.example/cb")],
         21609),
        ([("To", TO), ("From", "+15005550006"), ("Body", "x"), ("StatusCallback", "https://e.com/" + "a" * 4000)],
         21609),
        ([("To", "+1555"), ("From", "+15005550006"), ("Body", "x")], 21211),
        ([("To", "+15555550100"), ("From", "+15005550006"), ("Body", "x")], 21211),
        ([("To", TO), ("From", "not a number!"), ("Body", "x")], 21212),
        ([("To", TO), ("MessagingServiceSid", "MG123"), ("Body", "x")], 21705),
        ([("To", TO), ("MessagingServiceSid", "MG" + "0" * 32), ("Body", "x")], 21701),
        ([("To", TO), ("From", "+15005550006"), ("Body", "x"), ("ValidityPeriod", "36001")], 21624),
        ([("To", TO), ("From", "+15005550006"), ("Body", "x"), ("SmartEncoded", "maybe")], 20001),
        ([("To", TO), ("From", "+15005550006"), ("Body", "x"), ("ScheduleType", "fixed")], 35118),
    ],
)
def test_invalid_create_requests_get_twilio_codes(simulator: SimulatorServer, fields: list, code: int) -> None:
    response = _post(simulator, fields)
    body = response.json()
    assert (response.status_code, body["code"]) == (400, code)
    assert body == {"code": code, "message": body["message"], "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": 400}
    assert simulator.state.stats()["rejected"] == {str(code): 1}
    assert simulator.state.stats()["created"] == 0


def test_ten_media_urls_and_1600_characters_are_accepted(simulator: SimulatorServer) -> None:
    fields = [("To", TO), ("From", "+15005550006"), ("Body", "x" * 1600),
              *[("MediaUrl", f"https://m.example/{i}.jpg") for i in range(10)]]
    assert _post(simulator, fields).json()["num_media"] == "10"


def test_registered_senders_are_enforced(simulator: SimulatorServer) -> None:
    simulator.control("POST", "/_sim/accounts", {
        "account_sid": simulator.account_sid, "auth_token": simulator.auth_token,
        "incoming_numbers": ["+14155550123"],
    })
    assert _post(simulator, [("To", TO), ("From", "+14155550123"), ("Body", "x")]).status_code == 201
    assert _post(simulator, [("To", TO), ("From", "+14155550124"), ("Body", "x")]).json()["code"] == 21606
    assert _post(simulator, [("To", TO), ("From", "Textrelay"), ("Body", "x")]).status_code == 201


def test_opted_out_recipient_gets_21610(simulator: SimulatorServer, twilio_client: Client) -> None:
    simulator.control("POST", "/_sim/optouts", {"account_sid": simulator.account_sid, "number": TO})
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.messages.create(to=TO, from_="+15005550006", body="x")
    assert caught.value.code == 21610
    simulator.control("DELETE", "/_sim/optouts", {"account_sid": simulator.account_sid, "number": TO})
    assert twilio_client.messages.create(to=TO, from_="+15005550006", body="x").status == "queued"


def test_wrong_credentials_get_20003(simulator: SimulatorServer) -> None:
    url = f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json"
    for auth in [(simulator.account_sid, "wrong"), None, new_account()]:
        response = requests.post(url, data={"To": TO, "From": "+15005550006", "Body": "x"}, auth=auth, timeout=10)
        assert response.status_code == 401
        assert response.json() == {
            "code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401,
        }
    assert simulator.state.stats()["create_requests"] == 0


def test_url_account_must_be_the_authenticated_one(simulator: SimulatorServer) -> None:
    other_sid, other_token = new_account()
    simulator.control("POST", "/_sim/accounts", {"account_sid": other_sid, "auth_token": other_token})
    response = requests.get(f"{simulator.url}/2010-04-01/Accounts/{other_sid}/Messages.json",
                            auth=(simulator.account_sid, simulator.auth_token), timeout=10)
    assert (response.status_code, response.json()["code"]) == (401, 20003)


def test_api_key_credentials_work_like_twilio(simulator: SimulatorServer) -> None:
    key = ("SK" + "d" * 32, "key-secret")
    simulator.control("POST", "/_sim/accounts", {
        "account_sid": simulator.account_sid, "auth_token": simulator.auth_token,
        "api_keys": [{"sid": key[0], "secret": key[1]}],
    })
    client = Client(key[0], key[1], account_sid=simulator.account_sid)
    client.api.base_url = simulator.url
    assert client.messages.create(to=TO, from_="+15005550006", body="x").status == "queued"


def test_unknown_message_is_20404(twilio_client: Client, simulator: SimulatorServer) -> None:
    sid = "SM" + "0" * 32
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.messages(sid).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert sid in caught.value.msg


def test_list_filters_and_pages(twilio_client: Client, simulator: SimulatorServer) -> None:
    for i in range(5):
        twilio_client.messages.create(to=TO if i % 2 == 0 else "+14155552672", from_="+15005550006", body=f"m{i}")
    assert [m.body for m in twilio_client.messages.list(to=TO)] == ["m4", "m2", "m0"]
    assert len(twilio_client.messages.list(page_size=2)) == 5
    page = requests.get(
        f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json",
        params={"PageSize": 2, "Page": 1}, auth=(simulator.account_sid, simulator.auth_token), timeout=10,
    ).json()
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (1, 2, 2, 3)
    assert page["next_page_uri"] and page["previous_page_uri"]
    too_big = requests.get(
        f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json",
        params={"PageSize": 1001}, auth=(simulator.account_sid, simulator.auth_token), timeout=10,
    )
    assert too_big.status_code == 400


def test_list_filters_by_date_sent(twilio_client: Client, simulator: SimulatorServer) -> None:
    from datetime import date, timedelta

    twilio_client.messages.create(to=TO, from_="+15005550006", body="x")
    simulator.wait_idle()
    today = date.today()
    assert len(twilio_client.messages.list(date_sent=today)) == 1
    assert len(twilio_client.messages.list(date_sent_before=today - timedelta(days=1))) == 0
    assert len(twilio_client.messages.list(date_sent_after=today - timedelta(days=1))) == 1


def test_account_and_service_lookups_through_sdk(simulator: SimulatorServer) -> None:
    simulator.control("POST", "/_sim/accounts", {
        "account_sid": simulator.account_sid, "auth_token": simulator.auth_token,
        "messaging_services": [{"sid": MG, "phone_numbers": ["+14155550123"], "friendly_name": "Main"}],
    })
    client = Client(simulator.account_sid, simulator.auth_token)
    client.api.base_url = simulator.url
    client.messaging.base_url = simulator.url
    assert client.api.accounts(simulator.account_sid).fetch().status == "active"
    service = client.messaging.v1.services(MG).fetch()
    assert service.friendly_name == "Main"
    assert [n.phone_number for n in client.messaging.v1.services(MG).phone_numbers.list()] == ["+14155550123"]
    with pytest.raises(TwilioRestException) as caught:
        client.messaging.v1.services("MG" + "9" * 32).fetch()
    assert caught.value.code == 20404


def test_redact_and_delete_message(twilio_client: Client) -> None:
    created = twilio_client.messages.create(to=TO, from_="+15005550006", body="secret")
    assert twilio_client.messages(created.sid).update(body="").body == ""
    assert twilio_client.messages(created.sid).delete() is True
    with pytest.raises(TwilioRestException):
        twilio_client.messages(created.sid).fetch()


def test_channel_addresses_are_accepted(twilio_client: Client) -> None:
    created = twilio_client.messages.create(to="whatsapp:" + TO, from_="whatsapp:+15005550006", body="hi")
    assert (created.to, created.from_) == ("whatsapp:" + TO, "whatsapp:+15005550006")
    with pytest.raises(TwilioRestException) as caught:
        twilio_client.messages.create(to="whatsapp:+1555", from_="whatsapp:+15005550006", body="hi")
    assert caught.value.code == 21211
