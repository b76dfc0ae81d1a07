"""Fixtures for delivery tests: the Twilio simulator, a credential and channel configuration
pointing at it, and messages queued straight into the outbox (as the messages API does)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.support import LiveService, start_service
from textrelay.domain.segments import count_segments
from textrelay.services import credentials, sandboxes
from textrelay.services.context import Context
from textrelay.simulator.testing import SimulatorServer
from textrelay.store.models import ChannelConfiguration, Message, MessageEvent, utcnow

SENDER = "+15005550006"  # Twilio's magic "valid From"


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(callback_delay=0.01) as server:
        yield server


@dataclass
class Setup:
    ctx: Context
    sim: SimulatorServer
    sandbox_id: str
    credential_id: str
    configuration_id: str

    def configuration(self, name: str = "sms", sms_type: str = "marketing", rate_limit_mps: float | None = None,
                      sender: str | None = SENDER) -> str:
        with self.ctx.db.session() as session:
            config = ChannelConfiguration(sandbox_id=self.sandbox_id, name=name, channel="sms", sms_type=sms_type,
                                          credential_id=self.credential_id, sender_number=sender,
                                          rate_limit_mps=rate_limit_mps, status="active")
            session.add(config)
            session.flush()
            return config.id

    def queue(self, items: list[tuple[str, str]], configuration_id: str | None = None,
              sms_type: str = "marketing", valid_for: timedelta = timedelta(hours=1)) -> list[str]:
        """Queue messages as the messages API does: a queued row and its first history event."""
        now = utcnow()
        ids = []
        with self.ctx.db.session() as session:
            for to, body in items:
                info = count_segments(body)
                msg = Message(sandbox_id=self.sandbox_id,
                              channel_configuration_id=configuration_id or self.configuration_id,
                              channel="sms", sms_type=sms_type, to_number=to, body=body, segments=info.segments,
                              encoding=info.encoding, status="queued", next_attempt_at=now,
                              valid_until=now + valid_for)
                session.add(msg)
                session.flush()
                session.add(MessageEvent(message_id=msg.id, status="queued", source="api", at=now))
                ids.append(msg.id)
        return ids

    def statuses(self, ids: list[str]) -> dict[str, str]:
        with self.ctx.db.session() as session:
            return dict(session.execute(select(Message.id, Message.status).where(Message.id.in_(ids))).all())

    def message(self, message_id: str) -> Message:
        with self.ctx.db.session() as session:
            return session.get(Message, message_id)  # type: ignore[return-value]

    def history(self, message_id: str) -> list[MessageEvent]:
        with self.ctx.db.session() as session:
            return list(session.scalars(select(MessageEvent).where(MessageEvent.message_id == message_id)
                                        .order_by(MessageEvent.id)))

    def wait_statuses(self, ids: list[str], wanted: set[str], timeout: float = 20.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            current = self.statuses(ids)
            if all(s in wanted for s in current.values()) and len(current) == len(ids):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"not all messages reached {wanted}: {sorted(set(current.values()))} "
                                     f"{ {s: list(current.values()).count(s) for s in set(current.values())} }")
            time.sleep(0.05)


def make_setup(ctx: Context, sim: SimulatorServer) -> Setup:
    with ctx.db.session() as session:
        box = sandboxes.get_by_name(session, "prod")
        cred = credentials.create(session, ctx.keyring, box, credentials.TwilioCredentialCreate(
            name="sim", account_sid=sim.account_sid, auth_token=sim.auth_token, api_base_url=sim.url))
        sandbox_id, credential_id = box.id, cred.id
    setup = Setup(ctx, sim, sandbox_id, credential_id, "")
    setup.configuration_id = setup.configuration()
    return setup


@pytest.fixture
def setup(context: Context, simulator: SimulatorServer) -> Setup:
    return make_setup(context, simulator)


@pytest.fixture
def live(context: Context) -> Iterator[LiveService]:
    """The service with its in-process delivery worker."""
    service = start_service(context, run_worker=True)
    yield service
    service.stop()


@pytest.fixture
def hooks_live(context: Context) -> Iterator[LiveService]:
    """The service with its worker, status callbacks served by ``api.twilio_webhooks`` as in ``serve``."""
    service = start_service(context, run_worker=True)
    yield service
    service.stop()


def wait(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.05)
