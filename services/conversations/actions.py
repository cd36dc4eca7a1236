"""What the conversations service does with messages, read state and lists.

Named by contract: `access_*` returns what the caller may see or raises `not_found`;
`check_*` validates; `do_*` changes state and records its events in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Connection, text

from services.conversations import domain
from services.conversations.views import (
    CONVERSATION_SELECT,
    I_BLOCKED,
    MESSAGE_SELECT,
    conversation_view,
    iso,
    message_view,
)
from shared.cursor import Cursors, check_limit, decode_time_id, invalid_cursor, next_time_id
from shared.errors import AppError, as_uuid, not_found
from shared.outbox import add_event, add_events

SERVICE = "conversations"

# Kept importable from here: search and the handlers use them.
__all__ = ["CONVERSATION_SELECT", "MESSAGE_SELECT", "conversation_view", "message_view"]


def to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# People -------------------------------------------------------------------------------------


# One statement for any number of people, in user id order: two transactions upserting overlapping
# people lock their rows (and insert their index entries) in the same order, so they queue instead
# of deadlocking; a row that already says the same is left alone (no new row version, no WAL).
_UPSERT_PEOPLE = text(
    """
    INSERT INTO people (user_id, name, role, title, avatar_url, enabled)
    SELECT * FROM unnest(
        CAST(:ids AS text[]), CAST(:names AS text[]), CAST(:roles AS text[]), CAST(:titles AS text[]),
        CAST(:avatars AS text[]), CAST(:enabled AS boolean[])
    ) ORDER BY 1
    ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, role = excluded.role,
        title = excluded.title, avatar_url = excluded.avatar_url, enabled = excluded.enabled
    WHERE (people.name, people.role, people.title, people.avatar_url, people.enabled)
        IS DISTINCT FROM (excluded.name, excluded.role, excluded.title, excluded.avatar_url, excluded.enabled)
    """
)


def upsert_people(session: Connection, users: list[dict[str, Any]]) -> None:
    """Refresh the local copy of roster users this service shows (names, roles, avatars)."""
    by_id = {str(u["id"] if "id" in u else u["user_id"]): u for u in users}
    if not by_id:
        return
    ids = sorted(by_id)
    people = [by_id[i] for i in ids]
    session.execute(
        _UPSERT_PEOPLE,
        {
            "ids": ids,
            "names": [u["name"] for u in people],
            "roles": [u["role"] for u in people],
            "titles": [u.get("title") or "" for u in people],
            "avatars": [u.get("avatar_url") for u in people],
            "enabled": [bool(u.get("messaging_enabled", u.get("enabled", True))) for u in people],
        },
    )


def update_known_person(session: Connection, user: dict[str, Any]) -> None:
    """Apply a directory change to someone this service already shows; strangers are fetched when needed."""
    session.execute(
        text("UPDATE people SET name = :name, role = :role, title = :title WHERE user_id = :user_id"),
        {k: user.get(k) for k in ("user_id", "name", "role", "title")},
    )


# Access -------------------------------------------------------------------------------------


def access_conversation(session: Connection, caller_id: str, conversation_id: Any) -> Any:
    """The conversation row as the caller sees it, or `not_found` (missing and forbidden alike)."""
    row = session.execute(
        text(CONVERSATION_SELECT + " WHERE me.user_id = :me AND c.id = :id"),
        {"me": caller_id, "id": as_uuid(conversation_id)},
    ).first()
    if row is None:
        raise not_found()
    return row


def access_participation(session: Connection, caller_id: str, conversation_id: Any) -> Any:
    """A conversation the caller takes part in, or `not_found`: the cheap check on the hot path.

    Also says whether messaging is on for the caller, for the course, and (1:1) for the other person.
    """
    row = session.execute(
        text(
            f"""
            SELECT c.id, c.type, c.status, c.last_seq, c.messaging_blocked,
                   coalesce(mine.enabled, true) AS my_messaging,
                   CASE WHEN c.type = 'direct' THEN
                       (SELECT coalesce(bool_and(pp.enabled), true) FROM participants o
                        JOIN people pp ON pp.user_id = o.user_id
                        WHERE o.conversation_id = c.id AND o.user_id <> me.user_id AND o.via <> 'report')
                   END AS other_messaging,
                   CASE WHEN c.type = 'direct' THEN
                       (SELECT min(pp.name) FROM participants o JOIN people pp ON pp.user_id = o.user_id
                        WHERE o.conversation_id = c.id AND o.user_id <> me.user_id AND o.via <> 'report')
                   END AS other_name,
                   {I_BLOCKED} AS i_blocked,
                   CASE WHEN c.type = 'direct' THEN EXISTS (
                       SELECT 1 FROM participants o
                       JOIN user_blocks b ON b.blocker_id = o.user_id AND b.blocked_id = me.user_id
                       WHERE o.conversation_id = c.id AND o.user_id <> me.user_id) ELSE false END AS blocked_me
            FROM participants me JOIN conversations c ON c.id = me.conversation_id
            LEFT JOIN people mine ON mine.user_id = me.user_id
            WHERE me.user_id = :me AND c.id = :id
            """
        ),
        {"me": caller_id, "id": as_uuid(conversation_id)},
    ).first()
    if row is None:
        raise not_found()
    return row


def access_message(session: Connection, caller_id: str, message_id: Any) -> Any:
    """A message in a conversation the caller takes part in, or `not_found`."""
    row = session.execute(
        text(
            MESSAGE_SELECT + " JOIN participants me ON me.conversation_id = m.conversation_id AND me.user_id = :me "
            "WHERE m.id = :id"
        ),
        {"me": caller_id, "id": as_uuid(message_id, "message")},
    ).first()
    if row is None:
        raise not_found("message")
    return row


def get_conversation(session: Connection, caller_id: str, conversation_id: Any) -> dict[str, Any]:
    return conversation_view(access_conversation(session, caller_id, conversation_id))


def audience(session: Connection, conversation_id: uuid.UUID) -> list[str]:
    """Who takes part right now: the people who must see this conversation's events."""
    rows = session.execute(
        text("SELECT user_id FROM participants WHERE conversation_id = :id ORDER BY user_id"), {"id": conversation_id}
    )
    return [r.user_id for r in rows]


