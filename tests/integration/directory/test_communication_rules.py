"""Communication rules (F3) in the real directory database: setting them and what they allow."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.directory.conftest import Directory

DISTRICT_ADMIN = "user-a-000"
PRIMARY_PRINCIPAL = "user-a-001"
SECONDARY_PRINCIPAL = "user-a-002"
TEACHER = "user-t-001"
STUDENT = "user-s-0001"
GUARDIAN = "user-g-001"
LIBRARIAN = "user-x-004"  # staff, school 2
COURSES_ONLY = "Students at Northwind Secondary School can only message teachers and members of their own courses."


@pytest.fixture
def people(directory: Directory) -> dict[str, str]:
    """Students of the student's school: one in Math 9B with them, one sharing nothing; one of the other school."""
    classmate = directory.scalar(
        "SELECT user_id FROM enrollments WHERE class_id = 'class-001' AND role = 'student' AND user_id <> :me "
        "ORDER BY user_id LIMIT 1",
        me=STUDENT,
    )
    strangers = [
        r.sourced_id
        for r in directory.rows(
            """
            SELECT u.sourced_id FROM users u
            WHERE u.role = 'student' AND 'org-school-2' = ANY(u.org_ids) AND u.sourced_id <> :me
              AND NOT EXISTS (SELECT 1 FROM enrollments a JOIN enrollments b ON a.class_id = b.class_id
                              WHERE a.user_id = :me AND b.user_id = u.sourced_id)
              AND NOT EXISTS (SELECT 1 FROM project_members a JOIN project_members b ON a.project_id = b.project_id
                              WHERE a.user_id = :me AND b.user_id = u.sourced_id)
            ORDER BY 1 LIMIT 2
            """,
            me=STUDENT,
        )
    ]
    stranger, project_mate = strangers
    # Every demo Robotics Club member also shares a class with the student: make one who does not.
    directory.rows(
        "INSERT INTO project_members (project_id, user_id, roster_role, role) "
        "VALUES ('proj-01', :id, 'student', 'student') RETURNING 1",
        id=project_mate,
    )
    far = directory.scalar(
        "SELECT sourced_id FROM users WHERE role = 'student' AND org_ids = ARRAY['org-school-1'] ORDER BY 1 LIMIT 1"
    )
    assert classmate and stranger and far
    return {"classmate": classmate, "stranger": stranger, "project_mate": project_mate, "far": far}


def contacts(directory: Directory, sender: str, recipients: list[str]) -> dict[str, Any]:
    return directory("policy.check_contacts", {"recipient_ids": recipients}, as_user=sender)


def codes(result: dict[str, Any]) -> dict[str, str]:
    return {r["user_id"]: r["code"] for r in result["refused"]}


def test_without_a_rule_students_may_message_anyone_at_their_school(
    directory: Directory, people: dict[str, str]
) -> None:
    nearby = [TEACHER, people["classmate"], people["stranger"], GUARDIAN, LIBRARIAN]
    result = contacts(directory, STUDENT, [*nearby, people["far"]])
    assert result["allowed"] == nearby
    assert codes(result) == {people["far"]: "not_found"}
    assert result["refused"][0]["name"] is None


def test_a_courses_rule_limits_students_to_teachers_staff_and_members_of_their_courses_and_projects(
    directory: Directory, people: dict[str, str]
) -> None:
    directory("rules.set", {"org_id": "org-school-2", "student_policy": "courses"}, as_user=SECONDARY_PRINCIPAL)
    result = contacts(
        directory,
        STUDENT,
        [
            TEACHER,
            SECONDARY_PRINCIPAL,
            LIBRARIAN,
            people["classmate"],
            people["project_mate"],
            people["stranger"],
            GUARDIAN,
        ],
    )
    assert result["allowed"] == [TEACHER, SECONDARY_PRINCIPAL, LIBRARIAN, people["classmate"], people["project_mate"]]
    stranger_name = directory.user(people["stranger"])["name"]
    assert result["refused"][0] == {
        "user_id": people["stranger"],
        "name": stranger_name,
        "code": "communication_rule",
        "message": COURSES_ONLY,
    }
    assert codes(result) == {people["stranger"]: "communication_rule", GUARDIAN: "communication_rule"}


def test_a_teachers_rule_limits_students_to_teachers_and_staff(directory: Directory, people: dict[str, str]) -> None:
    directory("rules.set", {"org_id": "org-school-2", "student_policy": "teachers"}, as_user=SECONDARY_PRINCIPAL)
    result = contacts(directory, STUDENT, [TEACHER, LIBRARIAN, people["classmate"], people["stranger"]])
    assert result["allowed"] == [TEACHER, LIBRARIAN]
    assert {r["message"] for r in result["refused"]} == {
        "Students at Northwind Secondary School can only message teachers and school staff."
    }


def test_rules_never_restrict_teachers(directory: Directory, people: dict[str, str]) -> None:
    directory("rules.set", {"org_id": "org-district", "student_policy": "teachers"}, as_user=DISTRICT_ADMIN)
    result = contacts(directory, TEACHER, [STUDENT, people["stranger"], GUARDIAN])
    assert result["allowed"] == [STUDENT, people["stranger"], GUARDIAN]


