"""People starting overlapping conversations at the same moment: every start succeeds, none deadlocks."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import text

from shared.config import Settings
from shared.db import transaction
from tests.integration.conftest import truncate
from tests.integration.conversations.conftest import TEACHER, Api

# A teacher and four students of one class (Math 9B): each may start a group with all the others.
CLASS = (TEACHER, "user-s-0001", "user-s-0013", "user-s-0019", "user-s-0024")
ROUNDS = 8


def _start_all_at_once(api: Api) -> list[Any]:
    """Each member starts a group of the whole class at once, naming the others in an order of their own."""
    barrier = threading.Barrier(len(CLASS))
    outcomes: list[Any] = [None] * len(CLASS)

    def start(i: int) -> None:
        others = [CLASS[(i + k) % len(CLASS)] for k in range(len(CLASS) - 1, 0, -1)]
        barrier.wait()
        try:
            outcomes[i] = api.start(CLASS[i], *others, mode="group", name=f"Group of {CLASS[i]}")
        except Exception as exc:  # noqa: BLE001  (the assertion below names it)
            outcomes[i] = exc

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(CLASS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_overlapping_conversations_started_at_once_all_succeed(db: Settings, api: Api) -> None:
    url = db.database_url("conversations")
    for _ in range(ROUNDS):
        truncate(url)  # nobody known yet: every start inserts the same people at the same time
        outcomes = _start_all_at_once(api)
        failed = [o for o in outcomes if not isinstance(o, dict)]
        assert failed == [], failed
        with transaction(url) as session:
            groups = session.execute(
                text(
                    "SELECT c.id, array_agg(p.user_id ORDER BY p.user_id) AS members FROM conversations c "
                    "JOIN participants p ON p.conversation_id = c.id WHERE c.type = 'group' GROUP BY c.id"
                )
            ).all()
            people = session.execute(text("SELECT user_id FROM people ORDER BY user_id")).scalars().all()
        assert len(groups) == len(CLASS)
        assert all(g.members == sorted(CLASS) for g in groups)
        assert people == sorted(CLASS)


def test_an_upsert_of_people_who_have_not_changed_writes_nothing(db: Settings, api: Api) -> None:
    url = db.database_url("conversations")
    api.start(TEACHER, *CLASS[1:], mode="group", name="First")
    with transaction(url) as session:
        before = session.execute(text("SELECT user_id, xmin::text AS version FROM people ORDER BY user_id")).all()
    api.start(TEACHER, *CLASS[1:], mode="group", name="Second")
    with transaction(url) as session:
        after = session.execute(text("SELECT user_id, xmin::text AS version FROM people ORDER BY user_id")).all()
    assert after == before  # the same row versions: nothing rewritten
