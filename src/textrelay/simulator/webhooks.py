"""The simulator's outgoing HTTP: signed form posts to status-callback and inbound webhook URLs.

One shared ``aiohttp.ClientSession`` per server, with a bounded number of requests in flight, so a
burst of thousands of messages cannot open thousands of sockets. A failed delivery is recorded by
the caller, never raised into the request that caused it.
"""

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

__all__ = ["PostResult", "WebhookSender"]

MAX_CONCURRENT = 64


@dataclass(slots=True)
class PostResult:
    status: int | None
    content_type: str | None
    body: str
    error: str | None


class WebhookSender:
    def __init__(self, max_concurrent: int = MAX_CONCURRENT) -> None:
        self._max_concurrent = max_concurrent
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_concurrent, force_close=False)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
            self._semaphore = asyncio.Semaphore(self._max_concurrent)
        return self._session

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a background job (a message lifecycle) tied to this sender's lifetime."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the event loop after ``delay`` seconds, unless cancelled first."""

        def fire() -> None:
            self._timers.discard(handle)
            callback()

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    @property
    def pending(self) -> int:
        """Background jobs not finished yet: timers waiting and tasks running."""
        return len(self._tasks) + len(self._timers)

    async def post_form(
        self,
        url: str,
        fields: list[tuple[str, str]],
        headers: dict[str, str],
        timeout: float,
    ) -> PostResult:
        session = self._ensure_session()
        assert self._semaphore is not None
        async with self._semaphore:
            try:
                async with session.post(
                    url,
                    data=urlencode(fields).encode("utf-8"),
                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **headers},
                    timeout=aiohttp.ClientTimeout(total=timeout),
                    allow_redirects=False,
                ) as response:
                    text = await response.text(errors="replace")
                    return PostResult(response.status, response.headers.get("Content-Type"), text, None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                return PostResult(None, None, "", f"{type(exc).__name__}: {exc}")

    async def cancel_all(self) -> None:
        """Stop every background job (message lifecycles in flight)."""
        for handle in list(self._timers):
            handle.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.cancel_all()
        if self._session is not None:
            await self._session.close()
            self._session = None
