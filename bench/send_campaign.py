"""The delivery benchmark, one command: ``python bench/send_campaign.py [--messages 100000]``.

(a) A campaign of N messages through one ``textrelay serve`` process (SQLite, its in-process
    worker) against an nginx Twilio sink: end-to-end messages/s from ``start`` until every message
    is recorded as provider-accepted (``sent``), and the peak RSS of the serve process.
(b) The same number of messages created by the official twilio SDK's async client (concurrency
    64) against the same sink: the baseline, and the ratio.
(c) Signed status callbacks posted concurrently from another process to the serve process's
    feedback webhook: callbacks/s and errors (each marks one sent message delivered).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sink import NginxSink, free_port  # noqa: E402

TEXTRELAY = str(Path(sys.executable).with_name("textrelay"))


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "memory": mem, "python": platform.python_version()}


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count(db: Path, status: str | None) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        if status is None:
            return conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        return conn.execute("SELECT count(*) FROM messages WHERE status = ?", (status,)).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--callbacks", type=int, default=50_000)
    parser.add_argument("--skip-sdk", action="store_true")
    parser.add_argument("--trace", action="store_true", help="print the outbox's progress every second")
    parser.add_argument("--profile", help="py-spy record (GIL samples, raw format) the serve process into this file")
    parser.add_argument("--profile-phase", choices=("campaign", "callbacks"), default="campaign")
    args = parser.parse_args()
    n = args.messages
    work = Path(tempfile.mkdtemp(prefix="textrelay-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TEXTRELAY_DATA_DIR": str(work), "TEXTRELAY_PUBLIC_URL": base,
           "TEXTRELAY_LOG_LEVEL": "WARNING"}
    env.pop("TEXTRELAY_DATABASE_URL", None)
    account_sid, auth_token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    results: dict[str, object] = {"machine": machine(), "messages": n}
    with NginxSink() as sink:
        key = subprocess.run([TEXTRELAY, "keys", "create", "--name", "bench"], env=env, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        serve = subprocess.Popen([TEXTRELAY, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
        profiler = None
        try:
            api = requests.Session()
            api.headers["Authorization"] = f"Bearer {key}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if api.get(base + "/healthz", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("serve did not start")
                time.sleep(0.1)
            cred = api.post(base + "/api/v1/credentials", json={
                "name": "sink", "account_sid": account_sid, "auth_token": auth_token, "api_base_url": sink.url})
            cred.raise_for_status()
            cred_json = cred.json()
            feedback_url = next(h["url"] for h in cred_json["webhooks"] if h["type"] == "feedback")
            config = api.post(base + "/api/v1/channel-configurations", json={
                "name": "bench", "channel": "sms", "sms_type": "marketing", "credential_id": cred_json["id"],
                "sender_number": "+15005550006", "status": "active"})
            config.raise_for_status()
            campaign = api.post(base + "/api/v1/campaigns", json={
                "name": "bench", "channel_configuration": "bench",
                "body": "Hello {{profile.firstName}}, this is the benchmark"})
            campaign.raise_for_status()
            campaign_id = campaign.json()["id"]
            csv = "phone,firstName\n" + "".join(f"+1415{5000000 + i},Ann{i}\n" for i in range(n))
            t = time.perf_counter()
            upload = api.post(f"{base}/api/v1/campaigns/{campaign_id}/audience?phone_column=phone",
                              data=csv.encode(), headers={"Content-Type": "text/csv"}, timeout=600)
            upload.raise_for_status()
            results["audience_upload_seconds"] = round(time.perf_counter() - t, 2)
            db = work / "textrelay.db"
            if args.profile and args.profile_phase == "campaign":
                profiler = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--gil", "-o", args.profile,
                                             "-f", "raw", "--nonblocking",
                                             "-p", str(serve.pid), "-r", "50"], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
                time.sleep(1)
            cpu_before = cpu_seconds(serve.pid)
            started = time.perf_counter()
            api.post(f"{base}/api/v1/campaigns/{campaign_id}/start").raise_for_status()
            peak_rss = 0
            sent = 0
            last_trace = started
            while sent < n:
                time.sleep(0.25)
                peak_rss = max(peak_rss, rss_kb(serve.pid, "VmRSS"))
                sent = count(db, "sent")
                if args.trace and time.perf_counter() - last_trace >= 1:
                    last_trace = time.perf_counter()
                    print(f"  t={last_trace - started:5.1f}s created={count(db, None)} queued={count(db, 'queued')} "
                          f"sending={count(db, 'sending')} sent={sent} cpu={cpu_seconds(serve.pid) - cpu_before:.1f}s",
                          flush=True)
                if time.perf_counter() - started > 1800:
                    raise RuntimeError(f"only {sent} of {n} sent after 30 minutes")
            elapsed = time.perf_counter() - started
            serve_cpu = cpu_seconds(serve.pid) - cpu_before
            if profiler is not None:
                profiler.send_signal(2)
                profiler.wait(timeout=60)
            peak_rss = max(peak_rss, rss_kb(serve.pid, "VmHWM"))
            if args.trace:
                for line in requests.get(base + "/metrics", timeout=10).text.splitlines():
                    if line.startswith("textrelay_worker_store_seconds_") and ("_sum" in line or "_count" in line):
                        print("  " + line)
            results["campaign"] = {"seconds": round(elapsed, 2), "per_second": round(n / elapsed),
                                   "peak_rss_mb": round(peak_rss / 1024, 1), "serve_cpu_seconds": round(serve_cpu, 2),
                                   "serve_cpu_us_per_message": round(1e6 * serve_cpu / n)}
            print(f"(a) campaign: {n} messages sent in {elapsed:.1f}s = {n / elapsed:,.0f}/s, "
                  f"serve peak RSS {peak_rss / 1024:.0f} MB, serve CPU {serve_cpu:.1f}s "
                  f"({1e6 * serve_cpu / n:.0f} us/message; load average {os.getloadavg()[0]:.1f})", flush=True)

            if not args.skip_sdk:
                out = subprocess.run([sys.executable, str(HERE / "sdk_baseline.py"), "--url", sink.url,
                                      "--account-sid", account_sid, "--count", str(n)],
                                     check=True, capture_output=True, text=True).stdout
                sdk = json.loads(out)
                results["sdk_baseline"] = {k: round(v, 2) if isinstance(v, float) else v for k, v in sdk.items()}
                ratio = (n / elapsed) / sdk["per_second"]
                results["ratio_vs_sdk"] = round(ratio, 2)
                print(f"(b) twilio SDK async, concurrency 64: {sdk['per_second']:,.0f}/s "
                      f"({sdk['errors']} errors, {sdk['cpu_us_per_message']:.0f} us CPU/message); "
                      f"textrelay/SDK = {ratio:.2f}x", flush=True)

            m = min(args.callbacks, n)
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                sids = [row[0] for row in conn.execute(
                    "SELECT provider_message_id FROM messages WHERE status = 'sent' LIMIT ?", (m,))]
            sids_file = work / "sids.txt"
            sids_file.write_text("\n".join(sids))
            if args.profile and args.profile_phase == "callbacks":
                profiler = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--gil", "-o",
                                             args.profile, "-f", "raw", "--nonblocking", "-p", str(serve.pid),
                                             "-r", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
            cpu_before = cpu_seconds(serve.pid)
            out = subprocess.run([sys.executable, str(HERE / "callbacks.py"), "--url", feedback_url,
                                  "--token", auth_token, "--account-sid", account_sid,
                                  "--sids-file", str(sids_file)], check=True, capture_output=True, text=True).stdout
            cb = json.loads(out)
            serve_cpu = cpu_seconds(serve.pid) - cpu_before
            if profiler is not None and args.profile_phase == "callbacks":
                profiler.send_signal(2)
                profiler.wait(timeout=60)
            delivered = count(db, "delivered")
            results["callbacks"] = {**{k: round(v, 2) if isinstance(v, float) else v for k, v in cb.items()},
                                    "messages_delivered_after": delivered,
                                    "serve_cpu_us_per_callback": round(1e6 * serve_cpu / cb["callbacks"])}
            print(f"(c) status callbacks: {cb['callbacks']} in {cb['seconds']:.1f}s = {cb['per_second']:,.0f}/s, "
                  f"{cb['errors']} errors; {delivered} messages now delivered; serve CPU "
                  f"{1e6 * serve_cpu / cb['callbacks']:.0f} us/callback", flush=True)
            results["serve_peak_rss_mb_final"] = round(rss_kb(serve.pid, "VmHWM") / 1024, 1)
        finally:
            if profiler is not None and profiler.poll() is None:
                profiler.kill()
            serve.terminate()
            serve.wait(timeout=30)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
