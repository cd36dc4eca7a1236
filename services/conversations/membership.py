"""Who takes part, and the conversation's own settings: participants, name, open/closed/deleted.

Course and project conversations follow the roster: directory enrolment events add and
remove their members here.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, text

from services.conversations import domain, moderation
from services.conversations.actions import SERVICE, access_conversation, audience, upsert_people
from services.conversations.announce import conversation_data, everyone_views
from services.conversations.starting import add_participants, live_group_conversation
from services.conversations.views import conversation_view, participant_view
from shared.errors import AppError, not_found, validation
from shared.outbox import add_event, add_events

_PARTICIPANTS = """
    SELECT p.user_id, p.joined_at, p.via, pp.name, pp.title, pp.role, pp.avatar_url
    FROM participants p LEFT JOIN people pp ON pp.user_id = p.user_id
    WHERE p.conversation_id = :cid AND p.via <> 'report'
"""


def actions_for(conversation: Any) -> list[str]:
    return conversation_view(conversation)["can"]


def check_may(session: Connection, caller_id: str, conversation_id: Any, action: str) -> Any:
    """The conversation, if the caller takes part and may take `action` there."""
    conversation = access_conversation(session, caller_id, conversation_id)
    domain.check_action(actions_for(conversation), action)
    return conversation


def list_participants(session: Connection, caller_id: str, conversation_id: Any) -> dict[str, Any]:
    conversation = access_conversation(session, caller_id, conversation_id)
    if conversation.type == "mass":
        # One-way, to many: the organisation it came from is all a recipient sees.
        sender = session.execute(
            text(
                "SELECT user_id, NULL AS joined_at, 'sender' AS via, name, title, role, avatar_url FROM people "
                "WHERE user_id = :sender"
            ),
            {"sender": conversation.created_by},
        ).all()
        return {"items": [participant_view(r) for r in sender], "next_cursor": None}
    rows = session.execute(text(_PARTICIPANTS + " ORDER BY pp.name, p.user_id"), {"cid": conversation.id})
    return {"items": [participant_view(r) for r in rows], "next_cursor": None}


def _participant(session: Connection, conversation_id: uuid.UUID, user_id: str) -> dict[str, Any]:
    row = session.execute(text(_PARTICIPANTS + " AND p.user_id = :uid"), {"cid": conversation_id, "uid": user_id}).one()
    return participant_view(row)


def announce_joined(session: Connection, conversation_id: uuid.UUID, user_ids: list[str]) -> None:
    """Tell everyone who takes part now; each newcomer also gets the whole conversation as they see it."""
    if not user_ids:
        return
    views = everyone_views(session, conversation_id)
    everyone = sorted(views)
    add_events(
        session,
        SERVICE,
        [
            (
                "conversations.participant.added",
                conversation_data(
                    views,
                    {"conversation_id": str(conversation_id), "participant": _participant(session, conversation_id, u)},
                    complete_for=(u,),
                ),
                everyone,
            )
            for u in user_ids
        ],
    )


def _remove(session: Connection, conversation_id: uuid.UUID, user_id: str, reason: str) -> bool:
    # The one removed is told too: their audience is taken before they go.
    before = audience(session, conversation_id)
    gone = session.execute(
        text("DELETE FROM participants WHERE conversation_id = :cid AND user_id = :uid RETURNING user_id"),
        {"cid": conversation_id, "uid": user_id},
    ).first()
    if gone is None:
        return False
    add_event(
        session,
        SERVICE,
        "conversations.participant.removed",
        conversation_data(
            everyone_views(session, conversation_id),
            {"conversation_id": str(conversation_id), "user_id": user_id, "reason": reason},
        ),
        audience=before,
    )
    return True


def _join(session: Connection, conversation_id: uuid.UUID, people: list[dict[str, Any]], via: str) -> None:
    """Add people (known to the directory) and tell everyone who takes part, them included."""
    upsert_people(session, people)
    added = add_participants(session, conversation_id, [p["id"] for p in people], via)
    announce_joined(session, conversation_id, added)


def do_add_participants(
    session: Connection, caller_id: str, conversation_id: Any, people: list[dict[str, Any]]
) -> dict[str, Any]:
    """Any participant of an open group adds people (already vetted by the directory)."""
    conversation = check_may(session, caller_id, conversation_id, "add_participants")
    _join(session, conversation.id, people, "member")
    return list_participants(session, caller_id, conversation.id)


def do_remove_participant(session: Connection, caller_id: str, conversation_id: Any, user_id: str) -> dict[str, Any]:
    """Teachers and admins remove someone from a group conversation they take part in."""
    conversation = check_may(session, caller_id, conversation_id, "remove_participants")
    if user_id == caller_id:
        raise AppError("not_allowed", "Use leave to leave a conversation.", {"action": "remove_participants"})
    row = session.execute(
        text("SELECT via FROM participants WHERE conversation_id = :cid AND user_id = :uid"),
        {"cid": conversation.id, "uid": user_id},
    ).first()
    if row is None:
        raise not_found("participant")
    if row.via == "report":
        raise AppError("not_allowed", "Someone reading through a report cannot be removed.", {"action": "remove"})
    _remove(session, conversation.id, user_id, "removed")
    moderation.record(session, "participant.removed", caller_id, conversation.id, user_id=user_id)
    return list_participants(session, caller_id, conversation.id)


def do_leave(session: Connection, caller_id: str, conversation_id: Any) -> dict[str, Any]:
    conversation = check_may(session, caller_id, conversation_id, "leave")
    _remove(session, conversation.id, caller_id, "left")
    return {"left": True}


def _update(session: Connection, caller_id: str, conversation: Any, changes: dict[str, Any]) -> dict[str, Any]:
    sets = ", ".join(f"{k} = :{k}" for k in changes)
    session.execute(
        text(f"UPDATE conversations SET {sets}, updated_at = now() WHERE id = :cid"),
        {**changes, "cid": conversation.id},
    )
    views = everyone_views(session, conversation.id)
    add_event(
        session,
        SERVICE,
        "conversations.conversation.updated",
        conversation_data(views, {"conversation_id": str(conversation.id), "changes": {**changes, "by": caller_id}}),
        audience=sorted(views),
    )
    return conversation_view(access_conversation(session, caller_id, conversation.id))


def do_rename(session: Connection, caller_id: str, conversation_id: Any, name: Any) -> dict[str, Any]:
    conversation = check_may(session, caller_id, conversation_id, "rename")
    return _update(session, caller_id, conversation, {"name": domain.check_name(name)})


MODERATION_RECORDS = {
    "close": "conversation.closed",
    "reopen": "conversation.reopened",
    "delete": "conversation.deleted",
    "restore": "conversation.restored",
}


def do_set_status(session: Connection, caller_id: str, conversation_id: Any, action: str) -> dict[str, Any]:
    """close, reopen, delete (course and project conversations) or restore; history stays readable."""
    status = {"close": "closed", "reopen": "open", "delete": "deleted", "restore": "open"}[action]
    conversation = check_may(session, caller_id, conversation_id, action)
    if action == "restore" and conversation.group_id is not None:
        newer = live_group_conversation(
            session, conversation.group_kind, conversation.group_id, other_than=conversation.id
        )
        if newer is not None:
            raise AppError(
                "not_allowed",
                "A newer conversation of this course is in use; it cannot be restored.",
                {"action": "restore"},
            )
    view = _update(session, caller_id, conversation, {"status": status})
    moderation.record(session, MODERATION_RECORDS[action], caller_id, conversation.id)
    return view


# Following the roster ------------------------------------------------------------------------


def enrolment_added(session: Connection, kind: str, group_id: str, person: dict[str, Any] | None) -> None:
    """A new course or project member joins its conversation (if it exists yet); repeats change nothing."""
    conversation_id = live_group_conversation(session, kind, group_id)
    if conversation_id is None or person is None:
        return
    _join(session, conversation_id, [person], kind)


def enrolment_removed(session: Connection, kind: str, group_id: str, user_id: str) -> None:
    """A member who left the course or project leaves its conversation; repeats change nothing."""
    conversation_id = live_group_conversation(session, kind, group_id)
    if conversation_id is None:
        return
    via = session.execute(
        text("SELECT via FROM participants WHERE conversation_id = :cid AND user_id = :uid"),
        {"cid": conversation_id, "uid": user_id},
    ).scalar()
    # Someone added by hand (staff reaching the course) stays; roster membership goes with the roster.
    if via == kind:
        _remove(session, conversation_id, user_id, "unenrolled")


def roster_members(session: Connection, kind: str, group_id: str) -> set[str] | None:
    """Who takes part in a group's live conversation through the roster; None when there is none."""
    conversation_id = live_group_conversation(session, kind, group_id)
    if conversation_id is None:
        return None
    rows = session.execute(
        text("SELECT user_id FROM participants WHERE conversation_id = :cid AND via = :kind"),
        {"cid": conversation_id, "kind": kind},
    )
    return {r.user_id for r in rows}


def reconcile_group(
    session: Connection, kind: str, group_id: str, joined: list[dict[str, Any]], left: list[str]
) -> None:
    """Bring a group conversation in line with the roster (both steps are no-ops when already done)."""
    for person in joined:
        enrolment_added(session, kind, group_id, person)
    for user_id in left:
        enrolment_removed(session, kind, group_id, user_id)


def check_user_ids(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(u, str) and u for u in raw):
        raise validation("user_ids must be a non-empty list of ids.", field="user_ids")
    if len(raw) > 300:
        raise validation("At most 300 people at once.", field="user_ids")
    return list(dict.fromkeys(raw))
