"""Starting conversations: 1:1, group, a course's or project's own conversation, and "Sent to X people".

The handler resolves recipients through the directory first (who exists, who is in which
course, who may be contacted) and hands the facts in a `Plan`; everything here is storage.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from services.conversations import domain
from services.conversations.actions import (
    access_conversation,
    access_participation,
    check_open,
    existing_send,
    record_events,
    send_to_batch,
    store_message,
    upsert_people,
    with_notices,
)
from services.conversations.announce import conversation_data, everyone_views
from services.conversations.views import conversation_view, message_view
from shared.errors import AppError

# Past this many participants a new conversation is announced once, not once per person.


@dataclass
class Plan:
    """What the directory said about a new conversation's recipients."""

    caller: dict[str, Any]
    mode: str  # direct | group | individual | group_conversation
    people: dict[str, dict[str, Any]]  # every recipient (not the caller) by id, with name and role
    group: domain.Group | None = None  # the lone course or project, for group_conversation
    group_name: str | None = None
    group_members: list[str] = field(default_factory=list)
    name: str | None = None
    # A forwarded message keeps its files (by reference) and says where it came from.
    attachments: list[dict[str, Any]] = field(default_factory=list)
    forwarded_from: uuid.UUID | None = None


def _insert_conversation(session: Connection, **values: Any) -> uuid.UUID:
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    return session.execute(
        text(f"INSERT INTO conversations ({columns}) VALUES ({params}) RETURNING id"), values
    ).scalar_one()


def add_participants(session: Connection, conversation_id: uuid.UUID, user_ids: list[str], via: str) -> list[str]:
    """Add people (new members start with nothing unread); the ids actually added.

    Someone reading through a report who is added for real becomes a participant like any other.
    """
    if not user_ids:
        return []
    rows = session.execute(
        text(
            """
            INSERT INTO participants (conversation_id, user_id, via, last_read_seq)
            SELECT :cid, u, :via, (SELECT last_seq FROM conversations WHERE id = :cid)
            FROM unnest(CAST(:ids AS text[])) AS u
            ON CONFLICT (conversation_id, user_id) DO UPDATE SET via = excluded.via
                WHERE participants.via = 'report'
            RETURNING user_id
            """
        ),
        {"cid": conversation_id, "ids": list(dict.fromkeys(user_ids)), "via": via},
    )
    return [r.user_id for r in rows]


def announce_created(session: Connection, conversation_id: uuid.UUID, participant_ids: list[str]) -> None:
    """Tell every participant, each with their own view of the new conversation."""
    views = everyone_views(session, conversation_id)
    data = conversation_data(views, {}, complete_for=tuple(views))
    record_events(session, [("conversations.conversation.created", data, sorted(participant_ids))])


def _direct_conversation(session: Connection, me: str, other: str) -> tuple[uuid.UUID, bool]:
    """The one 1:1 conversation of two people, made when missing; (id, made now)."""
    key = domain.pair_key(me, other)
    created = session.execute(
        text(
            "INSERT INTO conversations (type, pair_key, created_by) VALUES ('direct', :key, :me) "
            "ON CONFLICT (pair_key) DO NOTHING RETURNING id"
        ),
        {"key": key, "me": me},
    ).first()
    if created is None:
        return session.execute(
            text("SELECT id FROM conversations WHERE pair_key = :key"), {"key": key}
        ).scalar_one(), False
    add_participants(session, created.id, [me, other], "member")
    return created.id, True


def live_group_conversation(
    session: Connection, kind: str, group_id: str, *, other_than: uuid.UUID | None = None
) -> uuid.UUID | None:
    """The one conversation of a course or project that is not deleted (other than `other_than`), if any."""
    return session.execute(
        text(
            "SELECT id FROM conversations WHERE group_kind = :kind AND group_id = :id AND status <> 'deleted' "
            "AND id IS DISTINCT FROM :other"
        ),
        {"kind": kind, "id": group_id, "other": other_than},
    ).scalar()


