"""Jobs and chunks in the mass-messaging database.

Every change to a job records `mass_messaging.job.progress` (to its sender) in the same
transaction. A chunk changes state once, and the job's counters move only with that change,
so a chunk handled twice (a redelivered task, a sweep) counts once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from services.mass_messaging import domain
from shared.cursor import Cursors, check_limit, decode_time_id, next_time_id
from shared.errors import as_uuid, not_found
from shared.outbox import add_event

SERVICE = "mass_messaging"


def _progress(session: Connection, row: Any) -> dict[str, Any]:
    view = domain.job_view(row)
    add_event(session, SERVICE, "mass_messaging.job.progress", {"job": view}, audience=[row.sender_id])
    return view


def load(session: Connection, job_id: Any, *, lock: bool = False) -> Any:
    return session.execute(
        text("SELECT * FROM jobs WHERE id = :id" + (" FOR UPDATE" if lock else "")),
        {"id": as_uuid(job_id, "mass message")},
    ).first()


def access_job(session: Connection, caller_id: str, job_id: Any) -> Any:
    row = load(session, job_id)
    if row is None or row.sender_id != caller_id:
        raise not_found("mass message")
    return row


def do_create(session: Connection, sender_id: str, authorised: dict[str, Any], body: str) -> dict[str, Any]:
    row = session.execute(
        text(
            """
            INSERT INTO jobs (sender_id, org_id, org_name, org_ids, roles, body, audience)
            VALUES (:sender, :org, :name, :org_ids, :roles, :body, :audience) RETURNING *
            """
        ),
        {
            "sender": sender_id,
            "org": authorised["sender"]["org_id"],
            "name": authorised["sender"]["name"],
            "org_ids": authorised["org_ids"],
            "roles": authorised["roles"],
            "body": body,
            "audience": authorised["audience_size"],
        },
    ).one()
    return _progress(session, row)


def do_cancel(session: Connection, caller_id: str, job_id: Any) -> dict[str, Any]:
    row = load(session, job_id, lock=True)
    if row is None:
        raise not_found("mass message")
    domain.check_cancel({"sender_id": row.sender_id, "state": row.state}, caller_id)
    session.execute(
        text("UPDATE chunks SET state = 'cancelled' WHERE job_id = :id AND state = 'pending'"), {"id": row.id}
    )
    row = session.execute(
        text("UPDATE jobs SET state = 'cancelled', finished_at = now(), touched_at = now() WHERE id = :id RETURNING *"),
        {"id": row.id},
    ).one()
    return _progress(session, row)


def list_jobs(session: Connection, cursors: Cursors, caller_id: str, cursor: Any, limit: Any) -> dict[str, Any]:
    limit = check_limit(limit)
    position = decode_time_id(cursors, cursor, caller_id, "mass")
    params: dict[str, Any] = {"me": caller_id, "n": limit + 1}
    where = "sender_id = :me"
    if position:
        params["at"], params["after"] = position
        where += " AND (created_at, id) < (:at, :after)"
    rows = session.execute(
        text(f"SELECT * FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT :n"), params
    ).all()
    items = [domain.job_view(r) for r in rows[:limit]]
    next_cursor = next_time_id(cursors, rows, limit, caller_id, "mass", "created_at")
    return {"items": items, "next_cursor": next_cursor}


# What the workers do -------------------------------------------------------------------------------


def save_plan(session: Connection, job_id: str, chunked: list[list[str]], skipped: int) -> list[int]:
    """Fix the job's audience in chunks (the first plan wins); the chunks still to deliver."""
    row = load(session, job_id, lock=True)
    if row is None or row.state not in domain.UNFINISHED:
        return []
    if row.chunks is None:
        if chunked:
            session.execute(
                text("INSERT INTO chunks (job_id, index, recipient_ids) VALUES (:job, :i, :ids)"),
                [{"job": row.id, "i": i, "ids": ids} for i, ids in enumerate(chunked)],
            )
        audience = sum(len(c) for c in chunked) + skipped
        finished = not chunked
        row = session.execute(
            text(
                """
                UPDATE jobs SET chunks = :n, audience = :audience, skipped = :skipped, touched_at = now(),
                    state = CASE WHEN :finished THEN 'completed' ELSE 'running' END,
                    started_at = now(), finished_at = CASE WHEN :finished THEN now() END
                WHERE id = :id RETURNING *
                """
            ),
            {"n": len(chunked), "audience": audience, "skipped": skipped, "finished": finished, "id": row.id},
        ).one()
        _progress(session, row)
    pending = session.execute(
        text("SELECT index FROM chunks WHERE job_id = :job AND state = 'pending' ORDER BY index"), {"job": row.id}
    )
    return [r.index for r in pending]


