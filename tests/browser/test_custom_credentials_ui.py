"""A custom (OAuth2) API credential in the admin UI, in Chromium, against the custom simulator."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, sign_in
from tests.support import LiveService
from textrelay.simulator.custom import CustomSimConfig, CustomSimulatorServer

pytestmark = pytest.mark.browser

CLIENT_SECRET = "cs-" + uuid.uuid4().hex + "k7q2"
HEADER_SECRET = "hdr-" + uuid.uuid4().hex
GOOD_TEMPLATE = '{"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "{{message}}", "reference": "{{messageId}}"}'


@pytest.fixture
def sim() -> Iterator[CustomSimulatorServer]:
    config = CustomSimConfig(auth={"type": "oauth2", "client_id": "textrelay", "client_secret": CLIENT_SECRET})
    with CustomSimulatorServer(config) as server:
        yield server


def no_secret(page: Page) -> None:
    html = page.content()
    assert CLIENT_SECRET not in html and HEADER_SECRET not in html


def test_new_user_creates_verifies_edits_and_deletes_an_oauth2_custom_credential(
        page: Page, service: LiveService, admin_password: str, sim: CustomSimulatorServer) -> None:
    sign_in(page, service, admin_password)
    page.get_by_role("link", name="Create new API credentials").first.click()
    page.get_by_label("SMS vendor").select_option("custom")  # the script opens the custom form
    expect(page).to_have_url(re.compile(r"/ui/credentials/custom/new$"))
    expect(page.get_by_label("SMS vendor")).to_have_value("custom")

    page.locator("#f-name").fill("Acme RCS")
    page.get_by_label("Provider AppId").fill("acme-app-1")
    page.get_by_label("Provider Name").fill("Acme")
    page.get_by_label("Provider URL").fill(sim.messages_url)
    # Only the chosen auth type's fields show.
    expect(page.get_by_label("Token URL")).to_be_hidden()
    page.get_by_label("Auth type").select_option("oauth2")
    expect(page.get_by_label("Token URL")).to_be_visible()
    expect(page.get_by_label("Client secret")).to_have_attribute("type", "password")
    page.get_by_label("Token URL").fill(sim.token_url)
    page.get_by_label("Client id").fill("textrelay")
    page.get_by_label("Client secret").fill(CLIENT_SECRET)
    expect(page.get_by_label("Client certificate (PEM)")).to_be_hidden()

    # Headers: Content-Type is fixed; add two parameters, one secret.
    expect(page.get_by_label("Fixed header value")).to_have_value("application/json; charset=utf-8")
    expect(page.get_by_label("Fixed header value")).not_to_be_editable()
    page.get_by_label("Header 1 label").fill("X-Tenant")
    page.get_by_label("Header 1 value").fill("t-42")
    page.get_by_role("button", name="Add new parameter").click()
    page.get_by_label("Header 2 label").fill("X-Extra-Key")
    page.get_by_label("Header 2 value").fill(HEADER_SECRET)
    page.get_by_label("Header 2 kind").select_option("secret")

    # A template that is not JSON: 422 with line and column beside the field; nothing created.
    page.get_by_label("Payload template").fill('{"to": "{{toNumber}}",\n "text": "{{message}}" "from": 1}')
    page.get_by_label("Response id path").fill("$.messages[0].id")
    page.get_by_label("Rate limit (messages per second)").fill("20")
    page.get_by_role("button", name="Submit").click()
    error = page.locator(".field.has-error", has=page.locator("[name='payload_template']")).locator(".field-error")
    expect(error).to_contain_text(re.compile(r"line 2, column \d+"))
    expect(page.get_by_label("Client secret")).to_have_value("")  # a secret is never sent back
    expect(page.get_by_label("Auth type")).to_have_value("oauth2")
    expect(page.get_by_label("Header 1 label")).to_have_value("X-Tenant")
    no_secret(page)
    page.screenshot(path=str(ARTIFACTS / "custom-credential-template-error.png"), full_page=True)

    page.get_by_label("Client secret").fill(CLIENT_SECRET)
    page.get_by_label("Header 2 value").fill(HEADER_SECRET)
    page.get_by_label("Payload template").fill(GOOD_TEMPLATE)
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flash-success")).to_contain_text("API credential 'Acme RCS' created")
    expect(page.get_by_role("heading", name="Acme RCS", exact=True)).to_be_visible()
    expect(page.locator("dl.props")).to_contain_text("oauth2")
    expect(page.get_by_label("Inbound webhook URL")).to_have_value(re.compile(r"/hooks/custom/\w+$"))
    no_secret(page)

    # Verify: an authenticated request with a token from the simulator's token endpoint.
    page.get_by_role("button", name="Verify connection").click()
    expect(page.locator(".verify-summary")).to_have_text("Connection verified")
    expect(page.locator("li.check[data-check='authentication']")).to_have_class(re.compile(r"\bok\b"))
    assert requests.get(sim.url + "/_sim/custom/stats", timeout=5).json()["token_requests"] >= 1
    no_secret(page)

    # Edit: secrets empty with their masked tail; rename and keep them.
    page.get_by_role("link", name="Edit").click()
    expect(page).to_have_url(re.compile(r"/ui/credentials/custom/\w+/edit$"))
    expect(page.get_by_label("Client secret")).to_have_value("")
    expect(page.locator("[id='f-auth.oauth2.client_secret'] ~ .field-hint")).to_have_text(
        "••••k7q2 — leave empty to keep")
    expect(page.get_by_label("Token URL")).to_have_value(sim.token_url)
    expect(page.get_by_label("Header 2 value")).to_have_value("")
    expect(page.get_by_label("Header 2 value")).to_have_attribute("placeholder", re.compile("leave empty to keep"))
    page.locator("#f-name").fill("Acme RCS renamed")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flash-success")).to_have_text("API credential 'Acme RCS renamed' updated.")
    page.get_by_label("Number").fill("+14155550123")
    page.get_by_label("Message").fill("Hello from the UI")
    page.get_by_role("button", name="Verify connection").click()
    expect(page.locator(".verify-summary")).to_have_text("Connection verified")
    expect(page.locator("li.check[data-check='test_message']")).to_have_class(re.compile(r"\bok\b"))
    sent = requests.get(sim.url + "/_sim/custom/messages", timeout=5).json()["messages"]
    assert sent[-1]["payload"]["text"] == "Hello from the UI"
    assert sent[-1]["headers"]["x-extra-key"] == HEADER_SECRET and sent[-1]["headers"]["x-tenant"] == "t-42"
    no_secret(page)
    page.screenshot(path=str(ARTIFACTS / "custom-credential-verified.png"), full_page=True)

    # Delete, after confirmation.
    page.goto(service.url + "/ui/credentials")
    page.get_by_role("link", name="Delete Acme RCS renamed").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.locator(".flash-success")).to_have_text("API credential 'Acme RCS renamed' deleted.")


def test_custom_form_posts_and_validates_without_javascript(
        browser, service: LiveService, admin_password: str) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, service, admin_password)
        page.goto(service.url + "/ui/credentials/new")
        page.get_by_label("SMS vendor").select_option("custom")
        page.get_by_role("button", name="Submit").click()  # no script: the vendor choice posts
        expect(page).to_have_url(re.compile(r"/ui/credentials/custom/new$"))
        expect(page.get_by_label("Token URL")).to_be_visible()  # every type's fields show
        page.locator("#f-name").fill("No script")
        page.get_by_label("Provider URL").fill("ftp://example.com/send")
        page.get_by_label("Auth type").select_option("bearer")
        page.get_by_role("button", name="Add new parameter").click()  # posts, comes back with a row more
        expect(page.get_by_label("Header 2 label")).to_be_visible()
        page.get_by_role("button", name="Submit").click()
        error = page.locator(".field.has-error", has=page.locator("[name='provider_url']")).locator(".field-error")
        expect(error).to_contain_text("http")
        expect(page.locator("#f-name")).to_have_value("No script")
    finally:
        context.close()
