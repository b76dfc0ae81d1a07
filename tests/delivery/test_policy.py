"""Retry policy and rate-limit reservations, without a provider."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from textrelay.delivery import ratelimit, retry
from textrelay.delivery.receipts import moves_forward
from textrelay.providers.base import Outcome, SendResult
from textrelay.services.context import Context
from textrelay.store.models import utcnow


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_full_jitter_under_an_exponential_ceiling(attempt: int, seed: int) -> None:
    delay = retry.backoff(attempt, random.Random(seed))
    assert 0 <= delay <= min(retry.MAX_DELAY, retry.BASE_DELAY * 2 ** (attempt - 1))


def test_retry_after_wins_when_longer_than_the_backoff() -> None:
    now = utcnow()
    result = SendResult(Outcome.RETRY, error_code="20429", error_message="Too Many Requests", retry_after=30)
    decision = retry.after_send(result, 1, now, now + timedelta(hours=1), random.Random(1))
    assert decision.status == "queued" and decision.next_attempt_at == now + timedelta(seconds=30)


def test_retry_past_the_validity_period_fails_the_message() -> None:
    now = utcnow()
    result = SendResult(Outcome.RETRY, error_code="20503", error_message="Service Unavailable", retry_after=120)
    decision = retry.after_send(result, 3, now, now + timedelta(seconds=60))
    assert decision.status == "failed" and decision.error_message.startswith(retry.EXPIRED)


def test_provider_refusal_fails_at_once_and_21610_asks_for_an_opt_out() -> None:
    now = utcnow()
    decision = retry.after_send(SendResult(Outcome.FAILED, error_code="21610", error_message="opted out",
                                           opt_out=True), 1, now, now + timedelta(hours=1))
    assert (decision.status, decision.error_code, decision.opt_out) == ("failed", "21610", True)


def test_unknown_outcome_is_queued_for_reconciliation_not_resent_blindly() -> None:
    now = utcnow()
    decision = retry.after_send(SendResult(Outcome.UNKNOWN, error_code="no_answer", error_message="reset"),
                                1, now, now + timedelta(hours=1))
    assert decision.status == "queued" and decision.outcome_unknown and decision.next_attempt_at > now


def test_status_order_never_goes_backwards() -> None:
    assert moves_forward("sent", "delivered") and moves_forward("delivered", "read")
    assert not moves_forward("delivered", "sent") and not moves_forward("undelivered", "delivered")
    assert not moves_forward("excluded", "delivered")


def test_reservations_space_segments_at_the_rate_across_batches(context: Context) -> None:
    limit = (ratelimit.Limit("sender:test", 10.0),)
    with context.db.session() as session:
        first = ratelimit.reserve(session, 1000.0, [(1, limit), (2, limit), (1, limit)])
        second = ratelimit.reserve(session, 1000.0, [(1, limit)])
        unlimited = ratelimit.reserve(session, 1000.0, [(5, ())])
    assert [round(t, 6) for t in first] == [1000.0, 1000.1, 1000.3]
    assert round(second[0], 6) == 1000.4
    assert unlimited == [1000.0]


def test_an_idle_limit_does_not_bank_credit(context: Context) -> None:
    limit = (ratelimit.Limit("sender:idle", 1.0),)
    with context.db.session() as session:
        ratelimit.reserve(session, 0.0, [(1, limit)])
        later = ratelimit.reserve(session, 500.0, [(1, limit), (1, limit)])
    assert later == [500.0, 501.0]


def test_a_result_written_after_the_lease_was_taken_back_is_dropped(setup) -> None:  # noqa: ANN001
    import time as _time

    from textrelay.delivery import outbox
    from textrelay.providers.base import SendResult as _Result

    [message_id] = setup.queue([("+14155550300", "lease")])
    routes = outbox.Routes(setup.ctx)
    first = outbox.claim(setup.ctx, routes, 10, lease_seconds=0.05)
    assert [j.id for j in first.jobs] == [message_id]
    _time.sleep(0.1)
    second = outbox.claim(setup.ctx, routes, 10, lease_seconds=60)  # the first worker looks dead
    assert [j.id for j in second.jobs] == [message_id] and second.jobs[0].outcome_unknown
    job = first.jobs[0]
    late = retry.after_send(_Result(Outcome.ACCEPTED, provider_message_id="SM" + "0" * 32), 1, utcnow(),
                            job.valid_until)
    assert outbox.record(setup.ctx, [outbox.Outcome(job, late, True, utcnow())], "late") == 0
    msg = setup.message(message_id)
    assert msg.status == "sending" and msg.provider_message_id is None
    assert [e.status for e in setup.history(message_id)] == ["queued"]
    # The worker holding the lease now writes; its result counts.
    mine = retry.after_send(_Result(Outcome.ACCEPTED, provider_message_id="SM" + "1" * 32), 1, utcnow(),
                            job.valid_until)
    assert outbox.record(setup.ctx, [outbox.Outcome(second.jobs[0], mine, False, utcnow())], "b") == 1
    assert setup.message(message_id).provider_message_id == "SM" + "1" * 32