def chunk_to_deliver(session: Connection, job_id: str, index: int) -> tuple[Any, list[str]] | None:
    """The job and a chunk's recipients, if the chunk is still to deliver (and counts an attempt)."""
    row = session.execute(
        text(
            "UPDATE chunks SET attempts = attempts + 1 WHERE job_id = :job AND index = :i AND state = 'pending' "
            "RETURNING recipient_ids"
        ),
        {"job": as_uuid(job_id, "mass message"), "i": index},
    ).first()
    if row is None:
        return None
    job = load(session, job_id)
    if job is None or job.state != "running":
        return None
    return job, list(row.recipient_ids)


def finish_chunk(
    session: Connection, job_id: str, index: int, outcome: str, conversation_id: str | None = None
) -> dict[str, Any] | None:
    """Record a chunk delivered (or failed) once, move the counters, finish the job after its last chunk.

    A chunk cancelled while its delivery was under way counts as delivered: its recipients have it.
    """
    # The job's row first, as cancelling takes it: the same order everywhere, so never a deadlock.
    session.execute(text("SELECT 1 FROM jobs WHERE id = :job FOR UPDATE"), {"job": as_uuid(job_id, "mass message")})
    chunk = session.execute(
        text(
            "UPDATE chunks SET state = :outcome WHERE job_id = :job AND index = :i "
            "AND (state = 'pending' OR (state = 'cancelled' AND :outcome = 'delivered')) "
            "RETURNING cardinality(recipient_ids) AS n"
        ),
        {"outcome": outcome, "job": as_uuid(job_id, "mass message"), "i": index},
    ).first()
    if chunk is None:
        return None
    delivered, failed = (chunk.n, 0) if outcome == "delivered" else (0, chunk.n)
    row = session.execute(
        text(
            """
            UPDATE jobs SET delivered = delivered + :delivered, failed = failed + :failed,
                chunks_done = chunks_done + 1, touched_at = now(),
                conversation_id = coalesce(conversation_id, :cid),
                state = CASE WHEN state = 'running' AND chunks_done + 1 >= chunks
                             THEN CASE WHEN delivered + :delivered = 0 THEN 'failed' ELSE 'completed' END
                             ELSE state END,
                finished_at = CASE WHEN state = 'running' AND chunks_done + 1 >= chunks THEN now() ELSE finished_at END
            WHERE id = :job RETURNING *
            """
        ),
        {"delivered": delivered, "failed": failed, "cid": conversation_id, "job": as_uuid(job_id, "mass message")},
    ).one()
    return _progress(session, row)


def stale_jobs(session: Connection, older_than_seconds: float) -> list[str]:
    rows = session.execute(
        text(
            "SELECT id FROM jobs WHERE state IN ('queued', 'running') "
            "AND touched_at < now() - make_interval(secs => :s) ORDER BY touched_at LIMIT 100"
        ),
        {"s": older_than_seconds},
    )
    return [str(r.id) for r in rows]


def touch(session: Connection, job_id: str) -> None:
    session.execute(text("UPDATE jobs SET touched_at = now() WHERE id = :id"), {"id": as_uuid(job_id, "mass message")})


def attempts(session: Connection, job_id: str, index: int) -> int:
    found = session.execute(
        text("SELECT attempts FROM chunks WHERE job_id = :job AND index = :i"),
        {"job": as_uuid(job_id, "mass message"), "i": index},
    ).scalar()
    return int(found or 0)
