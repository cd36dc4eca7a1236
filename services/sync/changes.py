"""Reading the change log for one user: what they may see, after their cursor, as they would have received it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

from shared.errors import AppError
from shared.events import Envelope, client_event, client_view, part_for

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


def check_limit(raw: Any) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except (TypeError, ValueError, OverflowError):
        raise AppError("validation_failed", "limit must be a whole number.", {"field": "limit"}) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise AppError("validation_failed", f"limit must be between 1 and {MAX_LIMIT}.", {"field": "limit"})
    return limit


def change_view(user_id: str, seq: int, raw_envelope: str) -> dict[str, Any]:
    envelope = Envelope.from_dict(json.loads(raw_envelope))
    return {
        "event": client_event(envelope.type) or envelope.type,
        **client_view(envelope, part_for(envelope.data, user_id)),
        "seq": seq,
    }


def changes_since(session: Connection, user_id: str, since: int | None, limit: int) -> dict[str, Any]:
    """Every change `user_id` was an audience of after position `since`, oldest first; positions only.

    Reads up to the newest position committed when it starts: a change is logged in position
    order, so nothing at or below that position can still appear later. Must be the first
    statement of `session`'s transaction.
    """
    # One snapshot for the bounds and the rows: a prune committing in between must not delete
    # rows after `since` unseen, which would skip them silently instead of `cursor_expired`.
    session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    floor, newest = session.execute(
        text("SELECT f.seq, coalesce((SELECT max(seq) FROM changes), f.seq) FROM log_floor f")
    ).one()
    if since is None:
        return {"changes": [], "position": newest, "has_more": False}
    if since < floor or since > newest:
        raise AppError(
            "cursor_expired",
            "Too much has changed since this client last synced. Reload to catch up.",
            {"oldest": floor},
        )
    rows = session.execute(
        text(
            "SELECT c.seq, c.envelope FROM change_audience a JOIN changes c ON c.seq = a.seq "
            "WHERE a.user_id = :me AND a.seq > :since AND a.seq <= :newest ORDER BY a.seq LIMIT :limit"
        ),
        {"me": user_id, "since": since, "newest": newest, "limit": limit + 1},
    ).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    changes = [change_view(user_id, r.seq, r.envelope) for r in rows]
    return {"changes": changes, "position": rows[-1].seq if has_more else newest, "has_more": has_more}
