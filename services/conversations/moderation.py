"""Moderation as the conversations service sees it (F23–F26, blocking).

- Reports: what a report may point at (`report_target`), and the access an open report
  gives the staff member it was sent to (`grant_access`, `revoke_access`): a participants
  row with `via = 'report'`, so every path that checks participation (history, events,
  search, downloads, sync audiences) honours it, while lists, counts and names leave it out.
- Moderator actions (deleting others' messages, removals, close/reopen, delete/restore by
  staff) are recorded as `conversations.moderation.recorded` in the same transaction, for the
  moderation service's audit log; the record names the action, never the content.
- Blocks: a student blocks the other person of a 1:1; that conversation refuses their sends.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, text

from services.conversations import actions, domain
from services.conversations.actions import (
    SERVICE,
    access_conversation,
    access_message,
    upsert_people,
)
from services.conversations.announce import conversation_data, everyone_views
from services.conversations.views import conversation_view
from shared.errors import AppError, as_uuid, not_found, validation
from shared.outbox import add_event

REPORTABLE_CONVERSATIONS = frozenset({"group"})


def my_participation(session: Connection, caller_id: str, conversation_id: uuid.UUID) -> Any:
    return session.execute(
        text(
            "SELECT p.via, coalesce(pp.role, 'student') AS role, coalesce(pp.name, 'Unknown user') AS name "
            "FROM participants p LEFT JOIN people pp ON pp.user_id = p.user_id "
            "WHERE p.conversation_id = :cid AND p.user_id = :me"
        ),
        {"cid": conversation_id, "me": caller_id},
    ).one()


def formal_participants(session: Connection, conversation_id: uuid.UUID) -> list[str]:
    rows = session.execute(
        text("SELECT user_id FROM participants WHERE conversation_id = :cid AND via <> 'report' ORDER BY user_id"),
        {"cid": conversation_id},
    )
    return [r.user_id for r in rows]


def report_target(session: Connection, caller_id: str, message_id: Any, conversation_id: Any) -> dict[str, Any]:
    """What a report by the caller would point at; refuses what may not be reported (F23)."""
    if (message_id is None) == (conversation_id is None):
        raise validation("Report a message or a conversation.", field="message_id")
    if message_id is not None:
        message = access_message(session, caller_id, message_id)
        conversation = access_conversation(session, caller_id, message.conversation_id)
        if message.sender_id == caller_id:
            raise AppError("not_allowed", "You can't report your own message.", {"action": "report"})
        if message.deleted is not None:
            raise AppError("not_allowed", "This message was deleted.", {"action": "report"})
    else:
        message = None
        conversation = access_conversation(session, caller_id, conversation_id)
        if conversation.type not in REPORTABLE_CONVERSATIONS:
            raise AppError(
                "not_allowed",
                "Only group conversations can be reported. Report one of its messages instead.",
                {"action": "report"},
            )
    if conversation.my_via == "report":
        raise AppError("not_allowed", "You are reading this conversation through a report.", {"action": "report"})
    view = conversation_view(conversation)
    return {
        "conversation_id": view["id"],
        "conversation_type": view["type"],
        "conversation_name": view["name"],
        "message_id": str(message.id) if message is not None else None,
        "sender_id": message.sender_id if message is not None else None,
        "sender_name": message.sender_name if message is not None else None,
        "participant_ids": formal_participants(session, conversation.id),
    }


def grant_access(session: Connection, report_id: Any, conversation_id: Any, reader: dict[str, Any]) -> bool:
    """Let the staff member a report was sent to into its conversation; once per report, never after it closed."""
    report, cid = as_uuid(report_id, "report"), as_uuid(conversation_id)
    exists = session.execute(text("SELECT last_seq FROM conversations WHERE id = :cid FOR SHARE"), {"cid": cid}).first()
    if exists is None:
        return False
    granted = session.execute(
        text(
            "INSERT INTO report_access (report_id, conversation_id, user_id) VALUES (:report, :cid, :uid) "
            "ON CONFLICT (report_id) DO NOTHING RETURNING report_id"
        ),
        {"report": report, "cid": cid, "uid": reader["id"]},
    ).first()
    if granted is None:
        return False
    upsert_people(session, [reader])
    joined = session.execute(
        text(
            "INSERT INTO participants (conversation_id, user_id, via, last_read_seq) "
            "VALUES (:cid, :uid, 'report', :seq) ON CONFLICT DO NOTHING RETURNING user_id"
        ),
        {"cid": cid, "uid": reader["id"], "seq": exists.last_seq},
    ).first()
    if joined is not None:
        # Only the reader is told: to everyone else nothing changed.
        views = everyone_views(session, cid)
        data = conversation_data({reader["id"]: views[reader["id"]]}, {}, complete_for=(reader["id"],))
        add_event(session, SERVICE, "conversations.conversation.created", data, audience=[reader["id"]])
    return True


def revoke_access(session: Connection, report_id: Any, conversation_id: Any, user_id: str) -> bool:
    """A report closed: its reader leaves the conversation, unless another open report (or membership) keeps them."""
    report, cid = as_uuid(report_id, "report"), as_uuid(conversation_id)
    closed = session.execute(
        text(
            """
            INSERT INTO report_access (report_id, conversation_id, user_id, revoked) VALUES (:report, :cid, :uid, true)
            ON CONFLICT (report_id) DO UPDATE SET revoked = true WHERE NOT report_access.revoked
            RETURNING conversation_id, user_id
            """
        ),
        {"report": report, "cid": cid, "uid": user_id},
    ).first()
    if closed is None:
        return False
    still = session.execute(
        text("SELECT 1 FROM report_access WHERE conversation_id = :cid AND user_id = :uid AND NOT revoked LIMIT 1"),
        {"cid": closed.conversation_id, "uid": closed.user_id},
    ).first()
    if still is not None:
        return True
    gone = session.execute(
        text(
            "DELETE FROM participants WHERE conversation_id = :cid AND user_id = :uid AND via = 'report' "
            "RETURNING user_id"
        ),
        {"cid": closed.conversation_id, "uid": closed.user_id},
    ).first()
    if gone is not None:
        add_event(
            session,
            SERVICE,
            "conversations.participant.removed",
            {"conversation_id": str(closed.conversation_id), "user_id": closed.user_id, "reason": "report_closed"},
            audience=[closed.user_id],
        )
    return True


def describe(session: Connection, conversation_id: Any) -> dict[str, Any]:
    kind = session.execute(
        text("SELECT type FROM conversations WHERE id = :cid"), {"cid": as_uuid(conversation_id)}
    ).scalar()
    if kind is None:
        raise not_found()
    return {"type": kind}


def open_reports(session: Connection, user_id: str, conversation_id: uuid.UUID) -> list[str]:
    rows = session.execute(
        text(
            "SELECT report_id FROM report_access WHERE conversation_id = :cid AND user_id = :uid AND NOT revoked "
            "ORDER BY granted_at, report_id"
        ),
        {"cid": conversation_id, "uid": user_id},
    )
    return [str(r.report_id) for r in rows]


def record(
    session: Connection,
    action: str,
    actor_id: str,
    conversation_id: uuid.UUID,
    *,
    message_id: Any = None,
    user_id: str | None = None,
) -> None:
    """Record a staff member's moderation action for the audit log (F26): who, what, where, through which report."""
    actor = my_participation(session, actor_id, conversation_id)
    if actor.role not in domain.STAFF_ROLES:
        return
    kind = session.execute(text("SELECT type FROM conversations WHERE id = :cid"), {"cid": conversation_id}).scalar()
    add_event(
        session,
        SERVICE,
        "conversations.moderation.recorded",
        {
            "action": action,
            "actor_id": actor_id,
            "actor_name": actor.name,
            "actor_role": actor.role,
            "conversation_id": str(conversation_id),
            "conversation_type": kind,
            "message_id": str(message_id) if message_id is not None else None,
            "user_id": user_id,
            "report_ids": open_reports(session, actor_id, conversation_id),
            "through_report": actor.via == "report",
        },
    )


