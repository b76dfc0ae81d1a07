"""The sending pages without a browser: channel configurations, messages, campaigns.

Sign-in, CSRF, errors shown next to their fields, and sandboxes kept apart.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.sending.conftest import make_configuration, make_credential
from tests.support import ApiClient, LiveService
from tests.web.conftest import UiClient
from textrelay.services import sandboxes
from textrelay.store.models import ChannelConfiguration

CONFIGS = "/ui/channel-configurations"


def field_error(html: str, name: str) -> str | None:
    """The error shown under the input ``name`` (the ``e-<name>`` element), if any."""
    found = re.search(rf'id="e-{re.escape(name)}">([^<]*)<', html)
    return found.group(1) if found else None


def config_form(credential_id: str, **over: str) -> dict[str, str]:
    body = {"name": "promo-us", "channel": "sms", "sms_type": "marketing", "credential_id": credential_id,
            "sender_number": "+1 415 555 0100", "execution_field": "mobilePhone", "shortening_domain": "",
            "rate_limit_mps": "", "action": "submit"}
    body.update(over)
    return body


@pytest.fixture
def credential(api: ApiClient) -> dict[str, Any]:
    return make_credential(api)


# ---- channel configurations ----------------------------------------------------------------------

def test_channel_configuration_pages_require_sign_in(anonymous: UiClient) -> None:
    for path in (CONFIGS, CONFIGS + "/new", CONFIGS + "/x"):
        resp = anonymous.get(path, allow_redirects=False)
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/ui/login?next=")


def test_submit_creates_an_active_configuration_listed_with_its_credential(
        ui: UiClient, credential: dict[str, Any], service: LiveService) -> None:
    resp = ui.post(CONFIGS + "/new", config_form(credential["id"], rate_limit_mps="5"))
    assert resp.status_code == 200 and "Channel configuration &#39;promo-us&#39; submitted" in resp.text
    with service.context.db.session() as session:
        config = session.query(ChannelConfiguration).one()
        assert (config.status, config.sender_number, config.rate_limit_mps) == ("active", "+14155550100", 5.0)
    page = ui.get(CONFIGS).text
    row = page[page.index(f'data-configuration="{config.id}"'):]
    for text in ("promo-us", "SMS", "Marketing", credential["name"], "+14155550100", "Active"):
        assert text in row[:1500], text


def test_save_as_draft_keeps_the_configuration_a_draft_and_edit_submits_it(
        ui: UiClient, credential: dict[str, Any], service: LiveService) -> None:
    resp = ui.post(CONFIGS + "/new", config_form(credential["id"], action="draft", sms_type="transactional"))
    assert "saved as a draft" in resp.text
    config_id = resp.url.rsplit("/", 1)[1]
    assert 'value="transactional" checked' in resp.text
    resp = ui.post(f"{CONFIGS}/{config_id}", config_form(credential["id"], name="renamed", shortening_domain="",
                                                         sms_type="transactional"))
    assert "&#39;renamed&#39; submitted: it is active" in resp.text
    with service.context.db.session() as session:
        config = session.get(ChannelConfiguration, config_id)
        assert (config.name, config.status, config.sms_type) == ("renamed", "active", "transactional")


def test_configuration_errors_are_shown_next_to_their_fields_and_nothing_is_saved(
        ui: UiClient, credential: dict[str, Any], service: LiveService) -> None:
    resp = ui.post(CONFIGS + "/new", config_form(credential["id"], name="9lives", sender_number="not a number",
                                                 rate_limit_mps="fast", shortening_domain="http://x/y"))
    assert resp.status_code == 422
    assert field_error(resp.text, "name")
    assert "number" in (field_error(resp.text, "rate_limit_mps") or "")
    assert "hostname" in (field_error(resp.text, "shortening_domain") or "")
    assert 'value="not a number"' in resp.text  # what was typed stays
    resp = ui.post(CONFIGS + "/new", config_form(""))
    assert resp.status_code == 422 and field_error(resp.text, "credential_id") == "Required."
    resp = ui.post(CONFIGS + "/new", config_form(credential["id"], sender_number="not a number"))
    assert resp.status_code == 422 and field_error(resp.text, "sender_number")
    with service.context.db.session() as session:
        assert session.query(ChannelConfiguration).count() == 0


def test_a_twilio_credential_without_messaging_service_needs_a_sender_number(
        ui: UiClient, api: ApiClient) -> None:
    bare = make_credential(api, name="No service", messaging_service=False)
    resp = ui.post(CONFIGS + "/new", config_form(bare["id"], sender_number=""))
    assert resp.status_code == 422
    assert "sender number" in (field_error(resp.text, "sender_number") or "")


def test_configuration_forms_need_the_csrf_token(ui: UiClient, credential: dict[str, Any],
                                                 service: LiveService) -> None:
    assert ui.post(CONFIGS + "/new", config_form(credential["id"]), csrf=None).status_code == 403
    assert ui.post(CONFIGS + "/new", config_form(credential["id"]), csrf="forged").status_code == 403
    with service.context.db.session() as session:
        assert session.query(ChannelConfiguration).count() == 0


def test_deleting_a_configuration_with_queued_messages_shows_why_it_was_refused(
        ui: UiClient, api: ApiClient, credential: dict[str, Any], service: LiveService) -> None:
    config = make_configuration(api, credential["id"])
    assert api.post("/api/v1/messages", json={"channel_configuration": "promo", "to": "+14155550123",
                                              "body": "hi"}).status_code == 202
    assert "Delete the channel configuration" in ui.get(f"{CONFIGS}/{config['id']}/delete").text
    resp = ui.post(f"{CONFIGS}/{config['id']}/delete", {})
    assert resp.status_code == 409
    assert "1 queued message(s)" in resp.text
    unused = make_configuration(api, credential["id"], name="spare")
    resp = ui.post(f"{CONFIGS}/{unused['id']}/delete", {})
    assert resp.status_code == 200 and "Channel configuration &#39;spare&#39; deleted." in resp.text
    with service.context.db.session() as session:
        assert session.get(ChannelConfiguration, unused["id"]) is None
        assert session.get(ChannelConfiguration, config["id"]) is not None


def test_configurations_of_another_sandbox_are_neither_listed_nor_reachable(
        ui: UiClient, api: ApiClient, credential: dict[str, Any], service: LiveService) -> None:
    config = make_configuration(api, credential["id"], name="prod-only")
    with service.context.db.session() as session:
        sandboxes.create(session, "dev")
    ui.post("/ui/sandbox", {"sandbox": "dev", "next": CONFIGS})
    page = ui.get(CONFIGS).text
    assert "prod-only" not in page and "No channel configurations in sandbox “dev”" in page
    assert ui.get(f"{CONFIGS}/{config['id']}").status_code == 404
    assert ui.post(f"{CONFIGS}/{config['id']}/delete", {}).status_code == 404
    resp = ui.post(CONFIGS + "/new", config_form(credential["id"]))  # a prod credential, from dev
    assert resp.status_code == 422 and "no API credential" in (field_error(resp.text, "credential_id") or "")


# ---- messages ------------------------------------------------------------------------------------

MESSAGES = "/ui/messages"


@pytest.fixture
def configuration(api: ApiClient, credential: dict[str, Any]) -> dict[str, Any]:
    return make_configuration(api, credential["id"])


def send_api(api: ApiClient, to: str, body: str = "hello") -> dict[str, Any]:
    resp = api.post("/api/v1/messages", json={"channel_configuration": "promo", "to": to, "body": body})
    assert resp.status_code == 202, resp.text
    return resp.json()


def test_message_pages_require_sign_in(anonymous: UiClient) -> None:
    for path in (MESSAGES, MESSAGES + "/new", MESSAGES + "/abc"):
        resp = anonymous.get(path, allow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/ui/login?next=")
    resp = anonymous.post(MESSAGES + "/new", {"channel_configuration": "promo", "to": "+14155550123", "body": "x"},
                          allow_redirects=False)
    assert resp.status_code in (303, 403)


def test_the_send_form_queues_a_message_and_shows_it_with_its_history(
        ui: UiClient, configuration: dict[str, Any], service: LiveService) -> None:
    resp = ui.post(MESSAGES + "/new", {"channel_configuration": configuration["id"], "to": "+1 415 555 0123",
                                       "body": "Hello from the UI 😀"})
    assert resp.status_code == 200
    assert "Message to +14155550123 queued (1 segment(s), UCS-2)" in resp.text
    assert re.search(r'/ui/messages/\w+$', resp.url)
    html = resp.text
    assert 'id="message-status">queued<' in html
    assert "Hello from the UI 😀" in html
    history = html[html.index('id="history"'):]
    assert "msg-queued" in history and " UTC</td>" in history
    assert "location.replace" in html  # it refreshes itself while the message is on its way


def test_send_form_errors_are_shown_next_to_their_fields(
        ui: UiClient, configuration: dict[str, Any], api: ApiClient) -> None:
    resp = ui.post(MESSAGES + "/new", {"channel_configuration": configuration["id"], "to": "12", "body": "hi"})
    assert resp.status_code == 422 and field_error(resp.text, "to")
    resp = ui.post(MESSAGES + "/new", {"channel_configuration": configuration["id"], "to": "+14155550123",
                                       "body": ""})
    assert resp.status_code == 422 and "empty" in (field_error(resp.text, "body") or "")
    resp = ui.post(MESSAGES + "/new", {"channel_configuration": configuration["id"], "to": "+14155550123",
                                       "body": "Hi {{ profile.firstName"})
    assert resp.status_code == 422 and field_error(resp.text, "body")
    resp = ui.post(MESSAGES + "/new", {"channel_configuration": "", "to": "+14155550123", "body": "hi"})
    assert resp.status_code == 422 and field_error(resp.text, "channel_configuration") == "Required."
    draft = make_configuration(api, configuration["credential_id"], name="drafty", status="draft")
    resp = ui.post(MESSAGES + "/new", {"channel_configuration": draft["id"], "to": "+14155550123", "body": "hi"})
    assert resp.status_code == 422 and "activate it" in (field_error(resp.text, "channel_configuration") or "")
    assert 'value="+14155550123"' in resp.text
    assert api.get("/api/v1/messages").json()["items"] == []
    assert ui.post(MESSAGES + "/new", {"channel_configuration": configuration["id"], "to": "+14155550123",
                                       "body": "hi"}, csrf="forged").status_code == 403
    assert api.get("/api/v1/messages").json()["items"] == []


def test_message_list_filters_and_pages_newest_first(
        ui: UiClient, configuration: dict[str, Any], api: ApiClient) -> None:
    sent = [send_api(api, f"+1415555{i:04d}", f"number {i}") for i in range(53)]
    first = ui.get(MESSAGES).text
    rows = re.findall(r'data-message="(\w+)"', first)
    assert rows == [m["id"] for m in reversed(sent)][:50]
    older = re.search(r'href="(/ui/messages\?cursor=[^"]+)" rel="next"', first)
    assert older
    second = ui.get(older.group(1).replace("&amp;", "&")).text
    assert re.findall(r'data-message="(\w+)"', second) == [m["id"] for m in reversed(sent)][50:]
    assert 'rel="next"' not in second

    only = ui.get(MESSAGES, params={"to": "+1 (415) 555-0007"}).text
    assert re.findall(r'data-message="(\w+)"', only) == [sent[7]["id"]]
    assert re.findall(r'data-message="(\w+)"', ui.get(MESSAGES, params={"status": "delivered"}).text) == []
    by_config = ui.get(MESSAGES, params={"status": "queued", "channel_configuration": configuration["id"]}).text
    assert len(re.findall(r'data-message="(\w+)"', by_config)) == 50
    resp = ui.get(MESSAGES, params={"to": "nope"})
    assert resp.status_code == 422 and field_error(resp.text, "to")
    resp = ui.get(MESSAGES, params={"cursor": "garbage!"})
    assert resp.status_code == 422 and "cursor" in resp.text


def test_messages_of_another_sandbox_are_neither_listed_nor_reachable(
        ui: UiClient, configuration: dict[str, Any], api: ApiClient, service: LiveService) -> None:
    message = send_api(api, "+14155550123")
    assert ui.get(f"{MESSAGES}/{message['id']}").status_code == 200
    with service.context.db.session() as session:
        sandboxes.create(session, "dev")
    ui.post("/ui/sandbox", {"sandbox": "dev", "next": MESSAGES})
    assert message["id"] not in ui.get(MESSAGES).text
    assert ui.get(f"{MESSAGES}/{message['id']}").status_code == 404
    resp = ui.post(MESSAGES + "/new", {"channel_configuration": configuration["id"], "to": "+14155550123",
                                       "body": "hi"})
    assert resp.status_code == 422 and field_error(resp.text, "channel_configuration")


# ---- campaigns -----------------------------------------------------------------------------------

CAMPAIGNS = "/ui/campaigns"
CSV = (b"phone,firstName\r\n+14155550101,Ann\r\n+14155550102,Bob\r\nnot-a-number,Cid\r\n"
       b"+14155550104,Dee\r\n+14155550105,Eve\r\n")


def create_campaign_ui(ui: UiClient, configuration: dict[str, Any], **over: str) -> str:
    body = {"name": "Spring sale", "channel_configuration": configuration["id"],
            "body": "Hi {{ profile.firstName }}, spring is here", "media_urls": ""}
    body.update(over)
    resp = ui.post(CAMPAIGNS + "/new", body)
    assert resp.status_code == 200, resp.text
    return resp.url.rsplit("/", 1)[1]


def upload(ui: UiClient, campaign_id: str, data: bytes, csrf: str | None = "auto",
           phone_column: str = "") -> Any:
    fields = {"phone_column": phone_column}
    if csrf == "auto":
        fields["csrf_token"] = ui.token(f"{CAMPAIGNS}/{campaign_id}")
    elif csrf:
        fields["csrf_token"] = csrf
    return ui.http.post(f"{ui.base_url}{CAMPAIGNS}/{campaign_id}/audience", data=fields,
                        files={"file": ("audience.csv", data, "text/csv")}, timeout=30)


def test_campaign_pages_require_sign_in(anonymous: UiClient) -> None:
    for path in (CAMPAIGNS, CAMPAIGNS + "/new", CAMPAIGNS + "/abc"):
        resp = anonymous.get(path, allow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/ui/login?next=")


def test_campaign_form_errors_are_shown_next_to_their_fields(
        ui: UiClient, configuration: dict[str, Any], api: ApiClient) -> None:
    bad = {"name": "", "channel_configuration": configuration["id"], "body": "hi", "media_urls": ""}
    resp = ui.post(CAMPAIGNS + "/new", bad)
    assert resp.status_code == 422 and field_error(resp.text, "name") == "Required."
    resp = ui.post(CAMPAIGNS + "/new", {**bad, "name": "x", "channel_configuration": ""})
    assert resp.status_code == 422 and field_error(resp.text, "channel_configuration") == "Required."
    resp = ui.post(CAMPAIGNS + "/new", {**bad, "name": "x", "body": "Hi {% if %}"})
    assert resp.status_code == 422 and field_error(resp.text, "body")
    resp = ui.post(CAMPAIGNS + "/new", {**bad, "name": "x", "media_urls": "https://example.com/a.jpg"})
    assert resp.status_code == 422 and "mms" in (field_error(resp.text, "media_urls") or "")
    mms = make_configuration(api, configuration["credential_id"], name="mms", channel="mms")
    resp = ui.post(CAMPAIGNS + "/new", {**bad, "name": "x", "channel_configuration": mms["id"],
                                        "media_urls": "https://example.com/a.jpg\nftp://nope"})
    assert resp.status_code == 422 and "http(s)" in (field_error(resp.text, "media_urls") or "")
    assert api.get("/api/v1/campaigns").json()["items"] == []
    assert ui.post(CAMPAIGNS + "/new", {**bad, "name": "x"}, csrf="forged").status_code == 403
    assert api.get("/api/v1/campaigns").json()["items"] == []


def test_csv_upload_adds_the_valid_rows_and_reports_the_invalid_one_by_line(
        ui: UiClient, configuration: dict[str, Any], api: ApiClient) -> None:
    campaign_id = create_campaign_ui(ui, configuration)
    resp = upload(ui, campaign_id, CSV)
    assert resp.status_code == 200 and resp.url.endswith(f"{CAMPAIGNS}/{campaign_id}#audience")
    result = resp.text[resp.text.index('id="import-result"'):][:800]
    assert "<strong>4</strong> added, <strong>1</strong> rejected" in result
    assert "Line 4:" in result
    assert api.get(f"/api/v1/campaigns/{campaign_id}").json()["audience_size"] == 4
    assert 'id="stat-audience">4<' in resp.text
    # The import outcome is shown once.
    assert 'id="import-result"' not in ui.get(f"{CAMPAIGNS}/{campaign_id}").text

    resp = upload(ui, campaign_id, b"name,city\r\nAnn,Paris\r\n")
    assert "no &#39;phone&#39; or &#39;mobilePhone&#39; column" in resp.text and "“Phone column”" in resp.text
    resp = upload(ui, campaign_id, b"tel,name\r\n+14155550199,Zed\r\n", phone_column="tel")
    assert "<strong>1</strong> added" in resp.text
    assert api.get(f"/api/v1/campaigns/{campaign_id}").json()["audience_size"] == 5


def test_audience_upload_needs_the_csrf_token(ui: UiClient, configuration: dict[str, Any], api: ApiClient) -> None:
    campaign_id = create_campaign_ui(ui, configuration)
    assert upload(ui, campaign_id, CSV, csrf=None).status_code == 403
    assert upload(ui, campaign_id, CSV, csrf="forged").status_code == 403
    assert api.get(f"/api/v1/campaigns/{campaign_id}").json()["audience_size"] == 0


def test_pasted_numbers_start_and_cancel(ui: UiClient, configuration: dict[str, Any], api: ApiClient) -> None:
    campaign_id = create_campaign_ui(ui, configuration, body="Spring is here")
    page = f"{CAMPAIGNS}/{campaign_id}"
    resp = ui.post(page + "/start", {})
    assert "Campaign not started" in resp.text and "no audience" in resp.text
    resp = ui.post(page + "/audience/paste", {"numbers": "+14155550101\n+1 415 555 0102, bogus\n\n"})
    assert "<strong>2</strong> added, <strong>1</strong> rejected" in resp.text and "Line 3:" in resp.text
    resp = ui.post(page + "/start", {})
    assert "Campaign &#39;Spring sale&#39; started." in resp.text
    assert 'id="campaign-status">Running<' in resp.text
    assert "location.replace" in resp.text  # refreshes itself while running
    assert 'action="/ui/campaigns/' + campaign_id + '/audience"' not in resp.text  # no upload once started
    resp = ui.post(page + "/cancel", {})
    assert "Campaign canceled" in resp.text and 'id="campaign-status">Canceled<' in resp.text
    assert "location.replace" not in resp.text
    assert "Campaign not canceled" in ui.post(page + "/cancel", {}).text
    listed = ui.get(CAMPAIGNS).text
    assert f'data-campaign="{campaign_id}"' in listed and "Canceled" in listed


def test_the_campaign_page_charts_and_reports_what_happened(
        ui: UiClient, configuration: dict[str, Any], service: LiveService) -> None:
    from textrelay.delivery.campaigns import expand_some
    from textrelay.services import consent

    with service.context.db.session() as session:
        prod = sandboxes.get_by_name(session, "prod").id
        consent.record(session, prod, "+14155550102", consent.OPTED_OUT, "keyword", sender="+14155550100")
    campaign_id = create_campaign_ui(ui, configuration)
    upload(ui, campaign_id, CSV)
    ui.post(f"{CAMPAIGNS}/{campaign_id}/start", {})
    assert expand_some(service.context) == 4
    html = ui.get(f"{CAMPAIGNS}/{campaign_id}").text
    assert 'id="stat-created">4<' in html
    chart = html[html.index('<svg class="chart"'):html.index("</svg>")]
    assert '<rect class="excluded"' in chart and "1 excluded" in chart
    exclusions = html[html.index('id="report-exclusions"'):]
    assert "opted out" in exclusions[:1500].lower()
    counts = html[html.index('id="report-counts"'):]
    assert "msg-queued" in counts[:1500] and "msg-excluded" in counts[:1500]


def test_campaigns_of_another_sandbox_are_neither_listed_nor_reachable(
        ui: UiClient, configuration: dict[str, Any], service: LiveService) -> None:
    campaign_id = create_campaign_ui(ui, configuration)
    with service.context.db.session() as session:
        sandboxes.create(session, "dev")
    ui.post("/ui/sandbox", {"sandbox": "dev", "next": CAMPAIGNS})
    assert campaign_id not in ui.get(CAMPAIGNS).text
    assert ui.get(f"{CAMPAIGNS}/{campaign_id}").status_code == 404
    assert upload(ui, campaign_id, CSV).status_code == 404
    assert ui.post(f"{CAMPAIGNS}/{campaign_id}/start", {}).status_code == 404
    assert ui.post(f"{CAMPAIGNS}/{campaign_id}/audience/paste", {"numbers": "+14155550101"}).status_code == 404


def test_the_delivery_chart_stacks_series_per_minute_leaves_gaps_and_buckets_long_campaigns() -> None:
    from textrelay.web.campaign_pages import delivery_chart

    assert delivery_chart([], []) is None
    timeline = [{"minute": "2025-05-01T14:00:00Z", "delivered": 8, "failed": 1},
                {"minute": "2025-05-01T14:03:00Z", "delivered": 2, "failed": 0}]
    chart = delivery_chart(timeline, [{"minute": "2025-05-01T14:00:00Z", "excluded": 3}])
    assert chart is not None
    assert len(chart["bars"]) == 4  # 14:00 … 14:03, two empty minutes between
    first, gap = chart["bars"][0], chart["bars"][1]
    assert [(s["css"], s["n"]) for s in first["segments"]] == [("delivered", 8), ("failed", 1), ("excluded", 3)]
    assert gap["segments"] == []
    # Stacked from the baseline up, scaled to a round maximum (12 → 20).
    assert chart["ticks"][-1]["value"] == 20
    assert first["segments"][0]["y"] + first["segments"][0]["h"] == pytest.approx(chart["bottom"])
    assert first["segments"][1]["y"] + first["segments"][1]["h"] == pytest.approx(first["segments"][0]["y"])
    assert {s["css"]: s["total"] for s in chart["series"]} == {"delivered": 10, "failed": 1, "excluded": 3}

    long = [{"minute": f"2025-05-01T{10 + m // 60:02d}:{m % 60:02d}:00Z", "delivered": 1, "failed": 0}
            for m in range(0, 300)]
    chart = delivery_chart(long, [], max_bars=60)
    assert chart is not None and chart["bucket_minutes"] == 5 and len(chart["bars"]) == 60
    assert all(b["segments"][0]["n"] == 5 for b in chart["bars"])


def test_a_fallback_configuration_error_is_shown_next_to_its_field(
        ui: UiClient, api: ApiClient, credential: dict[str, Any]) -> None:
    sms = make_configuration(api, credential["id"], name="sms-fallback")
    form = ui.get(CONFIGS + "/new").text
    assert f'<option value="{sms["id"]}">sms-fallback</option>' in form
    resp = ui.post(CONFIGS + "/new", config_form(credential["id"], fallback_configuration_id=sms["id"]))
    assert resp.status_code == 422
    assert "only an rcs" in (field_error(resp.text, "fallback_configuration_id") or "")
