"""Twilio's REST endpoints as the simulator serves them.

2010-04-01: ``Accounts/{AC}.json``, ``Messages.json`` (create, list), ``Messages/{SM}.json``
(fetch, redact/cancel, delete), ``Messages/{SM}/Media.json``, ``IncomingPhoneNumbers.json``.
Messaging v1: ``/v1/Services/{MG}`` and ``/v1/Services/{MG}/PhoneNumbers``.
All need HTTP Basic auth (``AccountSid:AuthToken`` or ``SK…:secret``).
"""

import asyncio
import base64
import binascii
import hashlib
from datetime import date

import phonenumbers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from textrelay.simulator.connection import DropConnection
from textrelay.simulator.faults import FaultDecision
from textrelay.simulator.state import Account, SimMessage, SimulatorState, new_sid
from textrelay.simulator.twilio.errors import TwilioError, error_body, error_response
from textrelay.simulator.twilio.lifecycle import start_lifecycle
from textrelay.simulator.twilio.resources import (
    account_path,
    account_resource,
    incoming_number_resource,
    message_resource,
    messaging_service_resource,
    page_envelope,
    rfc2822,
    service_phone_number_resource,
)
from textrelay.simulator.twilio.validation import validate_create
from textrelay.simulator.webhooks import WebhookSender

__all__ = ["routes"]

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
AUTH_HEADERS = {"WWW-Authenticate": 'Basic realm="Twilio API"'}


def _state(request: Request) -> SimulatorState:
    return request.app.state.simulator


def _sender(request: Request) -> WebhookSender:
    return request.app.state.webhook_sender


