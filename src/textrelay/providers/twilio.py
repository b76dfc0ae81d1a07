"""Twilio Programmable Messaging: send, look up, verify, parse receipts, redact.

Everything Twilio-specific (field names, error codes, status words) stays in this module.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

import aiohttp
import yarl

from textrelay.providers.base import OutboundMessage, Outcome, SendResult, StatusUpdate, VerifyReport

DEFAULT_API_BASE = "https://api.twilio.com"
DEFAULT_MESSAGING_BASE = "https://messaging.twilio.com"
SECRET_FIELDS = ("auth_token",)

# Twilio's status words → ours. ``accepted``/``scheduled`` mean Twilio holds the message.
STATUS_MAP: dict[str, str] = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "read": "read",
    "canceled": "canceled",
    "partially_delivered": "delivered",
}


@cache
def error_table() -> dict[str, dict[str, Any]]:
    return json.loads((Path(__file__).with_name("twilio_errors.json")).read_text())


def describe_error(code: str | int | None, fallback: str | None = None) -> str:
    if code is None:
        return fallback or "unknown error"
    entry = error_table().get(str(code))
    return entry["message"] if entry else (fallback or f"Twilio error {code}")


# Senders, callback URLs and validity periods repeat from message to message: encode each once.
_quote_repeated = lru_cache(maxsize=4096)(quote_plus)


def form_encode(params: list[tuple[str, str]]) -> bytes:
    """``urlencode`` for create-message parameters (ASCII names), several times faster at volume."""
    return "&".join(f"{name}={quote_plus(value) if name in ('To', 'Body') else _quote_repeated(value)}"
                    for name, value in params).encode()


def messaging_base_for(api_base_url: str) -> str:
    """Twilio's messaging API lives on its own host; a self-hosted base (simulator, proxy) serves both."""
    host = urlsplit(api_base_url).hostname or ""
    if host == "api.twilio.com":
        return DEFAULT_MESSAGING_BASE
    if host.endswith(".twilio.com") and host.startswith("api."):
        # Regional edges: api.dublin.ie1.twilio.com → messaging.dublin.ie1.twilio.com
        return "https://messaging." + host.removeprefix("api.")
    return api_base_url.rstrip("/")


