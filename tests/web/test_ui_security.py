"""The admin UI without a browser: sign-in, CSRF, sessions, and secrets kept out of pages."""

from __future__ import annotations

import os
import stat

import pytest

from tests.support import start_service, twilio_sid
from tests.web.conftest import PASSWORD, UiClient
from textrelay.services import credentials as credential_service
from textrelay.services import sandboxes
from textrelay.store.models import ChannelConfiguration, Credential
from textrelay.web.session import SESSION_SECRET_FILE, session_secret

TOKEN = "s3cr3t-auth-token-" + "q" * 10 + "9z7y"


def form(**over: str) -> dict[str, str]:
    body = {"vendor": "twilio", "name": "Twilio main", "account_sid": twilio_sid("AC"), "auth_token": TOKEN,
            "messaging_service_sid": twilio_sid("MG"), "inbound_number": "+1 415 555 0100", "api_base_url": ""}
    body.update(over)
    return body


def create(ui: UiClient, **over: str) -> str:
    resp = ui.post("/ui/credentials/new", form(**over))
    assert resp.status_code == 200 and "/ui/credentials/" in resp.url, resp.text
    return resp.url.rsplit("/", 1)[1]


@pytest.mark.parametrize("path", ["/ui/credentials", "/ui/credentials/new", "/ui/credentials/abc/edit",
                                  "/ui/credentials/abc/delete", "/ui/logout"])
