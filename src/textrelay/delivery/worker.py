"""The delivery worker: an asyncio task group that claims due messages in batches, sends them
concurrently over one pooled keep-alive HTTP session, and writes results back in batches.

``start_in_process(ctx)`` runs it inside ``serve``; ``run_forever(ctx)`` is the standalone
``textrelay worker`` process. Any number of them may share one PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import inspect
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from prometheus_client import Histogram

from textrelay.delivery import custom_route, dispatcher, outbox, receipts
from textrelay.delivery.retry import Decision
from textrelay.services.context import Context
from textrelay.store.models import utcnow

log = logging.getLogger("textrelay.delivery")
STORE_SECONDS = Histogram("textrelay_worker_store_seconds", "Time the delivery worker's store steps take",
                          ["step"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

FLUSH_INTERVAL = 0.02  # seconds a result may wait for others to share its transaction
HOUSEKEEPING_INTERVAL = 1.0
SETTLE_INTERVAL = 5.0


class Worker:
    def __init__(self, ctx: Context) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.batch_size = max(1, s.worker_batch_size)
        self.concurrency = max(1, s.worker_concurrency)
        self.poll_interval = max(0.01, s.worker_poll_interval)
        self.lease_seconds = max(1.0, s.worker_lease_seconds)
        # A send must end well within the lease, or another worker would take the message back.
        self.timeout = max(0.5, min(30.0, self.lease_seconds / 3))
        # A claimed message is sent only while at least this much of its lease is left.
        self.lease_needed = self.timeout + self.lease_seconds / 10
        self.max_inflight = max(self.batch_size * 3, self.concurrency * 4)
        self.routes = outbox.Routes(ctx)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.inflight = 0
        self.sent_total = 0
        self._results: list[outbox.Outcome] = []
        self._results_ready = asyncio.Event()
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        # Claimed jobs wait here for one of ``concurrency`` sender tasks (cheaper than a task each).
        self._queue: asyncio.Queue[outbox.Job | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._senders: list[asyncio.Task[Any]] = []
        self._http: aiohttp.ClientSession | None = None
        self._campaigns: Any = None

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(ctx, *args)``, one store step, and time it."""
        name = getattr(fn, "__name__", "call")

        def timed(ctx: Context, *rest: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(ctx, *rest)
            finally:
                STORE_SECONDS.labels(name).observe(time.perf_counter() - started)

        return await outbox.run(self.ctx, timed, *args)

    async def start(self) -> Worker:
        # Everything loaded so far lives as long as the process: keep the cyclic garbage collector
        # from walking it again and again while thousands of messages a second go through.
        gc.freeze()
        connector = aiohttp.TCPConnector(limit=self.concurrency * 2, limit_per_host=0, keepalive_timeout=30,
                                         ttl_dns_cache=300)
        self._http = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
        self._tasks = [asyncio.create_task(self._claim_loop(), name="textrelay-claim"),
                       asyncio.create_task(self._write_loop(), name="textrelay-results"),
                       asyncio.create_task(self._housekeeping_loop(), name="textrelay-housekeeping")]
        self._senders = [asyncio.create_task(self._sender(), name="textrelay-sender")
                         for _ in range(self.concurrency)]
        return self

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, let messages in flight finish and their results be written."""
        self._stopping.set()
        self._room.set()
        self._results_ready.set()
        claim_task, write_task, house_task = self._tasks
        house_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(claim_task, timeout)
        # Jobs not yet handed to a sender go back to the outbox at once.
        unsent = []
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                unsent.append(job)
        if unsent:
            with contextlib.suppress(Exception):
                await self.db(outbox.release, unsent)
            self.inflight -= len(unsent)
        for _ in self._senders:
            self._queue.put_nowait(None)
        await asyncio.wait(self._senders, timeout=timeout)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(write_task, timeout)
        for task in [*self._tasks, *self._senders]:
            task.cancel()
        if self._http is not None:
            await self._http.close()

    # -- loops ---------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            room = self.max_inflight - self.inflight
            if room < min(self.batch_size, self.max_inflight // 3):
                self._room.clear()
                await self._room.wait()
                continue
            try:
                await self._expand_campaigns()
                claim = await self.db(outbox.claim, self.routes, min(room, self.batch_size),
                                      self.lease_seconds)
            except Exception:
                log.exception("claiming messages failed; retrying")
                await self._sleep(max(self.poll_interval, 1.0))
                continue
            self.inflight += len(claim.jobs)
            for job in claim.jobs:
                self._queue.put_nowait(job)
            if not claim.jobs and not claim.deferred and not claim.closed:
                await self._sleep(self.poll_interval)

    async def _sender(self) -> None:
        assert self._http is not None
        while True:
            job = await self._queue.get()
            if job is None:
                return
            if (job.lease - utcnow()).total_seconds() < self.lease_needed:
                # Waited so long that the send could outlive the lease, and another worker could
                # take the message back and send it too: give it back to the outbox instead.
                outcome = outbox.Outcome(job, Decision("queued", "claimed too long ago to send safely; back to "
                                                       "the outbox", next_attempt_at=utcnow()), False, utcnow())
            else:
                outcome = await dispatcher.dispatch(self.ctx, self._http, job, self.timeout)
            self._results.append(outcome)
            if len(self._results) >= self.batch_size:
                self._results_ready.set()

    async def _write_loop(self) -> None:
        while True:
            if not self._results:
                if self._stopping.is_set() and all(t.done() for t in self._senders):
                    return
                self._results_ready.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._results_ready.wait(), FLUSH_INTERVAL * 5)
                continue
            if len(self._results) < self.batch_size and not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    self._results_ready.clear()
                    await asyncio.wait_for(self._results_ready.wait(), FLUSH_INTERVAL)
            batch, self._results = self._results, []
            try:
                await self.db(outbox.record, batch, self.name)
            except Exception:
                log.exception("writing %d results failed; they will be written with the next batch", len(batch))
                self._results = batch + self._results
                await self._sleep(0.5)
                continue
            self.sent_total += sum(1 for o in batch if o.decision.status == "sent")
            self.inflight -= len(batch)
            self._room.set()

    async def _housekeeping_loop(self) -> None:
        settled_at = 0.0
        while not self._stopping.is_set():
            try:
                await self.db(receipts.apply_unmatched)
                # The scan reads every sent message (no index for it): every few seconds, not every second.
                if time.monotonic() - settled_at >= SETTLE_INTERVAL:
                    settled_at = time.monotonic()
                    await self.db(custom_route.settle_unconfirmed)
                module = self._campaign_module()
                if module is not None and hasattr(module, "finish_campaigns"):
                    await self._call(module.finish_campaigns)
            except Exception:
                log.exception("delivery housekeeping failed")
            await self._sleep(HOUSEKEEPING_INTERVAL)

    # -- helpers -------------------------------------------------------------------------------

    def _campaign_module(self) -> Any:
        if self._campaigns is None:
            try:
                self._campaigns = importlib.import_module("textrelay.delivery.campaigns")
            except ImportError:
                self._campaigns = False
        return self._campaigns or None

    async def _expand_campaigns(self) -> None:
        """Turn campaign audiences into queued messages, a slice at a time."""
        module = self._campaign_module()
        if module is None or not hasattr(module, "expand_some"):
            return
        await self._call(module.expand_some, self.batch_size * 4)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(ctx, *args)`` of another module: awaited if async, else run as a store step."""
        if inspect.iscoroutinefunction(fn):
            return await fn(self.ctx, *args)
        return await self.db(fn, *args)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


async def start_in_process(ctx: Context) -> Worker:
    """Start a worker in the running event loop; ``await worker.stop()`` ends it."""
    return await Worker(ctx).start()


def run_forever(ctx: Context) -> None:
    """The standalone worker process: runs until SIGTERM or SIGINT."""
    async def main() -> None:
        worker = await start_in_process(ctx)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        log.info("delivery worker started (batch %d, concurrency %d)", worker.batch_size, worker.concurrency)
        started = time.monotonic()
        await stop.wait()
        await worker.stop()
        log.info("delivery worker stopped after %.0fs; %d message(s) sent", time.monotonic() - started,
                 worker.sent_total)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
