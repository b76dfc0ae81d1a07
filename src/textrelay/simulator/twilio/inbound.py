"""Inbound messages on demand: the simulator plays a handset texting one of the account's numbers.

It posts Twilio's inbound webhook (form-encoded, signed over the webhook URL), stores the message
as an ``inbound`` resource, applies Twilio's default opt-out/opt-in keywords to the account's
opt-out list, and turns ``<Message>`` verbs in a TwiML answer into ``outbound-reply`` messages.

``media_urls`` are passed through as ``MediaUrl{N}`` (strings, or objects with ``url`` and
``content_type``); ``OptOutType`` is only sent when given in ``extra``, as Advanced Opt-Out would.
"""

import mimetypes
from typing import Any
from xml.etree import ElementTree

import phonenumbers

from textrelay.domain.segments import count_segments
from textrelay.simulator.state import SimMessage, SimulatorState, new_sid
from textrelay.simulator.twilio.lifecycle import post_signed, start_lifecycle
from textrelay.simulator.twilio.resources import API_VERSION
from textrelay.simulator.webhooks import WebhookSender

__all__ = ["OPT_IN_KEYWORDS", "OPT_OUT_KEYWORDS", "InboundRequestError", "deliver_inbound"]

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
MAX_TWIML = 64 * 1024


class InboundRequestError(ValueError):
    """The control request for an inbound message is unusable (answered 400)."""


