"""The one error type that crosses every boundary and becomes API.md's error shape."""

from __future__ import annotations

import uuid
from typing import Any

# API.md's codes and their HTTP statuses: the single table every edge maps through.
STATUS_BY_CODE: dict[str, int] = {
    "malformed_request": 400,
    "invalid_cursor": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "communication_rule": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conversation_closed": 409,
    "idempotency_conflict": 409,
    "not_allowed": 409,
    "cursor_expired": 410,
    "file_too_large": 413,
    "request_too_large": 413,
    "validation_failed": 422,
    "too_many_recipients": 422,
    "messaging_disabled": 422,
    "recipients_unavailable": 422,
    "recipient_unavailable": 422,
    "unsupported_file_type": 422,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
}


class AppError(Exception):
    """A refusal a person may be shown: a stable code, a human message and details."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 500)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppError:
        return cls(str(data.get("code", "internal")), str(data.get("message", "")), data.get("details") or {})

    def __repr__(self) -> str:
        return f"AppError({self.code!r}, {self.message!r}, {self.details!r})"


def not_found(what: str = "conversation") -> AppError:
    """The one answer for both "missing" and "not yours", so hidden things stay hidden."""
    return AppError("not_found", f"No such {what}.")


def as_uuid(value: Any, what: str = "conversation") -> uuid.UUID:
    """An id the system made, or the same `not_found` a missing `what` gets (a malformed id hides nothing)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise not_found(what) from None


def validation(message: str, **details: Any) -> AppError:
    return AppError("validation_failed", message, details)
