"""Admin UI pages: Webhooks (SMS settings), Consent lookup, Inbound messages."""

from __future__ import annotations

import re

import pytest

from tests.inbound.helpers import make_line
from tests.web.conftest import PASSWORD, UiClient
from textrelay.services import access


@pytest.fixture
def ui(service):  # type: ignore[no-untyped-def]
    with service.context.db.session() as session:
        access.create_user(session, "admin", PASSWORD)
    client = UiClient(service.url)
    assert client.login().status_code == 200
    return client


def test_webhooks_page_lists_urls_and_saves_keywords_with_field_errors(ui, api):
    line = make_line(api)
    page = ui.get("/ui/webhooks")
    assert page.status_code == 200
    assert line.url in page.text and "Twilio main inbound" in page.text
    hook = line.inbound_webhook["id"]
    form = ui.get(f"/ui/webhooks/{hook}").text
    assert "STOP, STOPALL" in form
    fields = dict(re.findall(r'name="(keywords\.\w+|replies\.\w+)"[^>]*>([^<]*)</textarea>', form))
    data = {**fields, "name": "Main inbound", "sender_number": "", "default_reply": "Thanks!",
            "revocation_policy": "confirm", "revocation_reply": "", "keywords.help": "HELP, INFO, AIDE"}
    saved = ui.post(f"/ui/webhooks/{hook}", data, csrf=ui.token(f"/ui/webhooks/{hook}"))
    assert saved.status_code == 200 and "saved" in saved.text
    after = api.get(f"/api/v1/webhooks/{hook}").json()
    assert after["keywords"]["help"] == ["HELP", "INFO", "AIDE"]
    assert after["revocation_policy"] == "confirm" and after["default_reply"] == "Thanks!"
    assert after["keywords"]["opt_out"][0] == "STOP"
    bad = ui.post(f"/ui/webhooks/{hook}", {**data, "keywords.custom": "STOP"}, csrf=ui.token(f"/ui/webhooks/{hook}"))
    assert bad.status_code == 422 and "already a keyword of opt_out" in bad.text
    assert ui.post(f"/ui/webhooks/{hook}", data, csrf=None).status_code == 403
    assert ui.get("/ui/webhooks/nope").status_code == 404


def test_consent_page_looks_up_sets_imports_and_exports(ui, api):
    line = make_line(api)
    line.text("STOP")
    page = ui.get("/ui/consent", params={"number": "+1 415 555 0199"})
    assert page.status_code == 200
    assert "opted out" in page.text and "keyword" in page.text and line.number in page.text
    set_resp = ui.post("/ui/consent/set", {"number": "+14155550199", "status": "opted_in", "sender_number": "",
                                           "detail": "called support"}, csrf=ui.token("/ui/consent"))
    assert "set to opted in" in set_resp.text and "called support" in set_resp.text
    assert "not a phone number" in ui.get("/ui/consent", params={"number": "nope"}).text
    token = ui.token("/ui/consent")
    imported = ui.http.post(ui.base_url + "/ui/consent/import", data={"csrf_token": token},
                            files={"file": ("c.csv", b"phone_number,status\n+14155550201,opted_out\n", "text/csv")})
    assert "1 changed" in imported.text
    failed = ui.http.post(ui.base_url + "/ui/consent/import", data={"csrf_token": ui.token("/ui/consent")},
                          files={"file": ("c.csv", b"phone_number,status\nbad,opted_out\n", "text/csv")})
    assert "Nothing was imported" in failed.text and "line 2.phone_number" in failed.text
    export = ui.get("/ui/consent/export.csv")
    assert export.headers["content-type"].startswith("text/csv") and "+14155550201,opted_out,import" in export.text


def test_inbound_page_lists_and_filters_messages_escaping_bodies(ui, api):
    line = make_line(api)
    line.text("<script>alert(1)</script>", "+14155550101")
    line.text("HELP", "+14155550102")
    page = ui.get("/ui/inbound")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    helped = ui.get("/ui/inbound", params={"category": "help"}).text
    assert "+14155550102" in helped and "+14155550101" not in helped
    assert "+14155550101" in ui.get("/ui/inbound", params={"from_number": "+1 415 555 0101"}).text


def test_pages_need_a_signed_in_user(service):
    anonymous = UiClient(service.url)
    for path in ("/ui/webhooks", "/ui/consent", "/ui/inbound"):
        resp = anonymous.get(path)
        assert resp.url.split("?")[0].endswith("/ui/login"), path


def test_webhooks_page_sets_the_events_destination_and_shows_the_secret_once(ui, api):
    saved = ui.post("/ui/webhooks/events", {"url": "https://journeys.example.test/in", "secret": "",
                                            "event.consent.changed": "1", "enabled": "1"},
                    csrf=ui.token("/ui/webhooks"))
    assert "Signing secret, shown once" in saved.text
    destination = api.get("/api/v1/events/destination").json()
    assert destination["url"] == "https://journeys.example.test/in"
    assert destination["events"] == ["consent.changed"]
    assert "shown once" not in ui.get("/ui/webhooks").text
    bad = ui.post("/ui/webhooks/events", {"url": "not a url"}, csrf=ui.token("/ui/webhooks"))
    assert "were not saved" in bad.text and "url" in bad.text
