"""Opaque, signed page cursors: a client can hold one but not forge or reuse another user's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from shared.errors import AppError, validation

PAGE_DEFAULT = 30
PAGE_MAX = 100


def check_limit(raw: Any, *, default: int = PAGE_DEFAULT, maximum: int = PAGE_MAX) -> int:
    """A page size from a request: `default` when absent, else a whole number from 1 to `maximum`."""
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise validation("limit must be a whole number.", field="limit") from None
    if not 1 <= limit <= maximum:
        raise validation(f"limit must be between 1 and {maximum}.", field="limit")
    return limit


def invalid_cursor() -> AppError:
    return AppError("invalid_cursor", "This page link is not valid. Reload the list.")


class Cursors:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="page-cursor")
        self.sync_key = hashlib.sha256(f"sync-cursor\x00{secret}".encode()).digest()

    def encode(self, user_id: str, kind: str, position: list[Any]) -> str:
        return self._serializer.dumps({"u": user_id, "k": kind, "p": position})

    def decode(self, token: Any, user_id: str, kind: str) -> list[Any] | None:
        """The position in `token`, None for no cursor; `invalid_cursor` if forged, foreign or malformed."""
        if token is None or token == "":
            return None
        if not isinstance(token, str) or len(token) > 2048:
            raise invalid_cursor()
        try:
            data = self._serializer.loads(token)
        except BadSignature:
            raise invalid_cursor() from None
        if not isinstance(data, dict) or data.get("u") != user_id or data.get("k") != kind:
            raise invalid_cursor()
        position = data.get("p")
        if not isinstance(position, list):
            raise invalid_cursor()
        return position


# Sync cursors are pushed with every event, one per recipient, so they are made cheaply: the
# position and a truncated HMAC of (user, position), instead of the page cursors' JSON.
def _sync_signature(cursors: Cursors, user_id: str, seq: int) -> str:
    digest = hmac.new(cursors.sync_key, f"{user_id}\x00{seq}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def encode_sync(cursors: Cursors, user_id: str, seq: int) -> str:
    """A position in the change log, good for `/sync` by this user only."""
    return f"{seq}.{_sync_signature(cursors, user_id, seq)}"


def decode_sync(cursors: Cursors, token: Any, user_id: str) -> int | None:
    """The position in a sync cursor; `invalid_cursor` if forged, another user's or malformed."""
    if token is None or token == "":
        return None
    refused = AppError("invalid_cursor", "This sync cursor is not valid. Reload, then sync from a fresh cursor.")
    if not isinstance(token, str) or len(token) > 64:
        raise refused
    position, _, signature = token.partition(".")
    if not position.isascii() or not position.isdigit() or len(position) > 18:
        raise refused
    seq = int(position)
    if not hmac.compare_digest(signature, _sync_signature(cursors, user_id, seq)):
        raise refused
    return seq


def decode_time_id(cursors: Cursors, token: Any, user_id: str, kind: str) -> tuple[datetime, uuid.UUID] | None:
    """A (time, id) keyset position from a page cursor: lists ordered newest first, ties by id."""
    position = cursors.decode(token, user_id, kind)
    if not position:
        return None
    try:
        return datetime.fromisoformat(position[0]), uuid.UUID(position[1])
    except (ValueError, TypeError, IndexError):
        raise invalid_cursor() from None


def next_time_id(cursors: Cursors, rows: list[Any], limit: int, user_id: str, kind: str, at: str) -> str | None:
    """The cursor after a page of `limit` rows (fetched one more, to know), keyed by row.<at> and row.id."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return cursors.encode(user_id, kind, [getattr(last, at).isoformat(), str(last.id)])
