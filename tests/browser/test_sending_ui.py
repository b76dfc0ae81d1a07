"""What a marketing-ops admin does in Chromium: a channel configuration, a campaign from a CSV file,
its progress to completion against the simulator, its delivery chart and report, and one
message's history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, PASSWORD, sign_in
from tests.support import LiveService, start_service
from textrelay.services import access, consent, credentials, sandboxes
from textrelay.services.context import Context
from textrelay.simulator.testing import SimulatorServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SENDER = "+15005550006"  # Twilio's magic "valid From", accepted by the simulator
OPTED_OUT = "+14155550102"
UNREACHABLE = "+15005550009"  # the simulator (like Twilio's test numbers) refuses it with 21614
CSV = ("phone,firstName\n"
       "+14155550101,Ann\n"
       f"{OPTED_OUT},Bob\n"
       "not-a-number,Cid\n"
       f"{UNREACHABLE},Dee\n"
       "+1 415 555 0105,Eve\n")


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(callback_delay=0.2) as sim:
        yield sim


@pytest.fixture
def live(context: Context) -> Iterator[LiveService]:
    """The service with its in-process delivery worker, and the UI user ``admin``."""
    service = start_service(context, run_worker=True)
    with context.db.session() as session:
        access.create_user(session, "admin", PASSWORD)
    yield service
    service.stop()


def test_marketing_ops_admin_runs_a_campaign_from_a_csv_file_and_reads_its_report(
        page: Page, live: LiveService, simulator: SimulatorServer, tmp_path: Path) -> None:
    with live.context.db.session() as session:
        prod = sandboxes.get_by_name(session, "prod")
        credentials.create(session, live.context.keyring, prod, credentials.TwilioCredentialCreate(
            name="Twilio marketing", account_sid=simulator.account_sid, auth_token=simulator.auth_token,
            api_base_url=simulator.url))
        consent.record(session, prod.id, OPTED_OUT, consent.OPTED_OUT, "keyword", sender=SENDER)
    sign_in(page, live, PASSWORD)

    # Channel configuration: created and submitted (active).
    nav = page.get_by_role("navigation", name="Administration")
    nav.get_by_role("link", name="Channel configurations").click()
    expect(page.get_by_text("No channel configurations in sandbox “prod”")).to_be_visible()
    page.get_by_role("link", name="Create channel configuration").first.click()
    page.get_by_label("Name").fill("spring-sms")
    expect(page.get_by_label("Channel", exact=True)).to_have_value("sms")
    page.get_by_label("Marketing").check()
    page.get_by_label("API credentials").select_option(label="Twilio marketing (Twilio)")
    # A Twilio credential without a messaging service cannot carry RCS.
    expect(page.locator("#f-channel option[value=rcs]")).to_be_disabled()
    expect(page.get_by_label("SMS execution field")).to_have_value("mobilePhone")
    expect(page.get_by_label("Fallback SMS configuration")).to_be_hidden()  # RCS only
    page.get_by_label("Sender number").fill(SENDER)
    page.screenshot(path=str(ARTIFACTS / "channel-configuration-form.png"), full_page=True)
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flash-success")).to_have_text("Channel configuration 'spring-sms' submitted: it is active.")
    nav.get_by_role("link", name="Channel configurations").click()
    row = page.locator("tr", has_text="spring-sms")
    for text in ("SMS", "Marketing", "Twilio marketing", SENDER, "Active"):
        expect(row).to_contain_text(text)
    page.screenshot(path=str(ARTIFACTS / "channel-configurations.png"), full_page=True)

    # Campaign: created, audience uploaded from a CSV file (one bad row), started.
    nav.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="Create campaign").first.click()
    page.get_by_label("Name").fill("Spring sale")
    page.get_by_label("Channel configuration").select_option(label="spring-sms (SMS, marketing)")
    page.get_by_label("Message").fill("Hi {{ profile.firstName }}, our spring sale starts today!")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash-success")).to_contain_text("Campaign 'Spring sale' created")
    expect(page.locator("#campaign-status")).to_have_text("Draft")
    expect(page.get_by_role("button", name="Start")).to_be_disabled()
    audience = tmp_path / "audience.csv"
    audience.write_text(CSV)
    page.get_by_label("CSV file").set_input_files(str(audience))
    page.get_by_role("button", name="Upload").click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("4 added, 1 rejected; the audience now has 4 members.")
    expect(result).to_contain_text("Line 4:")
    expect(page.locator("#stat-audience")).to_have_text("4")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "campaign-draft.png"), full_page=True)
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".flash-success")).to_have_text("Campaign 'Spring sale' started.")

    # The page refreshes itself until the worker has sent everything and the receipts are in.
    expect(page.locator("#campaign-status")).to_have_text("Completed", timeout=30_000)
    expect(page.locator("#stat-created")).to_have_text("4")
    expect(page.locator("#stat-finished")).to_have_text("4")
    legend = page.locator("#progress ul.legend")
    expect(legend.locator("[data-part=delivered]")).to_contain_text("Delivered 2")
    expect(legend.locator("[data-part=failed]")).to_contain_text("Failed 1")
    expect(legend.locator("[data-part=excluded]")).to_contain_text("Excluded 1")
    expect(page.locator("#progress .progress .part")).to_have_count(3)

    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    expect(chart.locator("rect.delivered")).not_to_have_count(0)
    expect(chart.locator("rect.failed")).not_to_have_count(0)
    expect(chart.locator("rect.excluded")).not_to_have_count(0)
    expect(page.locator("#report-errors")).to_contain_text("21614")
    expect(page.locator("#report-exclusions")).to_contain_text("opted out")
    counts = page.locator("#report-counts")
    expect(counts.locator("tr", has_text="delivered")).to_contain_text("2")
    page.screenshot(path=str(ARTIFACTS / "campaign-completed.png"), full_page=True)

    # One message of the campaign and its history.
    page.get_by_role("link", name="Messages", exact=True).first.click()
    expect(page.locator("tr[data-message]")).to_have_count(4)
    page.get_by_label("Status").select_option("delivered")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr[data-message]")).to_have_count(2)
    page.locator("tr[data-message]", has_text="+14155550105").locator("a").first.click()
    expect(page.locator("#message-status")).to_have_text("delivered")
    expect(page.locator("dl.props").first).to_contain_text(re.compile(r"SM[0-9a-f]{32}"))
    expect(page.locator(".message-body")).to_have_text("Hi Eve, our spring sale starts today!")
    statuses = page.locator("#history tbody tr td:nth-child(2)").all_inner_texts()
    assert statuses[0] == "queued" and statuses[-1] == "delivered", statuses
    assert statuses.index("sent") < statuses.index("delivered"), statuses
    page.screenshot(path=str(ARTIFACTS / "message-history.png"), full_page=True)
