"""Catch-up, the strict way: a client's old state plus what it was told equals the state fetched fresh.

Each test takes the observers' state from the API, runs a scripted mix of every action a
conversation can see (messages, edits, deletes, forwards, course and group changes,
joins, removals, leaving, read state, batch sends), and then rebuilds each observer's
state from its old state and nothing but `/sync` (offline) or the pushed events
(connected). Both must equal the state fetched fresh, field for field.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
import socketio

from tests.e2e.conftest import System
from tests.support.client_state import ClientState
from tests.support.waiting import wait_for

TEACHER, STUDENT = "user-t-001", "user-s-0001"
CLASSMATES = ("user-s-0013", "user-s-0019", "user-s-0024")  # Math 9B (class-001), with STUDENT
COURSE = "class-001"


class Actor:
    """One signed-in user doing things over HTTP; every call must succeed."""

    def __init__(self, system: System, user_id: str) -> None:
        self.api, self.user_id, self.http = system.api, user_id, system.session(user_id)

    def do(self, method: str, path: str, expect: int | None = None, **body: Any) -> Any:
        response = self.http.request(method, f"{self.api}{path}", json=body or None, timeout=15)
        expected = (expect,) if expect else (200, 201)
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def start(self, recipients: list[tuple[str, str]], body: str, **extra: Any) -> dict[str, Any]:
        listed = [{"type": kind, "id": ident} for kind, ident in recipients]
        return self.do("POST", "/conversations", 201, recipients=listed, body=body, **extra)

    def send(self, cid: str, body: str) -> dict[str, Any]:
        return self.do("POST", f"/conversations/{cid}/messages", 201, body=body)


def _users(*ids: str) -> list[tuple[str, str]]:
    return [("user", i) for i in ids]


def scripted_mix(system: System) -> str:
    """Every kind of change, by several people; the id of the last message (sent to both observers)."""
    teacher, student = Actor(system, TEACHER), Actor(system, STUDENT)
    second, third, fourth = (Actor(system, u) for u in CLASSMATES)
    started = teacher.start(_users(STUDENT), "Welcome back")
    direct, welcome = started["conversation"]["id"], started["message"]
    student.send(direct, "Thanks!")
    typo = teacher.send(direct, "Hoemwork is page 12")
    teacher.do("PATCH", f"/messages/{typo['id']}", body="Homework is page 12")
    gone = teacher.send(direct, "Sent by mistake")
    teacher.do("DELETE", f"/messages/{gone['id']}")

    group = teacher.start(_users(STUDENT, *CLASSMATES[:2]), "Project kickoff", mode="group", name="Project team")
    gid = group["conversation"]["id"]
    teacher.do("PATCH", f"/conversations/{gid}", name="Project team B")
    teacher.do("POST", f"/conversations/{gid}/participants", user_ids=[CLASSMATES[2]])
    teacher.do("DELETE", f"/conversations/{gid}/participants/{CLASSMATES[1]}")
    second.do("POST", f"/conversations/{gid}/leave")
    fourth.send(gid, "Hello all")
    student.send(gid, "From the student")
    teacher.do("POST", f"/messages/{welcome['id']}/forward", conversation_id=gid)

    unnamed = teacher.start(_users(STUDENT, *CLASSMATES), "Who is in?", mode="group")
    uid = unnamed["conversation"]["id"]
    third.do("POST", f"/conversations/{uid}/leave")

    course = teacher.start([("course", COURSE)], "Course news", mode="group")
    cid = course["conversation"]["id"]
    teacher.do("POST", f"/conversations/{cid}/close")
    teacher.do("POST", f"/conversations/{cid}/reopen")
    teacher.send(cid, "After reopening")
    teacher.do("DELETE", f"/conversations/{cid}")
    teacher.do("POST", f"/conversations/{cid}/restore")

    teacher.start(_users(STUDENT, CLASSMATES[0]), "One each", mode="individual")

    student.do("POST", f"/conversations/{gid}/read")
    student.do("POST", f"/conversations/{direct}/unread", message_id=typo["id"])
    late = teacher.send(gid, "Unread, then deleted")
    teacher.do("DELETE", f"/messages/{late['id']}")

    # Moderation: a student-only 1:1 reported to the teacher, who writes and deletes in it, then
    # resolves the report and is let out; a student group reported and left open; a block.
    silly = second.start(_users(STUDENT), "Hi")
    private = silly["conversation"]["id"]
    rude = student.send(private, "You are silly")
    report = second.do("POST", "/reports", 201, message_id=rude["id"], to_user_id=TEACHER, reason="Rude")
    teacher.send(private, "Please be kind to each other.")
    teacher.do("DELETE", f"/messages/{rude['id']}")
    teacher.do("POST", f"/reports/{report['id']}/resolve", note="Handled")
    students = second.start(_users(CLASSMATES[1], CLASSMATES[2]), "Students only", mode="group", name="Lunch")
    second.do(
        "POST", "/reports", 201, conversation_id=students["conversation"]["id"], to_user_id=TEACHER, reason="Mean"
    )
    third.send(students["conversation"]["id"], "Still here")
    second.do("POST", f"/conversations/{private}/block")

    temporary = teacher.start(_users(STUDENT, CLASSMATES[0]), "Short-lived", mode="group", name="Temporary")
    tid = temporary["conversation"]["id"]
    teacher.do("DELETE", f"/conversations/{tid}/participants/{STUDENT}")
    # After the removal, the student must hear nothing more of it.
    teacher.send(tid, "Not for the removed student")
    teacher.do("PATCH", f"/conversations/{tid}", name="Temporary, renamed")
    Mix.removed_from = tid
    second.do("POST", f"/conversations/{private}/unblock")  # so the mix can run again
    return student.send(direct, "Last word")["id"]


class Mix:
    removed_from = ""  # the conversation the student was removed from, set by scripted_mix


def _warm_up(system: System) -> None:
    """Something to have a state about before the mix: conversations the observers already had open."""
    teacher, student = Actor(system, TEACHER), Actor(system, STUDENT)
    started = teacher.start(_users(STUDENT, CLASSMATES[0]), "Before the gap", mode="group", name="Old group")
    student.send(started["conversation"]["id"], "Seen before")


def _sync(http: requests.Session, api: str, since: str, *, limit: int = 7) -> tuple[list[dict[str, Any]], str]:
    """Every change since `since`, following `has_more` (small pages, to page on purpose)."""
    changes: list[dict[str, Any]] = []
    while True:
        response = http.get(f"{api}/sync", params={"since": since, "limit": limit}, timeout=10)
        assert response.status_code == 200, response.text
        page = response.json()
        changes += page["changes"]
        since = page["cursor"]
        if not page["has_more"]:
            return changes, since


def _mentions(changes: list[dict[str, Any]], message_id: str) -> bool:
    return any(c.get("message", {}).get("id") == message_id for c in changes)


def _fresh_like(system: System, user: str, derived: ClientState) -> ClientState:
    """The state fetched now, with the same conversations open as the derived one."""
    http = system.session(user)
    fresh = ClientState.fetch(http, system.api, user, open_all=False)
    for cid in derived.messages:
        fresh.open(http, system.api, cid)
    return fresh


def _cursor(http: requests.Session, api: str) -> str:
    response = http.get(f"{api}/sync", timeout=10)
    assert response.status_code == 200 and response.json()["changes"] == [], response.text
    return response.json()["cursor"]


OBSERVERS = (STUDENT, TEACHER, CLASSMATES[0])
OUTSIDER = "user-s-0015"  # a student of another school: none of the mix is theirs to see
CONVERSATION_EVENTS = {
    "conversation.created",
    "conversation.updated",
    "participant.added",
    "participant.removed",
    "message.created",
    "message.updated",
    "message.deleted",
    "unread.updated",
    "report.created",
    "report.updated",
}


def test_an_offline_client_catches_up_with_sync_to_exactly_the_fresh_state(system: System) -> None:
    _warm_up(system)
    sessions = {u: system.session(u) for u in OBSERVERS}
    # Cursor first, then state: whatever lands in between is replayed, never missed.
    cursors = {u: _cursor(sessions[u], system.api) for u in OBSERVERS}
    before = {u: ClientState.fetch(sessions[u], system.api, u) for u in OBSERVERS}

    last = scripted_mix(system)

    for user in OBSERVERS:
        http = sessions[user]
        if user != CLASSMATES[0]:  # the last word is between the teacher and the student
            assert wait_for(lambda http=http, user=user: _mentions(_sync(http, system.api, cursors[user])[0], last))
        changes, _ = _sync(http, system.api, cursors[user])
        derived = before[user].copy()
        derived.apply_all(changes)
        assert {c["event"] for c in changes} >= ({"message.created"} if user != TEACHER else set())
        fresh = _fresh_like(system, user, derived)
        assert derived.comparable() == fresh.comparable(), user
        if user == STUDENT:
            # Told of the removal, then nothing more of that conversation.
            names = [c["event"] for c in changes if c.get("conversation_id") == Mix.removed_from]
            assert names[-1] == "participant.removed", names


def test_a_connected_client_applying_pushed_events_ends_at_exactly_the_fresh_state(system: System) -> None:
    sessions = {u: system.session(u) for u in OBSERVERS}
    received: dict[str, list[tuple[str, dict[str, Any]]]] = {u: [] for u in (*OBSERVERS, OUTSIDER)}
    lock = threading.Lock()
    clients: list[socketio.Client] = []
    try:
        for user in (*OBSERVERS, OUTSIDER):
            client = system.connect(user)
            client.on("*", lambda event, data, user=user: received[user].append((event, data)))
            clients.append(client)
        before = {u: ClientState.fetch(sessions[u], system.api, u) for u in OBSERVERS}

        last = scripted_mix(system)

        for user in (STUDENT, TEACHER):
            assert wait_for(lambda user=user: any(d.get("message", {}).get("id") == last for _, d in received[user]))
        for user in OBSERVERS:
            with lock:
                events = list(received[user])
            derived = before[user].copy()
            for event, data in events:
                derived.apply(event, data)
            assert len({d["event_id"] for _, d in events}) == len(events), "an event arrived twice"
            fresh = _fresh_like(system, user, derived)
            assert derived.comparable() == fresh.comparable(), user
            # The last cursor pushed is where a sync picks up: nothing further is waiting.
            changes, _ = _sync(sessions[user], system.api, events[-1][1]["cursor"])
            assert changes == [], user
        # Every kind of conversation event was exercised, and each reached only its audience.
        assert {event for user in OBSERVERS for event, _ in received[user]} == CONVERSATION_EVENTS
        assert received[OUTSIDER] == []
        names = [e for e, d in received[STUDENT] if d.get("conversation_id") == Mix.removed_from]
        assert names[-1] == "participant.removed", names
    finally:
        for client in clients:
            client.disconnect()


@pytest.mark.parametrize("since", ["garbage", "a.b.c", "", "x" * 3000])
def test_a_forged_or_malformed_cursor_is_refused_and_reveals_nothing(system: System, since: str) -> None:
    response = system.session(STUDENT).get(f"{system.api}/sync", params={"since": since}, timeout=10)
    if since == "":
        assert response.status_code == 200 and response.json()["changes"] == []
        return
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_another_users_cursor_is_refused(system: System) -> None:
    teachers = _cursor(system.session(TEACHER), system.api)
    response = system.session(STUDENT).get(f"{system.api}/sync", params={"since": teachers}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
