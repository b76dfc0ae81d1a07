"""The CLI registers custom credentials through the same service as the API."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from textrelay.cli import app
from textrelay.config import get_settings


@pytest.fixture
def cli_env(monkeypatch, settings):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEXTRELAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TEXTRELAY_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TEXTRELAY_SECRET_KEY_FILE", str(settings.resolved_key_file))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_create_custom_credential_from_a_json_file_and_refuse_a_bad_template(cli_env, tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["keys", "create", "--name", "ops", "--role", "admin"]).exit_code == 0
    good = tmp_path / "acme.json"
    good.write_text(json.dumps({
        "name": "acme", "provider_url": "https://sms.example.com/v1/messages",
        "payload_template": '{"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "{{message}}"}',
        "auth": {"type": "bearer", "token": "secret-token-123456"}}))
    made = runner.invoke(app, ["credentials", "create-custom", str(good)])
    assert made.exit_code == 0, made.output
    assert "credential 'acme' created" in made.output and "secret-token-123456" not in made.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "provider_url": "https://sms.example.com/",
                               "payload_template": '{"to": "{{toNumber}}"}'}))
    refused = runner.invoke(app, ["credentials", "create-custom", str(bad)])
    assert refused.exit_code == 1
    assert "{{fromNumber}}" in refused.output
