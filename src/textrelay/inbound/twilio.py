"""Twilio's inbound webhook: form fields in, TwiML out.

Called by ``api.routes.hooks`` once the ``X-Twilio-Signature`` has been checked. Everything
Twilio-specific (field names, ``OptOutType``, TwiML) stays in this module; the use case itself is
``inbound.service``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from starlette.responses import Response

from textrelay.domain.numbers import normalize_e164, normalize_inbound_number
from textrelay.errors import BadRequest, ValidationFailed
from textrelay.inbound import service

MAX_MEDIA = 10
MAX_ID_CHARS = 64
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def twiml(reply: str | None) -> Response:
    """``<Response><Message>…</Message></Response>`` (escaped), or an empty ``<Response/>``."""
    if not reply:
        return Response(EMPTY_TWIML, media_type="text/xml")
    from xml.sax.saxutils import escape

    text = escape(_NOT_XML.sub("", reply))
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{text}</Message></Response>',
                    media_type="text/xml")


def _required(form: dict[str, str], *names: str) -> str:
    for name in names:
        value = (form.get(name) or "").replace("\x00", "").strip()
        if value:
            if len(value) > MAX_ID_CHARS:
                raise BadRequest.field(name, f"longer than {MAX_ID_CHARS} characters")
            return value
    raise BadRequest.field(names[0], "field required")


_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@lru_cache(maxsize=65536)
def _number(value: str, field: str, inbound: bool) -> str:
    """E.164 (or a short code for our own numbers) when it parses; else the address as given
    (channel prefixes such as ``rcs:`` and other odd addresses are kept, never a 500).

    Twilio sends E.164 already; that form is taken as is (full parsing costs more than the rest
    of the request)."""
    if _E164.match(value):
        return value
    try:
        return normalize_inbound_number(value, field) if inbound else normalize_e164(value, field)
    except ValidationFailed:
        return value


def _media(form: dict[str, str]) -> list[dict[str, str]]:
    raw = (form.get("NumMedia") or "0").strip()
    if not raw.isdigit():
        raise BadRequest.field("NumMedia", "must be a whole number")
    count = min(int(raw), MAX_MEDIA)
    media = []
    for index in range(count):
        url = form.get(f"MediaUrl{index}")
        if url:
            media.append({"url": url.replace("\x00", "")[:2000],
                          "content_type": (form.get(f"MediaContentType{index}") or "").replace("\x00", "")[:100]})
    return media


def parse(form: dict[str, str]) -> service.Inbound:
    sid = _required(form, "MessageSid", "SmsMessageSid", "SmsSid")
    from_number = _number(_required(form, "From"), "From", inbound=False)
    to_number = _number(_required(form, "To"), "To", inbound=True)
    body = (form.get("Body") or "").replace("\x00", "")
    opt_out_type = (form.get("OptOutType") or "").replace("\x00", "").strip() or None
    return service.Inbound(provider_message_id=sid, from_number=from_number, to_number=to_number, body=body,
                           media=_media(form), provider_keyword=opt_out_type)


async def handle(ctx: Any, info: Any, form: dict[str, str]) -> Response:
    """Route, handle and answer one inbound message; a retried delivery is answered the same way."""
    message = parse(form)
    route = _route(ctx, info, message.to_number)
    outcome = await service.receive(ctx, route, message)
    return twiml(outcome.reply)


def _route(ctx: Any, info: Any, to: str) -> service.Route:
    cached = service.cached_route(info.vendor, info.credential_id, info.id, to)
    if cached is not None:
        return cached
    with ctx.db.session() as session:
        return service.resolve_route(session, info.vendor, info.credential_id, info.id, to)
