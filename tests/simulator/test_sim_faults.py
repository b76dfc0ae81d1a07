"""Fault injection on message creation: 429, 5xx, dropped connections, slowness, malformed answers."""

import asyncio
import time

import aiohttp
import pytest
import requests

from textrelay.simulator.testing import SimulatorServer

TO = "+14155552671"


def _create(sim: SimulatorServer, body: str = "Hello", timeout: float = 10) -> requests.Response:
    return requests.post(
        f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}/Messages.json",
        data={"To": TO, "From": "+15005550006", "Body": body},
        auth=(sim.account_sid, sim.auth_token), timeout=timeout,
    )


def test_429_answers_twilio_error_with_retry_after_and_creates_nothing(simulator: SimulatorServer) -> None:
    simulator.control("POST", "/_sim/faults", {"status_429": 1, "retry_after": 2, "count": 1})
    response = _create(simulator)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {
        "code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429",
        "status": 429,
    }
    assert _create(simulator).status_code == 201  # count 1: only the first request
    stats = simulator.control("GET", "/_sim/stats")
    assert (stats["create_requests"], stats["created"]) == (2, 1)
    assert stats["faults_injected"] == {"status_429": 1}


def test_5xx_answers_500_or_503_and_creates_nothing(simulator: SimulatorServer) -> None:
    simulator.control("POST", "/_sim/faults", {"status_5xx": 1, "seed": 7})
    codes = {(r.status_code, r.json()["code"]) for r in (_create(simulator) for _ in range(12))}
    assert codes == {(500, 20500), (503, 20503)}
    assert simulator.state.stats()["created"] == 0
    simulator.control("DELETE", "/_sim/faults")
    assert _create(simulator).status_code == 201


def test_drop_after_create_creates_message_but_client_sees_disconnect(simulator: SimulatorServer) -> None:
    simulator.control("POST", "/_sim/faults", {"drop_after_create": 1, "count": 1})

    async def attempt() -> type[BaseException]:
        async with aiohttp.ClientSession(auth=aiohttp.BasicAuth(simulator.account_sid, simulator.auth_token)) as s:
            try:
                async with s.post(
                    f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json",
                    data={"To": TO, "From": "+15005550006", "Body": "dropped"},
                ) as response:
                    await response.read()
            except aiohttp.ClientError as exc:
                return type(exc)
        raise AssertionError("the request got an answer")

    assert asyncio.run(attempt()) is aiohttp.ServerDisconnectedError
    simulator.wait_idle()
    messages = simulator.control("GET", "/_sim/messages")["messages"]
    assert [(m["resource"]["body"], m["status"]) for m in messages] == [("dropped", "delivered")]
    with pytest.raises(requests.ConnectionError):
        simulator.control("POST", "/_sim/faults", {"drop_after_create": 1, "count": 1})
        _create(simulator)
    assert simulator.state.stats()["created"] == 2


def test_drop_before_create_creates_nothing(simulator: SimulatorServer) -> None:
    simulator.control("POST", "/_sim/faults", {"drop_before_create": 1, "count": 2})
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            _create(simulator)
    assert _create(simulator).status_code == 201
    stats = simulator.state.stats()
    assert (stats["create_requests"], stats["created"], stats["faults_injected"]) == (
        3, 1, {"drop_before_create": 2})


def test_delay_slows_each_create(simulator: SimulatorServer) -> None:
    simulator.control("POST", "/_sim/faults", {"delay": 0.3, "count": 1})
    started = time.monotonic()
    assert _create(simulator).status_code == 201
    assert time.monotonic() - started >= 0.3


def test_client_timeout_during_delay_still_creates_message(simulator: SimulatorServer) -> None:
    # The outcome is unknown to the client, but Twilio went on: the message exists.
    simulator.control("POST", "/_sim/faults", {"delay": 0.5, "count": 1})
    with pytest.raises(requests.Timeout):
        _create(simulator, timeout=0.2)
    simulator.wait_for(lambda: simulator.state.stats()["created"] == 1)


def test_malformed_answers_are_201_but_not_json(simulator: SimulatorServer) -> None:
    simulator.control("POST", "/_sim/faults", {"malformed": 1, "seed": 3, "count": 8})
    kinds = set()
    for _ in range(8):
        response = _create(simulator)
        assert response.status_code == 201
        with pytest.raises(ValueError):
            response.json()
        kinds.add(response.headers["Content-Type"].split(";")[0])
    assert kinds == {"text/html", "application/json"}
    assert simulator.state.stats()["created"] == 8


def test_seeded_faults_repeat_exactly(simulator: SimulatorServer) -> None:
    def run() -> list[int]:
        simulator.control("POST", "/_sim/faults", {"status_429": 0.3, "status_5xx": 0.3, "seed": 42})
        return [_create(simulator).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert {429, 201} <= set(first)


def test_faults_can_target_message_fetch(simulator: SimulatorServer) -> None:
    sid = _create(simulator).json()["sid"]
    simulator.control("POST", "/_sim/faults", {"status_5xx": 1, "status_5xx_codes": [503], "endpoints": ["fetch"]})
    url = f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages/{sid}.json"
    assert requests.get(url, auth=(simulator.account_sid, simulator.auth_token), timeout=10).status_code == 503
    assert _create(simulator).status_code == 201


def test_bad_fault_plan_is_refused(simulator: SimulatorServer) -> None:
    for plan in ({"status_429": 2}, {"bogus": 1}, {"endpoints": ["nope"]}, {"count": -1}):
        response = requests.post(f"{simulator.url}/_sim/faults", json=plan, timeout=10)
        assert response.status_code == 400 and "error" in response.json()
