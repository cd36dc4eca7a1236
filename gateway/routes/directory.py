"""People, organisations and who may talk to whom."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g

from gateway.web import call, reads
from shared.errors import AppError

bp = Blueprint("directory", __name__, url_prefix="/api/v1")


@bp.get("/me")
def me() -> Any:
    """The caller, with `unread_total` for the badge."""
    users = call("directory", "users.get", {"ids": [g.user_id]})["users"]
    if not users:
        raise AppError("unauthenticated", "Your account is not in the roster.")
    unread = call("conversations", "unread.total")["unread_total"]
    return {**users[0], "unread_total": unread}


@bp.get("/directory/search")
@reads("q")
def directory_search(params: dict[str, Any]) -> Any:
    """Recipients by name: people, courses and projects within the caller's reach."""
    return call("directory", "directory.search", {"q": params["q"] or ""})
