from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support import twilio_sid
from textrelay.secrets import KeyRing
from textrelay.services import credentials
from textrelay.services.context import Context
from textrelay.store.models import Credential

TOKEN = "9b3e1c7d5a2f4e6081c9d7b3a5e1f2c4"


def _create(api) -> dict:  # type: ignore[no-untyped-def]
    resp = api.post("/api/v1/credentials", json={
        "name": "main", "vendor": "twilio", "account_sid": twilio_sid("AC"), "auth_token": TOKEN,
        "inbound_number": "+14155550100"})
    assert resp.status_code == 201, resp.text
    return resp.json()


def _raw_database_bytes(context: Context, tmp_path: Path) -> bytes:
    url = context.settings.resolved_database_url
    if url.startswith("sqlite"):
        context.db.engine.dispose()  # checkpoint the WAL into the main file
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    db = url.replace("postgresql+psycopg://", "postgresql://")
    return subprocess.run(["pg_dump", "--data-only", db], check=True, capture_output=True).stdout


def test_auth_token_is_not_in_the_database_in_clear(api, service, tmp_path):
    cred = _create(api)
    raw = _raw_database_bytes(service.context, tmp_path)
    assert cred["account_sid"].encode() in raw  # the dump really holds the row
    assert TOKEN.encode() not in raw
    assert TOKEN[:16].encode() not in raw


def test_auth_token_is_never_returned_or_logged(api, caplog):
    cred = _create(api)
    for resp in (api.get(f"/api/v1/credentials/{cred['id']}"), api.get("/api/v1/credentials"),
                 api.patch(f"/api/v1/credentials/{cred['id']}", json={"name": "x"})):
        assert TOKEN not in resp.text
    assert TOKEN not in caplog.text


def test_key_file_is_created_owner_only(context):
    key_file = context.settings.resolved_key_file
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_rotation_reencrypts_and_old_processes_keep_reading(api, service):
    from textrelay.services import secret_rotation

    cred = _create(api)
    ctx = service.context
    key_file = ctx.settings.resolved_key_file
    # A second process that loaded the ring before the rotation.
    old_process_ring = KeyRing.from_settings(None, key_file)
    with ctx.db.session() as session:
        before = session.get(Credential, cred["id"]).secrets["auth_token"]

    assert secret_rotation.rotate(ctx) >= 1
    with ctx.db.session() as session:
        row = session.get(Credential, cred["id"])
        assert row.secrets["auth_token"] != before
        assert credentials.secret(row, old_process_ring, "auth_token") == TOKEN  # reloads the file
        assert credentials.secret(row, ctx.keyring, "auth_token") == TOKEN

    secret_rotation.rotate(ctx, retire=True)
    assert len(key_file.read_text().split()) == 1
    with ctx.db.session() as session:
        assert credentials.secret(session.get(Credential, cred["id"]), ctx.keyring, "auth_token") == TOKEN
    # The API keeps working throughout.
    assert api.get(f"/api/v1/credentials/{cred['id']}").status_code == 200
