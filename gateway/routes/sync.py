"""Catch-up after a gap (F29): every change the caller could see since their cursor."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway.web import call, reads

bp = Blueprint("sync", __name__, url_prefix="/api/v1")


@bp.get("/sync")
@reads("since", "limit")
def sync(params: dict[str, Any]) -> Any:
    """`{"changes": [...], "cursor": ..., "has_more": bool}`, oldest change first, each shaped as its
    Socket.IO event plus `event` (its name). Without `since`, no changes and the current cursor.
    A cursor too old to serve answers 410 `cursor_expired`: reload, then sync from the new cursor."""
    return call("sync", "sync.changes", params)
