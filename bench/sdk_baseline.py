"""Baseline: the official ``twilio`` SDK's async client (aiohttp underneath) creating messages
against the sink at a fixed concurrency. Nothing is persisted. Prints one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client


async def run(url: str, account_sid: str, token: str, count: int, concurrency: int) -> dict[str, float]:
    http = AsyncTwilioHttpClient()
    client = Client(account_sid, token, http_client=http)
    client.api.base_url = url
    numbers = iter(range(count))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for i in numbers:
            try:
                message = await client.api.v2010.accounts(account_sid).messages.create_async(
                    to=f"+1415{5000000 + i}", from_="+15005550006", body=f"Hello {i}, this is the benchmark")
                assert message.sid
            except Exception:
                errors += 1

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await http.close()
    return {"messages": count, "seconds": elapsed, "per_second": count / elapsed, "errors": errors,
            "cpu_us_per_message": 1e6 * cpu / count}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--token", default="x" * 32)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.account_sid, args.token, args.count, args.concurrency))))


if __name__ == "__main__":
    main()
