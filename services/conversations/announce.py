"""What each participant's client is told when a conversation itself changes.

A conversation looks a little different to each participant (their name for it, their
unread count, what they may do), so conversation events carry every participant's view:
the view most of them share, plus each one's differences (`shared.events.with_personal`).
A client applies the view it receives and needs no rule of its own to stay right.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, text

from services.conversations.views import I_BLOCKED, conversation_view
from shared.events import with_personal

# Everyone's participation in one conversation, in one read; names are taken once, below.
_EVERYONE = f"""
    SELECT c.id, c.type, c.name, c.status, c.created_by, c.created_at, c.last_seq, c.last_activity_at,
           c.last_message, c.recipient_count, c.group_kind, c.group_id,
           me.user_id AS me_id, me.last_read_seq, me.unread_count, me.via AS my_via,
           coalesce(mine.role, 'student') AS my_role, {I_BLOCKED} AS i_blocked
    FROM participants me JOIN conversations c ON c.id = me.conversation_id
    LEFT JOIN people mine ON mine.user_id = me.user_id
    WHERE c.id = :cid
"""

# A conversation without a name is named after its first participants (CONVERSATION_SELECT's order).
_FIRST_NAMES = """
    SELECT o.user_id, coalesce(pp.name, 'Unknown user') AS name FROM participants o
    LEFT JOIN people pp ON pp.user_id = o.user_id
    WHERE o.conversation_id = :cid AND o.via <> 'report' ORDER BY o.joined_at, o.user_id LIMIT 4
"""

# What the conversation's own changes never touch, and a client keeps from its own state.
READ_STATE = ("unread_count", "last_read_seq")


def everyone_views(session: Connection, conversation_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Each participant's view of the conversation, as `GET /conversations/{id}` shows it to them."""
    rows = session.execute(text(_EVERYONE), {"cid": conversation_id}).all()
    first = session.execute(text(_FIRST_NAMES), {"cid": conversation_id}).all()
    counted = sum(1 for row in rows if row.my_via != "report")
    views = {}
    for row in rows:
        others = [f.name for f in first if f.user_id != row.me_id][:3]
        views[row.me_id] = conversation_view(
            SimpleNamespace(**row._mapping, participant_count=counted, other_names=others)
        )
    return views


def without_read_state(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in READ_STATE}


def conversation_data(
    views: dict[str, dict[str, Any]], data: dict[str, Any], *, complete_for: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`data` with everyone's view under `conversation`; read state only for `complete_for` (newcomers)."""
    if not views:
        return data
    sent = {user: view if user in complete_for else without_read_state(view) for user, view in views.items()}
    return with_personal("conversation", sent, data)
