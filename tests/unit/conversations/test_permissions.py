"""Who may do what in which conversation: one table over role, type, status and authorship."""

from __future__ import annotations

import pytest

from services.conversations.domain import allowed_actions

# (type, status, role, creator) -> actions that must be allowed (True) or refused (False)
CASES = [
    (
        "group",
        "open",
        "student",
        False,
        {
            "send": True,
            "rename": True,
            "add_participants": True,
            "leave": True,
            "remove_participants": False,
            "close": False,
            "delete": False,
        },
    ),
    ("group", "open", "student", True, {"close": True, "remove_participants": False}),
    ("group", "open", "teacher", False, {"remove_participants": True, "close": True, "delete": False}),
    ("group", "closed", "teacher", False, {"send": False, "reopen": True, "close": False, "rename": False}),
    (
        "course",
        "open",
        "student",
        False,
        {
            "send": True,
            "close": False,
            "delete": False,
            "leave": False,
            "rename": False,
            "add_participants": False,
            "remove_participants": False,
        },
    ),
    ("course", "open", "teacher", False, {"close": True, "delete": True, "remove_participants": False}),
    ("course", "open", "admin", False, {"close": True, "delete": True}),
    ("course", "deleted", "teacher", False, {"send": False, "restore": True, "delete": False}),
    ("project", "open", "teacher", False, {"delete": True}),
    (
        "direct",
        "open",
        "teacher",
        True,
        {"send": True, "close": False, "leave": False, "rename": False, "add_participants": False, "delete": False},
    ),
    ("mass", "open", "student", False, {"send": False, "read": True}),
    ("individual_batch", "open", "teacher", True, {"send": True, "leave": False, "close": False}),
]


@pytest.mark.parametrize(("type_", "status", "role", "creator", "expected"), CASES)
def test_each_role_gets_exactly_the_actions_the_seed_lists(
    type_: str, status: str, role: str, creator: bool, expected: dict[str, bool]
) -> None:
    actions = allowed_actions(type_=type_, status=status, role=role, is_creator=creator)
    assert {action: action in actions for action in expected} == expected
    assert {"read", "mark_unread", "search", "view_participants"} <= set(actions)