def test_pages_redirect_to_login_when_signed_out(anonymous, path):
    resp = anonymous.get(path, allow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/ui/login")


def test_login_redirect_returns_to_the_page_asked_for(anonymous):
    resp = anonymous.get("/ui/credentials/new")
    assert resp.url.endswith("/ui/login?next=/ui/credentials/new")
    signed_in = anonymous.post("/ui/login", {"username": "admin", "password": PASSWORD,
                                             "next": "/ui/credentials/new"})
    assert signed_in.url.endswith("/ui/credentials/new")
    assert "Create new API credentials" in signed_in.text


def test_wrong_password_and_unknown_user_get_the_same_message(anonymous):
    wrong = anonymous.post("/ui/login", {"username": "admin", "password": "not the password"})
    unknown = anonymous.post("/ui/login", {"username": "nobody", "password": "not the password"})
    for resp in (wrong, unknown):
        assert resp.status_code == 401
        assert "Wrong username or password." in resp.text
    assert "nobody" in unknown.text  # the username is kept in the field, nothing else is told
    assert anonymous.get("/ui/credentials", allow_redirects=False).status_code == 303


def test_login_next_never_leaves_the_ui(anonymous):
    for target in ("//evil.example/x", "https://evil.example/", "/api/v1/credentials"):
        resp = anonymous.post("/ui/login", {"username": "admin", "password": PASSWORD, "next": target},
                              allow_redirects=False)
        assert resp.status_code == 303
        assert resp.headers["location"] == "/ui/credentials"


def test_forms_without_the_session_csrf_token_are_refused(ui, anonymous, api):
    for token in (None, "", "forged-token", anonymous.token()):
        resp = ui.post("/ui/credentials/new", form(name=f"csrf {token}"), csrf=token)
        assert resp.status_code == 403, token
        assert "This form has expired" in resp.text
    assert api.get("/api/v1/credentials").json()["items"] == []
    cred_id = create(ui)
    for path in (f"/ui/credentials/{cred_id}/delete", f"/ui/credentials/{cred_id}/edit", "/ui/sandbox",
                 "/ui/logout", f"/ui/credentials/{cred_id}/verify"):
        assert ui.post(path, {"name": "x", "sandbox": "prod"}, csrf=None).status_code == 403, path
    assert ui.get("/ui/credentials", allow_redirects=False).status_code == 200  # still signed in
    assert [c["name"] for c in api.get("/api/v1/credentials").json()["items"]] == ["Twilio main"]
    assert anonymous.post("/ui/login", {"username": "admin", "password": PASSWORD}, csrf=None).status_code == 403


def test_session_cookie_is_http_only_and_same_site_lax(anonymous):
    resp = anonymous.get("/ui/login")
    cookie = resp.headers["set-cookie"].lower()
    assert cookie.startswith("textrelay_session=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["cache-control"] == "no-store"


def test_session_cookie_is_secure_behind_an_https_public_url(context):
    context.settings.public_url = "https://sms.example.test"
    live = start_service(context)
    try:
        cookie = UiClient(live.url).get("/ui/login").headers["set-cookie"].lower()
        assert "; secure" in cookie
    finally:
        live.stop()


def test_session_secret_is_generated_once_owner_only_beside_the_key_file(settings):
    first = session_secret(settings)
    path = settings.resolved_key_file.parent / SESSION_SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert session_secret(settings) == first and len(first) >= 40
    derived = settings.model_copy(update={"secret_key": "k1,k0"})
    assert session_secret(derived) == session_secret(settings.model_copy(update={"secret_key": "k1"})) != first
    assert session_secret(settings.model_copy(update={"session_secret": "given"})) == "given"


def test_logout_ends_the_session(ui):
    resp = ui.post("/ui/logout", {}, csrf=ui.token("/ui/credentials"))
    assert resp.url.endswith("/ui/login") and "You have signed out." in resp.text
    assert ui.get("/ui/credentials", allow_redirects=False).status_code == 303


def test_auth_token_never_appears_in_any_page(ui, service):
    cred_id = create(ui)
    bad = ui.post("/ui/credentials/new", form(name="Other", account_sid="AC123"))
    assert bad.status_code == 422 and TOKEN not in bad.text
    # A provider that cannot be reached: the verify result is shown, without the token.
    ui.post(f"/ui/credentials/{cred_id}/edit", form(api_base_url="http://127.0.0.1:9", auth_token=""))
    verified = ui.post(f"/ui/credentials/{cred_id}/verify", {"to": "", "body": ""})
    assert "Verification failed" in verified.text
    pages = ["/ui/credentials", f"/ui/credentials/{cred_id}", f"/ui/credentials/{cred_id}/edit",
             f"/ui/credentials/{cred_id}/delete"]
    for page in pages:
        html = ui.get(page).text
        assert TOKEN not in html and TOKEN[-8:] not in html, page
    assert "••••9z7y" in ui.get(f"/ui/credentials/{cred_id}/edit").text


def test_edit_with_an_empty_token_keeps_the_stored_one(ui, service):
    cred_id = create(ui)
    resp = ui.post(f"/ui/credentials/{cred_id}/edit", form(name="Renamed", auth_token="", messaging_service_sid=""))
    assert "API credential &#39;Renamed&#39; updated." in resp.text
    with service.context.db.session() as session:
        row = session.get(Credential, cred_id)
        assert row.name == "Renamed" and row.settings["messaging_service_sid"] is None
        assert credential_service.secret(row, service.context.keyring, "auth_token") == TOKEN


def test_validation_errors_are_shown_beside_their_fields_and_values_kept(ui, api):
    resp = ui.post("/ui/credentials/new", form(account_sid="AC123", name="Kept name", messaging_service_sid="XX"))
    assert resp.status_code == 422
    assert 'id="e-account_sid">Must be AC followed by 32 hex digits' in resp.text
    assert 'id="e-messaging_service_sid">Must be MG followed by 32 hex digits' in resp.text
    assert 'value="Kept name"' in resp.text
    empty = ui.post("/ui/credentials/new", form(name="", auth_token=""))
    assert 'id="e-name">Required.' in empty.text and 'id="e-auth_token">Required.' in empty.text
    create(ui)
    clash = ui.post("/ui/credentials/new", form(inbound_number="+14155550101"))
    assert 'id="e-name">already exists in this sandbox' in clash.text
    assert api.get("/api/v1/credentials").json()["items"][0]["name"] == "Twilio main"


def test_credentials_of_another_sandbox_are_not_found(ui, service):
    cred_id = create(ui)
    with service.context.db.session() as session:
        sandboxes.create(session, "dev")
    ui.post("/ui/sandbox", {"sandbox": "dev", "next": f"/ui/credentials/{cred_id}"})
    assert ui.get(f"/ui/credentials/{cred_id}").status_code == 404
    assert ui.post(f"/ui/credentials/{cred_id}/delete", {}).status_code == 404
    listing = ui.get("/ui/credentials").text
    assert "No API credentials in sandbox “dev”" in listing


def test_delete_of_a_credential_in_use_explains_why(ui, service):
    cred_id = create(ui)
    with service.context.db.session() as session:
        prod = sandboxes.get_by_name(session, "prod")
        session.add(ChannelConfiguration(sandbox_id=prod.id, name="marketing-us", channel="sms",
                                         sms_type="marketing", credential_id=cred_id))
    resp = ui.post(f"/ui/credentials/{cred_id}/delete", {})
    assert resp.url.endswith(f"/ui/credentials/{cred_id}")
    assert "not deleted" in resp.text and "marketing-us" in resp.text


def test_names_are_escaped_in_every_page(ui):
    cred_id = create(ui, name='<script>alert("x")</script>')
    for page in ("/ui/credentials", f"/ui/credentials/{cred_id}", f"/ui/credentials/{cred_id}/edit",
                 f"/ui/credentials/{cred_id}/delete"):
        html = ui.get(page).text
        assert "<script>alert" not in html and "&lt;script&gt;alert" in html, page
