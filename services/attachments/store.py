"""Attachment rows: registering an upload, claiming it for a message, following messages, purging."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, text

from shared.errors import AppError, not_found, validation

_VIEW = "id, owner_id, blob_key, name, size, content_type, state, message_id"


def view(row: Any) -> dict[str, Any]:
    """An attachment as messages show it (API.md): id, name, size, content_type."""
    return {"id": str(row.id), "name": row.name, "size": row.size, "content_type": row.content_type}


def as_ids(raw: Any, *, most: int = 10) -> list[uuid.UUID]:
    if not isinstance(raw, list) or not raw or len(raw) > most:
        raise validation(f"Give between 1 and {most} attachment ids.", field="attachment_ids")
    try:
        # An item that is not an id string is refused, never silently left out.
        if not all(isinstance(i, str) for i in raw):
            raise ValueError
        return list(dict.fromkeys(uuid.UUID(i) for i in raw))
    except ValueError:
        raise validation("An attachment id is not valid.", field="attachment_ids") from None


def insert(session: Connection, owner: str, key: str, name: str, size: int, content_type: str) -> dict[str, Any]:
    row = session.execute(
        text(
            f"INSERT INTO attachments (owner_id, blob_key, name, size, content_type) "
            f"VALUES (:owner, :key, :name, :size, :ctype) RETURNING {_VIEW}"
        ),
        {"owner": owner, "key": key, "name": name, "size": size, "ctype": content_type},
    ).one()
    return view(row)


def get(session: Connection, attachment_id: Any) -> Any:
    try:
        ident = uuid.UUID(str(attachment_id))
    except ValueError:
        raise not_found("attachment") from None
    row = session.execute(text(f"SELECT {_VIEW} FROM attachments WHERE id = :id"), {"id": ident}).first()
    if row is None:
        raise not_found("attachment")
    return row


def claim(session: Connection, owner: str, ids: list[uuid.UUID], message_id: uuid.UUID) -> list[dict[str, Any]]:
    """Take the owner's unused uploads for one message, all or none; their views in the order asked."""
    rows = session.execute(text(f"SELECT {_VIEW} FROM attachments WHERE id = ANY(:ids) FOR UPDATE"), {"ids": ids}).all()
    found = {r.id: r for r in rows if r.owner_id == owner}
    if len(found) != len(ids):
        raise AppError("not_found", "One of the files is not yours or no longer exists.", {"field": "attachment_ids"})
    used = [r.name for r in found.values() if r.state != "uploaded" and r.message_id != message_id]
    if used:
        raise AppError(
            "not_allowed", f"{used[0]} was already sent. Upload it again to send it once more.", {"action": "attach"}
        )
    session.execute(
        text(
            "UPDATE attachments SET state = 'claimed', message_id = :mid, claimed_at = now() "
            "WHERE id = ANY(:ids) AND state = 'uploaded'"
        ),
        {"ids": ids, "mid": message_id},
    )
    return [view(found[i]) for i in ids]


def release(session: Connection, owner: str, message_id: uuid.UUID) -> None:
    """A send that claimed files and then failed gives them back."""
    session.execute(
        text(
            "UPDATE attachments SET state = 'uploaded', message_id = NULL, claimed_at = NULL "
            "WHERE owner_id = :owner AND message_id = :mid AND state = 'claimed'"
        ),
        {"owner": owner, "mid": message_id},
    )


def discard(session: Connection, owner: str, ids: list[uuid.UUID]) -> list[str]:
    """Remove the owner's unused uploads; the blob keys to delete."""
    rows = session.execute(
        text(
            "DELETE FROM attachments WHERE owner_id = :owner AND id = ANY(:ids) AND state = 'uploaded' "
            "RETURNING blob_key"
        ),
        {"owner": owner, "ids": ids},
    )
    return [r.blob_key for r in rows]


def message_stored(session: Connection, message_id: str, attachment_ids: list[str]) -> None:
    """A message carrying files exists (sent or forwarded): the files live while it does."""
    ids = [uuid.UUID(i) for i in attachment_ids]
    session.execute(
        text(
            "INSERT INTO attachment_refs (attachment_id, message_id) "
            "SELECT a, :mid FROM unnest(CAST(:ids AS uuid[])) AS a ON CONFLICT DO NOTHING"
        ),
        {"ids": ids, "mid": uuid.UUID(message_id)},
    )
    session.execute(
        text("UPDATE attachments SET state = 'attached' WHERE id = ANY(:ids) AND state <> 'attached'"), {"ids": ids}
    )


def message_gone(session: Connection, message_id: str) -> list[str]:
    """A message was deleted: the files no other message carries are destroyed; their blob keys."""
    released = session.execute(
        text("DELETE FROM attachment_refs WHERE message_id = :mid RETURNING attachment_id"),
        {"mid": uuid.UUID(message_id)},
    ).all()
    if not released:
        return []
    rows = session.execute(
        text(
            "DELETE FROM attachments a WHERE a.id = ANY(:ids) AND a.state = 'attached' "
            "AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.attachment_id = a.id) RETURNING blob_key"
        ),
        {"ids": [r.attachment_id for r in released]},
    )
    return [r.blob_key for r in rows]


def purge(session: Connection, older_than_hours: float) -> list[str]:
    """Uploads never sent (or claimed by a send that never completed) past their time; their blob keys."""
    rows = session.execute(
        text(
            "DELETE FROM attachments a WHERE a.state <> 'attached' "
            "AND coalesce(a.claimed_at, a.created_at) < now() - make_interval(secs => :secs) "
            "AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.attachment_id = a.id) RETURNING blob_key"
        ),
        {"secs": older_than_hours * 3600},
    )
    return [r.blob_key for r in rows]
