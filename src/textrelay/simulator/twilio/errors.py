"""Twilio's error codes as the simulator answers them, kept as data."""

from typing import Any

from starlette.responses import JSONResponse

__all__ = ["DELIVERY_ERRORS", "FAILED_BEFORE_SENDING", "TwilioError", "error_body", "error_response"]

# code: (HTTP status, message template)
API_ERRORS: dict[int, tuple[int, str]] = {
    20001: (400, "{detail}"),
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    20503: (503, "Service Unavailable"),
    21211: (400, "Invalid 'To' Phone Number: {masked}"),
    21212: (400, "The 'From' number {value} is not a valid phone number, shortcode, or alphanumeric sender ID."),
    21408: (400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {value}."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (400, "The 'From' phone number provided ({value}) is not a valid message-capable Twilio phone number "
                 "for this destination/account."),
    21609: (400, "The StatusCallback URL {value} is not a valid URL."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21611: (400, "This 'From' number has exceeded the maximum number of queued messages"),
    21612: (400, "The 'To' phone number: {value}, is not currently reachable using the 'From' phone number via SMS."),
    21614: (400, "'To' number {value} is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21623: (400, "The number of media files exceeds the allowed limit of 10."),
    21624: (400, "Invalid validity period value"),
    21655: (400, "The ContentSid is Invalid."),
    21701: (400, "The Messaging Service Sid {value} is invalid."),
    21705: (400, "The Messaging Service Sid {value} is invalid."),
    35111: (400, "SendAt is required when ScheduleType is set."),
    35114: (400, "SendAt must be between 300 seconds and 35 days in the future."),
    35118: (400, "MessagingServiceSid is required to schedule a message."),
}

# Errors a message can end with after it was accepted (callback ``ErrorCode``, resource ``error_code``).
DELIVERY_ERRORS: dict[int, str] = {
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30034: "Message from an Unregistered Number",
    30036: "Validity period expired",
    30450: "Message delivery blocked by SMS Pumping Protection",
}

# These end ``failed`` (never handed to a carrier); the others end ``undelivered`` after ``sent``.
FAILED_BEFORE_SENDING = frozenset({30001, 30002, 30034, 30036, 30450})


class TwilioError(Exception):
    """An error answer in Twilio's shape: ``{"code", "message", "more_info", "status"}``."""

    def __init__(self, code: int, **values: str) -> None:
        status, template = API_ERRORS[code]
        self.code = code
        self.status = status
        self.message = template.format(**values)
        super().__init__(f"{code}: {self.message}")


def error_body(code: int, status: int, message: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    if code == 20003:
        body["detail"] = "Your AccountSid or AuthToken was incorrect."
    return dict(sorted(body.items()))


def error_response(error: TwilioError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(error.code, error.status, error.message), error.status, headers=headers)
