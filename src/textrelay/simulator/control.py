"""The simulator's own control API under ``/_sim``: set-up, inspection and fault injection.

No authentication: the simulator is a local test tool. Bad input answers 400 ``{"error": "..."}``.
"""

import json
import re
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from textrelay.simulator.faults import FaultPlan
from textrelay.simulator.state import SimMessage, SimulatorState
from textrelay.simulator.twilio.inbound import InboundRequestError, deliver_inbound
from textrelay.simulator.twilio.resources import message_resource
from textrelay.simulator.webhooks import WebhookSender

__all__ = ["routes", "message_record"]

_AC = re.compile(r"^AC[0-9a-fA-F]{32}$")
_MG = re.compile(r"^MG[0-9a-fA-F]{32}$")


class ControlError(ValueError):
    pass


def _state(request: Request) -> SimulatorState:
    return request.app.state.simulator


def _sender(request: Request) -> WebhookSender:
    return request.app.state.webhook_sender


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, 400)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ControlError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlError("expected a JSON object")
    return data


def _account_sid(state: SimulatorState, data: dict[str, Any], *, required: bool = True) -> str | None:
    sid = data.get("account_sid")
    if sid is None and required and len(state.accounts) == 1:
        return next(iter(state.accounts))
    if sid is None:
        if required:
            raise ControlError("account_sid is required")
        return None
    if sid not in state.accounts:
        raise ControlError(f"unknown account {sid}")
    return sid


def message_record(message: SimMessage) -> dict[str, Any]:
    """Everything the simulator knows about one message, for tests."""
    return {
        "sid": message.sid,
        "account_sid": message.account_sid,
        "direction": message.direction,
        "status": message.status,
        "status_history": list(message.status_history),
        "status_callback": message.status_callback,
        "params": message.params,
        "unknown_params": message.unknown_params,
        "resource": message_resource(message),
        "callbacks": [attempt.to_json() for attempt in message.callbacks],
    }


def _account_json(state: SimulatorState, sid: str) -> dict[str, Any]:
    account = state.accounts[sid]
    return {
        "account_sid": account.sid,
        "auth_token": account.auth_token,
        "friendly_name": account.friendly_name,
        "messaging_services": [
            {
                "sid": s.sid,
                "friendly_name": s.friendly_name,
                "phone_numbers": s.phone_numbers,
                "status_callback": s.status_callback,
                "inbound_request_url": s.inbound_request_url,
            }
            for s in account.messaging_services.values()
        ],
        "incoming_numbers": [
            {"sid": n.sid, "phone_number": n.phone_number, "sms_url": n.sms_url}
            for n in account.incoming_numbers.values()
        ],
        "api_keys": sorted(account.api_keys),
        "opted_out": sorted(account.opted_out),
        "options": account.options,
    }


async def accounts(request: Request) -> Response:
    state = _state(request)
    if request.method == "GET":
        return JSONResponse({"accounts": [_account_json(state, sid) for sid in state.accounts]})
    data = await _json(request)
    sid, token = data.get("account_sid"), data.get("auth_token")
    if not isinstance(sid, str) or not _AC.match(sid):
        raise ControlError("account_sid must be AC followed by 32 hex digits")
    if not isinstance(token, str) or not token:
        raise ControlError("auth_token is required")
    services = data.get("messaging_services") or []
    numbers = data.get("incoming_numbers") or []
    keys = data.get("api_keys") or []
    for service in services:
        service_sid = service if isinstance(service, str) else (service or {}).get("sid")
        if not isinstance(service_sid, str) or not _MG.match(service_sid):
            raise ControlError("each messaging service is an MG SID or an object with an MG 'sid'")
    for number in numbers:
        value = number if isinstance(number, str) else (number or {}).get("phone_number")
        if not isinstance(value, str) or not value:
            raise ControlError("each incoming number is a string or an object with 'phone_number'")
    for key in keys:
        if not isinstance(key, dict) or not str(key.get("sid", "")).startswith("SK") or not key.get("secret"):
            raise ControlError("each API key is an object with an SK 'sid' and a 'secret'")
    state.add_account(
        sid, token,
        friendly_name=data.get("friendly_name"),
        messaging_services=services,
        incoming_numbers=numbers,
        api_keys=keys,
    )
    return JSONResponse(_account_json(state, sid), 201)


