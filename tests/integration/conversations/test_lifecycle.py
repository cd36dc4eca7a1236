"""Read state, participants, close/reopen/delete/restore, and edit/delete/forward."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from tests.integration.conversations.conftest import OTHER, STUDENT, TEACHER, Api, outbox

THIRD = "user-s-0003"


def _unread(api: Api, user: str, conversation_id: str) -> int:
    return api.conversation(user, conversation_id)["unread_count"]


def _group(api: Api) -> str:
    return api.start(TEACHER, STUDENT, OTHER, mode="group", name="Project team")["conversation"]["id"]


def test_opening_a_conversation_already_read_to_its_end_changes_and_announces_nothing(db: Settings, api: Api) -> None:
    cid = api.start(TEACHER, STUDENT, body="one")["conversation"]["id"]
    first = api.call(STUDENT, "read.mark", conversation_id=cid)
    assert len(outbox(db, "conversations.unread.updated")) == 1
    assert api.call(STUDENT, "read.mark", conversation_id=cid) == first  # read again: the same state
    assert len(outbox(db, "conversations.unread.updated")) == 1  # and nothing for the other devices
    api.send(TEACHER, cid, "two")
    assert api.call(STUDENT, "read.mark", conversation_id=cid)["last_read_seq"] == first["last_read_seq"] + 1
    assert len(outbox(db, "conversations.unread.updated")) == 2


def test_reading_marks_read_and_marking_unread_brings_messages_back(db: Settings, api: Api) -> None:
    cid = api.start(TEACHER, STUDENT, body="one")["conversation"]["id"]
    second = api.send(TEACHER, cid, "two")
    api.send(TEACHER, cid, "three")
    assert _unread(api, STUDENT, cid) == 3
    assert api.call(STUDENT, "read.mark", conversation_id=cid, message_id=second["id"]) == {
        "unread_count": 1,
        "unread_total": 1,
        "last_read_seq": second["seq"],
    }
    assert api.call(STUDENT, "read.mark", conversation_id=cid)["unread_count"] == 0
    assert api.call(STUDENT, "read.unmark", conversation_id=cid)["unread_count"] == 1
    assert api.call(STUDENT, "read.unmark", conversation_id=cid, message_id=second["id"])["unread_count"] == 2
    assert api.call(STUDENT, "unread.total") == {"unread_total": 2}
    events = outbox(db, "conversations.unread.updated")
    assert len(events) == 4 and all('"audience":["user-s-0001"]' in e for e in events)


def test_reading_an_older_message_does_not_unread_newer_ones(api: Api) -> None:
    cid = api.start(TEACHER, STUDENT, body="one")["conversation"]["id"]
    first = api.call(STUDENT, "messages.list", conversation_id=cid)["items"][0]
    api.send(TEACHER, cid, "two")
    api.call(STUDENT, "read.mark", conversation_id=cid)
    assert api.call(STUDENT, "read.mark", conversation_id=cid, message_id=first["id"])["unread_count"] == 0


def test_unread_counts_stay_exact_while_messages_arrive_during_reading(db: Settings, api: Api) -> None:
    cid = api.start(TEACHER, STUDENT, OTHER, mode="group", body="start")["conversation"]["id"]
    stop = threading.Event()

    def reader(user: str) -> None:
        while not stop.is_set():
            api.call(user, "read.mark", conversation_id=cid)
            api.call(user, "read.unmark", conversation_id=cid)

    def sender(user: str) -> None:
        for i in range(40):
            api.send(user, cid, f"{user} {i}")

    readers = [threading.Thread(target=reader, args=(u,)) for u in (STUDENT, OTHER)]
    senders = [threading.Thread(target=sender, args=(u,)) for u in (TEACHER, OTHER)]
    for t in readers + senders:
        t.start()
    for t in senders:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    with transaction(db.database_url("conversations")) as session:
        rows = session.execute(
            text(
                "SELECT p.user_id, p.unread_count, (SELECT count(*) FROM messages m WHERE m.conversation_id = "
                "p.conversation_id AND m.seq > p.last_read_seq AND m.deleted IS NULL) AS actual "
                "FROM participants p WHERE p.conversation_id = :cid"
            ),
            {"cid": cid},
        ).all()
    # Whatever the interleaving, each count is exactly the messages after that reader's mark.
    assert [(r.user_id, r.unread_count) for r in rows] == [(r.user_id, r.actual) for r in rows]
    api.call(STUDENT, "read.mark", conversation_id=cid)
    api.send(TEACHER, cid, "after")
    assert _unread(api, STUDENT, cid) == 1


def test_participants_are_listed_with_name_title_and_role(api: Api) -> None:
    cid = _group(api)
    people = api.call(STUDENT, "participants.list", conversation_id=cid)["items"]
    assert {p["user_id"] for p in people} == {TEACHER, STUDENT, OTHER}
    teacher = next(p for p in people if p["user_id"] == TEACHER)
    assert teacher["role"] == "teacher" and teacher["title"] and teacher["name"]


def test_any_participant_of_a_group_adds_people_and_everyone_is_told(db: Settings, api: Api) -> None:
    cid = _group(api)
    api.call(STUDENT, "participants.add", conversation_id=cid, user_ids=[THIRD])
    assert api.conversation(THIRD, cid)["participant_count"] == 4
    added = outbox(db, "conversations.participant.added")
    assert len(added) == 1 and THIRD in added[0]


def test_only_teachers_and_admins_remove_and_the_removed_is_told_and_locked_out(db: Settings, api: Api) -> None:
    cid = _group(api)
    with pytest.raises(AppError) as refused:
        api.call(STUDENT, "participants.remove", conversation_id=cid, user_id=OTHER)
    assert refused.value.code == "not_allowed"
    api.call(TEACHER, "participants.remove", conversation_id=cid, user_id=OTHER)
    removed = outbox(db, "conversations.participant.removed")
    assert len(removed) == 1 and OTHER in removed[0].split('"audience":')[1]
    with pytest.raises(AppError) as gone:
        api.conversation(OTHER, cid)
    assert gone.value.code == "not_found"


def test_removing_is_for_group_conversations_only(api: Api) -> None:
    cid = api.start(TEACHER, ("course", "class-001"), mode="group")["conversation"]["id"]
    with pytest.raises(AppError) as info:
        api.call(TEACHER, "participants.remove", conversation_id=cid, user_id=STUDENT)
    assert info.value.code == "not_allowed"


def test_leaving_and_renaming_a_group(api: Api) -> None:
    cid = _group(api)
    assert api.call(OTHER, "conversations.rename", conversation_id=cid, name="  Maths  helpers ")["name"] == (
        "Maths helpers"
    )
    api.call(OTHER, "conversations.leave", conversation_id=cid)
    assert api.conversation(TEACHER, cid)["participant_count"] == 2
    with pytest.raises(AppError):
        api.call(STUDENT, "conversations.rename", conversation_id=cid, name="")


def test_a_closed_conversation_keeps_its_history_and_refuses_new_messages_until_reopened(api: Api) -> None:
    cid = _group(api)
    closed = api.call(TEACHER, "conversations.close", conversation_id=cid)
    assert (closed["status"], closed["status_text"]) == ("closed", "Closed conversation")
    assert api.conversation(STUDENT, cid)["status_text"] == "Closed conversation"
    with pytest.raises(AppError) as info:
        api.send(STUDENT, cid, "hello?")
    assert info.value.code == "conversation_closed"
    assert len(api.call(STUDENT, "messages.list", conversation_id=cid)["items"]) == 1
    api.call(TEACHER, "conversations.reopen", conversation_id=cid)
    assert api.send(STUDENT, cid, "back again")["body"] == "back again"


def test_a_student_cannot_close_a_course_conversation(api: Api) -> None:
    cid = api.start(TEACHER, ("course", "class-001"), mode="group")["conversation"]["id"]
    with pytest.raises(AppError) as info:
        api.call(STUDENT, "conversations.close", conversation_id=cid)
    assert info.value.code == "not_allowed"


def test_a_deleted_course_conversation_stays_readable_and_a_new_one_can_start(api: Api) -> None:
    old = api.start(TEACHER, ("course", "class-001"), mode="group", body="Old thread")["conversation"]["id"]
    api.call(TEACHER, "conversations.delete", conversation_id=old)
    with pytest.raises(AppError) as info:
        api.send(STUDENT, old, "anyone?")
    assert info.value.code == "conversation_closed"
    assert api.call(STUDENT, "messages.list", conversation_id=old)["items"][0]["body"] == "Old thread"
    new = api.start(TEACHER, ("course", "class-001"), mode="group", body="Fresh start")["conversation"]["id"]
    assert new != old
    with pytest.raises(AppError) as blocked:
        api.call(TEACHER, "conversations.restore", conversation_id=old)
    assert blocked.value.code == "not_allowed"
    api.call(TEACHER, "conversations.delete", conversation_id=new)
    assert api.call(TEACHER, "conversations.restore", conversation_id=old)["status"] == "open"


def test_editing_a_message_shows_it_edited_to_everyone(db: Settings, api: Api) -> None:
    cid = api.start(TEACHER, STUDENT, body="See page 12")["conversation"]["id"]
    message = api.call(TEACHER, "messages.list", conversation_id=cid)["items"][0]
    edited = api.call(TEACHER, "messages.edit", message_id=message["id"], body="See page 14 at https://school.org")
    assert edited["edited_at"] and edited["links"][0]["url"] == "https://school.org"
    assert api.call(STUDENT, "messages.list", conversation_id=cid)["items"][0]["body"].startswith("See page 14")
    assert api.conversation(STUDENT, cid)["last_message"]["preview"].startswith("See page 14")
    assert len(outbox(db, "conversations.message.updated")) == 1
    with pytest.raises(AppError) as info:
        api.call(STUDENT, "messages.edit", message_id=message["id"], body="hacked")
    assert info.value.code == "forbidden"


def test_deleting_ones_own_message_removes_its_content_for_everyone(db: Settings, api: Api) -> None:
    cid = api.start(TEACHER, STUDENT, body="Oops, wrong chat")["conversation"]["id"]
    message = api.call(TEACHER, "messages.list", conversation_id=cid)["items"][0]
    with pytest.raises(AppError) as info:
        api.call(STUDENT, "messages.delete", message_id=message["id"])
    assert info.value.code == "forbidden"
    deleted = api.call(TEACHER, "messages.delete", message_id=message["id"])
    assert deleted["body"] == "" and deleted["deleted"]["by"] == "author"
    seen = api.call(STUDENT, "messages.list", conversation_id=cid)["items"][0]
    assert seen["body"] == "" and seen["deleted"] == deleted["deleted"]
    assert _unread(api, STUDENT, cid) == 0
    assert "Oops" not in "".join(outbox(db, "conversations.message.deleted"))


def test_forwarding_to_a_conversation_and_to_new_recipients(api: Api) -> None:
    source_cid = api.start(TEACHER, STUDENT, body="Field trip on Monday")["conversation"]["id"]
    message = api.call(STUDENT, "messages.list", conversation_id=source_cid)["items"][0]
    group = api.start(STUDENT, OTHER, THIRD, mode="group", body="hi")["conversation"]["id"]
    forwarded = api.call(STUDENT, "messages.forward", message_id=message["id"], conversation_id=group)["message"]
    assert forwarded["body"] == "Field trip on Monday" and forwarded["forwarded_from"] == message["id"]
    fresh = api.call(STUDENT, "messages.forward", message_id=message["id"], recipients=[{"type": "user", "id": OTHER}])
    assert fresh["conversation"]["type"] == "direct"
    with pytest.raises(AppError) as rule:
        api.call(
            TEACHER,
            "messages.forward",
            message_id=message["id"],
            recipients=[{"type": "course", "id": "class-002"}, {"type": "user", "id": OTHER}],
            mode="group",
        )
    assert rule.value.code == "too_many_recipients"
    with pytest.raises(AppError) as hidden:
        api.call(OTHER, "messages.forward", message_id=message["id"], conversation_id=group)
    assert hidden.value.code == "not_found"


def test_events_go_to_whoever_takes_part_at_that_moment(db: Settings, api: Api) -> None:
    cid = _group(api)
    api.call(TEACHER, "participants.remove", conversation_id=cid, user_id=OTHER)
    api.call(TEACHER, "participants.add", conversation_id=cid, user_ids=[THIRD])
    api.send(STUDENT, cid, "after the change")
    created = [json.loads(e) for e in outbox(db, "conversations.message.created")]
    first, last = created[0], created[-1]
    assert sorted(first["audience"]) == sorted([TEACHER, STUDENT, OTHER])
    assert sorted(last["audience"]) == sorted([TEACHER, STUDENT, THIRD])
    updated = api.call(TEACHER, "conversations.rename", conversation_id=cid, name="Renamed")
    assert updated["name"] == "Renamed"
    renamed = json.loads(outbox(db, "conversations.conversation.updated")[-1])
    assert sorted(renamed["audience"]) == sorted([TEACHER, STUDENT, THIRD])
    assert renamed["data"]["changes"]["name"] == "Renamed"
