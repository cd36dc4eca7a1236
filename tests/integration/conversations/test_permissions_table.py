"""One table: student / teacher / admin, taking part or not, each conversation type, every action.

A participant is either allowed or refused with `not_allowed`; someone who does not take
part always gets the same `not_found` a missing conversation gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.errors import AppError
from tests.integration.conversations.conftest import STUDENT, TEACHER, Api

ADMIN = "user-a-002"  # principal of the school of Math 9B (class-001)
OUTSIDER = "user-s-0002"
NEWCOMER = "user-s-0003"

# Who takes part in each type, and how it is made.
MAKERS: dict[str, Callable[[Api], str]] = {
    "direct": lambda api: api.start(STUDENT, TEACHER)["conversation"]["id"],
    "group": lambda api: api.start(STUDENT, TEACHER, ADMIN, mode="group")["conversation"]["id"],
    "course": lambda api: _course(api),
}
MEMBERS = {
    "direct": {"student": STUDENT, "teacher": TEACHER},
    "group": {"student": STUDENT, "teacher": TEACHER, "admin": ADMIN},
    "course": {"student": STUDENT, "teacher": TEACHER, "admin": ADMIN},
}


def _course(api: Api) -> str:
    cid = api.start(TEACHER, ("course", "class-001"), mode="group")["conversation"]["id"]
    api.start(ADMIN, ("course", "class-001"), mode="group", body="The principal is here too")
    return cid


def _victim(type_: str, role: str) -> str:
    """Someone else in the conversation, for removal."""
    return next(u for r, u in MEMBERS[type_].items() if r != role)


ACTIONS: dict[str, Callable[[Api, str, str, str], Any]] = {
    "read": lambda api, user, cid, t: api.conversation(user, cid),
    "history": lambda api, user, cid, t: api.call(user, "messages.list", conversation_id=cid),
    "send": lambda api, user, cid, t: api.send(user, cid, "hello"),
    "mark_read": lambda api, user, cid, t: api.call(user, "read.mark", conversation_id=cid),
    "mark_unread": lambda api, user, cid, t: api.call(user, "read.unmark", conversation_id=cid),
    "participants": lambda api, user, cid, t: api.call(user, "participants.list", conversation_id=cid),
    "rename": lambda api, user, cid, t: api.call(user, "conversations.rename", conversation_id=cid, name="New"),
    "add": lambda api, user, cid, t: api.call(user, "participants.add", conversation_id=cid, user_ids=[NEWCOMER]),
    "remove": lambda api, user, cid, t: api.call(
        user, "participants.remove", conversation_id=cid, user_id=_victim(t, _role_of(t, user))
    ),
    "leave": lambda api, user, cid, t: api.call(user, "conversations.leave", conversation_id=cid),
    "close": lambda api, user, cid, t: api.call(user, "conversations.close", conversation_id=cid),
    "delete": lambda api, user, cid, t: api.call(user, "conversations.delete", conversation_id=cid),
}

EVERYONE = {"read", "history", "send", "mark_read", "mark_unread", "participants"}
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("direct", "student"): EVERYONE,
    ("direct", "teacher"): EVERYONE,
    ("group", "student"): EVERYONE | {"rename", "add", "leave", "close"},  # the student made the group
    ("group", "teacher"): EVERYONE | {"rename", "add", "leave", "close", "remove"},
    ("group", "admin"): EVERYONE | {"rename", "add", "leave", "close", "remove"},
    ("course", "student"): EVERYONE,
    ("course", "teacher"): EVERYONE | {"close", "delete"},
    ("course", "admin"): EVERYONE | {"close", "delete"},
}


def _role_of(type_: str, user: str) -> str:
    return next(r for r, u in MEMBERS[type_].items() if u == user)


CASES = [(type_, role, action, action in ALLOWED[(type_, role)]) for (type_, role) in ALLOWED for action in ACTIONS]


@pytest.mark.parametrize(("type_", "role", "action", "allowed"), CASES)
def test_a_participant_may_do_exactly_what_the_table_says(
    api: Api, type_: str, role: str, action: str, allowed: bool
) -> None:
    cid = MAKERS[type_](api)
    user = MEMBERS[type_][role]
    if allowed:
        ACTIONS[action](api, user, cid, type_)
        return
    with pytest.raises(AppError) as info:
        ACTIONS[action](api, user, cid, type_)
    assert info.value.code == "not_allowed", info.value


@pytest.mark.parametrize("type_", list(MAKERS))
def test_someone_who_does_not_take_part_gets_not_found_for_every_action(api: Api, type_: str) -> None:
    cid = MAKERS[type_](api)
    for action, run in ACTIONS.items():
        if action == "remove":
            continue  # needs a role in the conversation; covered by the participants' table
        with pytest.raises(AppError) as hidden:
            run(api, OUTSIDER, cid, type_)
        with pytest.raises(AppError) as missing:
            run(api, OUTSIDER, "00000000-0000-0000-0000-000000000000", type_)
        assert hidden.value.to_dict() == missing.value.to_dict(), action
        assert hidden.value.code == "not_found", action