def check_open(conversation: Any) -> None:
    """Refuse a new message where none may go: closed, one-way, or messaging turned off (F2, seed 7.4)."""
    if conversation.status != "open":
        raise AppError("conversation_closed", "This conversation is closed. No new messages can be sent.")
    if conversation.type == "mass":
        raise AppError("not_allowed", "Mass messages cannot be answered.", {"action": "send"})
    if not conversation.my_messaging:
        raise AppError("messaging_disabled", "Messaging is turned off for your account.", {"reason": "sender"})
    if conversation.messaging_blocked:
        raise AppError(
            "messaging_disabled",
            "Messaging is turned off in this course. No new messages can be sent.",
            {"reason": "course"},
        )
    if conversation.other_messaging is False:
        raise AppError(
            "messaging_disabled",
            f"Your message cannot be delivered: {conversation.other_name} cannot receive messages.",
            {"reason": "recipient"},
        )
    check_blocks(conversation.other_name, i_blocked=conversation.i_blocked, blocked_me=conversation.blocked_me)


def check_blocks(other_name: str | None, *, i_blocked: bool, blocked_me: bool) -> None:
    """A 1:1 where one blocked the other takes no messages; the blocked one is not told why."""
    if blocked_me:
        raise AppError("recipient_unavailable", f"{other_name} is not available", {"reason": "unavailable"})
    if i_blocked:
        raise AppError("not_allowed", f"You blocked {other_name}. Unblock them to send a message.", {"action": "send"})


# Sending ------------------------------------------------------------------------------------


