"""The conversations API over HTTP, with its changes pushed over Socket.IO to the right people."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import System
from tests.support.inbox import Inbox

TEACHER, STUDENT, OTHER, OUTSIDER = "user-t-001", "user-s-0001", "user-s-0002", "user-s-0003"
PUSHED = (
    "message.created",
    "message.updated",
    "message.deleted",
    "conversation.created",
    "conversation.updated",
    "participant.added",
    "participant.removed",
    "unread.updated",
)


@pytest.fixture
def inboxes(system: System) -> Iterator[dict[str, Inbox]]:
    clients = {user: system.connect(user) for user in (TEACHER, STUDENT, OTHER, OUTSIDER)}
    yield {user: Inbox(client, PUSHED) for user, client in clients.items()}
    for client in clients.values():
        client.disconnect()


def _ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_a_group_conversation_lives_over_http_and_every_change_is_pushed(
    system: System, inboxes: dict[str, Inbox]
) -> None:
    teacher, student = system.session(TEACHER), system.session(STUDENT)
    api = system.api
    preview = _ok(
        teacher.post(
            f"{api}/conversations/preview",
            json={"recipients": [{"type": "user", "id": STUDENT}, {"type": "user", "id": OTHER}]},
        )
    )
    assert preview["modes"] == ["group", "individual"]
    created = _ok(
        teacher.post(
            f"{api}/conversations",
            json={
                "recipients": [{"type": "user", "id": STUDENT}, {"type": "user", "id": OTHER}],
                "mode": "group",
                "name": "Science fair",
                "body": "Ideas please",
            },
        ),
        201,
    )
    cid = created["conversation"]["id"]
    assert inboxes[STUDENT].next("message.created")["message"]["body"] == "Ideas please"

    edited = _ok(teacher.patch(f"{api}/messages/{created['message']['id']}", json={"body": "Ideas by Friday"}))
    assert inboxes[OTHER].next("message.updated")["message"]["body"] == "Ideas by Friday"
    assert edited["edited_at"]

    _ok(student.post(f"{api}/conversations/{cid}/read", json={}))
    assert inboxes[STUDENT].next("unread.updated")["unread_count"] == 0

    _ok(teacher.delete(f"{api}/conversations/{cid}/participants/{OTHER}"))
    assert inboxes[OTHER].next("participant.removed")["user_id"] == OTHER
    _ok(student.post(f"{api}/conversations/{cid}/messages", json={"body": "Only us now"}), 201)
    assert inboxes[TEACHER].next("message.created", lambda d: d["message"]["body"] == "Only us now")
    assert "message.created" not in inboxes[OTHER].names()

    _ok(teacher.post(f"{api}/conversations/{cid}/close"))
    assert inboxes[STUDENT].next("conversation.updated")["changes"]["status"] == "closed"
    closed = student.post(f"{api}/conversations/{cid}/messages", json={"body": "hello?"})
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "conversation_closed"

    # Nobody outside ever heard of it, and cannot reach it.
    assert inboxes[OUTSIDER].names(wait=0.2) == []
    hidden = system.session(OUTSIDER).get(f"{api}/conversations/{cid}")
    assert hidden.status_code == 404


def test_participants_read_state_and_forwarding_over_http(system: System) -> None:
    teacher, student = system.session(TEACHER), system.session(STUDENT)
    api = system.api
    first = _ok(
        teacher.post(
            f"{api}/conversations",
            json={"recipients": [{"type": "user", "id": STUDENT}], "body": "See https://school.example/homework"},
        ),
        201,
    )
    cid = first["conversation"]["id"]
    assert first["message"]["links"][0]["url"] == "https://school.example/homework"
    people = _ok(student.get(f"{api}/conversations/{cid}/participants"))["items"]
    assert {p["user_id"] for p in people} == {TEACHER, STUDENT}
    assert all({"name", "title", "role", "avatar_url"} <= set(p) for p in people)
    assert _ok(student.post(f"{api}/conversations/{cid}/unread", json={}))["unread_count"] == 1
    assert _ok(student.get(f"{api}/me"))["unread_total"] >= 1
    forwarded = _ok(
        student.post(
            f"{api}/messages/{first['message']['id']}/forward", json={"recipients": [{"type": "user", "id": OTHER}]}
        ),
        201,
    )
    assert forwarded["message"]["forwarded_from"] == first["message"]["id"]
    bad = student.post(f"{api}/messages/{first['message']['id']}/forward", json={"conversation_id": 7})
    assert bad.status_code == 422
