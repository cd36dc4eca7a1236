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
    ("mass", "open", "student", False, {"send": False, "read": True, "search": False}),
    ("individual_batch", "open", "teacher", True, {"send": True, "leave": False, "close": False}),
]


@pytest.mark.parametrize(("type_", "status", "role", "creator", "expected"), CASES)
def test_each_role_gets_exactly_the_actions_the_seed_lists(
    type_: str, status: str, role: str, creator: bool, expected: dict[str, bool]
) -> None:
    actions = allowed_actions(type_=type_, status=status, role=role, is_creator=creator)
    assert {action: action in actions for action in expected} == expected
    assert {"read", "mark_unread", "view_participants"} <= set(actions)
    assert ("search" in actions) == (type_ != "mass")  # mass messages are not searchable


# (type, status, role, through a report) -> actions allowed (True) or refused (False)
REPORT_CASES = [
    (
        "group",
        "open",
        "teacher",
        True,
        {
            "send": True,
            "delete_messages": True,
            "close": True,
            "remove_participants": False,
            "add_participants": False,
            "rename": False,
            "leave": False,
            "report": False,
        },
    ),
    ("direct", "open", "admin", True, {"send": True, "delete_messages": True, "close": False, "block": False}),
    ("course", "deleted", "teacher", True, {"restore": True, "send": False, "delete_messages": True}),
    ("group", "open", "teacher", False, {"delete_messages": True, "remove_participants": True, "report": True}),
    ("group", "open", "student", False, {"delete_messages": False, "report": True}),
    ("direct", "open", "student", False, {"block": True, "unblock": False, "delete_messages": False}),
    ("direct", "open", "teacher", False, {"block": False, "unblock": False}),
    ("mass", "open", "admin", False, {"delete_messages": False}),
]


@pytest.mark.parametrize(("type_", "status", "role", "through_report", "expected"), REPORT_CASES)
def test_staff_through_a_report_moderate_but_take_no_part_in_the_groups_own_life(
    type_: str, status: str, role: str, through_report: bool, expected: dict[str, bool]
) -> None:
    actions = allowed_actions(type_=type_, status=status, role=role, is_creator=False, through_report=through_report)
    assert {action: action in actions for action in expected} == expected


def test_a_student_who_blocked_the_other_person_is_offered_unblock() -> None:
    actions = allowed_actions(type_="direct", status="open", role="student", is_creator=False, blocked=True)
    assert "unblock" in actions and "block" not in actions
