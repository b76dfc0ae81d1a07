from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support import free_port


def test_health_metrics_docs_and_openapi(service):
    assert requests.get(service.url + "/healthz", timeout=5).json()["status"] == "ok"
    metrics = requests.get(service.url + "/metrics", timeout=5)
    assert metrics.status_code == 200 and "textrelay_" in metrics.text
    assert requests.get(service.url + "/docs", timeout=5).status_code == 200
    spec = requests.get(service.url + "/openapi.json", timeout=5).json()
    assert "/api/v1/credentials" in spec["paths"]


def test_unknown_path_is_a_problem_not_html(service):
    resp = requests.get(service.url + "/api/v1/nothing-here", timeout=5)
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")


def test_sandboxes_create_list_and_delete_when_empty(api):
    assert [s["name"] for s in api.get("/api/v1/sandboxes").json()["items"]] == ["prod"]
    assert api.post("/api/v1/sandboxes", json={"name": "Dev!"}).status_code == 422
    assert api.post("/api/v1/sandboxes", json={"name": "dev"}).status_code == 201
    assert api.post("/api/v1/sandboxes", json={"name": "dev"}).status_code == 409
    dev = api.__class__(api.base_url, None)
    dev.http.headers.update(api.http.headers)
    dev.http.headers["x-sandbox-name"] = "dev"
    cred = dev.post("/api/v1/credentials", json={
        "name": "c", "vendor": "twilio", "account_sid": "AC" + "1" * 32, "auth_token": "x" * 32})
    assert cred.status_code == 201
    assert api.delete("/api/v1/sandboxes/dev").status_code == 409
    assert dev.delete(f"/api/v1/credentials/{cred.json()['id']}").status_code == 204
    assert api.delete("/api/v1/sandboxes/dev").status_code == 204
    assert api.delete("/api/v1/sandboxes/prod").status_code == 409
    assert api.get("/api/v1/credentials", headers={"x-sandbox-name": "dev"}).status_code == 404


def test_api_keys_created_by_api_work_and_can_be_revoked(api, service):
    created = api.post("/api/v1/api-keys", json={"name": "journeys", "role": "sender"})
    assert created.status_code == 201
    token = created.json()["key"]
    sender = service.client(token)
    assert sender.get("/api/v1/credentials").status_code == 200
    listed = api.get("/api/v1/api-keys")
    assert token not in listed.text
    used = next(k for k in listed.json()["items"] if k["id"] == created.json()["id"])
    assert used["last_used_at"] is not None
    assert api.delete(f"/api/v1/api-keys/{created.json()['id']}").status_code == 204
    assert sender.get("/api/v1/credentials").status_code == 401


def test_serve_on_embedded_defaults_prints_login_once(tmp_path):
    """The README's first command, in a fresh folder: SQLite and a generated key, printed once."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTRELAY_")}
    env.update(TEXTRELAY_PORT=str(port))
    textrelay = Path(sys.executable).with_name("textrelay")

    def run_once() -> str:
        proc = subprocess.Popen([str(textrelay), "serve", "--no-worker"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            else:
                raise AssertionError("serve did not come up")
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=20)
        return out

    first = run_once()
    key = re.search(r"admin API key : (trk_\S+)", first)
    assert key, first
    assert "password '" in first
    assert (tmp_path / "data" / "textrelay.db").exists()
    assert oct((tmp_path / "data" / "secret.key").stat().st_mode & 0o777) == "0o600"
    second = run_once()
    assert "admin API key" not in second
