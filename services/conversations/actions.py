"""What the conversations service does, named by contract:
`access_*` returns what the caller may see or raises `not_found`; `check_*` validates;
`do_*` changes state and records its events in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from services.conversations import domain
from shared.cursor import Cursors
from shared.errors import AppError, not_found, validation
from shared.outbox import add_event

SERVICE = "conversations"
PAGE_DEFAULT = 30
PAGE_MAX = 100


def _iso(value: datetime | None) -> str | None:
    """UTC with microseconds, always the same width, as the database's own previews write it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def _uuid(value: Any, what: str = "conversation") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        raise not_found(what) from None


def check_limit(raw: Any) -> int:
    if raw is None or raw == "":
        return PAGE_DEFAULT
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise validation("limit must be a whole number.", field="limit") from None
    if not 1 <= limit <= PAGE_MAX:
        raise validation(f"limit must be between 1 and {PAGE_MAX}.", field="limit")
    return limit


# People -------------------------------------------------------------------------------------


def upsert_people(session: Connection, users: list[dict[str, Any]]) -> None:
    """Refresh the local copy of roster users this service shows (names, roles, avatars)."""
    if not users:
        return
    session.execute(
        text(
            """
            INSERT INTO people (user_id, name, role, title, avatar_url, enabled)
            VALUES (:id, :name, :role, :title, :avatar_url, :enabled)
            ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, role = excluded.role,
                title = excluded.title, avatar_url = excluded.avatar_url, enabled = excluded.enabled
            """
        ),
        [
            {
                "id": u["id"] if "id" in u else u["user_id"],
                "name": u["name"],
                "role": u["role"],
                "title": u.get("title") or "",
                "avatar_url": u.get("avatar_url"),
                "enabled": bool(u.get("enabled", True)),
            }
            for u in users
        ],
    )


def update_known_person(session: Connection, user: dict[str, Any]) -> None:
    """Apply a directory change to someone this service already shows; strangers are fetched when needed."""
    session.execute(
        text(
            "UPDATE people SET name = :name, role = :role, title = :title, enabled = :enabled WHERE user_id = :user_id"
        ),
        {k: user.get(k) for k in ("user_id", "name", "role", "title", "enabled")},
    )


# Views --------------------------------------------------------------------------------------


def message_view(row: Any) -> dict[str, Any]:
    """A message as API.md shows it; `row` joins the message with its sender's person row."""
    return {
        "id": str(row.id),
        "conversation_id": str(row.conversation_id),
        "seq": row.seq,
        "sender": {"id": row.sender_id, "name": row.sender_name, "avatar_url": row.sender_avatar},
        "body": row.body if row.deleted is None else "",
        "links": row.links if row.deleted is None else [],
        "attachments": [],
        "created_at": _iso(row.created_at),
        "edited_at": _iso(row.edited_at),
        "deleted": row.deleted,
        "client_id": row.client_id,
    }


_MESSAGE_SELECT = """
    SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.body, m.links, m.client_id, m.request_hash,
           m.created_at, m.edited_at, m.deleted,
           coalesce(p.name, 'Unknown user') AS sender_name, p.avatar_url AS sender_avatar
    FROM messages m LEFT JOIN people p ON p.user_id = m.sender_id
"""

_CONVERSATION_SELECT = """
    SELECT c.id, c.type, c.name, c.status, c.created_at, c.last_seq, c.last_activity_at, c.last_message,
           me.last_read_seq,
           (SELECT count(*) FROM participants a WHERE a.conversation_id = c.id) AS participant_count,
           ARRAY(SELECT coalesce(pp.name, 'Unknown user') FROM participants o
                 LEFT JOIN people pp ON pp.user_id = o.user_id
                 WHERE o.conversation_id = c.id AND o.user_id <> me.user_id
                 ORDER BY o.joined_at, o.user_id LIMIT 3) AS other_names
    FROM participants me JOIN conversations c ON c.id = me.conversation_id
"""


def conversation_view(row: Any) -> dict[str, Any]:
    """A conversation as the caller sees it (their unread count, their possible actions)."""
    others = row.participant_count - 1
    can = ["read"] + (["send"] if row.status == "open" else [])
    return {
        "id": str(row.id),
        "type": row.type,
        "name": domain.display_name(row.name, list(row.other_names), others),
        "participant_count": row.participant_count,
        "last_message": row.last_message,
        "last_activity_at": _iso(row.last_activity_at),
        "unread_count": domain.unread(row.last_seq, row.last_read_seq),
        "status": row.status,
        "can": can,
        "created_at": _iso(row.created_at),
    }


# Access -------------------------------------------------------------------------------------


