"""The conversations slice against real PostgreSQL and RabbitMQ: 1:1 conversations and messages."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import text

from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.events import for_user, part_for
from shared.rpc import Caller, Method
from tests.integration.conversations.conftest import OTHER, STUDENT, TEACHER, outbox


def _start(rpc: dict[str, Method], sender: str, to: str, body: str = "Hello", **extra: Any) -> dict[str, Any]:
    return rpc["conversations.create"](
        Caller(sender), {"recipients": [{"type": "user", "id": to}], "body": body, **extra}
    )


def _outbox(settings: Settings, type_: str) -> list[Any]:
    return outbox(settings, type_)


def test_starting_a_conversation_with_one_person_makes_a_direct_conversation_with_the_first_message(
    db: Settings, rpc: dict[str, Method]
) -> None:
    result = _start(rpc, TEACHER, STUDENT, "Welcome to Math! See https://example.org/math")
    conversation, message = result["conversation"], result["message"]
    assert conversation["type"] == "direct"
    assert conversation["participant_count"] == 2
    assert conversation["last_message"]["preview"] == "Welcome to Math! See https://example.org/math"
    assert message["links"][0]["url"] == "https://example.org/math"
    assert message["sender"]["id"] == TEACHER
    assert len(_outbox(db, "conversations.message.created")) == 1
    # One event for both, each reading their own name for the conversation.
    [created] = _outbox(db, "conversations.conversation.created")
    envelope = json.loads(created)
    assert sorted(envelope["audience"]) == sorted([TEACHER, STUDENT])
    seen = {u: for_user(envelope["data"], part_for(envelope["data"], u))["conversation"] for u in (TEACHER, STUDENT)}
    assert seen[TEACHER]["name"] != seen[STUDENT]["name"]
    fresh = rpc["conversations.get"](Caller(STUDENT), {"conversation_id": conversation["id"]})
    assert seen[STUDENT]["name"] == fresh["name"] and seen[STUDENT].keys() == fresh.keys()


def test_the_same_two_people_always_share_one_direct_conversation(rpc: dict[str, Method]) -> None:
    first = _start(rpc, TEACHER, STUDENT)["conversation"]["id"]
    second = _start(rpc, STUDENT, TEACHER, "Thanks")["conversation"]["id"]
    assert first == second


def test_a_recipient_sees_the_conversation_named_after_the_sender_with_an_unread_count(rpc: dict[str, Method]) -> None:
    _start(rpc, TEACHER, STUDENT)
    conversation_id = _start(rpc, TEACHER, STUDENT, "Second")["conversation"]["id"]
    listed = rpc["conversations.list"](Caller(STUDENT), {})["items"]
    assert [c["id"] for c in listed] == [conversation_id]
    teacher_name = rpc["conversations.get"](Caller(TEACHER), {"conversation_id": conversation_id})
    assert listed[0]["unread_count"] == 2
    assert rpc["unread.total"](Caller(STUDENT), {}) == {"unread_total": 2}
    assert rpc["unread.total"](Caller(TEACHER), {}) == {"unread_total": 0}
    assert teacher_name["name"] != listed[0]["name"]


def test_history_pages_newest_first_and_the_cursor_reaches_the_oldest(rpc: dict[str, Method]) -> None:
    conversation_id = _start(rpc, TEACHER, STUDENT, "m0")["conversation"]["id"]
    for i in range(1, 25):
        rpc["messages.send"](
            Caller(STUDENT if i % 2 else TEACHER), {"conversation_id": conversation_id, "body": f"m{i}"}
        )
    seen: list[str] = []
    cursor = None
    while True:
        page = rpc["messages.list"](
            Caller(STUDENT), {"conversation_id": conversation_id, "cursor": cursor, "limit": 10}
        )
        seen += [m["body"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"m{i}" for i in range(24, -1, -1)]


def test_a_stranger_cannot_read_or_write_and_cannot_tell_the_conversation_exists(rpc: dict[str, Method]) -> None:
    conversation_id = _start(rpc, TEACHER, STUDENT)["conversation"]["id"]
    for method, params in [
        ("conversations.get", {}),
        ("messages.list", {}),
        ("messages.send", {"body": "let me in"}),
    ]:
        with pytest.raises(AppError) as hidden:
            rpc[method](Caller(OTHER), {"conversation_id": conversation_id, **params})
        with pytest.raises(AppError) as missing:
            rpc[method](Caller(OTHER), {"conversation_id": "00000000-0000-0000-0000-000000000000", **params})
        assert hidden.value.to_dict() == missing.value.to_dict()
        assert hidden.value.code == "not_found"


def test_a_retried_send_with_the_same_client_id_stores_one_message(db: Settings, rpc: dict[str, Method]) -> None:
    conversation_id = _start(rpc, TEACHER, STUDENT)["conversation"]["id"]
    params = {"conversation_id": conversation_id, "body": "once", "client_id": "c-1"}
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda: results.append(rpc["messages.send"](Caller(STUDENT), params))) for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r["id"] for r in results}) == 1
    history = rpc["messages.list"](Caller(STUDENT), {"conversation_id": conversation_id})["items"]
    assert [m["body"] for m in history].count("once") == 1
    assert len(_outbox(db, "conversations.message.created")) == 2


def test_a_client_id_reused_for_a_different_body_is_refused_and_changes_nothing(rpc: dict[str, Method]) -> None:
    conversation_id = _start(rpc, TEACHER, STUDENT)["conversation"]["id"]
    rpc["messages.send"](Caller(STUDENT), {"conversation_id": conversation_id, "body": "a", "client_id": "dup"})
    with pytest.raises(AppError) as info:
        rpc["messages.send"](Caller(STUDENT), {"conversation_id": conversation_id, "body": "b", "client_id": "dup"})
    assert info.value.code == "idempotency_conflict"
    bodies = [m["body"] for m in rpc["messages.list"](Caller(STUDENT), {"conversation_id": conversation_id})["items"]]
    assert bodies == ["a", "Hello"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"recipients": []}, "validation_failed"),
        ({"recipients": [{"type": "user", "id": "nobody"}], "body": "hi"}, "not_found"),
        (
            {"recipients": [{"type": "user", "id": STUDENT}, {"type": "user", "id": STUDENT}], "body": "hi"},
            "validation_failed",
        ),
        ({"recipients": [{"type": "user", "id": STUDENT}], "body": ""}, "validation_failed"),
        ({"recipients": [{"type": "user", "id": STUDENT}], "body": "x" * 10_001}, "validation_failed"),
        ({"recipients": [{"type": "robot", "id": STUDENT}], "body": "hi"}, "validation_failed"),
    ],
)
def test_bad_new_conversation_requests_are_refused_and_create_nothing(
    db: Settings, rpc: dict[str, Method], params: dict[str, Any], code: str
) -> None:
    with pytest.raises(AppError) as info:
        rpc["conversations.create"](Caller(TEACHER), params)
    assert info.value.code == code
    with transaction(db.database_url("conversations")) as session:
        assert session.execute(text("SELECT count(*) FROM conversations")).scalar_one() == 0
        assert session.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 0


def test_a_tampered_cursor_is_refused(rpc: dict[str, Method]) -> None:
    conversation_id = _start(rpc, TEACHER, STUDENT)["conversation"]["id"]
    for i in range(3):
        rpc["messages.send"](Caller(TEACHER), {"conversation_id": conversation_id, "body": str(i)})
    cursor = rpc["messages.list"](Caller(TEACHER), {"conversation_id": conversation_id, "limit": 1})["next_cursor"]
    for bad, who in [(cursor[:-2] + "xx", TEACHER), (cursor, STUDENT), ("garbage", TEACHER)]:
        with pytest.raises(AppError) as info:
            rpc["messages.list"](Caller(who), {"conversation_id": conversation_id, "cursor": bad})
        assert info.value.code == "invalid_cursor"
