"""The webhooks, consent and inbound CLI groups call the same services as the API."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.support import twilio_sid
from textrelay.cli import app
from textrelay.config import get_settings
from textrelay.inbound import service
from textrelay.services import credentials, sandboxes
from textrelay.services.credentials import TwilioCredentialCreate


@pytest.fixture
def cli(context, settings, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEXTRELAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("TEXTRELAY_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TEXTRELAY_SECRET_KEY_FILE", str(settings.resolved_key_file))
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, code: int = 0, stdin: str | None = None) -> str:
        result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    yield run
    get_settings.cache_clear()


def test_cli_edits_webhooks_sets_imports_exports_consent_and_lists_inbound(cli, context, tmp_path):
    with context.db.session() as session:
        box = sandboxes.get_by_name(session, "prod")
        cred = credentials.create(session, context.keyring, box, TwilioCredentialCreate(
            name="main", account_sid=twilio_sid("AC"), auth_token="t" * 32, inbound_number="+14155550100"))
        cred_id = cred.id
    listed = cli("webhooks", "list")
    assert "main inbound" in listed and "feedback" in listed
    with context.db.session() as session:
        from textrelay.services import webhooks

        hook_id = next(h.id for h in webhooks.for_credential(session, cred_id) if h.type == "inbound")
    cli("webhooks", "update", hook_id, '{"revocation_policy": "confirm"}')
    assert '"revocation_policy": "confirm"' in cli("webhooks", "show", hook_id)
    assert "keywords.help[0]" in cli("webhooks", "update", hook_id, '{"keywords": {"help": ["STOP"]}}', code=1)

    assert "opted_out" in cli("consent", "set", "+1 415 555 0199", "opted_out", "--detail", "phoned us")
    assert "phoned us" in cli("consent", "get", "+14155550199")
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("phone_number,status\n+14155550201,opted_in\n")
    assert "1 changed" in cli("consent", "import", str(csv_file))
    assert "line 2" in cli("consent", "import", "-", stdin="phone_number,status\nnope,opted_in\n", code=1)
    exported = cli("consent", "export")
    assert "+14155550199,opted_out,api" in exported and "+14155550201,opted_in,import" in exported

    with context.db.session() as session:
        route = service.resolve_route(session, "twilio", cred_id, hook_id, "+14155550100")
    service.process_batch(context, [(route, service.Inbound("SM" + "1" * 32, "+14155550199", "+14155550100",
                                                            "HELP"))])
    assert "HELP" in cli("inbound", "list", "--category", "help")


def test_cli_sets_the_events_destination_and_shows_the_secret_once(cli):
    out = cli("inbound", "forward", "https://journeys.example.test/sms")
    assert "forwarding inbound.received, consent.changed to https://journeys.example.test/sms" in out
    assert "shown once" in out
    shown = cli("inbound", "forward")
    assert '"url": "https://journeys.example.test/sms"' in shown and "shown_once" not in shown
    assert "events" in cli("inbound", "forward", "https://x.test", "--events", "nope", code=1)
