"""What a mass message left in the conversations database, for tests that check it arrived once."""

from __future__ import annotations

from sqlalchemy import text

from shared.config import Settings
from shared.db import transaction


def deliveries(settings: Settings, conversation_id: str) -> tuple[int, int, int]:
    """(participant rows, distinct recipients, messages) of a job's conversation."""
    with transaction(settings.database_url("conversations")) as session:
        people = session.execute(
            text("SELECT count(*), count(DISTINCT user_id) FROM participants WHERE conversation_id = :c"),
            {"c": conversation_id},
        ).one()
        messages = session.execute(
            text("SELECT count(*) FROM messages WHERE conversation_id = :c"), {"c": conversation_id}
        ).scalar_one()
    return people[0], people[1], messages
