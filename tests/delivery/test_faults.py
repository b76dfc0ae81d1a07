"""Sending under provider faults: 429s and 5xx are retried, unknown outcomes are reconciled, and
no message is ever created twice at the provider."""

from __future__ import annotations

import pytest

from tests.delivery.conftest import Setup
from tests.support import LiveService


def _no_duplicates(setup: Setup, count: int) -> dict:
    stats = setup.sim.control("GET", "/_sim/stats")
    assert stats["duplicate_creates_by_to_body"] == []
    assert stats["max_creates_per_to_body"] == 1
    assert stats["created"] == count
    return stats


@pytest.mark.slow
def test_under_429s_and_5xx_every_message_ends_delivered(setup: Setup, live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/faults", {"status_429": 0.2, "status_5xx": 0.2, "retry_after": 0.2, "seed": 7})
    ids = setup.queue([(f"+1415556{i:04d}", f"retry {i}") for i in range(30)])
    setup.wait_statuses(ids, {"delivered"}, timeout=90)
    stats = _no_duplicates(setup, len(ids))
    assert stats["faults_injected"].get("status_429") and any(k.startswith("status_5") for k in
                                                               stats["faults_injected"])
    retried = [m for m in ids if setup.message(m).attempts > 1]
    assert retried
    history = [e for e in setup.history(retried[0]) if e.source == "worker"]
    assert history[0].status == "queued" and "retry in" in (history[0].detail or "")
    assert history[-1].status == "sent"


def test_429_honours_retry_after(setup: Setup, live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/faults", {"status_429": 1.0, "retry_after": 2, "count": 1})
    [message_id] = setup.queue([("+14155570000", "wait for it")])
    setup.wait_statuses([message_id], {"sent", "delivered"}, timeout=15)
    events = [e for e in setup.history(message_id) if e.source == "worker"]
    assert events[0].status == "queued" and events[0].error_code == "20429"
    assert (events[1].at - events[0].at).total_seconds() >= 1.9


def test_dropped_connections_after_create_never_create_a_message_twice(setup: Setup, live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/faults", {"drop_after_create": 0.5, "seed": 3})
    ids = setup.queue([(f"+1415558{i:04d}", f"drop {i}") for i in range(20)])
    setup.wait_statuses(ids, {"delivered"}, timeout=40)
    stats = _no_duplicates(setup, len(ids))
    assert stats["faults_injected"].get("drop_after_create")
    reconciled = [m for m in ids if any("reconciliation: found" in (e.detail or "") for e in setup.history(m))]
    assert reconciled
    msg = setup.message(reconciled[0])
    assert msg.attempts == 1 and not msg.outcome_unknown and msg.provider_message_id


@pytest.mark.slow
def test_dropped_connections_before_create_are_resent(setup: Setup, live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/faults", {"drop_before_create": 0.5, "seed": 5})
    ids = setup.queue([(f"+1415559{i:04d}", f"before {i}") for i in range(10)])
    setup.wait_statuses(ids, {"delivered"}, timeout=40)
    _no_duplicates(setup, len(ids))


def test_html_and_truncated_answers_end_clearly_and_the_worker_keeps_going(setup: Setup, live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/faults", {"malformed": 0.5, "seed": 11})
    ids = setup.queue([(f"+1415550{i:04d}", f"malformed {i}") for i in range(20)])
    setup.wait_statuses(ids, {"delivered"}, timeout=40)
    stats = _no_duplicates(setup, len(ids))
    assert stats["faults_injected"].get("malformed")
    details = [e.detail or "" for m in ids for e in setup.history(m)]
    assert any("HTML" in d or "malformed JSON" in d or "empty body" in d or "without a sid" in d for d in details)


@pytest.mark.slow
def test_lookup_failures_are_retried_before_anything_is_resent(setup: Setup, live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/faults", {"drop_after_create": 1.0, "status_5xx": 1.0, "count": 3,
                                               "endpoints": ["create", "list"]})
    [message_id] = setup.queue([("+14155571234", "lookup trouble")])
    setup.wait_statuses([message_id], {"delivered"}, timeout=40)
    _no_duplicates(setup, 1)
