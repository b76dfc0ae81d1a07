"""What happens to a message after it is created: status changes and signed status callbacks.

Every outbound message moves on in the background, ``callback_delay`` seconds per step:

- through a Messaging Service: ``accepted`` → ``queued`` → ``sent`` → ``delivered``
- with a ``From`` number:      ``queued`` → ``sent`` → ``delivered``

A callback is posted for each step after the initial status (Twilio posts none for the initial
one) when the message has a ``StatusCallback`` (or its Messaging Service has one) and callbacks
are enabled. The resource changes status whether or not callbacks are posted.

**Failure numbers.** A recipient whose last five digits are a Twilio delivery error code ends badly
with that ``ErrorCode``:

- ``…30003`` ``…30004`` ``…30005`` ``…30006`` ``…30007`` ``…30008``: ``sent`` → ``undelivered``
  (e.g. ``+14155530003`` → undelivered, 30003 "Unreachable destination handset");
- ``…30001`` ``…30002`` ``…30034`` ``…30036`` ``…30450``: ``failed`` without being sent.

Scheduled messages stay ``scheduled``.
"""

import re
import uuid
from datetime import UTC, datetime

from textrelay.providers.twilio_signature import SIGNATURE_HEADER, compute_signature
from textrelay.simulator.state import CallbackAttempt, SimMessage, SimulatorState, utcnow
from textrelay.simulator.twilio.errors import DELIVERY_ERRORS, FAILED_BEFORE_SENDING
from textrelay.simulator.twilio.resources import API_VERSION
from textrelay.simulator.webhooks import WebhookSender

__all__ = ["callback_params", "failure_code", "planned_statuses", "post_signed", "start_lifecycle"]

PRICE_PER_SEGMENT = 0.0079
TWILIO_HEADERS = {"User-Agent": "TwilioProxy/1.1", "X-Home-Region": "us1", "Accept": "*/*"}


def failure_code(to: str) -> int | None:
    """The delivery error a recipient number is scripted to end with, if any."""
    digits = re.sub(r"\D", "", to)
    code = int(digits[-5:]) if len(digits) >= 5 else 0
    return code if code in DELIVERY_ERRORS else None


def planned_statuses(message: SimMessage) -> list[str]:
    """The statuses a message will pass through after its initial one."""
    steps = ["queued"] if message.status == "accepted" else []
    code = failure_code(message.to)
    if code in FAILED_BEFORE_SENDING:
        return [*steps, "failed"]
    if code is not None:
        return [*steps, "sent", "undelivered"]
    return [*steps, "sent", "delivered"]


def callback_params(message: SimMessage, status: str) -> list[tuple[str, str]]:
    """A status callback's form fields, in the order Twilio sends them."""
    params: list[tuple[str, str]] = []
    if status in ("delivered", "undelivered"):
        params.append(("RawDlrDoneDate", datetime.now(UTC).strftime("%y%m%d%H%M")))
    params += [
        ("SmsSid", message.sid),
        ("SmsStatus", status),
        ("MessageStatus", status),
        ("To", message.to),
    ]
    if message.messaging_service_sid:
        params.append(("MessagingServiceSid", message.messaging_service_sid))
    params += [("MessageSid", message.sid), ("AccountSid", message.account_sid), ("From", message.from_ or "")]
    if status in ("failed", "undelivered") and message.error_code is not None:
        params.append(("ErrorCode", str(message.error_code)))
    params.append(("ApiVersion", API_VERSION))
    return params


def _apply(state: SimulatorState, message: SimMessage, status: str) -> None:
    changes: dict[str, object] = {"status": status}
    if status == "queued" and message.status == "accepted":
        # The Messaging Service has picked the sender.
        changes["num_segments"] = message.planned_segments
        if message.from_ is None:
            changes["from_"] = message.planned_from
    if status == "sent":
        changes["date_sent"] = utcnow()
        segments = max(int(changes.get("num_segments", message.num_segments) or 1), 1)
        changes["price"] = f"-{PRICE_PER_SEGMENT * segments:.5f}"
        changes["price_unit"] = "USD"
    if status in ("failed", "undelivered"):
        code = failure_code(message.to)
        changes["error_code"] = code
        changes["error_message"] = DELIVERY_ERRORS.get(code or 0)
    state.update_message(message, **changes)


