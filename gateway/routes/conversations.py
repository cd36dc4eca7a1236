"""Conversations, participants, messages and read state (F5–F18)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway import schemas
from gateway.web import call, parse_body, query

bp = Blueprint("conversations", __name__, url_prefix="/api/v1")


def _conversations(method: str, conversation_id: str, **params: Any) -> Any:
    return call("conversations", method, {"conversation_id": conversation_id, **params})


@bp.post("/conversations/preview")
def preview() -> Any:
    body = parse_body(schemas.Recipients)
    return call("conversations", "conversations.preview", body.model_dump())


@bp.post("/conversations")
def create_conversation() -> Any:
    body = parse_body(schemas.NewConversation)
    return call("conversations", "conversations.create", body.model_dump()), 201


@bp.get("/conversations")
def list_conversations() -> Any:
    return call("conversations", "conversations.list", query("cursor", "limit"))


@bp.get("/conversations/<conversation_id>")
def get_conversation(conversation_id: str) -> Any:
    return _conversations("conversations.get", conversation_id)


@bp.patch("/conversations/<conversation_id>")
def rename_conversation(conversation_id: str) -> Any:
    return _conversations("conversations.rename", conversation_id, **parse_body(schemas.Rename).model_dump())


@bp.post("/conversations/<conversation_id>/<any(close, reopen, restore, leave):action>")
def change_conversation(conversation_id: str, action: str) -> Any:
    return _conversations(f"conversations.{action}", conversation_id)


@bp.delete("/conversations/<conversation_id>")
def delete_conversation(conversation_id: str) -> Any:
    return _conversations("conversations.delete", conversation_id)


@bp.get("/conversations/<conversation_id>/participants")
def list_participants(conversation_id: str) -> Any:
    return _conversations("participants.list", conversation_id)


@bp.post("/conversations/<conversation_id>/participants")
def add_participants(conversation_id: str) -> Any:
    return _conversations("participants.add", conversation_id, **parse_body(schemas.UserIds).model_dump())


@bp.delete("/conversations/<conversation_id>/participants/<user_id>")
def remove_participant(conversation_id: str, user_id: str) -> Any:
    return _conversations("participants.remove", conversation_id, user_id=user_id)


@bp.get("/conversations/<conversation_id>/messages")
def list_messages(conversation_id: str) -> Any:
    return _conversations("messages.list", conversation_id, **query("cursor", "limit"))


@bp.post("/conversations/<conversation_id>/messages")
def send_message(conversation_id: str) -> Any:
    return _conversations("messages.send", conversation_id, **parse_body(schemas.NewMessage).model_dump()), 201


@bp.post("/conversations/<conversation_id>/read")
def mark_read(conversation_id: str) -> Any:
    return _conversations("read.mark", conversation_id, **parse_body(schemas.ReadMark).model_dump())


@bp.post("/conversations/<conversation_id>/unread")
def mark_unread(conversation_id: str) -> Any:
    return _conversations("read.unmark", conversation_id, **parse_body(schemas.ReadMark).model_dump())


@bp.patch("/messages/<message_id>")
def edit_message(message_id: str) -> Any:
    body = parse_body(schemas.EditMessage)
    return call("conversations", "messages.edit", {"message_id": message_id, **body.model_dump()})


@bp.delete("/messages/<message_id>")
def delete_message(message_id: str) -> Any:
    return call("conversations", "messages.delete", {"message_id": message_id})


@bp.post("/messages/<message_id>/forward")
def forward_message(message_id: str) -> Any:
    body = parse_body(schemas.Forward)
    return call("conversations", "messages.forward", {"message_id": message_id, **body.model_dump()}), 201
