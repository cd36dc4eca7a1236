"""Conversations, participants, messages and read state (F5–F18)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway import schemas
from gateway.web import call, reads, takes

bp = Blueprint("conversations", __name__, url_prefix="/api/v1")


def _in(method: str, conversation_id: str, **params: Any) -> Any:
    return call("conversations", method, {"conversation_id": conversation_id, **params})


@bp.post("/conversations/preview")
@takes(schemas.Recipients)
def preview(body: schemas.Recipients) -> Any:
    """Which choices the client may offer for these recipients (the 300 rule)."""
    return call("conversations", "conversations.preview", body.model_dump())


@bp.post("/conversations")
@takes(schemas.NewConversation)
def create_conversation(body: schemas.NewConversation) -> Any:
    """Start a conversation (or post into an existing one) with a first message."""
    return call("conversations", "conversations.create", body.model_dump()), 201


@bp.get("/conversations")
@reads("cursor", "limit")
def list_conversations(params: dict[str, Any]) -> Any:
    """The caller's conversations, newest activity first."""
    return call("conversations", "conversations.list", params)


@bp.get("/conversations/<conversation_id>")
def get_conversation(conversation_id: str) -> Any:
    """One conversation, with its status and what the caller may do."""
    return _in("conversations.get", conversation_id)


@bp.patch("/conversations/<conversation_id>")
@takes(schemas.Rename)
def rename_conversation(conversation_id: str, body: schemas.Rename) -> Any:
    """Rename a group conversation."""
    return _in("conversations.rename", conversation_id, **body.model_dump())


@bp.post("/conversations/<conversation_id>/<any(close, reopen, restore, leave):action>")
def change_conversation(conversation_id: str, action: str) -> Any:
    """Close, reopen, restore or leave a conversation."""
    return _in(f"conversations.{action}", conversation_id)


@bp.delete("/conversations/<conversation_id>")
def delete_conversation(conversation_id: str) -> Any:
    """Delete a course or project conversation: history stays readable, nobody can send."""
    return _in("conversations.delete", conversation_id)


@bp.get("/conversations/<conversation_id>/participants")
def list_participants(conversation_id: str) -> Any:
    """Participants with avatar, name, title and role."""
    return _in("participants.list", conversation_id)


@bp.post("/conversations/<conversation_id>/participants")
@takes(schemas.UserIds)
def add_participants(conversation_id: str, body: schemas.UserIds) -> Any:
    """Add people to a group conversation."""
    return _in("participants.add", conversation_id, **body.model_dump())


@bp.delete("/conversations/<conversation_id>/participants/<user_id>")
def remove_participant(conversation_id: str, user_id: str) -> Any:
    """Remove someone from a group conversation (teachers and admins)."""
    return _in("participants.remove", conversation_id, user_id=user_id)


@bp.get("/conversations/<conversation_id>/messages")
@reads("cursor", "limit")
def list_messages(conversation_id: str, params: dict[str, Any]) -> Any:
    """History, newest first."""
    return _in("messages.list", conversation_id, **params)


@bp.post("/conversations/<conversation_id>/messages")
@takes(schemas.NewMessage)
def send_message(conversation_id: str, body: schemas.NewMessage) -> Any:
    """Send a message; a repeated client_id returns the first message."""
    return _in("messages.send", conversation_id, **body.model_dump()), 201


@bp.post("/conversations/<conversation_id>/read")
@takes(schemas.ReadMark)
def mark_read(conversation_id: str, body: schemas.ReadMark) -> Any:
    """Mark read up to a message (default: everything)."""
    return _in("read.mark", conversation_id, **body.model_dump())


@bp.post("/conversations/<conversation_id>/unread")
@takes(schemas.ReadMark)
def mark_unread(conversation_id: str, body: schemas.ReadMark) -> Any:
    """Mark unread from a message on (default: the latest message)."""
    return _in("read.unmark", conversation_id, **body.model_dump())


@bp.patch("/messages/<message_id>")
@takes(schemas.EditMessage)
def edit_message(message_id: str, body: schemas.EditMessage) -> Any:
    """Edit one's own message."""
    return call("conversations", "messages.edit", {"message_id": message_id, **body.model_dump()})


@bp.delete("/messages/<message_id>")
def delete_message(message_id: str) -> Any:
    """Delete one's own message, or as a teacher or administrator remove someone else's (F24)."""
    return call("conversations", "messages.delete", {"message_id": message_id})


@bp.post("/messages/<message_id>/forward")
@takes(schemas.Forward)
def forward_message(message_id: str, body: schemas.Forward) -> Any:
    """Forward a message to a conversation or to new recipients."""
    return call("conversations", "messages.forward", {"message_id": message_id, **body.model_dump()}), 201
