"""How a custom provider's requests are authenticated: none, API key, basic, bearer, MAC, OAuth2, JWT,
and mutual TLS on top of any of them.

Each scheme is an :class:`Authenticator` whose ``headers()`` gives the headers of one request.
Secrets live only in these objects; :meth:`Authenticator.secrets` lists them so the provider can
redact them from every error text. Nothing here logs.

MAC header format (``auth.type = "mac"``)::

    Authorization: MAC id="<key_id>", ts="<unix seconds>", nonce="<32 hex>", bodyhash="<b64 sha256(body)>", mac="<b64>"

where ``mac = base64(HMAC-SHA256(secret, ts + "\\n" + nonce + "\\n" + METHOD + "\\n" + path?query + "\\n"
+ bodyhash + "\\n"))``. The provider recomputes it and should refuse timestamps more than five
minutes away and nonces it has already seen.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
from cryptography import x509

AUTH_TYPES = ("none", "api_key", "basic", "bearer", "mac", "oauth2", "jwt")
JWT_ALGORITHMS = ("HS256", "RS256", "ES256")


class AuthError(Exception):
    """Authentication could not be prepared (e.g. the OAuth2 token endpoint failed).

    ``retryable`` says whether trying again later may help. The text never holds a secret.
    """

    def __init__(self, reason: str, *, retryable: bool = True, code: str = "auth") -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code


@dataclass
class AuthSettings:
    """One credential's auth, secrets in clear (decrypted by the service layer just before use)."""

    type: str = "none"
    header_name: str = "X-API-Key"  # api_key
    token: str | None = None  # api_key, bearer
    username: str | None = None  # basic
    password: str | None = None  # basic
    key_id: str | None = None  # mac
    secret: str | None = None  # mac; jwt HS256 signing secret
    token_url: str | None = None  # oauth2
    client_id: str | None = None  # oauth2
    client_secret: str | None = None  # oauth2
    scope: str | None = None  # oauth2
    token_params: dict[str, str] = field(default_factory=dict)  # oauth2 extra form fields
    algorithm: str = "HS256"  # jwt
    private_key: str | None = None  # jwt RS256/ES256 (PEM)
    issuer: str | None = None  # jwt
    subject: str | None = None  # jwt
    audience: str | None = None  # jwt
    lifetime_seconds: int = 300  # jwt


@dataclass
class MtlsSettings:
    client_cert: str | None = None  # PEM
    client_key: str | None = None  # PEM (unencrypted)
    ca_bundle: str | None = None  # PEM; trusted for the provider's server certificate


class Authenticator:
    """Adds authentication to one request. Subclasses override :meth:`headers`."""

    async def headers(self, http: aiohttp.ClientSession, method: str, url: str, body: bytes,
                      ssl_context: ssl.SSLContext | None) -> dict[str, str]:
        return {}

    def refused(self, used: dict[str, str]) -> bool:
        """The provider answered 401 to a request carrying ``used``: may a fresh credential help?"""
        return False

    def secrets(self) -> list[str]:
        return []


class ApiKeyAuth(Authenticator):
    def __init__(self, header_name: str, token: str) -> None:
        self.header_name, self.token = header_name, token

    async def headers(self, http, method, url, body, ssl_context):  # type: ignore[no-untyped-def]
        return {self.header_name: self.token}

    def secrets(self) -> list[str]:
        return [self.token]


class BasicAuth(Authenticator):
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.value = aiohttp.BasicAuth(username, password, encoding="utf-8").encode()

    async def headers(self, http, method, url, body, ssl_context):  # type: ignore[no-untyped-def]
        return {"Authorization": self.value}

    def secrets(self) -> list[str]:
        return [self.password, self.value.split(" ", 1)[1]]


class BearerAuth(Authenticator):
    def __init__(self, token: str) -> None:
        self.token = token

    async def headers(self, http, method, url, body, ssl_context):  # type: ignore[no-untyped-def]
        return {"Authorization": f"Bearer {self.token}"}

    def secrets(self) -> list[str]:
        return [self.token]


