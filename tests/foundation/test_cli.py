from __future__ import annotations

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


def test_db_upgrade_keys_and_credentials_from_the_command_line(cli_env):
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    made = runner.invoke(app, ["keys", "create", "--name", "journeys", "--role", "sender"])
    assert made.exit_code == 0, made.output
    assert "trk_" in made.output
    bad = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "owner"])
    assert bad.exit_code == 1 and "role" in bad.output

    created = runner.invoke(app, ["credentials", "create-twilio", "--name", "cli", "--account-sid", "AC" + "a" * 32,
                                  "--auth-token", "s3cret-token-value-1234", "--inbound-number", "+14155552671"])
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["credentials", "list"])
    assert "cli" in listed.output and "+14155552671" in listed.output
    assert "s3cret-token-value-1234" not in listed.output

    invalid = runner.invoke(app, ["credentials", "create-twilio", "--name", "x", "--account-sid", "AC1",
                                  "--auth-token", "s3cret-token-value-1234"])
    assert invalid.exit_code == 1 and "account_sid" in invalid.output


def test_sandboxes_and_secret_rotation_from_the_command_line(cli_env, settings):
    runner = CliRunner()
    assert runner.invoke(app, ["sandboxes", "create", "dev"]).exit_code == 0
    assert "dev" in runner.invoke(app, ["sandboxes", "list"]).output
    assert runner.invoke(app, ["sandboxes", "create", "dev"]).exit_code == 1
    runner.invoke(app, ["credentials", "create-twilio", "--name", "c", "--account-sid", "AC" + "b" * 32,
                        "--auth-token", "another-secret-token-99", "--sandbox", "dev"])
    rotated = runner.invoke(app, ["secrets", "rotate"])
    assert rotated.exit_code == 0 and "re-encrypted" in rotated.output, rotated.output
    assert len(settings.resolved_key_file.read_text().split()) == 2
    assert runner.invoke(app, ["secrets", "rotate", "--retire"]).exit_code == 0
    assert len(settings.resolved_key_file.read_text().split()) == 1
    assert "another" not in runner.invoke(app, ["credentials", "list", "--sandbox", "dev"]).output