# Blocking -------------------------------------------------------------------------------------


def _other_person(session: Connection, caller_id: str, conversation_id: Any) -> tuple[Any, str]:
    conversation = access_conversation(session, caller_id, conversation_id)
    if conversation.type != "direct" or conversation.my_via == "report":
        raise AppError("not_allowed", "You can only block someone in a 1:1 conversation.", {"action": "block"})
    if conversation.my_role != "student":
        raise AppError("forbidden", "Only students can block people.")
    other = session.execute(
        text("SELECT user_id FROM participants WHERE conversation_id = :cid AND user_id <> :me AND via <> 'report'"),
        {"cid": conversation.id, "me": caller_id},
    ).scalar()
    if other is None:
        raise not_found("user")
    return conversation, other


def do_set_block(session: Connection, caller_id: str, conversation_id: Any, *, blocked: bool) -> dict[str, Any]:
    """Block (or unblock) the other person of a 1:1; only the blocker's view changes, and only they are told."""
    conversation, other = _other_person(session, caller_id, conversation_id)
    if blocked:
        changed = session.execute(
            text(
                "INSERT INTO user_blocks (blocker_id, blocked_id) VALUES (:me, :other) "
                "ON CONFLICT DO NOTHING RETURNING blocked_id"
            ),
            {"me": caller_id, "other": other},
        ).first()
    else:
        changed = session.execute(
            text("DELETE FROM user_blocks WHERE blocker_id = :me AND blocked_id = :other RETURNING blocked_id"),
            {"me": caller_id, "other": other},
        ).first()
    view = conversation_view(access_conversation(session, caller_id, conversation.id))
    if changed is not None:
        data = {"conversation_id": view["id"], "changes": {"blocked": blocked, "by": caller_id}}
        add_event(
            session,
            SERVICE,
            "conversations.conversation.updated",
            conversation_data({caller_id: view}, data),
            audience=[caller_id],
        )
    return view


# Deleting messages ----------------------------------------------------------------------------


def do_delete_message(session: Connection, caller_id: str, message_id: Any) -> dict[str, Any]:
    """Delete one's own message (F15), or as staff destroy someone else's (F24): gone for good, for everyone."""
    message = access_message(session, caller_id, message_id)
    if message.sender_id == caller_id:
        return actions.do_delete_message(session, caller_id, message_id)
    conversation = access_conversation(session, caller_id, message.conversation_id)
    if "delete_messages" not in conversation_view(conversation)["can"]:
        raise AppError("forbidden", "You can only delete your own messages.")
    if message.deleted is not None:
        raise AppError("not_allowed", "This message has already been removed.", {"action": "delete"})
    moderator = my_participation(session, caller_id, message.conversation_id)
    view = actions.destroy_message(session, message, {"by": "moderator", "by_name": moderator.name})
    record(
        session, "message.deleted", caller_id, message.conversation_id, message_id=message.id, user_id=message.sender_id
    )
    return view
