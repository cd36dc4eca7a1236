"""How conversations, messages and participants look to a caller: the API.md shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.conversations import domain

MESSAGE_SELECT = """
    SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.body, m.links, m.attachments, m.client_id,
           m.request_hash, m.created_at, m.edited_at, m.deleted, m.forwarded_from,
           coalesce(p.name, 'Unknown user') AS sender_name, p.avatar_url AS sender_avatar
    FROM messages m LEFT JOIN people p ON p.user_id = m.sender_id
"""

# Whether the caller blocked the other person of a 1:1 (`me` is the caller's participants row).
I_BLOCKED = """
    CASE WHEN c.type = 'direct' THEN EXISTS (
        SELECT 1 FROM participants o JOIN user_blocks b ON b.blocked_id = o.user_id AND b.blocker_id = me.user_id
        WHERE o.conversation_id = c.id AND o.user_id <> me.user_id) ELSE false END
"""

# `me` is the caller's participants row; `mine` their person row (for their role). Staff reading
# through a report (`via = 'report'`) are neither counted nor named.
CONVERSATION_SELECT = f"""
    SELECT c.id, c.type, c.name, c.status, c.created_by, c.created_at, c.last_seq, c.last_activity_at,
           c.last_message, c.recipient_count, c.group_kind, c.group_id,
           me.user_id AS me_id, me.last_read_seq, me.unread_count, me.via AS my_via,
           coalesce(mine.role, 'student') AS my_role,
           CASE WHEN c.type = 'mass' THEN 1  -- the organisation: recipients are not shown to each other
                ELSE (SELECT count(*) FROM participants a WHERE a.conversation_id = c.id AND a.via <> 'report')
           END AS participant_count,
           ARRAY(SELECT coalesce(pp.name, 'Unknown user') FROM participants o
                 LEFT JOIN people pp ON pp.user_id = o.user_id
                 WHERE o.conversation_id = c.id AND o.user_id <> me.user_id AND o.via <> 'report'
                 ORDER BY o.joined_at, o.user_id LIMIT 3) AS other_names,
           {I_BLOCKED} AS i_blocked
    FROM participants me JOIN conversations c ON c.id = me.conversation_id
    LEFT JOIN people mine ON mine.user_id = me.user_id
"""


STATUS_TEXT = {"closed": "Closed conversation", "deleted": "This conversation was deleted"}

# Where a course's participant page lives; `configure` sets it from the settings at start.
_participants_url = "https://lms.example.org/course/{course_id}/participants"


def configure(course_participants_url: str) -> None:
    global _participants_url
    _participants_url = course_participants_url


def iso(value: datetime | None) -> str | None:
    """UTC with microseconds, always the same width, as the database's own previews write it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def message_view(row: Any) -> dict[str, Any]:
    """A message as API.md shows it; `row` joins the message with its sender's person row."""
    gone = row.deleted is not None
    return {
        "id": str(row.id),
        "conversation_id": str(row.conversation_id),
        "seq": row.seq,
        "sender": {"id": row.sender_id, "name": row.sender_name, "avatar_url": row.sender_avatar},
        "body": "" if gone else row.body,
        "links": [] if gone else row.links,
        "attachments": [] if gone else row.attachments,
        "created_at": iso(row.created_at),
        "edited_at": iso(row.edited_at),
        "deleted": row.deleted,
        "forwarded_from": str(row.forwarded_from) if row.forwarded_from else None,
        "client_id": row.client_id,
    }


def conversation_view(row: Any) -> dict[str, Any]:
    """A conversation as the caller sees it: their name for it, their unread count, their actions."""
    through_report = row.my_via == "report"
    # Someone reading through a report is not among the participants counted.
    others = row.participant_count - (0 if through_report else 1)
    if row.type == "individual_batch":
        name = f"Sent to {row.recipient_count} {'person' if row.recipient_count == 1 else 'people'}"
    else:
        name = domain.display_name(row.name, list(row.other_names), others)
    view = {
        "id": str(row.id),
        "type": row.type,
        "name": name,
        "participant_count": row.participant_count,
        "last_message": row.last_message,
        "last_activity_at": iso(row.last_activity_at),
        "unread_count": row.unread_count,
        # Positions in the conversation: its newest message, and how far the caller has read.
        "last_seq": row.last_seq,
        "last_read_seq": row.last_read_seq,
        "status": row.status,
        "status_text": STATUS_TEXT.get(row.status),
        "can": domain.allowed_actions(
            type_=row.type,
            status=row.status,
            role=row.my_role,
            is_creator=row.created_by == row.me_id,
            through_report=through_report,
            blocked=row.i_blocked,
        ),
        "created_at": iso(row.created_at),
    }
    if row.type == "individual_batch":
        view["recipient_count"] = row.recipient_count
    if row.type == "direct":
        view["blocked"] = bool(row.i_blocked)  # the caller blocked the other person
    if through_report:
        view["through_report"] = True
    if row.group_id is not None:
        view["group"] = {"kind": row.group_kind, "id": row.group_id}
        if row.group_kind == "course":
            # A course conversation links to the course's participant page.
            view["participants_url"] = _participants_url.format(course_id=row.group_id)
    return view


def participant_view(row: Any) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "name": row.name or "Unknown user",
        "title": row.title or "",
        "role": row.role or "student",
        "avatar_url": row.avatar_url,
        "joined_at": iso(row.joined_at),
        "via": row.via,
    }
