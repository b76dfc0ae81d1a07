"""Custom providers: any HTTP JSON API, described by a URL, an auth scheme and a payload template.

A custom API credential says where to POST (``provider_url``), how to authenticate
(:mod:`textrelay.providers.custom_auth`), which extra headers to add, what the JSON body looks
like (``payload_template``, rendered by :mod:`textrelay.domain.payloads`) and where the provider's
message id sits in its answer (``response_id_path``). ``Content-Type: application/json;
charset=utf-8`` is always sent and cannot be overridden.

Outcomes follow :mod:`textrelay.providers.base`: 2xx with JSON → accepted; 429/5xx or no
connection → retry; other 4xx → failed with the provider's code; an answer that is not JSON →
failed with that reason; a request sent but unanswered → unknown. A provider error code listed in
``rcs_unavailable_codes`` on an RCS message means the recipient cannot take RCS: the result asks
for the SMS fallback. A 401 makes OAuth2/JWT credentials fetch a fresh token and try once more.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from textrelay.domain import jsonpath
from textrelay.domain.payloads import PayloadTemplate, PayloadValues, compile_template
from textrelay.domain.rcs import RcsContent
from textrelay.providers.base import OutboundMessage, Outcome, SendResult, VerifyReport
from textrelay.providers.custom_auth import (
    AuthError,
    AuthSettings,
    MtlsSettings,
    build_ssl_context,
    client_certificate_problem,
    make_authenticator,
)

FIXED_CONTENT_TYPE = "application/json; charset=utf-8"
# Header names a credential may not set: they are ours or the HTTP client's.
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection"})
DEFAULT_RCS_UNAVAILABLE = ("RCS_NOT_SUPPORTED", "RCS_UNAVAILABLE", "RCS_NOT_CAPABLE", "NOT_RCS_CAPABLE")
# Where providers commonly put their message id, tried when no response_id_path is set.
_ID_GUESSES = ("id", "messageId", "message_id", "sid", "data.id", "messages[0].id", "messages[0].messageId")
_CODE_PATHS = ("error.code", "code", "errorCode", "error_code", "errors[0].code", "error")
_MESSAGE_PATHS = ("error.message", "message", "errorMessage", "error_description", "errors[0].message", "detail")


@dataclass
class CustomProviderSettings:
    """A custom API credential's provider side, secrets decrypted."""

    provider_url: str
    payload_template: str
    auth: AuthSettings = field(default_factory=AuthSettings)
    mtls: MtlsSettings | None = None
    headers: dict[str, str] = field(default_factory=dict)
    response_id_path: str | None = None
    rate_limit_mps: float = 0.0
    provider_name: str | None = None
    provider_app_id: str | None = None
    rcs_unavailable_codes: tuple[str, ...] = DEFAULT_RCS_UNAVAILABLE