def access_conversation(session: Connection, caller_id: str, conversation_id: Any) -> Any:
    """The conversation row as the caller sees it, or `not_found` (missing and forbidden alike)."""
    row = session.execute(
        text(_CONVERSATION_SELECT + " WHERE me.user_id = :me AND c.id = :id"),
        {"me": caller_id, "id": _uuid(conversation_id)},
    ).first()
    if row is None:
        raise not_found()
    return row


def get_conversation(session: Connection, caller_id: str, conversation_id: Any) -> dict[str, Any]:
    return conversation_view(access_conversation(session, caller_id, conversation_id))


def _audience(session: Connection, conversation_id: uuid.UUID) -> list[str]:
    """Who takes part right now: the people who must see this conversation's events."""
    rows = session.execute(
        text("SELECT user_id FROM participants WHERE conversation_id = :id ORDER BY user_id"), {"id": conversation_id}
    )
    return [r.user_id for r in rows]


# Messages -----------------------------------------------------------------------------------


def _existing_send(session: Connection, caller_id: str, client_id: str | None) -> Any:
    if client_id is None:
        return None
    return session.execute(
        text(_MESSAGE_SELECT + " WHERE m.sender_id = :me AND m.client_id = :client_id"),
        {"me": caller_id, "client_id": client_id},
    ).first()


def access_participation(session: Connection, caller_id: str, conversation_id: Any) -> Any:
    """(id, status, last_seq) of a conversation the caller takes part in, or `not_found`: the cheap check."""
    row = session.execute(
        text(
            "SELECT c.id, c.status, c.last_seq FROM participants me JOIN conversations c ON c.id = me.conversation_id "
            "WHERE me.user_id = :me AND c.id = :id"
        ),
        {"me": caller_id, "id": _uuid(conversation_id)},
    ).first()
    if row is None:
        raise not_found()
    return row


def do_send_message(
    session: Connection, caller_id: str, conversation_id: Any, body: Any, client_id: Any
) -> dict[str, Any]:
    """Store a message and its event; a retry with the same `client_id` returns the first message."""
    client_id = domain.check_client_id(client_id)
    conversation = access_participation(session, caller_id, conversation_id)
    fingerprint = domain.request_hash("message", str(conversation.id), body)
    existing = _existing_send(session, caller_id, client_id)
    if existing is not None:
        domain.idempotent_replay(existing.request_hash, fingerprint)
        return message_view(existing)
    text_body = domain.check_body(body)
    return _store_message(session, caller_id, conversation.id, text_body, client_id, fingerprint)


# One round trip for the hot path: number the message (locking the conversation row, so sends
# to one conversation are serialised), store it, update the list preview, move the sender's read
# mark (own messages never count as unread), and read the audience at this very moment.
_STORE_MESSAGE = text(
    """
    WITH bumped AS (
        UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = now(),
            last_message = jsonb_build_object(
                'id', CAST(:mid AS text), 'preview', CAST(:preview AS text), 'sender_id', CAST(:me AS text),
                'sender_name', coalesce((SELECT name FROM people WHERE user_id = :me), 'Unknown user'),
                'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        WHERE id = :cid AND status = 'open'
        RETURNING last_seq
    ), inserted AS (
        INSERT INTO messages (id, conversation_id, seq, sender_id, body, links, client_id, request_hash, created_at)
        SELECT :mid, :cid, last_seq, :me, :body, CAST(:links AS jsonb), :client_id, :hash, now() FROM bumped
        RETURNING *
    ), marked AS (
        UPDATE participants p SET last_read_seq = b.last_seq FROM bumped b
        WHERE p.conversation_id = :cid AND p.user_id = :me
    )
    SELECT i.id, i.conversation_id, i.seq, i.sender_id, i.body, i.links, i.client_id, i.request_hash,
           i.created_at, i.edited_at, i.deleted,
           coalesce(p.name, 'Unknown user') AS sender_name, p.avatar_url AS sender_avatar,
           ARRAY(SELECT user_id FROM participants WHERE conversation_id = :cid ORDER BY user_id) AS audience
    FROM inserted i LEFT JOIN people p ON p.user_id = i.sender_id
    """
)


