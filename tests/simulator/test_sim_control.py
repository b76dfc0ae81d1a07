"""The /_sim control API and the in-process SimulatorServer."""

import requests

from textrelay.simulator import CallbackOptions, SimulatorState
from textrelay.simulator.testing import SimulatorServer, new_account

TO = "+14155552671"


def test_accounts_are_added_at_start_and_at_run_time() -> None:
    first, second = new_account(), new_account()
    with SimulatorServer(accounts=[first]) as sim:
        assert (sim.account_sid, sim.auth_token) == first
        added = sim.control("POST", "/_sim/accounts", {
            "account_sid": second[0], "auth_token": second[1],
            "messaging_services": ["MG" + "1" * 32], "incoming_numbers": ["+14155550123"],
        })
        assert added["messaging_services"][0]["sid"] == "MG" + "1" * 32
        assert [a["account_sid"] for a in sim.control("GET", "/_sim/accounts")["accounts"]] == [first[0], second[0]]
        response = requests.post(
            f"{sim.url}/2010-04-01/Accounts/{second[0]}/Messages.json",
            data={"To": TO, "From": "+14155550123", "Body": "x"}, auth=second, timeout=10,
        )
        assert response.status_code == 201


def test_bad_control_requests_answer_400(simulator: SimulatorServer) -> None:
    bad = [
        ("/_sim/accounts", {"account_sid": "AC123", "auth_token": "x"}),
        ("/_sim/accounts", {"account_sid": "AC" + "0" * 32}),
        ("/_sim/accounts", {"account_sid": "AC" + "0" * 32, "auth_token": "x", "messaging_services": ["XX"]}),
        ("/_sim/config", {"callback_delay": -1}),
        ("/_sim/config", {"no_such_option": True}),
        ("/_sim/config", {"account_sid": "AC" + "9" * 32, "callback_delay": 1}),
        ("/_sim/optouts", {"account_sid": simulator.account_sid}),
        ("/_sim/inbound", {"account_sid": simulator.account_sid, "to": TO}),
    ]
    for path, payload in bad:
        response = requests.post(simulator.url + path, json=payload, timeout=10)
        assert response.status_code == 400, (path, payload, response.text)
        assert response.json()["error"]
    assert requests.post(simulator.url + "/_sim/config", data="[1", timeout=10).status_code == 400


def test_config_applies_globally_or_per_account(simulator: SimulatorServer) -> None:
    answer = simulator.control("POST", "/_sim/config", {"callback_delay": 0.2})
    assert answer["options"]["callback_delay"] == 0.2
    answer = simulator.control("POST", "/_sim/config", {"account_sid": simulator.account_sid, "callback_delay": 0})
    assert answer["accounts"] == {simulator.account_sid: {"callback_delay": 0}}
    assert simulator.state.options_for(simulator.account_sid).callback_delay == 0


def test_reset_forgets_messages_counters_faults_and_optouts(simulator: SimulatorServer) -> None:
    url = f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json"
    auth = (simulator.account_sid, simulator.auth_token)
    requests.post(url, data={"To": TO, "From": "+15005550006", "Body": "x"}, auth=auth, timeout=10)
    simulator.control("POST", "/_sim/optouts", {"number": TO})
    simulator.control("POST", "/_sim/faults", {"status_429": 1})
    simulator.control("POST", "/_sim/reset")
    stats = simulator.control("GET", "/_sim/stats")
    assert (stats["created"], stats["create_requests"], stats["messages"]) == (0, 0, 0)
    assert simulator.control("GET", "/_sim/faults") == {"faults": None}
    assert requests.post(url, data={"To": TO, "From": "+15005550006", "Body": "x"}, auth=auth,
                         timeout=10).status_code == 201


def test_messages_inspection_lists_params_and_counts(simulator: SimulatorServer) -> None:
    url = f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json"
    auth = (simulator.account_sid, simulator.auth_token)
    requests.post(url, data={"To": TO, "From": "+15005550006", "Body": "x", "ValidityPeriod": "60"}, auth=auth,
                  timeout=10)
    requests.post(url, data={"To": TO, "Body": "x"}, auth=auth, timeout=10)
    listing = simulator.control("GET", "/_sim/messages")
    assert (listing["create_requests"], listing["created"]) == (2, 1)
    [record] = listing["messages"]
    assert record["params"] == {"To": [TO], "From": ["+15005550006"], "Body": ["x"], "ValidityPeriod": ["60"]}
    assert simulator.control("GET", "/_sim/stats")["rejected"] == {"21603": 1}


def test_server_runs_a_given_state_and_stops_cleanly() -> None:
    account = new_account()
    state = SimulatorState([account], CallbackOptions(callback_delay=0), public_url="http://sim.example")
    server = SimulatorServer(state)
    with server as sim:
        assert sim.state is state
        assert sim.control("GET", "/_sim/health") == {"status": "ok", "public_url": "http://sim.example"}
        url = sim.url
    try:
        requests.get(url + "/_sim/health", timeout=1)
        raise AssertionError("the server still answers")
    except requests.ConnectionError:
        pass