class TwilioAccount:
    """One Twilio account as reached through one API credential."""

    def __init__(self, account_sid: str, auth_token: str, api_base_url: str | None = None,
                 messaging_service_sid: str | None = None) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_base_url = (api_base_url or DEFAULT_API_BASE).rstrip("/")
        self.messaging_service_sid = messaging_service_sid
        self.auth = aiohttp.BasicAuth(account_sid, auth_token)
        # Built once: the worker sends thousands of messages per second through one account.
        self._send_headers = {"Authorization": self.auth.encode(), "Accept": "application/json",
                              "Content-Type": "application/x-www-form-urlencoded"}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._messages_url = yarl.URL(self.messages_url)

    @property
    def messages_url(self) -> str:
        return f"{self.api_base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def message_url(self, sid: str) -> str:
        return f"{self.api_base_url}/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"

    def redact(self, text: str) -> str:
        """Remove this account's secret from ``text`` (log lines, error details)."""
        return text.replace(self.auth_token, "[redacted]") if self.auth_token else text

    def create_params(self, message: OutboundMessage) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = [("To", message.to)]
        sender = message.sender
        if sender and sender.startswith("MG"):
            params.append(("MessagingServiceSid", sender))
        else:
            if sender:
                params.append(("From", sender))
            if self.messaging_service_sid:
                params.append(("MessagingServiceSid", self.messaging_service_sid))
        if message.body:
            params.append(("Body", message.body))
        params.extend(("MediaUrl", url) for url in message.media_urls)
        if message.status_callback:
            params.append(("StatusCallback", message.status_callback))
        if message.validity_seconds is not None:
            params.append(("ValidityPeriod", str(max(1, min(36000, message.validity_seconds)))))
        return params

    async def send(self, http: aiohttp.ClientSession, message: OutboundMessage,
                   timeout: float = 30.0) -> SendResult:
        """Create the message at Twilio. Never raises for provider or network trouble."""
        data = form_encode(self.create_params(message))
        client_timeout = self._timeouts.get(timeout)
        if client_timeout is None:
            client_timeout = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout)
        sent = False
        try:
            async with http.post(self._messages_url, data=data, headers=self._send_headers,
                                 timeout=client_timeout) as resp:
                sent = True
                raw = await resp.read()
                return interpret_create_answer(resp.status, resp.headers, raw)
        except (aiohttp.ClientConnectorError, aiohttp.ClientConnectorCertificateError) as exc:
            return SendResult(Outcome.RETRY, error_code="connect", error_message=f"cannot connect: {exc}")
        except (TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            # The request may have reached Twilio: only a lookup can tell.
            detail = type(exc).__name__ + (f": {exc}" if str(exc) else "")
            return SendResult(Outcome.UNKNOWN, error_code="no_answer",
                              error_message=f"no answer after the request was sent ({detail})")
        except aiohttp.ClientError as exc:
            outcome = Outcome.UNKNOWN if sent else Outcome.RETRY
            return SendResult(outcome, error_code="http", error_message=self.redact(str(exc)))

    async def find_message(self, http: aiohttp.ClientSession, message: OutboundMessage,
                           timeout: float = 30.0, not_before: datetime | None = None,
                           exclude: Collection[str] = ()) -> SendResult | None:
        """Look up a message whose create had no answer, by recipient, body and creation time.

        Returns the accepted result if Twilio has it, None if it certainly does not, and a RETRY
        result when the lookup itself could not be made. ``not_before`` (when our message was first
        tried, minus a clock skew) keeps older look-alikes out; ``exclude`` lists sids that already
        belong to other messages of ours.
        """
        found = await self.find_candidates(http, message, timeout, not_before)
        if isinstance(found, SendResult):
            return found
        for item in found:
            if item.get("sid") not in exclude:
                return SendResult(Outcome.ACCEPTED, provider_message_id=item.get("sid"),
                                  status=STATUS_MAP.get(item.get("status", ""), "sent"))
        return None

    async def find_candidates(self, http: aiohttp.ClientSession, message: OutboundMessage,
                              timeout: float = 30.0,
                              not_before: datetime | None = None) -> list[dict[str, Any]] | SendResult:
        """Every message at Twilio that could be ``message``, oldest first (or a RETRY result)."""
        params = {"To": message.to, "PageSize": "1000"}
        url: str | None = self.messages_url
        matches: list[dict[str, Any]] = []
        try:
            while url:
                async with http.get(url, params=params, auth=self.auth,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    if resp.status != 200:
                        return SendResult(Outcome.RETRY, error_code=str(resp.status),
                                          error_message=f"lookup answered HTTP {resp.status}")
                    page = await resp.json(content_type=None)
                if not isinstance(page, dict):
                    raise ValueError("the message list is not a JSON object")
                for item in page.get("messages", []):
                    if _same_message(item, message) and _created_since(item, not_before):
                        matches.append(item)
                nxt = page.get("next_page_uri")
                url = f"{self.api_base_url}{nxt}" if nxt else None
                params = {}
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return SendResult(Outcome.RETRY, error_code="lookup", error_message=f"lookup failed: {exc}")
        matches.reverse()  # Twilio lists newest first
        return matches

    async def verify(self, http: aiohttp.ClientSession, to: str | None = None, body: str | None = None,
                     sender: str | None = None) -> VerifyReport:
        report = VerifyReport(ok=True)
        timeout = aiohttp.ClientTimeout(total=15)
        account_url = f"{self.api_base_url}/2010-04-01/Accounts/{self.account_sid}.json"
        try:
            async with http.get(account_url, auth=self.auth, timeout=timeout) as resp:
                payload = await _json_or_none(resp)
                if resp.status == 200 and payload:
                    report.add("account", payload.get("status") == "active",
                               f"account {payload.get('friendly_name') or self.account_sid} is "
                               f"{payload.get('status')}")
                else:
                    report.add("account", False, _error_text(resp.status, payload))
        except (TimeoutError, aiohttp.ClientError) as exc:
            report.add("account", False, f"cannot reach {self.api_base_url}: {exc or type(exc).__name__}")
            return report
        if self.messaging_service_sid:
            url = f"{messaging_base_for(self.api_base_url)}/v1/Services/{self.messaging_service_sid}"
            try:
                async with http.get(url, auth=self.auth, timeout=timeout) as resp:
                    payload = await _json_or_none(resp)
                    if resp.status == 200 and payload:
                        report.add("messaging_service", True,
                                   f"messaging service {payload.get('friendly_name') or payload.get('sid')} found")
                    else:
                        report.add("messaging_service", False, _error_text(resp.status, payload))
            except (TimeoutError, aiohttp.ClientError) as exc:
                report.add("messaging_service", False, f"cannot reach the messaging API: {exc}")
        if to and body and report.ok:
            result = await self.send(http, OutboundMessage(message_id="verify", to=to, sender=sender, body=body))
            if result.outcome is Outcome.ACCEPTED:
                report.add("test_message", True, f"test message accepted as {result.provider_message_id}")
            else:
                report.add("test_message", False, result.error_message or "test message refused")
        return report


def _created_since(item: dict[str, Any], not_before: datetime | None) -> bool:
    if not_before is None or not item.get("date_created"):
        return True
    try:
        created = parsedate_to_datetime(item["date_created"])
    except (TypeError, ValueError):
        return True
    # Twilio's dates have whole seconds.
    return created >= not_before.replace(microsecond=0)


def _same_message(item: dict[str, Any], message: OutboundMessage) -> bool:
    if item.get("to") != message.to:
        return False
    if message.body and item.get("body") != message.body:
        return False
    # Twilio does not echo StatusCallback; the body and recipient identify our message, and the
    # created-after window (checked by the caller through attempts) keeps old look-alikes out.
    return True


async def _json_or_none(resp: aiohttp.ClientResponse) -> dict[str, Any] | None:
    try:
        data = await resp.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None
    return data if isinstance(data, dict) else None


def _error_text(status: int, payload: dict[str, Any] | None) -> str:
    if payload and payload.get("code"):
        return f"Twilio error {payload['code']}: {describe_error(payload['code'], payload.get('message'))}"
    return f"Twilio answered HTTP {status}"


def interpret_create_answer(status: int, headers: Any, raw: bytes) -> SendResult:
    """Turn Twilio's answer to a create-message request into an outcome."""
    payload: Any = None
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if 200 <= status < 300:
        if isinstance(payload, dict) and isinstance(payload.get("sid"), str):
            return SendResult(Outcome.ACCEPTED, provider_message_id=payload["sid"],
                              status=STATUS_MAP.get(str(payload.get("status")), "sent"))
        # Created, probably, but we cannot tell which sid: reconcile by lookup.
        what = "an empty body" if not raw else ("malformed JSON" if payload is None else "JSON without a sid")
        return SendResult(Outcome.UNKNOWN, error_code="bad_answer",
                          error_message=f"Twilio answered HTTP {status} with {what}")
    code = payload.get("code") if isinstance(payload, dict) else None
    message = payload.get("message") if isinstance(payload, dict) else None
    if status == 429 or status >= 500:
        retry_after = _retry_after(headers)
        return SendResult(Outcome.RETRY, error_code=str(code or status),
                          error_message=describe_error(code, message or f"HTTP {status}"),
                          retry_after=retry_after)
    if code is None:
        body = raw[:200].decode("utf-8", "replace") if raw else "an empty body"
        return SendResult(Outcome.FAILED, error_code=str(status),
                          error_message=f"Twilio answered HTTP {status} without an error code: {body}")
    entry = error_table().get(str(code), {})
    if entry.get("retry"):
        return SendResult(Outcome.RETRY, error_code=str(code), error_message=describe_error(code, message),
                          retry_after=_retry_after(headers))
    return SendResult(Outcome.FAILED, error_code=str(code), error_message=describe_error(code, message),
                      opt_out=bool(entry.get("opt_out")))


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def parse_status_callback(form: dict[str, str], idempotency_token: str | None) -> StatusUpdate | None:
    """A status callback's form fields → a status update in our terms (None if not one)."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    raw = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if form.get("EventType", "").upper() == "READ":
        raw = "read"
    if not sid or raw not in STATUS_MAP:
        return None
    return StatusUpdate(provider_message_id=sid, status=STATUS_MAP[raw], error_code=form.get("ErrorCode") or None,
                        idempotency_token=idempotency_token, raw_status=raw)
