"""Delivery receipts: signed callbacks, duplicates, reordering, forgeries, unknown ids."""

from __future__ import annotations

import requests
from sqlalchemy import select

from tests.delivery.conftest import Setup
from tests.support import LiveService
from textrelay.providers.twilio_signature import compute_signature
from textrelay.services import webhooks
from textrelay.store.models import Message, MessageEvent, UnmatchedReceipt


def _feedback_url(setup: Setup, hooks_live: LiveService) -> str:
    with setup.ctx.db.session() as session:
        hook = webhooks.feedback_webhook(session, setup.credential_id)
        return webhooks.public_url(hook, hooks_live.url, "twilio")


def _post_signed(setup: Setup, url: str, form: dict[str, str], token: str | None = None,
                 signature: str | None = None) -> requests.Response:
    headers = {"X-Twilio-Signature": signature or compute_signature(
        setup.sim.auth_token, url, {k: [v] for k, v in form.items()})}
    if token:
        headers["I-Twilio-Idempotency-Token"] = token
    return requests.post(url, data=form, headers=headers, timeout=10)


def _provider_events(setup: Setup, message_id: str) -> list[tuple[str, str]]:
    return [(e.status, e.source) for e in setup.history(message_id) if e.source == "provider"]


def test_duplicate_and_reordered_callbacks_change_nothing(setup: Setup, hooks_live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/config", {"duplicate_callbacks": True, "reverse_callbacks": True})
    ids = setup.queue([(f"+1415555{i:04d}", f"dup {i}") for i in range(5)])
    setup.wait_statuses(ids, {"delivered"})
    setup.sim.wait_idle()
    stats = setup.sim.control("GET", "/_sim/stats")
    assert stats["callbacks_sent"] >= 2 * 2 * len(ids)  # sent and delivered, each twice
    for message_id in ids:
        events = _provider_events(setup, message_id)
        assert sorted(events) == [("delivered", "provider"), ("sent", "provider")]  # each once
        assert setup.message(message_id).status == "delivered"  # the late "sent" did not win


def test_same_status_with_a_new_idempotency_token_is_still_a_duplicate(setup: Setup, hooks_live: LiveService) -> None:
    [message_id] = setup.queue([("+14155550200", "tokens")])
    setup.wait_statuses([message_id], {"delivered"})
    sid = setup.message(message_id).provider_message_id
    url = _feedback_url(setup, hooks_live)
    form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": "delivered", "AccountSid": setup.sim.account_sid}
    for token in ("tok-a", "tok-a", "tok-b"):
        assert _post_signed(setup, url, form, token).status_code == 200
    assert _provider_events(setup, message_id).count(("delivered", "provider")) == 1


def test_status_never_moves_backwards_and_late_errors_are_recorded(setup: Setup, hooks_live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/config", {"callbacks_enabled": False})
    [message_id] = setup.queue([("+14155550201", "order")])
    setup.wait_statuses([message_id], {"sent"})
    sid = setup.message(message_id).provider_message_id
    url = _feedback_url(setup, hooks_live)
    base = {"MessageSid": sid, "AccountSid": setup.sim.account_sid}
    assert _post_signed(setup, url, {**base, "MessageStatus": "undelivered", "ErrorCode": "30003"}).status_code == 200
    assert _post_signed(setup, url, {**base, "MessageStatus": "sent"}).status_code == 200
    assert _post_signed(setup, url, {**base, "MessageStatus": "queued"}).status_code == 200
    msg = setup.message(message_id)
    assert msg.status == "undelivered" and msg.error_code == "30003" and msg.final_at is not None
    assert "Unreachable" in (msg.error_message or "") or msg.error_message
    assert ("undelivered", "provider") in _provider_events(setup, message_id)


def test_forged_callback_gets_403_and_changes_nothing(setup: Setup, hooks_live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/config", {"callbacks_enabled": False})
    [message_id] = setup.queue([("+14155550202", "forged")])
    setup.wait_statuses([message_id], {"sent"})
    sid = setup.message(message_id).provider_message_id
    url = _feedback_url(setup, hooks_live)
    form = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": setup.sim.account_sid}
    forged = compute_signature("not-the-auth-token", url, {k: [v] for k, v in form.items()})
    assert _post_signed(setup, url, form, signature=forged).status_code == 403
    assert requests.post(url, data=form, timeout=10).status_code == 403  # no signature at all
    assert setup.message(message_id).status == "sent"
    assert _provider_events(setup, message_id) == []


def test_callback_for_an_unknown_sid_answers_200_and_applies_once_the_sid_appears(
        setup: Setup, hooks_live: LiveService) -> None:
    setup.sim.control("POST", "/_sim/config", {"callbacks_enabled": False})
    url = _feedback_url(setup, hooks_live)
    early_sid = "SM" + "ab" * 16
    form = {"MessageSid": early_sid, "MessageStatus": "delivered", "AccountSid": setup.sim.account_sid}
    assert _post_signed(setup, url, form, "early").status_code == 200
    with setup.ctx.db.session() as session:
        assert session.scalar(select(UnmatchedReceipt.status).where(
            UnmatchedReceipt.provider_message_id == early_sid)) == "delivered"
    # The worker writes the sid after the receipt came: it is applied then.
    [message_id] = setup.queue([("+14155550203", "early receipt")])
    setup.wait_statuses([message_id], {"sent"})
    with setup.ctx.db.session() as session:
        session.execute(Message.__table__.update().where(Message.id == message_id).values(
            provider_message_id=early_sid))
    setup.wait_statuses([message_id], {"delivered"})
    with setup.ctx.db.session() as session:
        assert session.scalar(select(UnmatchedReceipt.id)) is None
        assert session.scalar(select(MessageEvent.status).where(
            MessageEvent.message_id == message_id, MessageEvent.source == "provider")) == "delivered"


def test_callback_that_is_not_a_status_answers_200(setup: Setup, hooks_live: LiveService) -> None:
    url = _feedback_url(setup, hooks_live)
    assert _post_signed(setup, url, {"Foo": "bar"}).status_code == 200
