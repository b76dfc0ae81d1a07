"""Benchmark: signed Twilio inbound requests posted concurrently to one ``textrelay serve``.

    .venv/bin/python bench/inbound.py [--requests 20000] [--concurrency 32]

Starts ``textrelay serve`` (SQLite, its own data directory, one process) on a loopback port,
registers a Twilio credential, then plays phones (as many as ``--requests`` needs), each texting a short random
conversation of STOP / START / HELP / free text in order (one message at a time per phone, as a
person would), ``--concurrency`` phones at once. Every request is signed with the official
``twilio`` package's ``RequestValidator`` before the clock starts. Reports requests/s, latency
percentiles and errors, then checks the store: every message stored once, and each phone's
consent status and history exactly what its conversation implies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from textrelay.config import Settings
from textrelay.domain import keywords as kw
from textrelay.services import bootstrap, credentials
from textrelay.services.context import Context
from textrelay.services.credentials import TwilioCredentialCreate
from textrelay.services.sandboxes import get_by_name
from textrelay.services.webhooks import DEFAULT_KEYWORDS
from textrelay.store.models import Consent, ConsentEvent, InboundMessage

ROOT = Path(__file__).resolve().parents[1]
INBOUND_NUMBER = "+14155550100"
TOKEN = uuid.uuid4().hex
FREE_TEXT = ["what time do you open?", "thanks!", "Is my order ready", "ok 👍", "stopwatch", "and"]
KEYSET = kw.KeywordSet.build(DEFAULT_KEYWORDS)


def conversation(rng: random.Random) -> list[str]:
    """A few messages: keyword-heavy, as the benchmark wants STOP/START/HELP mixed with text."""
    choices = ["STOP", "stop", "Stop.", "START", "start", "HELP", "info", *FREE_TEXT]
    weights = [6, 2, 2, 5, 2, 3, 1, *([1] * len(FREE_TEXT))]
    return rng.choices(choices, weights, k=rng.randint(1, 6))


def expected(messages: list[str]) -> tuple[str | None, int]:
    """The final consent status and number of consent changes the rules give."""
    status, changes = None, 0
    for text in messages:
        decision = kw.decide(kw.match(text, KEYSET), status)
        if decision.consent is not None:
            status, changes = decision.consent, changes + 1
    return status, changes


def setup(data_dir: Path) -> tuple[Settings, str]:
    settings = Settings(data_dir=data_dir, run_worker=False)
    ctx = Context.from_settings(settings)
    ctx.db.upgrade()
    with ctx.db.session() as session:
        bootstrap.run(session)
        sandbox = get_by_name(session, "prod")
        cred = credentials.create(session, ctx.keyring, sandbox, TwilioCredentialCreate(
            name="bench", account_sid="AC" + uuid.uuid4().hex, auth_token=TOKEN, inbound_number=INBOUND_NUMBER))
        from textrelay.services import webhooks

        hook = next(h for h in webhooks.for_credential(session, cred.id) if h.type == "inbound")
        hook_id = hook.id
    ctx.db.dispose()
    return settings, hook_id


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TEXTRELAY_DATA_DIR": str(data_dir), "TEXTRELAY_PORT": str(port),
           "TEXTRELAY_HOST": "127.0.0.1", "TEXTRELAY_LOG_LEVEL": "WARNING"}
    textrelay = shutil.which("textrelay", path=str(Path(sys.executable).parent)) or "textrelay"
    command = [textrelay, "serve"]
    if os.environ.get("BENCH_PROFILE"):
        # cProfile of the serving thread (the event loop), written when the server stops.
        code = ("import cProfile, sys; sys.argv = ['textrelay', 'serve']; from textrelay.cli import main; "
                f"cProfile.run('main()', {os.environ['BENCH_PROFILE']!r})")
        command = [sys.executable, "-c", code]
    return subprocess.Popen(command, env=env, cwd=data_dir, stdout=subprocess.DEVNULL,
                            stderr=open(data_dir / "serve.log", "wb"))  # noqa: SIM115 - lives as long as the server


async def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the service did not start")


async def run_load(url: str, plans: list[tuple[str, list[str]]], concurrency: int,
                   ) -> tuple[list[float], int, float, dict[int, int]]:
    validator = RequestValidator(TOKEN)
    signed: list[list[tuple[dict[str, str], str]]] = []
    for handset, messages in plans:
        requests = []
        for text in messages:
            params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC0", "From": handset,
                      "To": INBOUND_NUMBER, "Body": text, "NumMedia": "0", "SmsStatus": "received"}
            requests.append((params, validator.compute_signature(url, params)))
        signed.append(requests)
    queue: asyncio.Queue[list[tuple[dict[str, str], str]]] = asyncio.Queue()
    for item in signed:
        queue.put_nowait(item)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def phone(http: aiohttp.ClientSession) -> None:
        nonlocal errors
        while not queue.empty():
            for params, signature in queue.get_nowait():
                started = time.perf_counter()
                try:
                    async with http.post(url, data=params, headers={"X-Twilio-Signature": signature}) as resp:
                        await resp.read()
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                        if resp.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(phone(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed, statuses


def check_store(settings: Settings, plans: list[tuple[str, list[str]]]) -> list[str]:
    ctx = Context.from_settings(settings)
    problems = []
    with ctx.db.session() as session:
        stored = session.scalar(select(func.count()).select_from(InboundMessage))
        total = sum(len(m) for _, m in plans)
        if stored != total:
            problems.append(f"{stored} inbound messages stored, {total} sent")
        status = dict(session.execute(select(Consent.phone_number, Consent.status)).all())
        changes = dict(session.execute(select(ConsentEvent.phone_number, func.count())
                                       .group_by(ConsentEvent.phone_number)).all())
    for handset, messages in plans:
        want_status, want_changes = expected(messages)
        if status.get(handset) != want_status or changes.get(handset, 0) != want_changes:
            problems.append(f"{handset}: status {status.get(handset)} with {changes.get(handset, 0)} changes, "
                            f"expected {want_status} with {want_changes} ({messages})")
    ctx.db.dispose()
    return problems


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc), to report cost per request
    independently of whatever else the machine is running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="About how many inbound requests to send.")
    parser.add_argument("--concurrency", type=int, default=32, help="Phones texting at once.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="Keep the data directory.")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    plans: list[tuple[str, list[str]]] = []
    total = 0
    while total < args.requests:
        messages = conversation(rng)
        plans.append((f"+1415{len(plans):07d}", messages))
        total += len(messages)

    data_dir = Path(tempfile.mkdtemp(prefix="textrelay-bench-"))
    port = args.port
    if not port:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    settings, hook_id = setup(data_dir)
    server = start_server(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base))
        url = f"{base}/hooks/twilio/{hook_id}"
        server_cpu = cpu_seconds(server.pid)
        latencies, errors, elapsed, statuses = asyncio.run(run_load(url, plans, args.concurrency))
        server_cpu = cpu_seconds(server.pid) - server_cpu
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    problems = check_store(settings, plans)
    rate = len(latencies) / elapsed
    ms = [v * 1000 for v in latencies]
    print(f"requests     {len(latencies)} from {len(plans)} phones, {args.concurrency} at once")
    print(f"elapsed      {elapsed:.2f} s")
    print(f"throughput   {rate:.0f} requests/s")
    print(f"latency ms   p50 {percentile(ms, 50):.1f}  p90 {percentile(ms, 90):.1f}  "
          f"p99 {percentile(ms, 99):.1f}  max {max(ms):.1f}  mean {statistics.fmean(ms):.1f}")
    print(f"server CPU   {server_cpu:.2f} s = {server_cpu / len(latencies) * 1e6:.0f} us per request "
          f"(one core: at most {len(latencies) / server_cpu:.0f} requests/s)")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other processes share them)")
    print(f"errors       {errors}  statuses {statuses}")
    print(f"consent      {'exactly right' if not problems else f'{len(problems)} problems'}")
    met = rate >= 2000 and percentile(ms, 99) < 50 and not errors and not problems
    print(f"target       >= 2,000 requests/s, p99 < 50 ms, no errors, consent right: {'met' if met else 'NOT met'}")
    for line in problems[:10]:
        print("  ", line)
    if args.keep:
        print(f"data         {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0 if not errors and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
