from __future__ import annotations

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from tests.support import twilio_sid
from textrelay.cli import app
from textrelay.config import get_settings
from textrelay.delivery.campaigns import expand_some
from textrelay.store.models import Message


@pytest.fixture
def cli(context, settings, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEXTRELAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TEXTRELAY_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TEXTRELAY_SECRET_KEY_FILE", str(settings.resolved_key_file))
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    yield run, runner
    get_settings.cache_clear()


def test_cli_configures_sends_and_runs_a_campaign_through_the_services(cli, context, tmp_path):
    run, runner = cli
    out = run("credentials", "create-twilio", "--name", "main", "--account-sid", twilio_sid("AC"),
              "--auth-token", "f" * 32, "--messaging-service-sid", twilio_sid("MG"))
    credential_id = out.strip().rsplit(" ", 1)[-1]
    out = run("channel-configurations", "create", "--name", "promo", "--credential", credential_id,
              "--sender-number", "+14155550100", "--status", "active")
    assert "created (active)" in out
    assert "promo" in run("channel-configurations", "list")

    out = run("send", "--configuration", "promo", "--to", "+14155550123", "--body", "Hi {{ profile.name }}",
              "--profile", '{"name": "Ann"}')
    assert "queued" in out and "GSM-7" in out
    bad = runner.invoke(app, ["send", "--configuration", "promo", "--to", "+14155550123", "--body",
                              "Hi {{ profile.name }}"])
    assert bad.exit_code == 1 and "profile.name" in bad.output

    csv_file = tmp_path / "audience.csv"
    csv_file.write_text("phone,name\n+14155550101,Ann\n+14155550102,Bo\nnope,Cy\n")
    campaign_id = run("campaign", "create", "--name", "Sale", "--configuration", "promo", "--body",
                      "Hi {{ profile.name }}").strip().rsplit(" ", 1)[-1]
    out = run("campaign", "upload", campaign_id, str(csv_file))
    assert "2 member(s) added, 1 rejected" in out
    assert "running" in run("campaign", "start", campaign_id)
    assert expand_some(context, 100) == 2
    with context.db.session() as session:
        session.execute(update(Message).where(Message.campaign_id == campaign_id).values(status="delivered"))
    from textrelay.delivery.campaigns import finish_campaigns

    assert finish_campaigns(context) == 1
    assert "campaign completed" in run("campaign", "status", campaign_id, "--wait")
    report = run("campaign", "report", campaign_id)
    assert "delivered" in report and "2" in report
    assert "Sale" in run("campaign", "list")
    cancel = runner.invoke(app, ["campaign", "cancel", campaign_id])
    assert cancel.exit_code == 1 and "already completed" in cancel.output