def authenticate(request: Request, account_sid: str | None) -> Account:
    """The account the request's Basic credentials open; it must be the URL's account, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise TwilioError(20003)
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise TwilioError(20003) from None
    account = _state(request).find_account(username, password)
    if account is None or (account_sid is not None and account.sid != account_sid):
        raise TwilioError(20003)
    return account


def not_found(request: Request, path: str | None = None) -> TwilioError:
    return TwilioError(20404, path=path or request.url.path)


async def _apply_faults_before(request: Request, endpoint: str) -> tuple[FaultDecision, Response | None]:
    state = _state(request)
    with state.lock:
        decision = state.faults.draw(endpoint) if state.faults is not None else FaultDecision()
    if decision.delay:
        state.count_fault("delay")
        await asyncio.sleep(decision.delay)
    if decision.drop_before:
        state.count_fault("drop_before_create")
        return decision, DropConnection()  # type: ignore[return-value]
    if decision.status_429:
        state.count_fault("status_429")
        retry_after = state.faults.retry_after if state.faults else 1.0
        seconds = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
        return decision, JSONResponse(
            error_body(20429, 429, "Too Many Requests"), 429, headers={"Retry-After": seconds}
        )
    if decision.status_5xx:
        state.count_fault(f"status_{decision.status_5xx}")
        code = 20503 if decision.status_5xx == 503 else 20500
        message = "Service Unavailable" if code == 20503 else "An internal server error has occurred"
        return decision, JSONResponse(error_body(code, decision.status_5xx, message), decision.status_5xx)
    return decision, None


def _apply_faults_after(state: SimulatorState, decision: FaultDecision, response: JSONResponse) -> Response:
    if decision.drop_after:
        state.count_fault("drop_after_create")
        return DropConnection()  # type: ignore[return-value]
    if decision.malformed == "html":
        state.count_fault("malformed")
        return Response(
            "<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>",
            response.status_code, media_type="text/html",
        )
    if decision.malformed == "truncated":
        state.count_fault("malformed")
        return Response(bytes(response.body)[: len(response.body) // 2], response.status_code,
                        media_type="application/json")
    return response


def _multi(form: object) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in form.multi_items():  # type: ignore[attr-defined]
        if isinstance(value, str):
            params.setdefault(key, []).append(value)
    return params


async def create_message(request: Request) -> Response:
    state = _state(request)
    account = authenticate(request, request.path_params["account_sid"])
    state.count_create_request()
    params = _multi(await request.form())
    decision, refusal = await _apply_faults_before(request, "create")
    if refusal is not None:
        return refusal
    try:
        with state.lock:  # tests may change accounts and opt-outs from another thread
            valid = validate_create(account, params)
    except TwilioError as error:
        state.count_rejection(error.code)
        return error_response(error)
    if valid.scheduled:
        status = "scheduled"
    else:
        status = "accepted" if valid.messaging_service_sid else "queued"
    message = SimMessage(
        sid=new_sid("MM" if valid.media_urls else "SM"),
        account_sid=account.sid,
        to=valid.to,
        from_=valid.from_ if valid.sender_given else None,
        planned_from=valid.from_,
        body=valid.body,
        direction="outbound-api",
        status=status,
        num_segments=0 if valid.messaging_service_sid else valid.num_segments,
        planned_segments=valid.num_segments,
        media_urls=valid.media_urls,
        messaging_service_sid=valid.messaging_service_sid,
        status_callback=valid.status_callback,
        params=params,
        unknown_params=valid.unknown_params,
        status_history=[status],
    )
    state.add_message(message)
    start_lifecycle(state, _sender(request), message)
    return _apply_faults_after(state, decision, JSONResponse(message_resource(message), 201))


def _date_filter(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise TwilioError(20001, detail=f"Invalid DateSent filter '{value}'") from None


def _page_params(request: Request) -> tuple[int, int]:
    try:
        page_size = int(request.query_params.get("PageSize", DEFAULT_PAGE_SIZE))
        page = int(request.query_params.get("Page", 0))
    except ValueError:
        raise TwilioError(20001, detail="PageSize and Page must be integers") from None
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise TwilioError(20001, detail=f"PageSize must be between 1 and {MAX_PAGE_SIZE}")
    if page < 0:
        raise TwilioError(20001, detail="Page must not be negative")
    return page, page_size


async def list_messages(request: Request) -> Response:
    state = _state(request)
    account = authenticate(request, request.path_params["account_sid"])
    decision, refusal = await _apply_faults_before(request, "list")
    if refusal is not None:
        return refusal
    query = request.query_params
    page, page_size = _page_params(request)
    on, before, after = (_date_filter(query.get(k)) for k in ("DateSent", "DateSent<", "DateSent>"))
    to, from_ = query.get("To"), query.get("From")

    def keep(message: SimMessage) -> bool:
        if to and message.to != to or from_ and message.from_ != from_:
            return False
        if on or before or after:
            if message.date_sent is None:
                return False
            sent = message.date_sent.date()
            if on and sent != on or before and sent > before or after and sent < after:
                return False
        return True

    with state.lock:
        matching = [m for m in reversed(state.account_messages(account.sid)) if keep(m)]
        start = page * page_size
        items = [message_resource(m) for m in matching[start : start + page_size]]
    filters = [(k, query[k]) for k in ("To", "From", "DateSent", "DateSent<", "DateSent>") if query.get(k)]
    body = page_envelope(
        f"{account_path(account.sid)}/Messages.json", "messages", items, page, page_size, len(matching), filters
    )
    return _apply_faults_after(state, decision, JSONResponse(body))


async def messages(request: Request) -> Response:
    if request.method == "POST":
        return await create_message(request)
    return await list_messages(request)


async def message(request: Request) -> Response:
    state = _state(request)
    account = authenticate(request, request.path_params["account_sid"])
    found = state.get_message(account.sid, request.path_params["sid"])
    if request.method == "GET":
        decision, refusal = await _apply_faults_before(request, "fetch")
        if refusal is not None:
            return refusal
        if found is None:
            raise not_found(request)
        return _apply_faults_after(state, decision, JSONResponse(message_resource(found)))
    if found is None:
        raise not_found(request)
    if request.method == "DELETE":
        with state.lock:
            state.messages.pop(found.sid, None)
        return Response(status_code=204)
    params = _multi(await request.form())
    if params.get("Body") == [""]:
        state.update_message(found, body="")
    if "Status" in params:
        if params["Status"] != ["canceled"] or found.status not in ("scheduled", "accepted", "queued"):
            raise TwilioError(20001, detail="Only a scheduled message can be canceled")
        state.update_message(found, status="canceled")
    return JSONResponse(message_resource(found))


async def media_list(request: Request) -> Response:
    state = _state(request)
    account = authenticate(request, request.path_params["account_sid"])
    found = state.get_message(account.sid, request.path_params["sid"])
    if found is None:
        raise not_found(request)
    page, page_size = _page_params(request)
    base = f"{account_path(account.sid)}/Messages/{found.sid}/Media"
    items = []
    for index, url in enumerate(found.media_urls):
        media_sid = "ME" + found.sid[2:-2] + f"{index:02x}"
        items.append({
            "account_sid": account.sid,
            "content_type": "image/jpeg",
            "date_created": rfc2822(found.date_created),
            "date_updated": rfc2822(found.date_created),
            "parent_sid": found.sid,
            "sid": media_sid,
            "uri": f"{base}/{media_sid}.json",
            "source_url": url,
        })
    start = page * page_size
    body = page_envelope(f"{base}.json", "media_list", items[start : start + page_size], page, page_size,
                         len(items), [])
    return JSONResponse(body)


async def fetch_account(request: Request) -> Response:
    account = authenticate(request, request.path_params["account_sid"])
    return JSONResponse(account_resource(account))


async def incoming_phone_numbers(request: Request) -> Response:
    account = authenticate(request, request.path_params["account_sid"])
    page, page_size = _page_params(request)
    wanted = request.query_params.get("PhoneNumber")
    numbers = [
        incoming_number_resource(account, n)
        for n in account.incoming_numbers.values()
        if not wanted or wanted in n.phone_number
    ]
    start = page * page_size
    filters = [("PhoneNumber", wanted)] if wanted else []
    body = page_envelope(
        f"{account_path(account.sid)}/IncomingPhoneNumbers.json", "incoming_phone_numbers",
        numbers[start : start + page_size], page, page_size, len(numbers), filters,
    )
    return JSONResponse(body)


async def messaging_service(request: Request) -> Response:
    account = authenticate(request, None)
    service = account.messaging_services.get(request.path_params["sid"])
    if service is None:
        raise not_found(request, f"/Services/{request.path_params['sid']}")
    return JSONResponse(messaging_service_resource(service))


async def messaging_service_numbers(request: Request) -> Response:
    account = authenticate(request, None)
    service = account.messaging_services.get(request.path_params["sid"])
    if service is None:
        raise not_found(request, f"/Services/{request.path_params['sid']}/PhoneNumbers")
    page, page_size = _page_params(request)
    items = []
    for number in service.phone_numbers:
        known = account.incoming_numbers.get(number)
        sid = known.sid if known else "PN" + hashlib.md5(f"{service.sid}{number}".encode()).hexdigest()
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
        except phonenumbers.NumberParseException:
            region = None
        items.append(service_phone_number_resource(service, number, sid, region))
    start = page * page_size
    base = f"https://messaging.twilio.com/v1/Services/{service.sid}/PhoneNumbers"
    has_next = start + page_size < len(items)
    body = {
        "meta": {
            "page": page,
            "page_size": page_size,
            "first_page_url": f"{base}?PageSize={page_size}&Page=0",
            "previous_page_url": f"{base}?PageSize={page_size}&Page={page - 1}" if page > 0 else None,
            "next_page_url": f"{base}?PageSize={page_size}&Page={page + 1}" if has_next else None,
            "key": "phone_numbers",
            "url": f"{base}?PageSize={page_size}&Page={page}",
        },
        "phone_numbers": items[start : start + page_size],
    }
    return JSONResponse(body)


routes = [
    Route("/2010-04-01/Accounts/{account_sid}.json", fetch_account, methods=["GET"]),
    Route("/2010-04-01/Accounts/{account_sid}/Messages.json", messages, methods=["GET", "POST"]),
    Route("/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json", message, methods=["GET", "POST", "DELETE"]),
    Route("/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json", media_list, methods=["GET"]),
    Route(
        "/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers.json", incoming_phone_numbers, methods=["GET"]
    ),
    Route("/v1/Services/{sid}", messaging_service, methods=["GET"]),
    Route("/v1/Services/{sid}/PhoneNumbers", messaging_service_numbers, methods=["GET"]),
]


async def twilio_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TwilioError)
    return error_response(exc, AUTH_HEADERS if exc.code == 20003 else None)