class CustomProvider:
    """One custom provider as reached through one API credential. Keep one per credential (per
    process): it caches the OAuth2 token and the TLS context."""

    def __init__(self, settings: CustomProviderSettings) -> None:
        self.settings = settings
        self.url = settings.provider_url
        self.template: PayloadTemplate = compile_template(settings.payload_template)
        self.authenticator = make_authenticator(settings.auth)
        self.ssl_context: ssl.SSLContext | None = build_ssl_context(settings.mtls)
        self.id_path = jsonpath.parse_path(settings.response_id_path, "response_id_path") \
            if settings.response_id_path else None
        self.rate_limit_mps = settings.rate_limit_mps
        self._static_secrets = [v for v in (settings.auth.token, settings.auth.password, settings.auth.secret,
                                            settings.auth.client_secret, settings.auth.private_key,
                                            settings.mtls.client_key if settings.mtls else None) if v]

    # -- the provider contract -------------------------------------------------------------

    def redact(self, text: str) -> str:
        """Remove every secret of this credential (and any live token) from ``text``."""
        for secret in sorted({*self._static_secrets, *self.authenticator.secrets()}, key=len, reverse=True):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "[redacted]")
        return text

    def render(self, message: OutboundMessage) -> bytes:
        """The JSON body for ``message`` (``message.content`` may hold ``rcs`` and ``profile``)."""
        content = message.content or {}
        rcs = content.get("rcs")
        rcs_json = RcsContent.model_validate(rcs).provider_json() if rcs else None
        return self.template.render(PayloadValues(
            from_number=message.sender, to_number=message.to, message=message.body,
            message_id=message.message_id, rcs=rcs_json, profile=content.get("profile") or {}))

    async def send(self, http: aiohttp.ClientSession, message: OutboundMessage,
                   timeout: float = 30.0) -> SendResult:
        """POST the rendered payload. Never raises for provider, auth or network trouble."""
        is_rcs = bool((message.content or {}).get("rcs"))
        if is_rcs and not self.template.uses_rcs:
            return SendResult(Outcome.FAILED, error_code="template",
                              error_message="the credential's payload template has no {{rcs}} placeholder")
        problem = client_certificate_problem(self.settings.mtls, datetime.now(UTC))
        if problem:
            return SendResult(Outcome.FAILED, error_code="tls", error_message=problem)
        try:
            body = self.render(message)
        except ValueError as exc:
            return SendResult(Outcome.FAILED, error_code="content", error_message=f"cannot render the payload: {exc}")
        result, _ = await self._post(http, body, timeout)
        if result.outcome is Outcome.ACCEPTED and result.provider_message_id is None:
            # No id in the answer: our id stands in (feedback names it as the client reference).
            result = SendResult(Outcome.ACCEPTED, provider_message_id=message.message_id, status=result.status,
                                error_message=result.error_message)
        if is_rcs and result.outcome is Outcome.FAILED and result.error_code and \
                result.error_code.upper() in {c.upper() for c in self.settings.rcs_unavailable_codes}:
            return SendResult(Outcome.FAILED, error_code=result.error_code, error_message=result.error_message,
                              fallback=True)
        return result

    async def _post(self, http: aiohttp.ClientSession, body: bytes, timeout: float,
                    method: str = "POST") -> tuple[SendResult, int | None]:
        status: int | None = None
        for attempt in (1, 2):
            sent = False
            try:
                headers = await self._headers(http, method, body)
                async with http.request(method, self.url, data=body if method == "POST" else None,
                                        headers=headers, ssl=self._ssl(),
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    sent = True
                    raw = await resp.read()
                    status = resp.status
                    if status == 401 and attempt == 1 and self.authenticator.refused(headers):
                        continue
                    return self.interpret(status, resp.headers, raw), status
            except AuthError as exc:
                outcome = Outcome.RETRY if exc.retryable else Outcome.FAILED
                return SendResult(outcome, error_code=exc.code, error_message=self.redact(exc.reason)), None
            except aiohttp.ClientConnectorCertificateError as exc:
                return SendResult(Outcome.RETRY, error_code="tls",
                                  error_message=f"the provider's TLS certificate is not trusted: {exc.certificate_error}"), None
            except aiohttp.ClientConnectorError as exc:
                tls = _tls_refusal(exc)
                if tls:
                    return SendResult(Outcome.FAILED, error_code="tls", error_message=tls), None
                return SendResult(Outcome.RETRY, error_code="connect",
                                  error_message=self.redact(f"cannot connect to {self.url}: {exc}")), None
            except (TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                    aiohttp.ClientPayloadError) as exc:
                tls = _tls_refusal(exc)
                if tls:  # refused during the handshake: the request was never processed
                    return SendResult(Outcome.FAILED, error_code="tls", error_message=tls), None
                detail = type(exc).__name__ + (f": {exc}" if str(exc) else "")
                if self.settings.mtls and self.settings.mtls.client_cert:
                    detail += "; the provider may have refused the mTLS client certificate: verify the credential"
                return SendResult(Outcome.UNKNOWN, error_code="no_answer",
                                  error_message=self.redact(f"no answer after the request was sent ({detail})")), None
            except aiohttp.ClientError as exc:
                outcome = Outcome.UNKNOWN if sent else Outcome.RETRY
                return SendResult(outcome, error_code="http", error_message=self.redact(str(exc))), None
        return SendResult(Outcome.FAILED, error_code="401",
                          error_message="the provider refused our credentials (HTTP 401), also with a fresh token"), status

    async def _headers(self, http: aiohttp.ClientSession, method: str, body: bytes) -> dict[str, str]:
        headers = {k: v for k, v in self.settings.headers.items() if k.lower() not in RESERVED_HEADERS}
        headers["Content-Type"] = FIXED_CONTENT_TYPE
        headers["Accept"] = "application/json"
        headers.update(await self.authenticator.headers(http, method, self.url, body, self.ssl_context))
        return headers

    async def _tls_probe(self) -> str | None:
        """Open one TLS connection and read an answer: with TLS 1.3 a server refuses a client
        certificate only after the handshake, and an HTTP client then just sees a hang-up."""
        parts = urlsplit(self.url)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                parts.hostname, parts.port or 443, ssl=self.ssl_context), 15)
        except ssl.SSLError as exc:
            return _tls_text(exc)
        except ConnectionResetError:
            return _CLOSED_AFTER_HANDSHAKE
        except (OSError, TimeoutError):
            return None  # not a TLS matter: the authenticated request reports it
        try:
            writer.write(f"HEAD {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
                         .encode())
            await writer.drain()
            first = await asyncio.wait_for(reader.read(1), 15)
            if not first:
                return _CLOSED_AFTER_HANDSHAKE
        except ssl.SSLError as exc:
            return _tls_text(exc)
        except (ConnectionResetError, BrokenPipeError):
            return _CLOSED_AFTER_HANDSHAKE
        except (OSError, TimeoutError):
            return None
        finally:
            writer.close()
        return None

    def _ssl(self) -> ssl.SSLContext | bool:
        return self.ssl_context if self.ssl_context is not None else True

    def interpret(self, status: int, headers: Any, raw: bytes) -> SendResult:
        """Turn the provider's answer to a send into an outcome."""
        payload: Any = None
        is_json = False
        if raw:
            try:
                payload = json.loads(raw)
                is_json = True
            except ValueError:
                pass
        if 200 <= status < 300:
            if not is_json:
                sample = raw[:120].decode("utf-8", "replace") if raw else ""
                what = "an empty body" if not raw else f"a body that is not JSON ({sample!r})"
                return SendResult(Outcome.FAILED, error_code="bad_answer",
                                  error_message=f"the provider answered HTTP {status} with {what}")
            provider_id = self._message_id(payload)
            if self.id_path is not None and provider_id is None:
                return SendResult(Outcome.ACCEPTED, status="sent",
                                  error_message=f"no message id at {self.settings.response_id_path} in the answer")
            return SendResult(Outcome.ACCEPTED, provider_message_id=provider_id, status="sent")
        code = _first(payload, _CODE_PATHS)
        message = _first(payload, _MESSAGE_PATHS)
        if status == 429 or status >= 500:
            return SendResult(Outcome.RETRY, error_code=str(code or status),
                              error_message=self.redact(str(message or f"the provider answered HTTP {status}")),
                              retry_after=_retry_after(headers))
        if not is_json and raw:
            sample = raw[:120].decode("utf-8", "replace")
            return SendResult(Outcome.FAILED, error_code=str(status),
                              error_message=f"the provider answered HTTP {status} with a body that is not JSON ({sample!r})")
        reason = str(message) if message else f"the provider answered HTTP {status}"
        if status in (401, 403):
            reason = f"the provider refused our credentials (HTTP {status})" + (f": {message}" if message else "")
        return SendResult(Outcome.FAILED, error_code=str(code if code is not None else status),
                          error_message=self.redact(reason))

    def _message_id(self, payload: Any) -> str | None:
        paths = (self.id_path,) if self.id_path is not None else _ID_GUESSES
        for path in paths:
            value = jsonpath.read(payload, path)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        return None

    async def verify(self, http: aiohttp.ClientSession, to: str | None = None, body: str | None = None,
                     sender: str | None = None) -> VerifyReport:
        """An authenticated request to the provider URL (and a test message when given ``to`` and ``body``).

        The authenticated request is a GET: anything but 401/403 (even 404/405) shows the
        provider is reachable and took our credentials.
        """
        report = VerifyReport(ok=True)
        problem = client_certificate_problem(self.settings.mtls)
        if problem:
            report.add("client_certificate", False, problem)
            return report
        if self.ssl_context is not None and urlsplit(self.url).scheme == "https":
            refusal = await self._tls_probe()
            if refusal:
                report.add("tls", False, refusal)
                return report
        result, status = await self._post(http, b"", 15.0, method="GET")
        if status is None:
            report.add("connection", False, result.error_message or "cannot reach the provider")
            return report
        if status in (401, 403):
            report.add("authentication", False, result.error_message or f"refused with HTTP {status}")
            return report
        report.add("authentication", True, f"{self.url} answered HTTP {status} to an authenticated request")
        if to and body:
            sent = await self.send(http, OutboundMessage(message_id="verify", to=to, sender=sender, body=body))
            if sent.outcome is Outcome.ACCEPTED:
                report.add("test_message", True, "test message accepted"
                           + (f" as {sent.provider_message_id}" if sent.provider_message_id else ""))
            else:
                report.add("test_message", False, sent.error_message or "test message refused")
        return report


def _first(payload: Any, paths: tuple[str, ...]) -> Any:
    for path in paths:
        value = jsonpath.read(payload, path)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return value
    return None


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


_CLOSED_AFTER_HANDSHAKE = (
    "TLS handshake with the provider failed: it closed the connection without answering, so it most likely "
    "refused our client certificate (not issued by a CA it trusts, expired or revoked); check the mTLS client "
    "certificate, key and CA")


def _tls_text(exc: ssl.SSLError) -> str:
    reason = getattr(exc, "reason", None) or str(exc)
    return f"TLS handshake with the provider failed: {reason} (check the mTLS client certificate, key and CA)"


def _tls_refusal(exc: BaseException) -> str | None:
    """A TLS alert from the provider (client certificate refused, expired, unknown CA…), as text."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return _tls_text(seen)
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "ALERT" in text.upper() or "SSL" in text.upper():
        return f"TLS handshake with the provider failed: {text} (check the mTLS client certificate, key and CA)"
    return None
