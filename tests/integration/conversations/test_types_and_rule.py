"""Every conversation type and the 300 rule, against the real directory and database."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from tests.integration.conversations.conftest import DISTRICT_ADMIN, OTHER, STUDENT, TEACHER, Api, outbox

SMALL, LARGE = ("course", "class-001"), ("course", "class-002")


def _preview(api: Api, user: str, *recipients: str | tuple[str, str]) -> dict:
    listed = [{"type": "user", "id": r} if isinstance(r, str) else {"type": r[0], "id": r[1]} for r in recipients]
    return api.call(user, "conversations.preview", recipients=listed)


def _school_classes(settings: Settings, count: int) -> list[tuple[str, str]]:
    with transaction(settings.database_url("directory")) as session:
        rows = session.execute(
            text("SELECT sourced_id FROM classes WHERE sourced_id <> 'class-002' ORDER BY sourced_id LIMIT :n"),
            {"n": count},
        )
        return [("course", r.sourced_id) for r in rows]


def test_the_preview_follows_each_row_of_the_decision_matrix(db: Settings, api: Api) -> None:
    assert _preview(api, TEACHER, STUDENT)["outcome"] == "direct"
    assert _preview(api, TEACHER, STUDENT, OTHER)["modes"] == ["group", "individual"]
    small = _preview(api, TEACHER, SMALL)
    assert (small["outcome"], small["modes"], small["error"]) == ("choice", ["group", "individual"], None)
    large = _preview(api, TEACHER, LARGE)
    assert (large["outcome"], large["modes"], large["unique_count"]) == ("course_conversation", [], 331)
    refused = _preview(api, TEACHER, LARGE, STUDENT)
    assert (refused["outcome"], refused["error"]["code"]) == ("refused", "too_many_recipients")
    combined = _preview(api, DISTRICT_ADMIN, *_school_classes(db, 39))
    assert combined["unique_count"] > 300
    assert combined["modes"] == ["group", "individual"] and combined["error"]["code"] == "too_many_recipients"


def test_a_send_that_breaks_the_rule_fails_and_creates_nothing(db: Settings, api: Api) -> None:
    for recipients, mode in [((LARGE, STUDENT), "group"), (tuple(_school_classes(db, 39)), "individual")]:
        with pytest.raises(AppError) as info:
            api.start(DISTRICT_ADMIN if len(recipients) > 2 else TEACHER, *recipients, mode=mode)
        assert info.value.code == "too_many_recipients"
    with transaction(db.database_url("conversations")) as session:
        assert session.execute(text("SELECT count(*) FROM conversations")).scalar_one() == 0


def test_the_sender_counts_only_once_and_not_as_a_recipient(api: Api) -> None:
    assert _preview(api, STUDENT, SMALL)["unique_count"] == _preview(api, TEACHER, SMALL)["unique_count"]
    with pytest.raises(AppError) as info:
        api.start(TEACHER, TEACHER)
    assert info.value.code == "validation_failed"


def test_a_large_course_posts_into_its_one_course_conversation(db: Settings, api: Api) -> None:
    first = api.start(TEACHER, LARGE, body="Assembly moves to 10:00")["conversation"]
    second = api.start(TEACHER, LARGE, body="Bring your books", mode="individual")["conversation"]
    assert first["id"] == second["id"]
    assert first["type"] == "course" and first["participant_count"] == 332
    assert first["group"] == {"kind": "course", "id": "class-002"}
    assert first["participants_url"].endswith("/course/class-002/participants")
    listed = api.call(STUDENT, "conversations.list")["items"]
    assert listed[0]["id"] == first["id"] and listed[0]["unread_count"] == 2
    # Announced once to everyone, not once per member.
    assert len(outbox(db, "conversations.conversation.created")) == 1


def test_a_small_course_in_group_mode_uses_the_course_conversation(api: Api) -> None:
    conversation = api.start(TEACHER, SMALL, mode="group")["conversation"]
    assert conversation["type"] == "course"
    assert api.conversation(STUDENT, conversation["id"])["type"] == "course"


def test_several_people_in_group_mode_make_one_named_group(api: Api) -> None:
    conversation = api.start(TEACHER, STUDENT, OTHER, mode="group", name="Chess club")["conversation"]
    assert (conversation["type"], conversation["name"], conversation["participant_count"]) == ("group", "Chess club", 3)
    assert api.conversation(OTHER, conversation["id"])["name"] == "Chess club"


def test_individual_messages_make_one_direct_conversation_each_and_one_entry_for_the_sender(api: Api) -> None:
    existing = api.start(TEACHER, STUDENT, body="Earlier")["conversation"]["id"]
    result = api.start(TEACHER, STUDENT, OTHER, "user-s-0003", mode="individual", body="Trip forms due Friday")
    batch = result["conversation"]
    assert (batch["type"], batch["name"], batch["recipient_count"]) == ("individual_batch", "Sent to 3 people", 3)
    student_list = api.call(STUDENT, "conversations.list")["items"]
    assert [c["id"] for c in student_list] == [existing]  # the existing 1:1 is reused
    assert student_list[0]["last_message"]["preview"] == "Trip forms due Friday"
    other = api.call(OTHER, "conversations.list")["items"]
    assert len(other) == 1 and other[0]["type"] == "direct"
    teacher_types = sorted(c["type"] for c in api.call(TEACHER, "conversations.list")["items"])
    assert teacher_types == ["direct", "direct", "direct", "individual_batch"]
    # A later message in the entry goes out to every recipient again.
    api.send(TEACHER, batch["id"], "Reminder: forms")
    assert api.call(OTHER, "conversations.list")["items"][0]["last_message"]["preview"] == "Reminder: forms"


def test_a_course_the_sender_is_not_part_of_is_as_hidden_as_a_missing_one(api: Api) -> None:
    with pytest.raises(AppError) as hidden:
        _preview(api, "user-s-0900", SMALL)
    with pytest.raises(AppError) as missing:
        _preview(api, "user-s-0900", ("course", "class-999"))
    assert hidden.value.code == missing.value.code == "not_found"


def test_a_mode_is_required_when_there_is_a_choice(api: Api) -> None:
    with pytest.raises(AppError) as info:
        api.start(TEACHER, STUDENT, OTHER)
    assert info.value.code == "validation_failed" and info.value.details["field"] == "mode"