def may_read_attachment(session: Connection, caller_id: str, attachment_id: Any) -> bool:
    """Whether a message the caller can see carries this file (deleted messages carry none)."""
    try:
        ident = str(uuid.UUID(str(attachment_id)))
    except ValueError:
        return False
    return (
        session.execute(
            text(
                "SELECT 1 FROM messages m JOIN participants p ON p.conversation_id = m.conversation_id "
                "WHERE p.user_id = :me AND m.deleted IS NULL AND m.attachments @> CAST(:probe AS jsonb) LIMIT 1"
            ),
            {"me": caller_id, "probe": to_json([{"id": ident}])},
        ).first()
        is not None
    )


def existing_send(session: Connection, caller_id: str, client_id: str | None) -> Any:
    if client_id is None:
        return None
    return session.execute(
        text(MESSAGE_SELECT + " WHERE m.sender_id = :me AND m.client_id = :client_id"),
        {"me": caller_id, "client_id": client_id},
    ).first()


def do_send_message(
    session: Connection,
    caller_id: str,
    conversation_id: Any,
    body: Any,
    client_id: Any,
    *,
    attachment_ids: list[str] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    message_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Store a message and its event; a retry with the same `client_id` returns the first message.

    `attachments` are the files already claimed for `message_id` (none on a retry, which only
    needs `attachment_ids` to recognise the request).
    """
    client_id = domain.check_client_id(client_id)
    conversation = access_participation(session, caller_id, conversation_id)
    asked = ("message", str(conversation.id), body) + ((sorted(attachment_ids),) if attachment_ids else ())
    fingerprint = domain.request_hash(*asked)
    # The common case (an open conversation) finds a retried send inside the store statement.
    if conversation.status != "open" or conversation.type == "individual_batch":
        existing = existing_send(session, caller_id, client_id)
        if existing is not None:
            domain.idempotent_replay(existing.request_hash, fingerprint)
            return message_view(existing)
    text_body = domain.check_body(body, has_attachments=bool(attachment_ids))
    check_open(conversation)
    if conversation.type == "individual_batch":
        return send_to_batch(
            session, caller_id, conversation.id, text_body, client_id, fingerprint, attachments=attachments
        )
    message = store_message(
        session,
        caller_id,
        conversation.id,
        text_body,
        client_id=client_id,
        fingerprint=fingerprint,
        attachments=attachments,
        message_id=message_id,
    )
    return with_notices(session, conversation, caller_id, message)


def with_notices(session: Connection, conversation: Any, caller_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """In a course or project conversation, tell the sender which members cannot receive it (seed 7.4)."""
    if conversation.type not in domain.GROUP_KINDS:
        return message
    rows = session.execute(
        text(
            "SELECT p.user_id, pp.name FROM participants p JOIN people pp ON pp.user_id = p.user_id "
            "WHERE p.conversation_id = :cid AND p.user_id <> :me AND NOT pp.enabled ORDER BY pp.name"
        ),
        {"cid": conversation.id, "me": caller_id},
    ).all()
    if not rows:
        return message
    notice = domain.members_unavailable([r.name for r in rows], [r.user_id for r in rows])
    return {**message, "notices": [notice]}


# One round trip for the hot path: unless the same send was made before (its client_id), number
# the message (locking the conversation row, so sends to one conversation are serialised),
# store it, update the list preview, count it unread for everyone else, move the sender's read
# mark (sending implies having read), and read the audience at this very moment.
_STORE_MESSAGE = text(
    """
    WITH bumped AS (
        UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = now(),
            last_message = jsonb_build_object(
                'id', CAST(:mid AS text), 'preview', CAST(:preview AS text), 'sender_id', CAST(:me AS text),
                'sender_name', coalesce((SELECT name FROM people WHERE user_id = :me), 'Unknown user'),
                'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        WHERE id = :cid AND status = 'open'
          AND NOT EXISTS (SELECT 1 FROM messages WHERE sender_id = :me AND client_id = :client_id)
        RETURNING last_seq, last_message, last_activity_at
    ), inserted AS (
        INSERT INTO messages (id, conversation_id, seq, sender_id, body, links, attachments, client_id,
                              request_hash, forwarded_from, batch_id, created_at)
        SELECT :mid, :cid, last_seq, :me, :body, CAST(:links AS jsonb), CAST(:attachments AS jsonb), :client_id,
               :hash, :forwarded_from, :batch_id, now() FROM bumped
        RETURNING *
    ), marked AS (
        UPDATE participants p SET last_read_seq = b.last_seq, unread_count = 0 FROM bumped b
        WHERE p.conversation_id = :cid AND p.user_id = :me
    ), counted AS (
        UPDATE participants p SET unread_count = p.unread_count + 1 FROM bumped b
        WHERE p.conversation_id = :cid AND p.user_id <> :me
    )
    SELECT i.id, i.conversation_id, i.seq, i.sender_id, i.body, i.links, i.attachments, i.client_id, i.request_hash,
           i.created_at, i.edited_at, i.deleted, i.forwarded_from,
           coalesce(p.name, 'Unknown user') AS sender_name, p.avatar_url AS sender_avatar,
           ARRAY(SELECT user_id FROM participants WHERE conversation_id = :cid ORDER BY user_id) AS audience,
           b.last_message AS conversation_last_message, b.last_activity_at AS conversation_last_activity_at
    FROM inserted i CROSS JOIN bumped b LEFT JOIN people p ON p.user_id = i.sender_id
    """
)


def store_message(
    session: Connection,
    caller_id: str,
    conversation_id: uuid.UUID,
    body: str,
    *,
    client_id: str | None = None,
    fingerprint: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    forwarded_from: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Append a message to an open conversation with its event. Checks are the caller's job."""
    row = session.execute(
        _STORE_MESSAGE,
        {
            "mid": message_id or uuid.uuid4(),
            "cid": conversation_id,
            "me": caller_id,
            "body": body,
            "preview": domain.preview(body) or ("Attachment" if attachments else ""),
            "links": to_json(domain.find_links(body)),
            "attachments": to_json(attachments or []),
            "client_id": client_id,
            "hash": fingerprint,
            "forwarded_from": forwarded_from,
            "batch_id": batch_id,
        },
    ).first()
    if row is None:
        # Nothing stored: a retry of a send already made, or the conversation closed meanwhile.
        existing = existing_send(session, caller_id, client_id)
        if existing is None:
            raise AppError("conversation_closed", "This conversation is closed. No new messages can be sent.")
        domain.idempotent_replay(existing.request_hash, fingerprint)
        return message_view(existing)
    message = message_view(row)
    # The list entry changes with it: its preview and its place (clients count unread themselves).
    listed = {
        "id": str(conversation_id),
        "last_seq": row.seq,
        "last_message": row.conversation_last_message,
        "last_activity_at": iso(row.conversation_last_activity_at),
    }
    created = {"message": message, "conversation_id": str(conversation_id), "conversation": listed}
    events: list[tuple[str, dict[str, Any], list[str] | None]] = [
        ("conversations.message.created", created, list(row.audience))
    ]
    if message["attachments"]:
        # Only messages with files concern the attachments service: it hears of nothing else.
        ids = [a["id"] for a in message["attachments"]]
        carried = {"message_id": message["id"], "conversation_id": str(conversation_id), "attachment_ids": ids}
        events.append(("conversations.files.attached", carried, None))
    add_events(session, SERVICE, events)
    return message


def send_to_batch(
    session: Connection,
    caller_id: str,
    batch_id: uuid.UUID,
    body: str,
    client_id: str | None,
    fingerprint: str | None,
    *,
    attachments: list[dict[str, Any]] | None = None,
    forwarded_from: uuid.UUID | None = None,
) -> dict[str, Any]:
    """ "Sent to X people": one message in each recipient's 1:1, and the sender's copy in the batch entry."""
    targets = session.execute(
        text(
            "SELECT b.conversation_id FROM batch_recipients b JOIN conversations c ON c.id = b.conversation_id "
            "WHERE b.batch_id = :batch AND c.status = 'open' AND NOT EXISTS ("
            "    SELECT 1 FROM user_blocks ub WHERE (ub.blocker_id = b.user_id AND ub.blocked_id = :me)"
            "    OR (ub.blocker_id = :me AND ub.blocked_id = b.user_id)) "
            "ORDER BY b.user_id"
        ),
        {"batch": batch_id, "me": caller_id},
    ).all()
    for target in targets:
        store_message(
            session,
            caller_id,
            target.conversation_id,
            body,
            attachments=attachments,
            forwarded_from=forwarded_from,
            batch_id=batch_id,
        )
    return store_message(
        session,
        caller_id,
        batch_id,
        body,
        client_id=client_id,
        fingerprint=fingerprint,
        attachments=attachments,
        forwarded_from=forwarded_from,
    )


# Editing, deleting, forwarding -----------------------------------------------------------------


def _refresh_preview(session: Connection, message: Any) -> None:
    """Keep the list's one-line preview true when its message changes."""
    session.execute(
        text(
            "UPDATE conversations SET last_message = "
            "jsonb_set(last_message, '{preview}', to_jsonb(CAST(:preview AS text))) "
            "WHERE id = :cid AND last_message->>'id' = :mid"
        ),
        {"cid": message.conversation_id, "mid": str(message.id), "preview": domain.preview(message.body)},
    )


def _announce_change(session: Connection, message: Any, event_type: str) -> dict[str, Any]:
    """After a message changed: keep the list preview true and tell everyone who takes part now."""
    changed = session.execute(text(MESSAGE_SELECT + " WHERE m.id = :id"), {"id": message.id}).one()
    _refresh_preview(session, changed)
    view = message_view(changed)
    preview = session.execute(
        text("SELECT last_message FROM conversations WHERE id = :cid"), {"cid": message.conversation_id}
    ).scalar_one()
    listed = {"id": str(message.conversation_id), "last_message": preview}
    add_event(
        session,
        SERVICE,
        event_type,
        {"message": view, "conversation_id": str(message.conversation_id), "conversation": listed},
        audience=audience(session, message.conversation_id),
    )
    return view


def do_edit_message(session: Connection, caller_id: str, message_id: Any, body: Any) -> dict[str, Any]:
    """Change the text of one's own message; everyone sees it edited."""
    message = access_message(session, caller_id, message_id)
    if message.sender_id != caller_id:
        raise AppError("forbidden", "You can only edit your own messages.")
    if message.deleted is not None:
        raise AppError("not_allowed", "A deleted message cannot be edited.", {"action": "edit"})
    conversation = access_participation(session, caller_id, message.conversation_id)
    check_open(conversation)
    text_body = domain.check_body(body, has_attachments=bool(message.attachments))
    session.execute(
        text("UPDATE messages SET body = :body, links = CAST(:links AS jsonb), edited_at = now() WHERE id = :id"),
        {"id": message.id, "body": text_body, "links": to_json(domain.find_links(text_body))},
    )
    return _announce_change(session, message, "conversations.message.updated")


def do_delete_message(session: Connection, caller_id: str, message_id: Any) -> dict[str, Any]:
    """Delete one's own message: its content is gone for good, its place stays in the history."""
    message = access_message(session, caller_id, message_id)
    if message.sender_id != caller_id:
        raise AppError("forbidden", "You can only delete your own messages.")
    if message.deleted is not None:
        return message_view(message)
    return destroy_message(session, message, {"by": "author", "by_name": message.sender_name})


def destroy_message(session: Connection, message: Any, deleted: dict[str, Any]) -> dict[str, Any]:
    """Remove a message's content for good and stop counting it as unread."""
    if message.attachments:
        ids = [a["id"] for a in message.attachments]
        released = {"message_id": str(message.id), "attachment_ids": ids}
        add_event(session, SERVICE, "conversations.files.released", released)
    session.execute(
        text(
            "UPDATE messages SET body = '', links = '[]', attachments = '[]', deleted = CAST(:deleted AS jsonb) "
            "WHERE id = :id"
        ),
        {"id": message.id, "deleted": to_json(deleted)},
    )
    session.execute(
        text(
            "UPDATE participants SET unread_count = greatest(unread_count - 1, 0) "
            "WHERE conversation_id = :cid AND last_read_seq < :seq"
        ),
        {"cid": message.conversation_id, "seq": message.seq},
    )
    return _announce_change(session, message, "conversations.message.deleted")


def access_forwardable(session: Connection, caller_id: str, message_id: Any) -> Any:
    message = access_message(session, caller_id, message_id)
    if message.deleted is not None:
        raise AppError("not_allowed", "A deleted message cannot be forwarded.", {"action": "forward"})
    return message


def do_forward_to_conversation(
    session: Connection, caller_id: str, message_id: Any, conversation_id: Any
) -> dict[str, Any]:
    """Post a copy of a message (with its files, by reference) into another conversation of the caller."""
    source = access_forwardable(session, caller_id, message_id)
    target = access_participation(session, caller_id, conversation_id)
    check_open(target)
    if target.type == "individual_batch":
        return send_to_batch(
            session,
            caller_id,
            target.id,
            source.body,
            None,
            None,
            attachments=source.attachments,
            forwarded_from=source.id,
        )
    return store_message(
        session, caller_id, target.id, source.body, attachments=source.attachments, forwarded_from=source.id
    )


# Read state ---------------------------------------------------------------------------------


def _lock_for_read_state(session: Connection, conversation_id: uuid.UUID) -> int:
    # A share lock on the conversation waits for sends in flight (they hold its row lock), so the
    # count taken next includes every message committed before, and later sends count after it.
    return session.execute(
        text("SELECT last_seq FROM conversations WHERE id = :id FOR SHARE"), {"id": conversation_id}
    ).scalar_one()


def _set_read_mark(session: Connection, caller_id: str, conversation_id: uuid.UUID, mark: int) -> Any:
    return session.execute(
        text(
            """
            UPDATE participants SET last_read_seq = :mark,
                unread_count = (SELECT count(*) FROM messages m
                                WHERE m.conversation_id = :cid AND m.seq > :mark AND m.deleted IS NULL)
            WHERE conversation_id = :cid AND user_id = :me
            RETURNING unread_count, last_read_seq
            """
        ),
        {"cid": conversation_id, "me": caller_id, "mark": mark},
    ).one()


def _seq_of(session: Connection, conversation_id: uuid.UUID, message_id: Any) -> int:
    seq = session.execute(
        text("SELECT seq FROM messages WHERE id = :id AND conversation_id = :cid"),
        {"id": as_uuid(message_id, "message"), "cid": conversation_id},
    ).scalar()
    if seq is None:
        raise not_found("message")
    return seq


def _announce_unread(session: Connection, caller_id: str, conversation_id: uuid.UUID, read: Any) -> dict[str, int]:
    state = {
        "unread_count": read.unread_count,
        "unread_total": unread_total(session, caller_id),
        "last_read_seq": read.last_read_seq,
    }
    add_event(
        session,
        SERVICE,
        "conversations.unread.updated",
        {"conversation_id": str(conversation_id), **state},
        audience=[caller_id],
    )
    return state


def do_mark_read(session: Connection, caller_id: str, conversation_id: Any, message_id: Any) -> dict[str, int]:
    """Read up to a message (default: everything); an older message never unreads later ones."""
    conversation = access_participation(session, caller_id, conversation_id)
    last_seq = _lock_for_read_state(session, conversation.id)
    target = last_seq if message_id is None else _seq_of(session, conversation.id, message_id)
    current = session.execute(
        text("SELECT last_read_seq, unread_count FROM participants WHERE conversation_id = :cid AND user_id = :me"),
        {"cid": conversation.id, "me": caller_id},
    ).one()
    if current.last_read_seq >= last_seq and current.unread_count == 0:
        # Opening a conversation already read to its end changes nothing: no write, and no event
        # to tell the reader's other devices what they already show.
        return {
            "unread_count": 0,
            "unread_total": unread_total(session, caller_id),
            "last_read_seq": current.last_read_seq,
        }
    read = _set_read_mark(session, caller_id, conversation.id, max(current.last_read_seq, target))
    return _announce_unread(session, caller_id, conversation.id, read)


def do_mark_unread(session: Connection, caller_id: str, conversation_id: Any, message_id: Any) -> dict[str, int]:
    """Mark unread from a message on (default: the latest message)."""
    conversation = access_participation(session, caller_id, conversation_id)
    last_seq = _lock_for_read_state(session, conversation.id)
    if message_id is None:
        latest = session.execute(
            text("SELECT max(seq) FROM messages WHERE conversation_id = :cid AND deleted IS NULL AND seq <= :last"),
            {"cid": conversation.id, "last": last_seq},
        ).scalar()
        if latest is None:
            raise AppError("not_allowed", "There is no message to mark unread.", {"action": "mark_unread"})
        seq = latest
    else:
        seq = _seq_of(session, conversation.id, message_id)
    read = _set_read_mark(session, caller_id, conversation.id, seq - 1)
    return _announce_unread(session, caller_id, conversation.id, read)


def unread_total(session: Connection, caller_id: str) -> int:
    return int(
        session.execute(
            text("SELECT coalesce(sum(unread_count), 0) FROM participants WHERE user_id = :me"), {"me": caller_id}
        ).scalar_one()
    )


# Lists --------------------------------------------------------------------------------------


def list_messages(
    session: Connection, cursors: Cursors, caller_id: str, conversation_id: Any, cursor: Any, limit: Any
) -> dict[str, Any]:
    """A page of history, newest first; the cursor continues to older messages."""
    conversation = access_participation(session, caller_id, conversation_id)
    limit = check_limit(limit)
    position = cursors.decode(cursor, caller_id, f"messages:{conversation.id}")
    try:
        before = int(position[0]) if position else conversation.last_seq + 1
    except (TypeError, ValueError, IndexError):
        raise invalid_cursor() from None
    rows = session.execute(
        text(MESSAGE_SELECT + " WHERE m.conversation_id = :id AND m.seq < :before ORDER BY m.seq DESC LIMIT :n"),
        {"id": conversation.id, "before": before, "n": limit + 1},
    ).all()
    items = [message_view(r) for r in rows[:limit]]
    next_cursor = (
        cursors.encode(caller_id, f"messages:{conversation.id}", [rows[limit - 1].seq]) if len(rows) > limit else None
    )
    return {"items": items, "next_cursor": next_cursor}


def list_conversations(
    session: Connection,
    cursors: Cursors,
    caller_id: str,
    cursor: Any,
    limit: Any,
) -> dict[str, Any]:
    """The caller's conversations, most recent activity first."""
    limit = check_limit(limit)
    position = decode_time_id(cursors, cursor, caller_id, "conversations")
    params: dict[str, Any] = {"me": caller_id, "n": limit + 1}
    where = " WHERE me.user_id = :me"
    if position:
        params["at"], params["after_id"] = position
        where += " AND (c.last_activity_at, c.id) < (:at, :after_id)"
    rows = session.execute(
        text(CONVERSATION_SELECT + where + " ORDER BY c.last_activity_at DESC, c.id DESC LIMIT :n"), params
    ).all()
    items = [conversation_view(r) for r in rows[:limit]]
    next_cursor = next_time_id(cursors, rows, limit, caller_id, "conversations", "last_activity_at")
    return {"items": items, "next_cursor": next_cursor}


def record_events(session: Connection, events: list[tuple[str, dict[str, Any], list[str] | None]]) -> None:
    add_events(session, SERVICE, events)
