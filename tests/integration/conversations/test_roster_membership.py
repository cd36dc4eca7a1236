"""Course and project conversations follow the roster: enrolment events add and remove members."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from services.conversations.consumers import consumers
from shared.bus import EventConsumer
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.events import make_event
from tests.integration.conversations.conftest import STUDENT, TEACHER, Api, outbox
from tests.support.bus import consuming, publish
from tests.support.waiting import wait_for

NEWCOMER = "user-s-0900"


@pytest.fixture
def following(db: Settings, api: Api) -> Iterator[list[EventConsumer]]:
    with consuming(db, consumers(db)) as started:
        yield started


def _members(api: Api, cid: str) -> set[str]:
    return {p["user_id"] for p in api.call(TEACHER, "participants.list", conversation_id=cid)["items"]}


def test_a_newly_enrolled_student_joins_the_course_conversation_once(db: Settings, api: Api, following) -> None:
    cid = api.start(TEACHER, ("course", "class-001"), mode="group")["conversation"]["id"]
    joined = make_event(
        "directory.enrolment.added",
        {"kind": "course", "group_id": "class-001", "user_id": NEWCOMER, "role": "student"},
        producer="directory",
    )
    publish(db, joined, joined)  # delivered twice: handled once
    assert wait_for(lambda: NEWCOMER in _members(api, cid))
    assert wait_for(lambda: len(outbox(db, "conversations.participant.added")) == 1)
    newcomer_view = api.conversation(NEWCOMER, cid)
    assert newcomer_view["unread_count"] == 0  # history is there to read, not counted as new
    assert api.call(NEWCOMER, "messages.list", conversation_id=cid)["items"]


def test_an_unenrolled_student_leaves_the_course_conversation_and_is_told(db: Settings, api: Api, following) -> None:
    cid = api.start(TEACHER, ("course", "class-001"), mode="group")["conversation"]["id"]
    publish(
        db,
        make_event(
            "directory.enrolment.removed",
            {"kind": "course", "group_id": "class-001", "user_id": STUDENT},
            producer="directory",
        ),
    )
    assert wait_for(lambda: STUDENT not in _members(api, cid))
    assert wait_for(lambda: len(outbox(db, "conversations.participant.removed")) == 1)
    removed = outbox(db, "conversations.participant.removed")[0]
    assert STUDENT in removed.split('"audience":')[1] and '"reason":"unenrolled"' in removed
    with pytest.raises(AppError):
        api.conversation(STUDENT, cid)


def test_enrolments_in_a_course_without_a_conversation_change_nothing(db: Settings, api: Api, following) -> None:
    cid = api.start(TEACHER, ("course", "class-001"), mode="group")["conversation"]["id"]
    elsewhere = make_event(
        "directory.enrolment.added",
        {"kind": "course", "group_id": "class-005", "user_id": NEWCOMER, "role": "student"},
        producer="directory",
    )
    # Events are handled in order: once the second one shows, the first has been handled too.
    marker = make_event(
        "directory.enrolment.added",
        {"kind": "course", "group_id": "class-001", "user_id": NEWCOMER, "role": "student"},
        producer="directory",
    )
    publish(db, elsewhere, marker)
    assert wait_for(lambda: NEWCOMER in _members(api, cid))
    assert [c["id"] for c in api.call(NEWCOMER, "conversations.list")["items"]] == [cid]


def test_a_course_conversation_catches_up_with_enrolments_it_missed(db: Settings, api: Api) -> None:
    """Enrolment events handled while nobody had a conversation to change are caught on the next post."""
    cid = api.start(TEACHER, ("course", "class-001"), mode="group")["conversation"]["id"]
    url = db.database_url("directory")
    with transaction(url) as session:  # the roster changes, and its events went nowhere
        saved = session.execute(
            text("DELETE FROM enrollments WHERE class_id = 'class-001' AND user_id = :u RETURNING *"), {"u": STUDENT}
        ).one()
        session.execute(
            text(
                "INSERT INTO enrollments (sourced_id, class_id, user_id, roster_role, role, school_id) "
                "VALUES ('enr-test-newcomer', 'class-001', :u, 'student', 'student', :school)"
            ),
            {"u": NEWCOMER, "school": saved.school_id},
        )
    try:
        again = api.start(TEACHER, ("course", "class-001"), mode="group", body="Roll call")["conversation"]["id"]
        assert again == cid
        assert NEWCOMER in _members(api, cid) and STUDENT not in _members(api, cid)
    finally:
        with transaction(url) as session:
            session.execute(text("DELETE FROM enrollments WHERE sourced_id = 'enr-test-newcomer'"))
            session.execute(
                text(
                    "INSERT INTO enrollments (sourced_id, class_id, user_id, roster_role, role, school_id) "
                    "VALUES (:s, :c, :u, :rr, :r, :school)"
                ),
                {
                    "s": saved.sourced_id,
                    "c": saved.class_id,
                    "u": saved.user_id,
                    "rr": saved.roster_role,
                    "r": saved.role,
                    "school": saved.school_id,
                },
            )
