"""Everything the simulator remembers: accounts, messages, options, faults and counters.

All of it lives in memory. The server's event loop mutates it; tests read it from another thread
through :meth:`SimulatorState.snapshot_messages` and :meth:`SimulatorState.stats`, so every
mutation and snapshot takes the state's lock.
"""

import hmac
import threading
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

from textrelay.simulator.faults import FaultPlan

__all__ = [
    "Account",
    "CallbackAttempt",
    "CallbackOptions",
    "IncomingNumber",
    "MessagingService",
    "SimMessage",
    "SimulatorState",
    "new_sid",
]


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two letters and 32 lowercase hex digits."""
    return prefix + uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(slots=True)
class CallbackOptions:
    """How status callbacks behave. Set globally or per account through ``POST /_sim/config``."""

    callbacks_enabled: bool = True
    callback_delay: float = 0.05
    """Seconds before each lifecycle step (accepted→queued, →sent, →delivered)."""
    duplicate_callbacks: bool = False
    """Post every callback twice, as Twilio's retries sometimes do."""
    duplicate_token: Literal["same", "new"] = "same"
    """Whether a duplicate repeats the original's ``I-Twilio-Idempotency-Token`` (a retry) or not."""
    reverse_callbacks: bool = False
    """Post the final status (delivered/undelivered) before the one that precedes it."""
    callback_timeout: float = 10.0

    def merged(self, overrides: dict[str, Any]) -> "CallbackOptions":
        return replace(self, **overrides) if overrides else self

    @classmethod
    def check(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Validate a partial update; raises ``ValueError`` naming a bad key or value."""
        known = {f.name: f for f in fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown option {key!r}")
            if key in ("callbacks_enabled", "duplicate_callbacks", "reverse_callbacks"):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be a boolean")
            elif key == "duplicate_token":
                if value not in ("same", "new"):
                    raise ValueError("duplicate_token must be 'same' or 'new'")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
            clean[key] = value
        return clean


@dataclass(slots=True)
class IncomingNumber:
    phone_number: str
    sid: str = field(default_factory=lambda: new_sid("PN"))
    sms_url: str = ""
    date_created: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class MessagingService:
    sid: str
    account_sid: str
    friendly_name: str = "Simulated Messaging Service"
    phone_numbers: list[str] = field(default_factory=list)
    status_callback: str | None = None
    inbound_request_url: str | None = None
    validity_period: int = 36000
    date_created: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Account:
    sid: str
    auth_token: str
    friendly_name: str = "Simulated account"
    messaging_services: dict[str, MessagingService] = field(default_factory=dict)
    incoming_numbers: dict[str, IncomingNumber] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    options: dict[str, Any] = field(default_factory=dict)
    date_created: datetime = field(default_factory=utcnow)

    def owns_sender(self, number: str) -> bool:
        if number in self.incoming_numbers:
            return True
        return any(number in service.phone_numbers for service in self.messaging_services.values())

    def has_senders(self) -> bool:
        return bool(self.incoming_numbers) or any(s.phone_numbers for s in self.messaging_services.values())

    def service_for_number(self, number: str) -> MessagingService | None:
        for service in self.messaging_services.values():
            if number in service.phone_numbers:
                return service
        return None


@dataclass(slots=True)
class CallbackAttempt:
    """One status callback or inbound webhook request the simulator made."""

    url: str
    message_sid: str
    status: str
    params: dict[str, str]
    idempotency_token: str
    signature: str
    http_status: int | None = None
    error: str | None = None
    sent_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sent_at"] = self.sent_at.isoformat()
        return data


@dataclass(slots=True)
class SimMessage:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    direction: str
    status: str
    num_segments: int
    planned_segments: int = 0
    """What ``num_segments`` becomes once a Messaging Service has picked the sender."""
    planned_from: str | None = None
    """The sender a Messaging Service will pick (``from`` is null until then)."""
    media_urls: list[str] = field(default_factory=list)
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    price: str | None = None
    price_unit: str | None = None
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)
    date_sent: datetime | None = None
    params: dict[str, list[str]] = field(default_factory=dict)
    unknown_params: list[str] = field(default_factory=list)
    status_history: list[str] = field(default_factory=list)
    callbacks: list[CallbackAttempt] = field(default_factory=list)


class SimulatorState:
    """The simulator's whole memory; one per server."""

    def __init__(
        self,
        accounts: list[tuple[str, str]] | None = None,
        options: CallbackOptions | None = None,
        public_url: str | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.public_url = public_url.rstrip("/") if public_url else None
        self._initial_options = options or CallbackOptions()
        self.options = self._initial_options
        self.faults: FaultPlan | None = None
        self.messages: dict[str, SimMessage] = {}
        self._reset_counters()
        for account_sid, auth_token in accounts or []:
            self.add_account(account_sid, auth_token)

    def _reset_counters(self) -> None:
        self.create_requests = 0
        self.created = 0
        self.callbacks_sent = 0
        self.callbacks_failed = 0
        self.creates_by_status_callback: Counter[str] = Counter()
        self.creates_by_to_body: Counter[tuple[str, str]] = Counter()
        self.rejected: Counter[int] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.inbound_sent = 0

    # Accounts ------------------------------------------------------------------------------
    def add_account(
        self,
        account_sid: str,
        auth_token: str,
        *,
        friendly_name: str | None = None,
        messaging_services: list[str | dict[str, Any]] | None = None,
        incoming_numbers: list[str | dict[str, Any]] | None = None,
        api_keys: list[dict[str, str]] | None = None,
    ) -> Account:
        """Add an account, or update the token and extend the services/numbers of an existing one."""
        with self.lock:
            account = self.accounts.get(account_sid)
            if account is None:
                account = Account(sid=account_sid, auth_token=auth_token)
                self.accounts[account_sid] = account
            account.auth_token = auth_token
            if friendly_name:
                account.friendly_name = friendly_name
            for number in incoming_numbers or []:
                spec = {"phone_number": number} if isinstance(number, str) else dict(number)
                existing = account.incoming_numbers.get(spec["phone_number"])
                if existing is None:
                    account.incoming_numbers[spec["phone_number"]] = IncomingNumber(
                        phone_number=spec["phone_number"], sms_url=spec.get("sms_url") or ""
                    )
                elif spec.get("sms_url"):
                    existing.sms_url = spec["sms_url"]
            for service in messaging_services or []:
                spec = {"sid": service} if isinstance(service, str) else dict(service)
                current = account.messaging_services.get(spec["sid"]) or MessagingService(
                    sid=spec["sid"], account_sid=account_sid
                )
                for key in ("friendly_name", "status_callback", "inbound_request_url", "validity_period"):
                    if spec.get(key) is not None:
                        setattr(current, key, spec[key])
                for number in spec.get("phone_numbers") or []:
                    if number not in current.phone_numbers:
                        current.phone_numbers.append(number)
                account.messaging_services[current.sid] = current
            for key in api_keys or []:
                account.api_keys[key["sid"]] = key["secret"]
            return account

    def find_account(self, username: str, password: str) -> Account | None:
        """The account these Basic credentials (``AC…:token`` or ``SK…:secret``) open, if any."""
        with self.lock:
            if username.startswith("SK"):
                for account in self.accounts.values():
                    secret = account.api_keys.get(username)
                    if secret is not None and _same(secret, password):
                        return account
                return None
            account = self.accounts.get(username)
            if account is not None and _same(account.auth_token, password):
                return account
            return None

    def options_for(self, account_sid: str) -> CallbackOptions:
        with self.lock:
            account = self.accounts.get(account_sid)
            return self.options.merged(account.options if account else {})

    def set_options(self, values: dict[str, Any], account_sid: str | None = None) -> None:
        clean = CallbackOptions.check(values)
        with self.lock:
            if account_sid is None:
                self.options = replace(self.options, **clean)
            else:
                self.accounts[account_sid].options.update(clean)

    def opt_out(self, account_sid: str, number: str) -> None:
        with self.lock:
            self.accounts[account_sid].opted_out.add(number)

    def opt_in(self, account_sid: str, number: str) -> None:
        with self.lock:
            self.accounts[account_sid].opted_out.discard(number)

    # Messages ------------------------------------------------------------------------------
    def add_message(self, message: SimMessage, *, counted_as_create: bool = True) -> None:
        with self.lock:
            self.messages[message.sid] = message
            if counted_as_create:
                self.created += 1
                if message.status_callback:
                    self.creates_by_status_callback[message.status_callback] += 1
                self.creates_by_to_body[(message.to, message.body)] += 1

    def get_message(self, account_sid: str, sid: str) -> SimMessage | None:
        with self.lock:
            message = self.messages.get(sid)
            return message if message is not None and message.account_sid == account_sid else None

    def account_messages(self, account_sid: str) -> list[SimMessage]:
        with self.lock:
            return [m for m in self.messages.values() if m.account_sid == account_sid]

    def update_message(self, message: SimMessage, **changes: Any) -> None:
        with self.lock:
            for key, value in changes.items():
                setattr(message, key, value)
            message.date_updated = utcnow()
            if "status" in changes:
                message.status_history.append(changes["status"])

    def record_callback(self, message: SimMessage | None, attempt: CallbackAttempt) -> None:
        with self.lock:
            if message is not None:
                message.callbacks.append(attempt)
            if attempt.error is None and attempt.http_status is not None:
                self.callbacks_sent += 1
            else:
                self.callbacks_failed += 1

    def count_create_request(self) -> None:
        with self.lock:
            self.create_requests += 1

    def count_rejection(self, code: int) -> None:
        with self.lock:
            self.rejected[code] += 1

    def count_fault(self, name: str) -> None:
        with self.lock:
            self.faults_injected[name] += 1

    # Inspection ----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters a test can use to prove, e.g., that no message was created twice."""
        with self.lock:
            return {
                "create_requests": self.create_requests,
                "created": self.created,
                "messages": len(self.messages),
                "creates_by_status_callback": dict(self.creates_by_status_callback),
                "duplicate_creates_by_status_callback": {
                    url: n for url, n in self.creates_by_status_callback.items() if n > 1
                },
                "duplicate_creates_by_to_body": [
                    {"to": to, "body": body, "count": n}
                    for (to, body), n in self.creates_by_to_body.items()
                    if n > 1
                ],
                "max_creates_per_to_body": max(self.creates_by_to_body.values(), default=0),
                "callbacks_sent": self.callbacks_sent,
                "callbacks_failed": self.callbacks_failed,
                "inbound_sent": self.inbound_sent,
                "rejected": {str(code): n for code, n in self.rejected.items()},
                "faults_injected": dict(self.faults_injected),
            }

    def snapshot_messages(self) -> list[SimMessage]:
        with self.lock:
            return [replace(m, callbacks=list(m.callbacks), status_history=list(m.status_history))
                    for m in self.messages.values()]

    def reset(self, *, accounts: bool = False) -> None:
        """Forget messages, counters, faults, opt-outs and option changes; keep accounts unless asked."""
        with self.lock:
            self.messages.clear()
            self._reset_counters()
            self.faults = None
            self.options = self._initial_options
            if accounts:
                self.accounts.clear()
            for account in self.accounts.values():
                account.opted_out.clear()
                account.options.clear()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
