"""A signed-in admin UI session over real HTTP (requests), for tests that need no browser."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.support import LiveService
from textrelay.services import access

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class UiClient:
    """A browser-like cookie session on the admin UI; ``post`` sends the page's CSRF token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.base_url + path, timeout=30, **kw)

    def token(self, page: str = "/ui/login") -> str:
        found = _CSRF.search(self.get(page).text)
        assert found, f"no CSRF token on {page}"
        return found.group(1)

    def post(self, path: str, data: dict[str, str], csrf: str | None = "auto", **kw: Any) -> requests.Response:
        body = dict(data)
        if csrf == "auto":
            body["csrf_token"] = self.token()
        elif csrf is not None:
            body["csrf_token"] = csrf
        return self.http.post(self.base_url + path, data=body, timeout=30, **kw)

    def login(self, username: str = "admin", password: str = PASSWORD) -> requests.Response:
        return self.post("/ui/login", {"username": username, "password": password, "next": "/ui/credentials"})


@pytest.fixture
def ui(service: LiveService) -> UiClient:
    """Signed in as ``admin``."""
    with service.context.db.session() as session:
        access.create_user(session, "admin", PASSWORD)
    client = UiClient(service.url)
    assert client.login().url.endswith("/ui/credentials")
    return client


@pytest.fixture
def anonymous(service: LiveService) -> UiClient:
    with service.context.db.session() as session:
        access.create_user(session, "admin", PASSWORD)
    return UiClient(service.url)