def test_guardians_may_message_teachers_and_staff_only(directory: Directory) -> None:
    result = contacts(directory, GUARDIAN, [TEACHER, SECONDARY_PRINCIPAL, STUDENT])
    assert result["allowed"] == [TEACHER, SECONDARY_PRINCIPAL]
    assert codes(result) == {STUDENT: "communication_rule"}


def test_a_district_rule_applies_until_a_school_sets_its_own(directory: Directory, people: dict[str, str]) -> None:
    directory("rules.set", {"org_id": "org-district", "student_policy": "teachers"}, as_user=DISTRICT_ADMIN)
    assert codes(contacts(directory, STUDENT, [people["classmate"]])) == {people["classmate"]: "communication_rule"}
    school = directory("rules.get", {"org_id": "org-school-2"}, as_user=SECONDARY_PRINCIPAL)
    assert school == {
        "org_id": "org-school-2",
        "org_name": "Northwind Secondary School",
        "student_policy": None,
        "effective_policy": "teachers",
        "source_org_id": "org-district",
    }
    directory("rules.set", {"org_id": "org-school-2", "student_policy": "anyone"}, as_user=SECONDARY_PRINCIPAL)
    assert contacts(directory, STUDENT, [people["classmate"]])["allowed"] == [people["classmate"]]


def test_setting_a_rule_publishes_it_once_and_null_removes_it(directory: Directory) -> None:
    set_ = directory("rules.set", {"org_id": "org-school-2", "student_policy": "courses"}, as_user=SECONDARY_PRINCIPAL)
    assert set_["student_policy"] == "courses" and set_["effective_policy"] == "courses"
    directory("rules.set", {"org_id": "org-school-2", "student_policy": "courses"}, as_user=DISTRICT_ADMIN)
    removed = directory("rules.set", {"org_id": "org-school-2", "student_policy": None}, as_user=SECONDARY_PRINCIPAL)
    assert removed["student_policy"] is None and removed["effective_policy"] == "anyone"
    events = directory.events("directory.rule.changed")
    assert [e["data"] for e in events] == [
        {"org_id": "org-school-2", "student_policy": "courses"},
        {"org_id": "org-school-2", "student_policy": None},
    ]
    assert all(e["audience"] is None for e in events)
    assert directory.scalar("SELECT count(*) FROM communication_rules") == 0


@pytest.mark.parametrize(
    ("caller", "org_id"),
    [
        (TEACHER, "org-school-2"),
        (STUDENT, "org-school-2"),
        (PRIMARY_PRINCIPAL, "org-school-2"),
        (SECONDARY_PRINCIPAL, "org-district"),
    ],
)
def test_only_an_administrator_of_the_organisation_or_above_may_set_its_rule(
    directory: Directory, caller: str, org_id: str
) -> None:
    before = directory.state()
    refusal = directory.refusal("rules.set", {"org_id": org_id, "student_policy": "teachers"}, as_user=caller)
    assert refusal.code == "forbidden"
    assert directory.state() == before


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"org_id": "org-school-2"}, "validation_failed"),
        ({"student_policy": "anyone"}, "validation_failed"),
        ({"org_id": "org-school-2", "student_policy": "nobody"}, "validation_failed"),
        ({"org_id": "org-school-2", "student_policy": 1}, "validation_failed"),
        ({"org_id": "org-school-2", "student_policy": "anyone", "also": True}, "validation_failed"),
        ({"org_id": "org-nowhere", "student_policy": "anyone"}, "not_found"),
    ],
)
def test_a_malformed_rule_is_refused_and_changes_nothing(
    directory: Directory, params: dict[str, Any], code: str
) -> None:
    before = directory.state()
    assert directory.refusal("rules.set", params, as_user=DISTRICT_ADMIN).code == code
    assert directory.state() == before


def test_a_rule_is_readable_by_those_who_see_the_organisation_only(directory: Directory) -> None:
    assert directory("rules.get", {"org_id": "org-district"}, as_user=STUDENT)["effective_policy"] == "anyone"
    assert directory.refusal("rules.get", {"org_id": "org-school-1"}, as_user=STUDENT).code == "not_found"
    assert directory.refusal("rules.get", {"org_id": "org-nowhere"}, as_user=DISTRICT_ADMIN).code == "not_found"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "validation_failed"),
        ({"recipient_ids": "user-t-001"}, "validation_failed"),
        ({"recipient_ids": [None]}, "validation_failed"),
        ({"recipient_ids": [TEACHER], "mode": "group"}, "validation_failed"),
    ],
)
def test_checking_contacts_refuses_malformed_params(directory: Directory, params: dict[str, Any], code: str) -> None:
    assert directory.refusal("policy.check_contacts", params, as_user=STUDENT).code == code


def test_checking_contacts_needs_a_caller_in_the_roster(directory: Directory) -> None:
    assert directory.refusal("policy.check_contacts", {"recipient_ids": [TEACHER]}).code == "unauthenticated"
    refusal = directory.refusal("policy.check_contacts", {"recipient_ids": [TEACHER]}, as_user="user-gone")
    assert refusal.code == "unauthenticated"


def test_unknown_and_repeated_recipients_are_answered_once(directory: Directory) -> None:
    result = contacts(directory, STUDENT, [TEACHER, "user-nobody", TEACHER])
    assert result["allowed"] == [TEACHER]
    assert result["refused"] == [
        {"user_id": "user-nobody", "name": None, "code": "not_found", "message": "No such user."}
    ]