def mac_string(ts: str, nonce: str, method: str, path: str, body: bytes) -> tuple[str, str]:
    """``(bodyhash, string to sign)`` of the MAC scheme (shared with the simulator's check)."""
    bodyhash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return bodyhash, f"{ts}\n{nonce}\n{method.upper()}\n{path}\n{bodyhash}\n"


def mac_sign(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()


class MacAuth(Authenticator):
    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id, self.secret = key_id, secret

    async def headers(self, http, method, url, body, ssl_context):  # type: ignore[no-untyped-def]
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        bodyhash, text = mac_string(ts, nonce, method, path, body)
        mac = mac_sign(self.secret, text)
        return {"Authorization": f'MAC id="{self.key_id}", ts="{ts}", nonce="{nonce}", '
                                 f'bodyhash="{bodyhash}", mac="{mac}"'}

    def secrets(self) -> list[str]:
        return [self.secret]


class OAuth2Auth(Authenticator):
    """Client-credentials grant. The token is cached until shortly before it expires; concurrent
    requests wait on one fetch, so the token endpoint sees one request per token lifetime."""

    def __init__(self, settings: AuthSettings) -> None:
        self.s = settings
        self._token: str | None = None
        self._expires_at = 0.0
        self._locks: dict[int, asyncio.Lock] = {}
        self.fetches = 0  # how many times the token endpoint was called (for tests and metrics)

    def _lock(self) -> asyncio.Lock:
        # asyncio locks belong to one event loop; the API and a worker may each use this credential.
        loop = asyncio.get_running_loop()
        lock = self._locks.get(id(loop))
        if lock is None:
            lock = self._locks[id(loop)] = asyncio.Lock()
        return lock

    def _valid(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at

    async def token(self, http: aiohttp.ClientSession, ssl_context: ssl.SSLContext | None) -> str:
        if self._valid():
            assert self._token is not None
            return self._token
        async with self._lock():
            if not self._valid():
                await self._fetch(http, ssl_context)
            assert self._token is not None
            return self._token

    async def _fetch(self, http: aiohttp.ClientSession, ssl_context: ssl.SSLContext | None) -> None:
        form = {"grant_type": "client_credentials", "client_id": self.s.client_id or "",
                "client_secret": self.s.client_secret or ""}
        if self.s.scope:
            form["scope"] = self.s.scope
        form.update(self.s.token_params)
        self.fetches += 1
        url = self.s.token_url or ""
        try:
            async with http.post(url, data=form, headers={"Accept": "application/json"},
                                 ssl=ssl_context if ssl_context is not None else True,
                                 timeout=aiohttp.ClientTimeout(total=15)) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise AuthError(f"OAuth2 token endpoint {url} unreachable: {type(exc).__name__}"
                            + (f": {exc}" if str(exc) else ""), code="oauth_token") from None
        try:
            answer: Any = json.loads(raw)
        except ValueError:
            answer = None
        if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            what = answer.get("error") if isinstance(answer, dict) and answer.get("error") else (
                "no access_token in the answer" if status == 200 else f"HTTP {status}")
            raise AuthError(f"OAuth2 token endpoint {url} refused the token request: {what}", code="oauth_token")
        try:
            lifetime = float(answer.get("expires_in") or 300)
        except (TypeError, ValueError):
            lifetime = 300.0
        self._token = answer["access_token"]
        # Renew a little early so a token never expires on its way to the provider.
        self._expires_at = time.monotonic() + max(1.0, lifetime - min(30.0, lifetime * 0.1))

    async def headers(self, http, method, url, body, ssl_context):  # type: ignore[no-untyped-def]
        return {"Authorization": f"Bearer {await self.token(http, ssl_context)}"}

    def refused(self, used: dict[str, str]) -> bool:
        if self._token is not None and used.get("Authorization") == f"Bearer {self._token}":
            self._token, self._expires_at = None, 0.0
        return True

    def secrets(self) -> list[str]:
        return [v for v in (self.s.client_secret, self._token) if v]


class JwtAuth(Authenticator):
    """A signed JWT as a bearer token; re-signed when half its lifetime is gone."""

    def __init__(self, settings: AuthSettings) -> None:
        self.s = settings
        self.key = settings.secret if settings.algorithm == "HS256" else settings.private_key
        self._token: str | None = None
        self._renew_at = 0.0

    def mint(self) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iat": now, "nbf": now, "exp": now + self.s.lifetime_seconds,
                                  "jti": uuid.uuid4().hex}
        for name, value in (("iss", self.s.issuer), ("sub", self.s.subject), ("aud", self.s.audience)):
            if value:
                claims[name] = value
        try:
            return jwt.encode(claims, self.key or "", algorithm=self.s.algorithm)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthError(f"cannot sign the JWT with {self.s.algorithm}: {type(exc).__name__}",
                            retryable=False, code="jwt") from None

    async def headers(self, http, method, url, body, ssl_context):  # type: ignore[no-untyped-def]
        if self._token is None or time.monotonic() >= self._renew_at:
            self._token = self.mint()
            self._renew_at = time.monotonic() + self.s.lifetime_seconds / 2
        return {"Authorization": f"Bearer {self._token}"}

    def refused(self, used: dict[str, str]) -> bool:
        self._token = None
        return True

    def secrets(self) -> list[str]:
        return [v for v in (self.s.secret, self._token) if v]


def make_authenticator(settings: AuthSettings) -> Authenticator:
    kind = settings.type
    if kind == "none":
        return Authenticator()
    if kind == "api_key":
        return ApiKeyAuth(settings.header_name or "X-API-Key", settings.token or "")
    if kind == "basic":
        return BasicAuth(settings.username or "", settings.password or "")
    if kind == "bearer":
        return BearerAuth(settings.token or "")
    if kind == "mac":
        return MacAuth(settings.key_id or "", settings.secret or "")
    if kind == "oauth2":
        return OAuth2Auth(settings)
    if kind == "jwt":
        return JwtAuth(settings)
    raise ValueError(f"unknown auth type '{kind}'; use one of {', '.join(AUTH_TYPES)}")


def build_ssl_context(mtls: MtlsSettings | None) -> ssl.SSLContext | None:
    """An SSL context presenting the client certificate and trusting ``ca_bundle`` (plus the
    system's CAs when none is given). Raises ``ValueError`` with a clear reason for bad PEM."""
    if mtls is None or not (mtls.client_cert or mtls.ca_bundle):
        return None
    context = ssl.create_default_context()
    if mtls.ca_bundle:
        context = ssl.create_default_context(cadata=_pem_text(mtls.ca_bundle, "ca_bundle"))
    if mtls.client_cert:
        if not mtls.client_key:
            raise ValueError("mtls.client_key: a client certificate needs its private key")
        # The ssl module only loads a certificate chain from a file: write a private (0600)
        # temporary file and delete it as soon as it is loaded.
        fd, path = tempfile.mkstemp(prefix="textrelay-mtls-", suffix=".pem")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(mtls.client_cert.strip() + "\n" + mtls.client_key.strip() + "\n")
            context.load_cert_chain(path)
        except ssl.SSLError as exc:
            raise ValueError(f"mtls: the client certificate and key do not load ({exc.reason or exc})") from None
        finally:
            os.unlink(path)
    return context


def _pem_text(pem: str, name: str) -> str:
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError(f"mtls.{name}: not a PEM certificate")
    return pem


def client_certificate_problem(mtls: MtlsSettings | None, now: datetime | None = None) -> str | None:
    """Why the client certificate cannot work (expired, not yet valid, unreadable), or None."""
    if mtls is None or not mtls.client_cert:
        return None
    try:
        cert = x509.load_pem_x509_certificate(mtls.client_cert.encode())
    except ValueError:
        return "the client certificate is not a readable PEM certificate"
    now = now or datetime.now(UTC)
    if cert.not_valid_after_utc < now:
        return f"the client certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if cert.not_valid_before_utc > now:
        return f"the client certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    return None