async def optouts(request: Request) -> Response:
    state = _state(request)
    if request.method == "GET":
        sid = _account_sid(state, dict(request.query_params))
        return JSONResponse({"account_sid": sid, "opted_out": sorted(state.accounts[sid].opted_out)})
    data = await _json(request)
    sid = _account_sid(state, data)
    numbers = data.get("numbers") or ([data["number"]] if data.get("number") else [])
    if not numbers or not all(isinstance(n, str) for n in numbers):
        raise ControlError("give 'number' or 'numbers'")
    for number in numbers:
        (state.opt_out if request.method == "POST" else state.opt_in)(sid, number)
    return JSONResponse({"account_sid": sid, "opted_out": sorted(state.accounts[sid].opted_out)})


async def config(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        data = await _json(request)
        sid = _account_sid(state, data, required=False)
        values = {k: v for k, v in data.items() if k != "account_sid"}
        try:
            state.set_options(values, sid)
        except ValueError as exc:
            raise ControlError(str(exc)) from None
    with state.lock:
        body = {
            "options": _options_json(state),
            "accounts": {sid: dict(a.options) for sid, a in state.accounts.items() if a.options},
        }
    return JSONResponse(body)


def _options_json(state: SimulatorState) -> dict[str, Any]:
    return asdict(state.options)


async def faults(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        try:
            plan = FaultPlan.from_json(await _json(request))
        except ControlError:
            raise
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        with state.lock:
            state.faults = plan
    elif request.method == "DELETE":
        with state.lock:
            state.faults = None
    with state.lock:
        return JSONResponse({"faults": state.faults.to_json() if state.faults else None})


async def inbound(request: Request) -> Response:
    data = await _json(request)
    try:
        result = await deliver_inbound(_state(request), _sender(request), data)
    except InboundRequestError as exc:
        raise ControlError(str(exc)) from None
    return JSONResponse(result)


async def messages(request: Request) -> Response:
    state = _state(request)
    query = request.query_params
    records = [
        message_record(m)
        for m in state.snapshot_messages()
        if (not query.get("account_sid") or m.account_sid == query["account_sid"])
        and (not query.get("to") or m.to == query["to"])
        and (not query.get("direction") or m.direction == query["direction"])
        and (not query.get("status_callback") or m.status_callback == query["status_callback"])
    ]
    with state.lock:
        counts = {"create_requests": state.create_requests, "created": state.created}
    return JSONResponse({**counts, "messages": records})


async def one_message(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        found = state.messages.get(request.path_params["sid"])
        record = message_record(found) if found is not None else None
    if record is None:
        return JSONResponse({"error": "no such message"}, 404)
    return JSONResponse(record)


async def stats(request: Request) -> Response:
    state = _state(request)
    return JSONResponse({**state.stats(), "pending_tasks": _sender(request).pending})


async def reset(request: Request) -> Response:
    data = await _json(request)
    await _sender(request).cancel_all()
    _state(request).reset(accounts=bool(data.get("accounts")))
    return JSONResponse({"reset": True})


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok", "public_url": _state(request).public_url})


routes = [
    Route("/_sim/health", health, methods=["GET"]),
    Route("/_sim/accounts", accounts, methods=["GET", "POST"]),
    Route("/_sim/optouts", optouts, methods=["GET", "POST", "DELETE"]),
    Route("/_sim/config", config, methods=["GET", "POST"]),
    Route("/_sim/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/_sim/inbound", inbound, methods=["POST"]),
    Route("/_sim/messages", messages, methods=["GET"]),
    Route("/_sim/messages/{sid}", one_message, methods=["GET"]),
    Route("/_sim/stats", stats, methods=["GET"]),
    Route("/_sim/reset", reset, methods=["POST"]),
]


async def control_error_handler(request: Request, exc: Exception) -> Response:
    return _bad(str(exc))
