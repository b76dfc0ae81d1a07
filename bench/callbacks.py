"""Status-callback load: signed Twilio callbacks posted concurrently (aiohttp, many connections)
to a feedback webhook. Prints one JSON line: callbacks per second and errors."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from urllib.parse import urlencode

import aiohttp

from textrelay.providers.twilio_signature import compute_signature


def payloads(url: str, token: str, account_sid: str, sids: list[str]) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    for sid in sids:
        form = [("SmsSid", sid), ("SmsStatus", "delivered"), ("MessageStatus", "delivered"),
                ("To", "+14155550100"), ("MessageSid", sid), ("AccountSid", account_sid),
                ("From", "+15005550006"), ("ApiVersion", "2010-04-01"), ("RawDlrDoneDate", "2611270700")]
        signature = compute_signature(token, url, {k: [v] for k, v in form})
        out.append((urlencode(form).encode(), {
            "X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "Content-Type": "application/x-www-form-urlencoded"}))
    return out


async def run(url: str, items: list[tuple[bytes, dict[str, str]]], connections: int) -> dict[str, float]:
    queue = iter(items)
    errors = 0
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker() -> None:
            nonlocal errors
            for body, headers in queue:
                try:
                    async with http.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                        if resp.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {"callbacks": len(items), "seconds": elapsed, "per_second": len(items) / elapsed, "errors": errors,
            "statuses": {str(k): v for k, v in statuses.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--sids-file", required=True, help="one provider message id per line")
    parser.add_argument("--connections", type=int, default=128)
    args = parser.parse_args()
    sids = [line.strip() for line in open(args.sids_file) if line.strip()]
    items = payloads(args.url, args.token, args.account_sid, sids)
    try:
        import uvloop

        result = uvloop.run(run(args.url, items, args.connections))
    except ImportError:
        result = asyncio.run(run(args.url, items, args.connections))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
