"""Mass messages (F27) as conversations keep them.

A job is one conversation of type `mass` holding its one message, sent in the name of an
organisation (a person row `org:<id>` gives the sender's name). Recipients are added in
chunks: each chunk is one statement that adds the participants not already there, and one
`conversation.created` event for those it added (every recipient sees the same view). A
chunk delivered twice adds nobody twice: the participants key is the delivery key.
Nobody can answer (`check_open`), search it, or see who else received it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, text

from services.conversations import domain
from services.conversations.actions import SERVICE, to_json, upsert_people
from services.conversations.views import CONVERSATION_SELECT, conversation_view
from shared.errors import as_uuid, validation
from shared.outbox import add_event

ORG_PREFIX = "org:"
MAX_CHUNK = 5_000


def sender_id(org_id: str) -> str:
    return f"{ORG_PREFIX}{org_id}"


def check_job(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise validation("job is required.", field="job")
    for field in ("job_id", "org_id", "org_name"):
        if not isinstance(raw.get(field), str) or not raw[field]:
            raise validation(f"job.{field} is required.", field=f"job.{field}")
    as_uuid(raw["job_id"], "job")
    return {**raw, "body": domain.check_body(raw.get("body"))}


def check_recipients(raw: Any) -> list[str]:
    if not isinstance(raw, list) or len(raw) > MAX_CHUNK or not all(isinstance(u, str) and u for u in raw):
        raise validation(f"recipient_ids must be a list of at most {MAX_CHUNK:,} user ids.", field="recipient_ids")
    return list(dict.fromkeys(raw))


def _conversation(session: Connection, job: dict[str, Any]) -> uuid.UUID:
    """The job's conversation and its one message, made the first time a chunk arrives."""
    job_id = uuid.UUID(job["job_id"])
    found = session.execute(text("SELECT id FROM conversations WHERE mass_job_id = :job"), {"job": job_id}).scalar()
    if found is not None:
        return found
    sender = sender_id(job["org_id"])
    upsert_people(
        session,
        [{"id": sender, "name": job["org_name"], "role": "organisation", "title": "", "avatar_url": None}],
    )
    made = session.execute(
        text(
            """
            INSERT INTO conversations (type, name, created_by, mass_job_id, last_seq, last_activity_at, last_message)
            VALUES ('mass', :name, :sender, :job, 1, now(), jsonb_build_object(
                'id', CAST(:mid AS text), 'preview', CAST(:preview AS text), 'sender_id', CAST(:sender AS text),
                'sender_name', CAST(:name AS text),
                'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')))
            ON CONFLICT (mass_job_id) DO NOTHING
            RETURNING id
            """
        ),
        {
            "name": job["org_name"],
            "sender": sender,
            "job": job_id,
            "mid": str(job_id),  # the job's one message has the job's id
            "preview": domain.preview(job["body"]),
        },
    ).scalar()
    if made is None:  # a twin chunk made it a moment ago
        return session.execute(
            text("SELECT id FROM conversations WHERE mass_job_id = :job"), {"job": job_id}
        ).scalar_one()
    session.execute(
        text(
            "INSERT INTO messages (id, conversation_id, seq, sender_id, body, links, attachments, created_at) "
            "VALUES (:mid, :cid, 1, :sender, :body, CAST(:links AS jsonb), '[]', now())"
        ),
        {
            "mid": job_id,
            "cid": made,
            "sender": sender,
            "body": job["body"],
            "links": to_json(domain.find_links(job["body"])),
        },
    )
    return made


def do_deliver(session: Connection, job: dict[str, Any], recipients: list[str]) -> dict[str, Any]:
    """Add a chunk of recipients to the job's conversation; how many have it now, and how many are new."""
    cid = _conversation(session, job)
    added = [
        r.user_id
        for r in session.execute(
            text(
                """
                INSERT INTO participants (conversation_id, user_id, via, last_read_seq, unread_count)
                SELECT :cid, u, 'mass', 0, 1 FROM unnest(CAST(:ids AS text[])) AS u
                ON CONFLICT DO NOTHING RETURNING user_id
                """
            ),
            {"cid": cid, "ids": recipients},
        )
    ]
    if added:
        # Everyone sees the same view: one event for the chunk, one packet for realtime to build.
        row = session.execute(
            text(CONVERSATION_SELECT + " WHERE me.user_id = :me AND c.id = :cid"), {"me": added[0], "cid": cid}
        ).one()
        add_event(
            session,
            SERVICE,
            "conversations.conversation.created",
            {"conversation": conversation_view(row)},
            audience=added,
        )
    return {"conversation_id": str(cid), "delivered": len(recipients), "added": len(added)}