def _group_conversation(session: Connection, plan: Plan) -> tuple[uuid.UUID, list[str]]:
    """The course's or project's own conversation, made with its current members when missing."""
    assert plan.group is not None
    me = plan.caller["id"]
    live = live_group_conversation(session, plan.group.kind, plan.group.id)
    if live is not None:
        if me not in plan.group_members:
            # Staff reaching a course they do not belong to take part from now on.
            add_participants(session, live, [me], "member")
        return live, []
    conversation_id = _insert_conversation(
        session,
        type=plan.group.kind,
        name=plan.group_name,
        group_kind=plan.group.kind,
        group_id=plan.group.id,
        created_by=me,
    )
    add_participants(session, conversation_id, plan.group_members, plan.group.kind)
    add_participants(session, conversation_id, [me], "member")
    return conversation_id, [me, *[m for m in plan.group_members if m != me]]


def do_start(session: Connection, plan: Plan, body: str, client_id: str | None, fingerprint: str) -> dict[str, Any]:
    """Make (or find) the conversation the plan calls for and post the first message in it."""
    me = plan.caller["id"]
    existing = existing_send(session, me, client_id)
    if existing is not None:
        domain.idempotent_replay(existing.request_hash, fingerprint)
        return {
            "conversation": conversation_view(access_conversation(session, me, existing.conversation_id)),
            "message": message_view(existing),
        }
    upsert_people(session, [plan.caller, *plan.people.values()])
    created: list[str] = []
    if plan.mode == "direct":
        (other,) = plan.people
        conversation_id, made = _direct_conversation(session, me, other)
        created = [me, other] if made else []
    elif plan.mode == "group":
        conversation_id = _insert_conversation(session, type="group", name=plan.name, created_by=me)
        created = [me, *plan.people]
        add_participants(session, conversation_id, created, "member")
    elif plan.mode == "group_conversation":
        conversation_id, created = _group_conversation(session, plan)
    elif plan.mode == "individual":
        return _start_individual(session, plan, body, client_id, fingerprint)
    else:
        raise AppError("validation_failed", "Unknown mode.", {"field": "mode"})
    if plan.mode == "direct":
        check_open(access_participation(session, me, conversation_id))  # closed, or a block between the two
    conversation = access_conversation(session, me, conversation_id)
    if conversation.status != "open":
        raise AppError("conversation_closed", "This conversation is closed. No new messages can be sent.")
    if created:
        announce_created(session, conversation_id, created)
    message = store_message(
        session,
        me,
        conversation_id,
        body,
        client_id=client_id,
        fingerprint=fingerprint,
        attachments=plan.attachments,
        forwarded_from=plan.forwarded_from,
    )
    conversation = access_conversation(session, me, conversation_id)
    return {
        "conversation": conversation_view(conversation),
        "message": with_notices(session, conversation, me, message),
    }


def _start_individual(
    session: Connection, plan: Plan, body: str, client_id: str | None, fingerprint: str
) -> dict[str, Any]:
    """One 1:1 per recipient (reusing existing ones) and one "Sent to X people" entry for the sender."""
    me = plan.caller["id"]
    batch_id = _insert_conversation(session, type="individual_batch", created_by=me, recipient_count=len(plan.people))
    add_participants(session, batch_id, [me], "member")
    rows = []
    for user_id in sorted(plan.people):
        conversation_id, made = _direct_conversation(session, me, user_id)
        if made:
            announce_created(session, conversation_id, [me, user_id])
        rows.append({"batch": batch_id, "user": user_id, "cid": conversation_id})
    session.execute(
        text("INSERT INTO batch_recipients (batch_id, user_id, conversation_id) VALUES (:batch, :user, :cid)"), rows
    )
    announce_created(session, batch_id, [me])
    message = send_to_batch(
        session,
        me,
        batch_id,
        body,
        client_id,
        fingerprint,
        attachments=plan.attachments,
        forwarded_from=plan.forwarded_from,
    )
    return {"conversation": conversation_view(access_conversation(session, me, batch_id)), "message": message}