def _callback_url(state: SimulatorState, message: SimMessage) -> str | None:
    if message.status_callback:
        return message.status_callback
    if message.messaging_service_sid:
        account = state.accounts.get(message.account_sid)
        service = account.messaging_services.get(message.messaging_service_sid) if account else None
        if service is not None and service.status_callback:
            return service.status_callback
    return None


async def post_signed(
    state: SimulatorState,
    sender: WebhookSender,
    message: SimMessage | None,
    url: str,
    params: list[tuple[str, str]],
    *,
    auth_token: str,
    status: str,
    token: str | None = None,
    timeout: float = 10.0,
) -> tuple[CallbackAttempt, str, str | None]:
    """Post ``params`` to ``url`` signed as Twilio would; returns the attempt, response body and type."""
    multi: dict[str, list[str]] = {}
    for key, value in params:
        multi.setdefault(key, []).append(value)
    signature = compute_signature(auth_token, url, multi)
    token = token or str(uuid.uuid4())
    headers = {**TWILIO_HEADERS, SIGNATURE_HEADER: signature, "I-Twilio-Idempotency-Token": token}
    result = await sender.post_form(url, params, headers, timeout)
    attempt = CallbackAttempt(
        url=url,
        message_sid=message.sid if message else dict(params).get("MessageSid", ""),
        status=status,
        params=dict(params),
        idempotency_token=token,
        signature=signature,
        http_status=result.status,
        error=result.error,
    )
    state.record_callback(message, attempt)
    return attempt, result.body, result.content_type


class _Lifecycle:
    """One message's walk through its statuses: a timer between steps, a task only while posting."""

    __slots__ = ("state", "sender", "message", "steps", "index", "held", "auth_token")

    def __init__(self, state: SimulatorState, sender: WebhookSender, message: SimMessage, auth_token: str) -> None:
        self.state = state
        self.sender = sender
        self.message = message
        self.auth_token = auth_token
        self.steps = planned_statuses(message)
        self.index = 0
        self.held: tuple[str, list[tuple[str, str]]] | None = None

    def schedule(self) -> None:
        if self.index < len(self.steps):
            delay = self.state.options_for(self.message.account_sid).callback_delay
            self.sender.call_later(delay, self.step)

    def step(self) -> None:
        status = self.steps[self.index]
        last_but_one = self.index == len(self.steps) - 2
        self.index += 1
        options = self.state.options_for(self.message.account_sid)
        _apply(self.state, self.message, status)
        url = _callback_url(self.state, self.message)
        if url is None or not options.callbacks_enabled:
            self.schedule()
            return
        params = callback_params(self.message, status)
        if options.reverse_callbacks and last_but_one:
            self.held = (status, params)
            self.schedule()
            return
        posts = [(status, params)]
        if self.held is not None:
            posts.append(self.held)
            self.held = None
        self.sender.spawn(self.post_then_continue(url, posts))

    async def post_then_continue(self, url: str, posts: list[tuple[str, list[tuple[str, str]]]]) -> None:
        # The next step waits for this callback, so callbacks arrive in lifecycle order.
        for status, params in posts:
            await _post_status(self.state, self.sender, self.message, url, status, params, self.auth_token)
        self.schedule()


def start_lifecycle(state: SimulatorState, sender: WebhookSender, message: SimMessage) -> None:
    """Move ``message`` through its lifecycle in the background, posting status callbacks as configured."""
    account = state.accounts.get(message.account_sid)
    if message.status == "scheduled" or account is None:
        return
    _Lifecycle(state, sender, message, account.auth_token).schedule()


async def _post_status(
    state: SimulatorState,
    sender: WebhookSender,
    message: SimMessage,
    url: str,
    status: str,
    params: list[tuple[str, str]],
    auth_token: str,
) -> None:
    options = state.options_for(message.account_sid)
    attempt, _, _ = await post_signed(
        state, sender, message, url, params,
        auth_token=auth_token, status=status, timeout=options.callback_timeout,
    )
    if options.duplicate_callbacks:
        token = attempt.idempotency_token if options.duplicate_token == "same" else None
        await post_signed(
            state, sender, message, url, params,
            auth_token=auth_token, status=status, token=token, timeout=options.callback_timeout,
        )