def _store_message(
    session: Connection, caller_id: str, conversation_id: uuid.UUID, body: str, client_id: str | None, fingerprint: str
) -> dict[str, Any]:
    row = session.execute(
        _STORE_MESSAGE,
        {
            "mid": uuid.uuid4(),
            "cid": conversation_id,
            "me": caller_id,
            "body": body,
            "preview": domain.preview(body),
            "links": _json(domain.find_links(body)),
            "client_id": client_id,
            "hash": fingerprint,
        },
    ).first()
    if row is None:
        raise AppError("conversation_closed", "This conversation is closed. No new messages can be sent.")
    message = message_view(row)
    add_event(
        session,
        SERVICE,
        "conversations.message.created",
        {"message": message, "conversation_id": str(conversation_id)},
        audience=list(row.audience),
    )
    return message


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def list_messages(
    session: Connection, cursors: Cursors, caller_id: str, conversation_id: Any, cursor: Any, limit: Any
) -> dict[str, Any]:
    """A page of history, newest first; the cursor continues to older messages."""
    conversation = access_participation(session, caller_id, conversation_id)
    limit = check_limit(limit)
    position = cursors.decode(cursor, caller_id, f"messages:{conversation.id}")
    before = int(position[0]) if position else conversation.last_seq + 1
    rows = session.execute(
        text(_MESSAGE_SELECT + " WHERE m.conversation_id = :id AND m.seq < :before ORDER BY m.seq DESC LIMIT :n"),
        {"id": conversation.id, "before": before, "n": limit + 1},
    ).all()
    items = [message_view(r) for r in rows[:limit]]
    next_cursor = (
        cursors.encode(caller_id, f"messages:{conversation.id}", [rows[limit - 1].seq]) if len(rows) > limit else None
    )
    return {"items": items, "next_cursor": next_cursor}


# Conversations ------------------------------------------------------------------------------


def list_conversations(
    session: Connection, cursors: Cursors, caller_id: str, cursor: Any, limit: Any
) -> dict[str, Any]:
    """The caller's conversations, most recent activity first."""
    limit = check_limit(limit)
    position = cursors.decode(cursor, caller_id, "conversations")
    params: dict[str, Any] = {"me": caller_id, "n": limit + 1}
    where = " WHERE me.user_id = :me"
    if position:
        try:
            params["at"], params["after_id"] = datetime.fromisoformat(position[0]), uuid.UUID(position[1])
        except (ValueError, TypeError, IndexError):
            raise AppError("invalid_cursor", "This page link is not valid. Reload the list.") from None
        where += " AND (c.last_activity_at, c.id) < (:at, :after_id)"
    rows = session.execute(
        text(_CONVERSATION_SELECT + where + " ORDER BY c.last_activity_at DESC, c.id DESC LIMIT :n"), params
    ).all()
    items = [conversation_view(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = cursors.encode(caller_id, "conversations", [last.last_activity_at.isoformat(), str(last.id)])
    return {"items": items, "next_cursor": next_cursor}


def unread_total(session: Connection, caller_id: str) -> int:
    return int(
        session.execute(
            text(
                "SELECT coalesce(sum(greatest(c.last_seq - p.last_read_seq, 0)), 0) FROM participants p "
                "JOIN conversations c ON c.id = p.conversation_id WHERE p.user_id = :me"
            ),
            {"me": caller_id},
        ).scalar_one()
    )


def do_start_direct(
    session: Connection,
    caller_id: str,
    other: dict[str, Any],
    me: dict[str, Any],
    body: Any,
    client_id: Any,
) -> dict[str, Any]:
    """Find or make the one 1:1 conversation of the two people, and post the first message in it."""
    client_id = domain.check_client_id(client_id)
    fingerprint = domain.request_hash("direct", other["id"], body)
    existing = _existing_send(session, caller_id, client_id)
    if existing is not None:
        domain.idempotent_replay(existing.request_hash, fingerprint)
        return {
            "conversation": get_conversation(session, caller_id, existing.conversation_id),
            "message": message_view(existing),
        }
    text_body = domain.check_body(body)
    upsert_people(session, [me, other])
    key = domain.pair_key(caller_id, other["id"])
    created = session.execute(
        text(
            """
            INSERT INTO conversations (type, pair_key, created_by) VALUES ('direct', :key, :me)
            ON CONFLICT (pair_key) DO NOTHING RETURNING id
            """
        ),
        {"key": key, "me": caller_id},
    ).first()
    if created is None:
        conversation_id = session.execute(
            text("SELECT id FROM conversations WHERE pair_key = :key"), {"key": key}
        ).scalar_one()
    else:
        conversation_id = created.id
        session.execute(
            text("INSERT INTO participants (conversation_id, user_id) VALUES (:id, :a), (:id, :b)"),
            {"id": conversation_id, "a": caller_id, "b": other["id"]},
        )
        # Announced before its first message, so clients learn of the conversation first.
        for user_id in (caller_id, other["id"]):
            add_event(
                session,
                SERVICE,
                "conversations.conversation.created",
                {"conversation": get_conversation(session, user_id, conversation_id)},
                audience=[user_id],
            )
    message = _store_message(session, caller_id, conversation_id, text_body, client_id, fingerprint)
    return {"conversation": get_conversation(session, caller_id, conversation_id), "message": message}
