"""One hierarchy of service errors; the HTTP layer maps each to a problem+json answer."""

from __future__ import annotations

from typing import Any, Self


class TextrelayError(Exception):
    """Base of every error the service layer raises on purpose."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra

    @classmethod
    def field(cls, field: str, message: str) -> Self:
        """The error for one named field."""
        return cls(f"{field}: {message}", errors=[{"field": field, "message": message}])


class BadRequest(TextrelayError):
    """The request itself is malformed (a provider webhook's missing field, undecodable body)."""

    status = 400
    title = "Bad request"


class ValidationFailed(TextrelayError):
    """Input is well-formed but breaks a rule; ``errors`` names each field."""

    status = 422
    title = "Validation failed"


class NotFound(TextrelayError):
    status = 404
    title = "Not found"


class Conflict(TextrelayError):
    status = 409
    title = "Conflict"


class Unauthorized(TextrelayError):
    status = 401
    title = "Unauthorized"


class Forbidden(TextrelayError):
    status = 403
    title = "Forbidden"


class ProviderError(TextrelayError):
    """The provider refused or could not be reached during a synchronous call (verify)."""

    status = 502
    title = "Provider error"
