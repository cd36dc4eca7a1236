"""Opaque, signed page cursors: a client can hold one but not forge or reuse another user's."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from shared.errors import AppError


class Cursors:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="page-cursor")

    def encode(self, user_id: str, kind: str, position: list[Any]) -> str:
        return self._serializer.dumps({"u": user_id, "k": kind, "p": position})

    def decode(self, token: Any, user_id: str, kind: str) -> list[Any] | None:
        """The position in `token`, None for no cursor; `invalid_cursor` if forged, foreign or malformed."""
        if token is None or token == "":
            return None
        if not isinstance(token, str) or len(token) > 2048:
            raise AppError("invalid_cursor", "This page link is not valid. Reload the list.")
        try:
            data = self._serializer.loads(token)
        except BadSignature:
            raise AppError("invalid_cursor", "This page link is not valid. Reload the list.") from None
        if not isinstance(data, dict) or data.get("u") != user_id or data.get("k") != kind:
            raise AppError("invalid_cursor", "This page link is not valid. Reload the list.")
        position = data.get("p")
        if not isinstance(position, list):
            raise AppError("invalid_cursor", "This page link is not valid. Reload the list.")
        return position


SYNC = "sync"


def encode_sync(cursors: Cursors, user_id: str, seq: int) -> str:
    """A position in the change log, good for `/sync` by this user only."""
    return cursors.encode(user_id, SYNC, [seq])


def decode_sync(cursors: Cursors, token: Any, user_id: str) -> int | None:
    """The position in a sync cursor; `invalid_cursor` if forged, another user's or malformed."""
    position = cursors.decode(token, user_id, SYNC)
    if position is None:
        return None
    if len(position) != 1 or not isinstance(position[0], int) or isinstance(position[0], bool) or position[0] < 0:
        raise AppError("invalid_cursor", "This page link is not valid. Reload the list.")
    return position[0]
