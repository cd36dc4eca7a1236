"""One table for every moderation action: student / teacher / admin, taking part / through a
report / neither, in a 1:1, a group and a course conversation.

Allowed actions succeed; a participant refused gets `forbidden` or `not_allowed`; someone
with no way in gets the same `not_found` a missing conversation gets, for every action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from shared.errors import AppError
from tests.integration.moderation.conftest import World

PUPIL, CLASSMATE, TEACHER, ADMIN = "user-s-0001", "user-s-0013", "user-t-001", "user-a-002"
# Geography 7D (class-006): two of its students share a course with TEACHER; neither TEACHER nor ADMIN is in it.
GEO_A, GEO_B, GEO_C, GEO_TEACHER = "user-s-0716", "user-s-0304", "user-s-0045", "user-t-016"
SUBJECTS = {"student": PUPIL, "teacher": TEACHER, "admin": ADMIN}


@dataclass
class Scene:
    conversation_id: str
    message_id: str  # someone else's message
    victim: str  # someone else taking part, for removal
    course_teacher: str  # who may delete the course conversation before a restore


def _course(world: World, starter: str, course: str, poster: str, extra: str | None = None) -> tuple[str, str]:
    cid = world.api.start(starter, ("course", course), mode="group", body="Welcome")["conversation"]["id"]
    if extra is not None:
        world.api.start(extra, ("course", course), mode="group", body="Hello all")
    return cid, world.api.send(poster, cid, "you are silly")["id"]


def _taking_part(world: World, role: str, type_: str) -> Scene:
    me = SUBJECTS[role]
    other = CLASSMATE if role == "student" else PUPIL
    if type_ == "direct":
        cid = world.api.start(other, me, body="hi")["conversation"]["id"]
        return Scene(cid, world.api.send(other, cid, "you are silly")["id"], other, TEACHER)
    if type_ == "group":
        third = GEO_A if role == "student" else CLASSMATE
        cid = world.api.start(other, me, third, mode="group", body="hi")["conversation"]["id"]
        return Scene(cid, world.api.send(other, cid, "you are silly")["id"], third, TEACHER)
    cid, mid = _course(world, TEACHER, "class-001", other, extra=ADMIN if role == "admin" else None)
    return Scene(cid, mid, other, TEACHER)


def _students_only(world: World, type_: str) -> Scene:
    if type_ == "direct":
        cid = world.api.start(GEO_A, GEO_B, body="hi")["conversation"]["id"]
    elif type_ == "group":
        cid = world.api.start(GEO_B, GEO_A, GEO_C, mode="group", body="hi")["conversation"]["id"]
    else:
        cid, _ = _course(world, GEO_A, "class-006", GEO_B)
    return Scene(cid, world.api.send(GEO_B, cid, "you are silly")["id"], GEO_B, GEO_TEACHER)


def scene(world: World, role: str, access: str, type_: str) -> Scene:
    if access == "participant":
        return _taking_part(world, role, type_)
    made = _students_only(world, type_)
    if access == "report":
        world.report(GEO_A, SUBJECTS[role], message_id=made.message_id)
    return made


def _restore(world: World, user: str, s: Scene) -> Any:
    """Restore a course conversation its teacher deleted (anything else: restore it as it is)."""
    [row] = world.rows("conversations", "SELECT type FROM conversations WHERE id = :id", id=s.conversation_id)
    if row.type == "course":
        world.call(s.course_teacher, "conversations.delete", conversation_id=s.conversation_id)
    return world.call(user, "conversations.restore", conversation_id=s.conversation_id)


ACTIONS: dict[str, Callable[[World, str, Scene], Any]] = {
    "read": lambda w, u, s: w.call(u, "messages.list", conversation_id=s.conversation_id),
    "send": lambda w, u, s: w.api.send(u, s.conversation_id, "Let's keep it kind."),
    "delete_message": lambda w, u, s: w.call(u, "messages.delete", message_id=s.message_id),
    "remove": lambda w, u, s: w.call(u, "participants.remove", conversation_id=s.conversation_id, user_id=s.victim),
    "close": lambda w, u, s: w.call(u, "conversations.close", conversation_id=s.conversation_id),
    "delete": lambda w, u, s: w.call(u, "conversations.delete", conversation_id=s.conversation_id),
    "restore": _restore,
}


def expected(role: str, access: str, type_: str, action: str) -> str:
    """The table: ok, refused (a participant told no) or hidden (not_found)."""
    if access == "neither":
        return "hidden"
    staff = role != "student"
    allowed = {
        "read": True,
        "send": True,
        "delete_message": staff,
        "remove": staff and access == "participant" and type_ == "group",
        "close": staff and type_ in ("group", "course"),
        "delete": staff and type_ == "course",
        "restore": staff and type_ == "course",
    }[action]
    return "ok" if allowed else "refused"


CASES = [
    (role, access, type_, action)
    for role in ("student", "teacher", "admin")
    for access in ("participant", "report", "neither")
    if not (role == "student" and access == "report")  # reports go to staff
    for type_ in ("direct", "group", "course")
    for action in ACTIONS
]


@pytest.mark.parametrize(("role", "access", "type_", "action"), CASES)
def test_each_moderation_action_is_allowed_exactly_where_the_table_says(
    world: World, role: str, access: str, type_: str, action: str
) -> None:
    s = scene(world, role, access, type_)
    want = expected(role, access, type_, action)
    try:
        ACTIONS[action](world, SUBJECTS[role], s)
        got = "ok"
    except AppError as exc:
        got = (
            "hidden" if exc.code == "not_found" else "refused" if exc.code in ("forbidden", "not_allowed") else exc.code
        )
    assert got == want
    if action == "delete_message" and got == "ok":
        [shown] = [
            m
            for m in world.call(s.victim, "messages.list", conversation_id=s.conversation_id)["items"]
            if m["id"] == s.message_id
        ]
        assert shown["deleted"]["by"] == "moderator" and shown["body"] == ""
