"""Standalone ``textrelay worker`` processes: killed mid-campaign they lose nothing, and several
share one PostgreSQL outbox without sending a message twice while holding a rate limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.delivery.conftest import Setup, wait
from tests.support import LiveService
from textrelay.services.context import Context

WORKER = str(Path(sys.executable).with_name("textrelay"))


def _worker_env(ctx: Context, public_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTRELAY_")}
    env.update({
        "TEXTRELAY_DATABASE_URL": ctx.settings.resolved_database_url,
        "TEXTRELAY_DATA_DIR": str(ctx.settings.data_dir),
        "TEXTRELAY_SECRET_KEY_FILE": str(ctx.settings.resolved_key_file),
        "TEXTRELAY_PUBLIC_URL": public_url,
        "TEXTRELAY_LOG_LEVEL": "WARNING",
        "TEXTRELAY_WORKER_POLL_INTERVAL": "0.05",
        **extra,
    })
    return env


class Workers:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([WORKER, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers() -> Iterator[Workers]:
    group = Workers()
    yield group
    group.stop_all()


@pytest.mark.slow
def test_sigkilled_worker_loses_nothing_and_its_restart_sends_nothing_twice(
        setup: Setup, service: LiveService, workers: Workers) -> None:
    # Slow creates keep many requests in flight when the worker dies; they still reach "Twilio".
    setup.sim.control("POST", "/_sim/faults", {"delay": 0.3})
    ids = setup.queue([(f"+1415561{i:04d}", f"campaign {i}") for i in range(150)])
    env = _worker_env(setup.ctx, service.url, TEXTRELAY_WORKER_LEASE_SECONDS="2",
                      TEXTRELAY_WORKER_CONCURRENCY="16", TEXTRELAY_WORKER_BATCH_SIZE="20")
    first = workers.start(env)
    wait(lambda: setup.sim.control("GET", "/_sim/stats")["created"] >= 30, timeout=30, what="sending started")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    statuses = setup.statuses(ids)
    assert "sending" in statuses.values()  # killed mid-send, leases held
    assert "queued" in statuses.values()  # and mid-campaign
    workers.start(env)
    setup.wait_statuses(ids, {"delivered"}, timeout=90)
    stats = setup.sim.control("GET", "/_sim/stats")
    assert stats["created"] == len(ids)
    assert stats["max_creates_per_to_body"] == 1
    assert any("reconciliation: found" in (e.detail or "") for m in ids for e in setup.history(m))


@pytest.mark.slow
@pytest.mark.skipif(not PG_URL, reason="several worker processes need PostgreSQL: SQLite has a single writer "
                                       "process (set TEXTRELAY_TEST_DATABASE_URL)")
def test_two_worker_processes_on_postgresql_send_each_message_once_and_hold_20_segments_per_second(
        setup: Setup, service: LiveService, workers: Workers) -> None:
    setup.sim.control("POST", "/_sim/config", {"callbacks_enabled": False})
    limited = setup.configuration("limited", rate_limit_mps=20)
    free = setup.queue([(f"+1415562{i:04d}", f"free {i}") for i in range(300)])
    # 120 messages of 2 segments each (GSM-7, 153 characters per part): 240 segments at 20/s ≈ 12 s.
    long_body = "x" * 200
    limited_ids = setup.queue([(f"+1415563{i:04d}", f"{i:04d} {long_body}") for i in range(120)],
                              configuration_id=limited)
    env = _worker_env(setup.ctx, service.url, TEXTRELAY_WORKER_BATCH_SIZE="50")
    workers.start(env)
    workers.start(env)
    setup.wait_statuses(free + limited_ids, {"sent"}, timeout=60)
    stats = setup.sim.control("GET", "/_sim/stats")
    assert stats["created"] == len(free) + len(limited_ids)
    assert stats["max_creates_per_to_body"] == 1
    sent_at = sorted(setup.message(m).sent_at for m in limited_ids)
    segments = 2 * (len(limited_ids) - 1)  # segments sent after the first message's slot
    rate = segments / (sent_at[-1] - sent_at[0]).total_seconds()
    assert 18.0 <= rate <= 22.0, f"{rate:.1f} segments/s"
    senders = {e.detail.rsplit("(worker ", 1)[1] for m in free + limited_ids for e in setup.history(m)
               if e.status == "sent" and e.source == "worker"}
    assert len(senders) == 2  # both processes took part
