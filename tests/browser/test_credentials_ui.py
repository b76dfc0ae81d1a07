"""What a new user does on Administration > Channels > SMS settings > API credentials, in Chromium."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, sign_in
from tests.support import LiveService
from textrelay.services import sandboxes
from textrelay.simulator.testing import SimulatorServer

pytestmark = pytest.mark.browser

ACCOUNT_SID = "AC" + uuid.uuid4().hex
AUTH_TOKEN = "tok" + uuid.uuid4().hex + "x9w8"
SERVICE_SID = "MG" + uuid.uuid4().hex
INBOUND = "+14155550100"


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(accounts=[]) as sim:
        resp = requests.post(sim.url + "/_sim/accounts", timeout=10, json={
            "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
            "messaging_services": [SERVICE_SID], "incoming_numbers": [INBOUND]})
        assert resp.status_code == 201, resp.text
        yield sim


def no_secret(page: Page) -> None:
    html = page.content()
    assert AUTH_TOKEN not in html and AUTH_TOKEN[:-4] not in html


def check(page: Page, name: str) -> object:
    return page.locator(f"li.check[data-check='{name}']")


def test_new_user_creates_verifies_edits_and_deletes_a_twilio_credential(
        page: Page, service: LiveService, admin_password: str, simulator: SimulatorServer) -> None:
    page.goto(service.url + "/ui/credentials")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/credentials$"))
    page.screenshot(path=str(ARTIFACTS / "login.png"))
    sign_in(page, service, admin_password)
    expect(page.get_by_role("heading", name="API credentials", exact=True)).to_be_visible()
    expect(page.get_by_text("No API credentials in sandbox “prod”")).to_be_visible()

    # Create: vendor first (Custom has its own form: tests/browser/test_custom_credentials_ui.py).
    page.get_by_role("link", name="Create new API credentials").first.click()
    vendor = page.get_by_label("SMS vendor")
    expect(vendor).to_have_value("twilio")
    expect(vendor.locator("option[value=custom]")).to_be_enabled()
    page.get_by_label("Name").fill("Twilio US")
    page.get_by_label("Account SID").fill(ACCOUNT_SID)
    page.get_by_label("Auth Token").fill(AUTH_TOKEN)
    expect(page.get_by_label("Auth Token")).to_have_attribute("type", "password")
    page.get_by_label("Message SID").fill(SERVICE_SID)
    page.get_by_label("Inbound Number").fill("+1 (415) 555-0100")
    page.get_by_text("Advanced").click()
    page.get_by_label("API base URL").fill(simulator.url)
    page.get_by_role("button", name="Submit").click()

    expect(page.locator(".flash-success")).to_contain_text("API credential 'Twilio US' created")
    expect(page.get_by_role("heading", name="Twilio US", exact=True)).to_be_visible()
    inbound_url = page.get_by_label("Inbound webhook URL")
    expect(inbound_url).to_have_value(re.compile(re.escape(service.url) + r"/hooks/twilio/\w+$"))
    expect(page.get_by_label("Feedback webhook URL")).to_have_value(re.compile(r"/hooks/twilio/\w+$"))
    expect(page.locator("dl.props")).to_contain_text("••••x9w8")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == inbound_url.input_value()
    no_secret(page)

    # The list, as the seed describes it.
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="API credentials").click()
    row = page.locator("tr", has_text="Twilio US")
    expect(row).to_contain_text(ACCOUNT_SID)
    expect(row).to_contain_text(INBOUND)
    expect(row).to_contain_text(SERVICE_SID)
    expect(row).to_contain_text("Never")
    no_secret(page)
    page.screenshot(path=str(ARTIFACTS / "credentials-list.png"), full_page=True)

    # Verify SMS connection with a number and a message: the simulator receives the test message.
    row.get_by_role("link", name="Verify connection").click()
    page.get_by_label("Number").fill("+14155550199")
    page.get_by_label("Message").fill("Hello from textrelay")
    page.get_by_role("button", name="Verify connection").click()
    expect(page.locator(".verify-summary")).to_have_text("Connection verified")
    for name in ("account", "messaging_service", "test_message"):
        expect(check(page, name)).to_have_class(re.compile(r"\bok\b"))
    sent = requests.get(simulator.url + "/_sim/messages", params={"to": "+14155550199"}, timeout=10).json()
    assert [m["resource"]["body"] for m in sent["messages"]] == ["Hello from textrelay"]
    assert sent["messages"][0]["account_sid"] == ACCOUNT_SID
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "credential-verified.png"), full_page=True)
    no_secret(page)

    # Edit: rename, leave the token empty; the stored token still works.
    page.get_by_role("link", name="Edit").click()
    token = page.get_by_label("Auth Token")
    expect(token).to_have_value("")
    expect(page.locator("#f-auth_token ~ .field-hint")).to_have_text("••••x9w8 — leave empty to keep")
    expect(page.get_by_label("Account SID")).to_have_value(ACCOUNT_SID)
    page.get_by_label("Name").fill("Twilio US renamed")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flash-success")).to_have_text("API credential 'Twilio US renamed' updated.")
    page.get_by_role("button", name="Verify connection").click()
    expect(page.locator(".verify-summary")).to_have_text("Connection verified")
    expect(check(page, "account")).to_have_class(re.compile(r"\bok\b"))
    expect(check(page, "test_message")).to_have_count(0)
    no_secret(page)

    # Delete with the bin icon, which asks for confirmation first.
    page.goto(service.url + "/ui/credentials")
    expect(page.locator("tr", has_text="Twilio US renamed")).not_to_contain_text("Never")
    page.get_by_role("link", name="Delete Twilio US renamed").click()
    expect(page.get_by_role("heading", name="Delete API credentials")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "credential-delete.png"))
    page.get_by_role("link", name="Cancel").click()
    expect(page.locator("tr", has_text="Twilio US renamed")).to_be_visible()
    page.get_by_role("link", name="Delete Twilio US renamed").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.locator(".flash-success")).to_have_text("API credential 'Twilio US renamed' deleted.")
    expect(page.get_by_text("No API credentials in sandbox “prod”")).to_be_visible()


def test_sandbox_switcher_shows_each_sandbox_its_own_credentials(
        page: Page, service: LiveService, admin_password: str) -> None:
    with service.context.db.session() as session:
        sandboxes.create(session, "dev")
    created = service.client().post("/api/v1/credentials", json={
        "name": "Prod only", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})
    assert created.status_code == 201, created.text
    sign_in(page, service, admin_password)
    expect(page.locator("tr", has_text="Prod only")).to_be_visible()

    page.get_by_label("Sandbox").select_option("dev")
    expect(page.get_by_text("No API credentials in sandbox “dev”")).to_be_visible()
    expect(page.get_by_label("Sandbox")).to_have_value("dev")
    page.reload()
    expect(page.get_by_label("Sandbox")).to_have_value("dev")  # kept in the session

    page.get_by_label("Sandbox").select_option("prod")
    expect(page.locator("tr", has_text="Prod only")).to_be_visible()


def test_a_bad_account_sid_is_shown_beside_its_field(
        page: Page, service: LiveService, admin_password: str) -> None:
    sign_in(page, service, admin_password)
    page.goto(service.url + "/ui/credentials/new")
    page.get_by_label("Name").fill("Typo")
    page.get_by_label("Account SID").fill("AC123")
    page.get_by_label("Auth Token").fill(AUTH_TOKEN)
    page.get_by_role("button", name="Submit").click()

    field = page.locator(".field.has-error", has=page.locator("#f-account_sid"))
    expect(field.locator(".field-error")).to_have_text(re.compile(r"^Must be AC followed by 32 hex digits"))
    expect(page.get_by_label("Account SID")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_have_value("Typo")
    expect(page.get_by_label("Auth Token")).to_have_value("")
    expect(page.locator(".field.has-error")).to_have_count(1)
    no_secret(page)
    page.screenshot(path=str(ARTIFACTS / "credential-form-error.png"), full_page=True)