def _country(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or ""
    except phonenumbers.NumberParseException:
        return ""


def _media(items: list[Any]) -> list[tuple[str, str]]:
    media = []
    for item in items:
        if isinstance(item, str):
            url, content_type = item, None
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            url, content_type = item["url"], item.get("content_type")
        else:
            raise InboundRequestError("media_urls holds strings or {url, content_type} objects")
        guessed = mimetypes.guess_type(url.split("?")[0])[0]
        media.append((url, content_type or guessed or "image/jpeg"))
    return media


def inbound_params(message: SimMessage, media: list[tuple[str, str]], extra: dict[str, str]) -> list[tuple[str, str]]:
    """The inbound webhook's form fields, in the order Twilio sends them."""
    to_country, from_country = _country(message.to), _country(message.from_)
    params = [
        ("ToCountry", to_country),
        ("ToState", ""),
        ("SmsMessageSid", message.sid),
        ("NumMedia", str(len(media))),
        ("ToCity", ""),
        ("FromZip", ""),
        ("SmsSid", message.sid),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", message.body),
        ("FromCountry", from_country),
        ("To", message.to),
    ]
    if message.messaging_service_sid:
        params.append(("MessagingServiceSid", message.messaging_service_sid))
    params += [
        ("ToZip", ""),
        ("NumSegments", str(message.num_segments)),
        ("ReferralNumMedia", "0"),
        ("MessageSid", message.sid),
        ("AccountSid", message.account_sid),
        ("From", message.from_),
        ("ApiVersion", API_VERSION),
    ]
    for index, (url, content_type) in enumerate(media):
        params += [(f"MediaContentType{index}", content_type), (f"MediaUrl{index}", url)]
    params += list(extra.items())
    return params


def _replies(twiml: str) -> list[tuple[str, list[str], dict[str, str]]]:
    """``(body, media, attributes)`` for each ``<Message>`` in a TwiML answer."""
    if not twiml.strip() or len(twiml) > MAX_TWIML:
        return []
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return []
    if root.tag != "Response":
        return []
    replies = []
    for element in root.iter("Message"):
        body_element = element.find("Body")
        if body_element is not None:
            body = body_element.text or ""
        else:
            body = "".join(element.itertext()) if len(element) == 0 else (element.text or "").strip()
        media = [m.text.strip() for m in element.findall("Media") if m.text]
        replies.append((body, media, dict(element.attrib)))
    return replies


async def deliver_inbound(state: SimulatorState, sender: WebhookSender, request: dict[str, Any]) -> dict[str, Any]:
    """Handle ``POST /_sim/inbound``: post the webhook and report what the receiver answered."""
    account_sid = request.get("account_sid")
    if account_sid is None and len(state.accounts) == 1:
        account_sid = next(iter(state.accounts))
    account = state.accounts.get(account_sid or "")
    if account is None:
        raise InboundRequestError("unknown or missing account_sid")
    from_, to = request.get("from"), request.get("to")
    if not isinstance(from_, str) or not isinstance(to, str) or not from_ or not to:
        raise InboundRequestError("'from' and 'to' are required strings")
    body = request.get("body", "")
    extra = request.get("extra") or {}
    if not isinstance(body, str) or not isinstance(extra, dict):
        raise InboundRequestError("'body' must be a string and 'extra' an object")
    extra = {str(k): str(v) for k, v in extra.items()}
    media = _media(request.get("media_urls") or [])
    service = account.service_for_number(to)
    url = request.get("url")
    if not url:
        number = account.incoming_numbers.get(to)
        url = (number.sms_url if number else "") or (service.inbound_request_url if service else "")
    if not url:
        raise InboundRequestError("no 'url' given and none configured for the number")

    sid = request.get("message_sid")
    message = state.messages.get(sid) if sid else None
    if message is None:
        message = SimMessage(
            sid=sid or new_sid("MM" if media else "SM"),
            account_sid=account.sid,
            to=to,
            from_=from_,
            body=body,
            direction="inbound",
            status="received",
            num_segments=count_segments(body).segments or 1,
            media_urls=[u for u, _ in media],
            messaging_service_sid=service.sid if service else None,
        )
        message.date_sent = message.date_created
        state.add_message(message, counted_as_create=False)

    keyword = body.strip().upper()
    if keyword in OPT_OUT_KEYWORDS:
        state.opt_out(account.sid, from_)
    elif keyword in OPT_IN_KEYWORDS:
        state.opt_in(account.sid, from_)

    params = inbound_params(message, media, extra)
    options = state.options_for(account.sid)
    attempt, text, content_type = await post_signed(
        state, sender, message, url, params,
        auth_token=account.auth_token, status="received", timeout=options.callback_timeout,
    )
    with state.lock:
        state.inbound_sent += 1

    replies = []
    if attempt.http_status is not None and 200 <= attempt.http_status < 300:
        for reply_body, reply_media, attributes in _replies(text):
            replies.append(_reply(state, sender, message, reply_body, reply_media, attributes))
    return {
        "status": attempt.http_status,
        "content_type": content_type,
        "body": text,
        "message_sid": message.sid,
        "error": attempt.error,
        "signature": attempt.signature,
        "params": dict(params),
        "replies": replies,
    }


def _reply(
    state: SimulatorState,
    sender: WebhookSender,
    inbound: SimMessage,
    body: str,
    media: list[str],
    attributes: dict[str, str],
) -> dict[str, Any]:
    to = attributes.get("to") or inbound.from_
    from_ = attributes.get("from") or inbound.to
    reply = SimMessage(
        sid=new_sid("MM" if media else "SM"),
        account_sid=inbound.account_sid,
        to=to,
        from_=from_,
        body=body,
        direction="outbound-reply",
        status="queued",
        num_segments=1 if media else (count_segments(body).segments or 1),
        media_urls=media,
        messaging_service_sid=inbound.messaging_service_sid,
        status_callback=attributes.get("statusCallback") or attributes.get("action"),
    )
    account = state.accounts[inbound.account_sid]
    if to in account.opted_out:
        reply.status, reply.error_code = "failed", 21610
        reply.error_message = "Attempt to send to unsubscribed recipient"
        state.add_message(reply, counted_as_create=False)
    else:
        state.add_message(reply, counted_as_create=False)
        start_lifecycle(state, sender, reply)
    return {"sid": reply.sid, "to": reply.to, "from": reply.from_, "body": reply.body,
            "media_urls": reply.media_urls, "status": reply.status}
