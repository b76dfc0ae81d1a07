"""Sending through the Twilio simulator: queued → sent → delivered, provider errors, consent."""

from __future__ import annotations

from datetime import timedelta

from tests.delivery.conftest import Setup
from tests.support import LiveService
from textrelay.services import consent


def test_message_goes_queued_sent_delivered_through_signed_callbacks(setup: Setup, live: LiveService) -> None:
    ids = setup.queue([("+14155550100", "Hello one"), ("+14155550101", "Hello two ✓")])
    setup.wait_statuses(ids, {"delivered"})
    msg = setup.message(ids[0])
    assert msg.provider_message_id and msg.provider_message_id.startswith("SM")
    assert msg.attempts == 1 and msg.sent_at and msg.final_at and not msg.outcome_unknown
    steps = [(e.status, e.source) for e in setup.history(ids[0])]
    assert steps[0] == ("queued", "api") and ("sent", "worker") in steps and steps[-1] == ("delivered", "provider")
    record = setup.sim.control("GET", f"/_sim/messages/{msg.provider_message_id}")
    assert record["status_callback"].startswith(live.url + "/hooks/twilio/")
    assert record["params"]["From"] == ["+15005550006"]
    assert 3500 <= int(record["params"]["ValidityPeriod"][0]) <= 3600


def test_magic_numbers_fail_with_twilios_codes(setup: Setup, live: LiveService) -> None:
    cases = {"+15005550001": "21211", "+15005550002": "21612", "+15005550003": "21408", "+15005550009": "21614"}
    ids = setup.queue([(to, f"magic {to}") for to in cases])
    setup.wait_statuses(ids, {"failed"})
    for message_id, code in zip(ids, cases.values(), strict=True):
        msg = setup.message(message_id)
        assert msg.error_code == code and msg.error_message and msg.attempts == 1
    assert setup.sim.control("GET", "/_sim/stats")["created"] == 0


def test_error_21610_opts_the_number_out_and_the_next_marketing_message_is_excluded(
        setup: Setup, live: LiveService) -> None:
    [first] = setup.queue([("+15005550004", "promo 1")])
    setup.wait_statuses([first], {"failed"})
    assert setup.message(first).error_code == "21610"
    with setup.ctx.db.session() as session:
        row = consent.get(session, setup.sandbox_id, "+15005550004")
        assert row is not None and row.status == "opted_out" and row.source == "provider_error"
        assert row.sender_number == "+15005550006"
    [second] = setup.queue([("+15005550004", "promo 2")])
    setup.wait_statuses([second], {"excluded"})
    assert "opted out" in (setup.message(second).error_message or "")
    assert setup.sim.control("GET", "/_sim/stats")["create_requests"] == 1


def test_opt_out_recorded_after_acceptance_still_excludes_the_message(setup: Setup, context) -> None:  # noqa: ANN001
    [message_id] = setup.queue([("+14155550123", "promo")])
    with context.db.session() as session:
        consent.record(session, setup.sandbox_id, "+14155550123", "opted_out", "keyword")
    from tests.support import start_service

    service = start_service(context, run_worker=True)
    try:
        setup.wait_statuses([message_id], {"excluded"})
    finally:
        service.stop()
    assert setup.sim.control("GET", "/_sim/stats")["create_requests"] == 0
    assert [e.status for e in setup.history(message_id)] == ["queued", "excluded"]


def test_transactional_message_is_excluded_only_for_the_sender_opted_out_of(setup: Setup, live: LiveService) -> None:
    with setup.ctx.db.session() as session:
        consent.record(session, setup.sandbox_id, "+14155550124", "opted_out", "keyword", sender="+15005550006")
        consent.record(session, setup.sandbox_id, "+14155550125", "opted_out", "keyword", sender="+19995550000")
    ids = setup.queue([("+14155550124", "code 1"), ("+14155550125", "code 2")], sms_type="transactional")
    statuses = setup.wait_statuses(ids, {"excluded", "delivered"})
    assert statuses == {ids[0]: "excluded", ids[1]: "delivered"}


def test_message_whose_validity_ended_before_sending_fails_unsent(setup: Setup, live: LiveService) -> None:
    [message_id] = setup.queue([("+14155550126", "late")], valid_for=timedelta(seconds=-1))
    setup.wait_statuses([message_id], {"failed"})
    assert setup.message(message_id).error_message == "validity period expired"
    assert setup.sim.control("GET", "/_sim/stats")["create_requests"] == 0


def test_configuration_without_any_sender_fails_with_a_clear_reason(setup: Setup, live: LiveService) -> None:
    config = setup.configuration("nosender", sender=None)
    [message_id] = setup.queue([("+14155550127", "x")], configuration_id=config)
    setup.wait_statuses([message_id], {"failed"})
    assert "no sender" in (setup.message(message_id).error_message or "")


def test_a_writer_holding_the_sqlite_lock_does_not_freeze_the_service(setup: Setup, live: LiveService) -> None:
    import sqlite3
    import time

    import pytest
    import requests

    if not setup.ctx.db.is_sqlite:
        pytest.skip("SQLite's single write lock only")
    [message_id] = setup.queue([("+14155550128", "while locked")])
    path = setup.ctx.db.url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer of this process, holding the lock
    try:
        time.sleep(0.5)  # the worker's steps now wait for the lock
        started = time.monotonic()
        assert requests.get(live.url + "/openapi.json", timeout=5).status_code == 200
        assert time.monotonic() - started < 1.0  # the event loop was not frozen behind the lock
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    setup.wait_statuses([message_id], {"delivered"})


def test_a_message_claimed_too_long_ago_goes_back_unsent(setup: Setup, context) -> None:  # noqa: ANN001
    import asyncio

    from textrelay.delivery import outbox
    from textrelay.delivery.worker import Worker

    [message_id] = setup.queue([("+14155550129", "stale claim")])
    context.settings.public_url = "http://127.0.0.1:9"

    async def scenario() -> None:
        worker = Worker(context)
        [job] = outbox.claim(context, worker.routes, 10, lease_seconds=worker.lease_needed - 0.5).jobs
        await worker.start()
        worker.inflight += 1
        worker._queue.put_nowait(job)  # as the claim loop hands it over, but with its lease nearly gone
        await setup_wait(lambda: any("back to the outbox" in (e.detail or "") for e in setup.history(message_id)))
        await worker.stop()

    async def setup_wait(condition) -> None:  # noqa: ANN001
        for _ in range(200):
            if condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the stale job was not given back")

    asyncio.run(scenario())
    assert setup.sim.control("GET", "/_sim/stats")["create_requests"] <= 1  # the worker may resend it, once
    assert setup.message(message_id).status in ("queued", "sending", "sent")
