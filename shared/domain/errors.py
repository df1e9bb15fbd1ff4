"""Domain errors raised by the service layer; shared.web.app maps each to one problem+json status."""
from __future__ import annotations


class DomainError(Exception):
    """Base of every error a caller may be told about."""

    title = "Error"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    """The request is well-formed but breaks a rule; names the offending fields."""

    title = "Invalid input"

    def __init__(self, errors: list[dict[str, str]], detail: str = "The request has invalid fields."):
        super().__init__(detail)
        self.errors = errors

    @classmethod
    def field(cls, field: str, message: str) -> "InvalidInput":
        return cls([{"field": field, "message": message}], f"{field}: {message}")


class NotFound(DomainError):
    title = "Not found"


class Conflict(DomainError):
    title = "Conflict"


class Busy(Conflict):
    """The organizer is busy at some moment of the slot asked for; `conflicts` are those busy intervals (UTC)."""

    def __init__(self, conflicts: list, detail: str = "The organizer is busy at some moment of this slot."):
        super().__init__(detail)
        self.conflicts = conflicts


class Unauthenticated(DomainError):
    title = "Unauthorized"


class Forbidden(DomainError):
    title = "Forbidden"


class Unavailable(DomainError):
    """A dependency (Google, the database) stayed unavailable after retries; the caller may retry."""

    title = "Service unavailable"


class UpstreamFailed(DomainError):
    """Google answered, but with a definitive failure the caller cannot fix by retrying at once."""

    title = "Bad gateway"


class IdentityRefused(UpstreamFailed):
    """Google refused a delegated token for the calendar owner (unknown or suspended user, delegation not authorized).

    Its detail names the cause, never the user."""


class CancelledEventExists(UpstreamFailed):
    """The Calendar event id derived for the meeting belongs to an event cancelled in Google: it cannot be adopted,
    and inserting that id again is refused, so only a new id (a new creation attempt) can give the meeting an event."""
