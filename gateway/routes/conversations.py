"""Conversations and messages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway import schemas
from gateway.web import call, parse_body, query

bp = Blueprint("conversations", __name__, url_prefix="/api/v1")


@bp.post("/conversations")
def create_conversation() -> Any:
    body = parse_body(schemas.NewConversation)
    return call("conversations", "conversations.create", body.model_dump()), 201


@bp.get("/conversations")
def list_conversations() -> Any:
    return call("conversations", "conversations.list", query("cursor", "limit"))


@bp.get("/conversations/<conversation_id>")
def get_conversation(conversation_id: str) -> Any:
    return call("conversations", "conversations.get", {"conversation_id": conversation_id})


@bp.get("/conversations/<conversation_id>/messages")
def list_messages(conversation_id: str) -> Any:
    return call("conversations", "messages.list", {"conversation_id": conversation_id, **query("cursor", "limit")})


@bp.post("/conversations/<conversation_id>/messages")
def send_message(conversation_id: str) -> Any:
    body = parse_body(schemas.NewMessage)
    return call("conversations", "messages.send", {"conversation_id": conversation_id, **body.model_dump()}), 201
