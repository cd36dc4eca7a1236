"""Message search (F21, F22): across the caller's conversations, or within one."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway.web import call, reads

bp = Blueprint("search", __name__, url_prefix="/api/v1")


@bp.get("/search")
@reads("q", "cursor", "limit")
def search_all(params: dict[str, Any]) -> Any:
    """The caller's conversations with a matching message, each once, newest match first.

    Each item: the conversation, its newest matching message, and a snippet (HTML-escaped text
    with the matches in <mark>).
    """
    return call("conversations", "search.all", params)


@bp.get("/conversations/<conversation_id>/search")
@reads("q", "cursor", "limit")
def search_conversation(conversation_id: str, params: dict[str, Any]) -> Any:
    """Matching messages of one conversation, newest first, each with a highlighted snippet."""
    return call("conversations", "search.conversation", {"conversation_id": conversation_id, **params})
