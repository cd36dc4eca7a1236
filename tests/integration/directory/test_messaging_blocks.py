"""Messaging blocks (F2) in the real directory database: who may set them, what they change, what they publish."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from services.directory.handlers import import_roster
from shared.db import engine_for
from tests.integration.directory.conftest import Directory

DISTRICT_ADMIN = "user-a-000"
PRIMARY_PRINCIPAL = "user-a-001"  # org-school-1
SECONDARY_PRINCIPAL = "user-a-002"  # org-school-2
TEACHER = "user-t-001"  # school 2, teaches class-001 "Math 9B"
STUDENT = "user-s-0001"  # school 2, in class-001


def changes(directory: Directory) -> list[dict[str, Any]]:
    return [e["data"] for e in directory.events("directory.messaging.changed")]


def school_members(directory: Directory, org_id: str) -> list[str]:
    rows = directory.rows("SELECT sourced_id FROM users WHERE :org = ANY(org_ids) ORDER BY sourced_id", org=org_id)
    return [r.sourced_id for r in rows]


def test_blocking_a_user_turns_their_messaging_off_and_publishes_the_change(directory: Directory) -> None:
    made = directory("blocks.create", {"user_id": STUDENT}, as_user=SECONDARY_PRINCIPAL)
    assert made["created"] is True
    block = made["block"]
    assert block["target_kind"] == "user" and block["target_id"] == STUDENT
    assert block["target_name"] == directory.user(STUDENT)["name"]
    assert block["created_by"] == SECONDARY_PRINCIPAL and block["created_at"].endswith("Z")
    assert changes(directory) == [{"user_ids": [STUDENT], "course_ids": [], "messaging_enabled": False}]
    assert directory.events("directory.messaging.changed")[0]["audience"] is None
    assert directory.user(STUDENT)["messaging_enabled"] is False
    assert directory.user(TEACHER)["messaging_enabled"] is True
    state = directory("policy.messaging_state", {"user_ids": [STUDENT, TEACHER]})
    assert state == {
        "users": {STUDENT: {"messaging_enabled": False}, TEACHER: {"messaging_enabled": True}},
        "courses": {},
    }


def test_a_blocked_user_cannot_be_messaged_and_is_told_their_own_messaging_is_off(directory: Directory) -> None:
    directory("blocks.create", {"user_id": STUDENT}, as_user=SECONDARY_PRINCIPAL)
    name = directory.user(STUDENT)["name"]
    to_student = directory("policy.check_contacts", {"recipient_ids": [STUDENT]}, as_user=TEACHER)
    assert to_student["sender_blocked"] is False
    assert to_student["allowed"] == []
    assert to_student["refused"] == [
        {"user_id": STUDENT, "name": name, "code": "messaging_disabled", "message": f"{name} cannot receive messages."}
    ]
    from_student = directory("policy.check_contacts", {"recipient_ids": [TEACHER]}, as_user=STUDENT)
    assert from_student["sender_blocked"] is True
    assert from_student["sender_error"] == {
        "code": "messaging_disabled",
        "message": "Messaging is turned off for your account.",
    }


def test_blocking_twice_returns_the_first_block_and_publishes_nothing_more(directory: Directory) -> None:
    first = directory("blocks.create", {"user_id": STUDENT}, as_user=SECONDARY_PRINCIPAL)["block"]
    again = directory("blocks.create", {"user_id": STUDENT}, as_user=DISTRICT_ADMIN)
    assert again == {"block": first, "created": False}
    assert directory.scalar("SELECT count(*) FROM messaging_blocks") == 1
    assert len(changes(directory)) == 1


def test_lifting_a_block_turns_messaging_back_on_and_publishes_it(directory: Directory) -> None:
    block = directory("blocks.create", {"user_id": STUDENT}, as_user=SECONDARY_PRINCIPAL)["block"]
    directory.clear_events()
    assert directory("blocks.delete", {"block_id": block["id"]}, as_user=SECONDARY_PRINCIPAL)["block"] == block
    assert changes(directory) == [{"user_ids": [STUDENT], "course_ids": [], "messaging_enabled": True}]
    assert directory.user(STUDENT)["messaging_enabled"] is True
    assert directory.refusal("blocks.delete", {"block_id": block["id"]}, as_user=SECONDARY_PRINCIPAL).code == (
        "not_found"
    )


def test_blocking_a_school_lists_every_member_whose_state_changed(directory: Directory) -> None:
    members = school_members(directory, "org-school-2")
    assert len(members) > 600
    directory("blocks.create", {"org_id": "org-school-2"}, as_user=DISTRICT_ADMIN)
    published = changes(directory)
    assert [len(c["user_ids"]) for c in published] == [1000] * (len(members) // 1000) + [len(members) % 1000]
    assert sorted(u for c in published for u in c["user_ids"]) == members
    assert all(c["messaging_enabled"] is False and c["course_ids"] == [] for c in published)
    assert directory.user(STUDENT)["messaging_enabled"] is False
    assert directory.user(PRIMARY_PRINCIPAL)["messaging_enabled"] is True
    # Teachers of both schools are blocked through the one they share with the blocked school.
    assert directory.user("user-t-009")["messaging_enabled"] is False


def test_blocking_the_district_blocks_everyone_under_it(directory: Directory) -> None:
    everyone = directory.scalar("SELECT count(*) FROM users")
    directory("blocks.create", {"org_id": "org-district"}, as_user=DISTRICT_ADMIN)
    assert sum(len(c["user_ids"]) for c in changes(directory)) == everyone
    state = directory("policy.messaging_state", {"user_ids": [STUDENT, PRIMARY_PRINCIPAL, DISTRICT_ADMIN]})
    assert all(not s["messaging_enabled"] for s in state["users"].values())


def test_only_users_whose_effective_state_changes_are_published(directory: Directory) -> None:
    directory("blocks.create", {"org_id": "org-school-2"}, as_user=DISTRICT_ADMIN)
    directory.clear_events()
    directory("blocks.create", {"user_id": STUDENT}, as_user=SECONDARY_PRINCIPAL)
    assert changes(directory) == []  # already off through the school
    school = directory("blocks.list", as_user=DISTRICT_ADMIN)["items"]
    school_block = next(b for b in school if b["target_kind"] == "org")
    directory("blocks.delete", {"block_id": school_block["id"]}, as_user=DISTRICT_ADMIN)
    lifted = sorted(u for c in changes(directory) for u in c["user_ids"])
    assert STUDENT not in lifted
    assert lifted == [u for u in school_members(directory, "org-school-2") if u != STUDENT]
    assert directory.user(STUDENT)["messaging_enabled"] is False
    assert directory.user(TEACHER)["messaging_enabled"] is True


def test_blocking_a_course_turns_off_the_course_and_no_one_personally(directory: Directory) -> None:
    made = directory("blocks.create", {"course_id": "class-001"}, as_user=SECONDARY_PRINCIPAL)["block"]
    assert made["target_name"] == "Math 9B"
    assert changes(directory) == [{"user_ids": [], "course_ids": ["class-001"], "messaging_enabled": False}]
    state = directory("policy.messaging_state", {"user_ids": [STUDENT], "course_ids": ["class-001", "class-003"]})
    assert state == {
        "users": {STUDENT: {"messaging_enabled": True}},
        "courses": {"class-001": {"messaging_enabled": False}, "class-003": {"messaging_enabled": True}},
    }
    directory.clear_events()
    directory("blocks.delete", {"block_id": made["id"]}, as_user=SECONDARY_PRINCIPAL)
    assert changes(directory) == [{"user_ids": [], "course_ids": ["class-001"], "messaging_enabled": True}]


def test_a_user_the_roster_does_not_hold_cannot_receive(directory: Directory) -> None:
    state = directory("policy.messaging_state", {"user_ids": ["user-nobody"]})
    assert state["users"] == {"user-nobody": {"messaging_enabled": False}}


@pytest.mark.parametrize(
    ("caller", "target"),
    [
        (TEACHER, {"user_id": STUDENT}),
        (STUDENT, {"course_id": "class-001"}),
        ("user-g-001", {"org_id": "org-school-2"}),
        (PRIMARY_PRINCIPAL, {"user_id": STUDENT}),
        (PRIMARY_PRINCIPAL, {"org_id": "org-school-2"}),
        (PRIMARY_PRINCIPAL, {"course_id": "class-001"}),
        (SECONDARY_PRINCIPAL, {"org_id": "org-district"}),
        (SECONDARY_PRINCIPAL, {"user_id": DISTRICT_ADMIN}),
    ],
)
def test_only_an_administrator_over_the_target_may_block_it(
    directory: Directory, caller: str, target: dict[str, str]
) -> None:
    before = directory.state()
    assert directory.refusal("blocks.create", target, as_user=caller).code == "forbidden"
    assert directory.state() == before


def test_only_an_administrator_over_the_target_may_lift_its_block(directory: Directory) -> None:
    block = directory("blocks.create", {"user_id": STUDENT}, as_user=SECONDARY_PRINCIPAL)["block"]
    before = directory.state()
    for caller in (PRIMARY_PRINCIPAL, TEACHER, STUDENT):
        assert directory.refusal("blocks.delete", {"block_id": block["id"]}, as_user=caller).code == "forbidden"
    assert directory.state() == before
    directory("blocks.delete", {"block_id": block["id"]}, as_user=DISTRICT_ADMIN)
    assert directory.scalar("SELECT count(*) FROM messaging_blocks") == 0


def test_administrators_list_the_blocks_in_their_organisations(directory: Directory) -> None:
    directory("blocks.create", {"user_id": STUDENT}, as_user=SECONDARY_PRINCIPAL)
    directory("blocks.create", {"course_id": "class-001"}, as_user=SECONDARY_PRINCIPAL)
    directory("blocks.create", {"org_id": "org-school-1"}, as_user=PRIMARY_PRINCIPAL)
    listed = {
        caller: {(b["target_kind"], b["target_id"]) for b in directory("blocks.list", as_user=caller)["items"]}
        for caller in (DISTRICT_ADMIN, PRIMARY_PRINCIPAL, SECONDARY_PRINCIPAL)
    }
    assert listed[DISTRICT_ADMIN] == {("user", STUDENT), ("course", "class-001"), ("org", "org-school-1")}
    assert listed[PRIMARY_PRINCIPAL] == {("org", "org-school-1")}
    assert listed[SECONDARY_PRINCIPAL] == {("user", STUDENT), ("course", "class-001")}
    assert directory.refusal("blocks.list", as_user=TEACHER).code == "forbidden"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "validation_failed"),
        ({"user_id": STUDENT, "course_id": "class-001"}, "validation_failed"),
        ({"user_id": STUDENT, "reason": "spam"}, "validation_failed"),
        ({"user_id": 42}, "validation_failed"),
        ({"org_id": ""}, "validation_failed"),
        ({"course_id": ["class-001"]}, "validation_failed"),
        ({"user_id": "user-nobody"}, "not_found"),
        ({"org_id": "org-nowhere"}, "not_found"),
        ({"course_id": "class-999"}, "not_found"),
    ],
)
def test_a_malformed_or_unknown_block_target_is_refused_and_changes_nothing(
    directory: Directory, params: dict[str, Any], code: str
) -> None:
    before = directory.state()
    assert directory.refusal("blocks.create", params, as_user=DISTRICT_ADMIN).code == code
    assert directory.state() == before


@pytest.mark.parametrize(
    ("params", "code"),
    [({}, "validation_failed"), ({"block_id": 7}, "validation_failed"), ({"block_id": "not-a-uuid"}, "not_found")],
)
def test_lifting_an_unknown_or_malformed_block_is_refused(
    directory: Directory, params: dict[str, Any], code: str
) -> None:
    assert directory.refusal("blocks.delete", params, as_user=DISTRICT_ADMIN).code == code


@pytest.mark.parametrize(
    "params",
    [{}, {"user_ids": "user-s-0001"}, {"user_ids": [1]}, {"user_ids": [], "course_ids": "x"}, {"user_ids": [], "x": 1}],
)
def test_the_messaging_state_refuses_malformed_params(directory: Directory, params: dict[str, Any]) -> None:
    assert directory.refusal("policy.messaging_state", params).code == "validation_failed"


def test_users_get_reads_the_messaging_state_of_a_whole_batch_in_one_extra_query(directory: Directory) -> None:
    directory("blocks.create", {"org_id": "org-school-1"}, as_user=DISTRICT_ADMIN)
    directory("blocks.create", {"user_id": STUDENT}, as_user=DISTRICT_ADMIN)
    ids = [r.sourced_id for r in directory.rows("SELECT sourced_id FROM users ORDER BY sourced_id LIMIT 500")]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = engine_for(directory.url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        users = directory("users.get", {"ids": ids})["users"]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 2
    blocked = {u["id"] for u in users if not u["messaging_enabled"]}
    school_1 = set(school_members(directory, "org-school-1"))
    assert blocked == (school_1 | {STUDENT}) & set(ids)


def test_a_roster_import_that_moves_someone_into_a_blocked_school_turns_their_messaging_off(
    directory: Directory, demo_roster: Path, tmp_path: Path
) -> None:
    directory("blocks.create", {"org_id": "org-school-1"}, as_user=PRIMARY_PRINCIPAL)
    directory.clear_events()
    moved = tmp_path / "moved"
    shutil.copytree(demo_roster, moved)
    with (demo_roster / "users.csv").open(newline="", encoding="utf-8") as source:
        rows = list(csv.DictReader(source))
    for row in rows:
        if row["sourcedId"] == STUDENT:
            row["orgSourcedIds"] = "org-school-1"
    with (moved / "users.csv").open("w", newline="", encoding="utf-8") as target:
        writer = csv.DictWriter(target, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import_roster(directory.url, moved)
    assert changes(directory) == [{"user_ids": [STUDENT], "course_ids": [], "messaging_enabled": False}]
    assert directory.user(STUDENT)["messaging_enabled"] is False
    import_roster(directory.url, demo_roster)  # and back out again
    assert changes(directory)[-1] == {"user_ids": [STUDENT], "course_ids": [], "messaging_enabled": True}
