"""Twilio resource JSON, field for field as the 2010-04-01 and Messaging v1 APIs return it."""

from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from textrelay.simulator.state import Account, IncomingNumber, MessagingService, SimMessage

__all__ = [
    "account_resource",
    "incoming_number_resource",
    "message_resource",
    "messaging_service_resource",
    "page_envelope",
    "rfc2822",
    "service_phone_number_resource",
]

API_VERSION = "2010-04-01"
MESSAGING_BASE = "https://messaging.twilio.com"


def rfc2822(moment: datetime | None) -> str | None:
    """``Thu, 24 Aug 2023 05:01:45 +0000``, as Twilio's 2010-04-01 API writes dates."""
    return None if moment is None else format_datetime(moment)


def iso8601(moment: datetime) -> str:
    """``2015-07-30T20:12:31Z``, as Twilio's v1 APIs write dates."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def account_path(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}"


def message_resource(message: SimMessage) -> dict[str, Any]:
    base = f"{account_path(message.account_sid)}/Messages/{message.sid}"
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.date_created),
        "date_sent": rfc2822(message.date_sent),
        "date_updated": rfc2822(message.date_updated),
        "direction": message.direction,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": str(len(message.media_urls)),
        "num_segments": str(message.num_segments),
        "price": message.price,
        "price_unit": message.price_unit,
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {"media": f"{base}/Media.json"},
        "to": message.to,
        "uri": f"{base}.json",
    }


def account_resource(account: Account) -> dict[str, Any]:
    base = account_path(account.sid)
    subresources = {
        name: f"{base}/{path}.json"
        for name, path in (
            ("available_phone_numbers", "AvailablePhoneNumbers"),
            ("calls", "Calls"),
            ("conferences", "Conferences"),
            ("incoming_phone_numbers", "IncomingPhoneNumbers"),
            ("notifications", "Notifications"),
            ("outgoing_caller_ids", "OutgoingCallerIds"),
            ("recordings", "Recordings"),
            ("transcriptions", "Transcriptions"),
            ("addresses", "Addresses"),
            ("signing_keys", "SigningKeys"),
            ("connect_apps", "ConnectApps"),
            ("sip", "SIP"),
            ("authorized_connect_apps", "AuthorizedConnectApps"),
            ("usage", "Usage"),
            ("keys", "Keys"),
            ("applications", "Applications"),
            ("short_codes", "SMS/ShortCodes"),
            ("queues", "Queues"),
            ("messages", "Messages"),
            ("balance", "Balance"),
        )
    }
    return {
        "auth_token": account.auth_token,
        "date_created": rfc2822(account.date_created),
        "date_updated": rfc2822(account.date_created),
        "friendly_name": account.friendly_name,
        "owner_account_sid": account.sid,
        "sid": account.sid,
        "status": "active",
        "subresource_uris": subresources,
        "type": "Full",
        "uri": f"{base}.json",
    }


def incoming_number_resource(account: Account, number: IncomingNumber) -> dict[str, Any]:
    return {
        "account_sid": account.sid,
        "address_requirements": "none",
        "address_sid": None,
        "api_version": API_VERSION,
        "beta": False,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": rfc2822(number.date_created),
        "date_updated": rfc2822(number.date_created),
        "emergency_status": "Inactive",
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "friendly_name": number.phone_number,
        "identity_sid": None,
        "origin": "twilio",
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_application_sid": None,
        "sms_fallback_method": "POST",
        "sms_fallback_url": "",
        "sms_method": "POST",
        "sms_url": number.sms_url,
        "status_callback": "",
        "status_callback_method": "POST",
        "trunk_sid": None,
        "uri": f"{account_path(account.sid)}/IncomingPhoneNumbers/{number.sid}.json",
        "voice_application_sid": None,
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_fallback_url": None,
        "voice_method": "POST",
        "voice_url": None,
        "bundle_sid": None,
        "voice_receive_mode": "voice",
        "status": "in-use",
        "type": "local",
    }


def messaging_service_resource(service: MessagingService) -> dict[str, Any]:
    url = f"{MESSAGING_BASE}/v1/Services/{service.sid}"
    return {
        "account_sid": service.account_sid,
        "sid": service.sid,
        "date_created": iso8601(service.date_created),
        "date_updated": iso8601(service.date_created),
        "friendly_name": service.friendly_name,
        "inbound_request_url": service.inbound_request_url,
        "inbound_method": "POST",
        "fallback_url": None,
        "fallback_method": "POST",
        "status_callback": service.status_callback,
        "sticky_sender": True,
        "mms_converter": True,
        "smart_encoding": False,
        "fallback_to_long_code": True,
        "area_code_geomatch": True,
        "validity_period": service.validity_period,
        "scan_message_content": "inherit",
        "synchronous_validation": True,
        "usecase": "undeclared",
        "us_app_to_person_registered": False,
        "use_inbound_webhook_on_number": False,
        "links": {
            name: f"{url}/{path}"
            for name, path in (
                ("phone_numbers", "PhoneNumbers"),
                ("short_codes", "ShortCodes"),
                ("alpha_senders", "AlphaSenders"),
                ("messages", "Messages"),
                ("us_app_to_person", "Compliance/Usa2p"),
                ("us_app_to_person_usecases", "Compliance/Usa2p/Usecases"),
                ("channel_senders", "ChannelSenders"),
                ("destination_alpha_senders", "DestinationAlphaSenders"),
            )
        },
        "url": url,
    }


def service_phone_number_resource(
    service: MessagingService, number: str, sid: str, country_code: str | None
) -> dict[str, Any]:
    return {
        "account_sid": service.account_sid,
        "service_sid": service.sid,
        "sid": sid,
        "date_created": iso8601(service.date_created),
        "date_updated": iso8601(service.date_created),
        "phone_number": number,
        "country_code": country_code,
        "capabilities": ["SMS", "MMS"],
        "url": f"{MESSAGING_BASE}/v1/Services/{service.sid}/PhoneNumbers/{sid}",
    }


def page_envelope(
    path: str,
    key: str,
    items: list[dict[str, Any]],
    page: int,
    page_size: int,
    total: int,
    filters: list[tuple[str, str]],
) -> dict[str, Any]:
    """The 2010-04-01 list envelope (``first_page_uri``, ``next_page_uri``, ``start``, ``end``…)."""

    def uri(page_number: int, token: str | None = None) -> str:
        query = [*filters, ("PageSize", str(page_size)), ("Page", str(page_number))]
        if token:
            query.append(("PageToken", token))
        return f"{path}?{urlencode(query)}"

    start = page * page_size
    has_next = start + len(items) < total
    return {
        "end": start + max(len(items) - 1, 0),
        "first_page_uri": uri(0),
        key: items,
        "next_page_uri": uri(page + 1, f"PA{page + 1}") if has_next else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": uri(page - 1, f"PA{page - 1}") if page > 0 else None,
        "start": start,
        "uri": uri(page),
    }
