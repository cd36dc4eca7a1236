"""Relationships (F4), the organisation tree and the mass-messaging privilege (F27) in the real database."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.directory.conftest import Directory

DISTRICT_ADMIN = "user-a-000"
PRIMARY_PRINCIPAL = "user-a-001"
SECONDARY_PRINCIPAL = "user-a-002"
TEACHER = "user-t-001"
STUDENT = "user-s-0001"


def test_a_teacher_sees_the_courses_and_projects_shared_with_a_student_and_each_role(directory: Directory) -> None:
    student = directory.user(STUDENT)
    found = directory("users.relationship", {"user_id": STUDENT}, as_user=TEACHER)
    assert found["user"] == {"id": STUDENT, "name": student["name"], "role": "student"}
    assert found["shared"] == [
        {"kind": "course", "id": "class-001", "name": "Math 9B", "my_role": "teacher", "their_role": "student"},
        {
            "kind": "course",
            "id": "class-002",
            "name": "Upper School Assembly",
            "my_role": "teacher",
            "their_role": "student",
        },
        {"kind": "project", "id": "proj-01", "name": "Robotics Club", "my_role": "teacher", "their_role": "student"},
    ]
    first = student["given_name"]
    assert found["summary"][:2] == ["You are the teacher in Math 9B", f"{first} is a student in Math 9B"]
    assert len(found["summary"]) == 6


def test_the_student_sees_the_same_relationship_from_their_side(directory: Directory) -> None:
    teacher = directory.user(TEACHER)
    found = directory("users.relationship", {"user_id": TEACHER}, as_user=STUDENT)
    assert found["summary"][:2] == [
        "You are a student in Math 9B",
        f"{teacher['given_name']} is the teacher in Math 9B",
    ]


def test_people_of_the_same_school_without_shared_courses_have_an_empty_relationship(directory: Directory) -> None:
    found = directory("users.relationship", {"user_id": STUDENT}, as_user=SECONDARY_PRINCIPAL)
    assert found["shared"] == [] and found["summary"] == []
    # The district administrator reaches the student, and the student may ask about them in turn.
    assert directory("users.relationship", {"user_id": STUDENT}, as_user=DISTRICT_ADMIN)["shared"] == []
    assert directory("users.relationship", {"user_id": DISTRICT_ADMIN}, as_user=STUDENT)["user"]["id"] == DISTRICT_ADMIN


@pytest.mark.parametrize(
    ("caller", "params", "code"),
    [
        (PRIMARY_PRINCIPAL, {"user_id": STUDENT}, "not_found"),
        (TEACHER, {"user_id": "user-nobody"}, "not_found"),
        (TEACHER, {}, "validation_failed"),
        (TEACHER, {"user_id": ["user-s-0001"]}, "validation_failed"),
        (TEACHER, {"user_id": STUDENT, "extra": 1}, "validation_failed"),
        (None, {"user_id": STUDENT}, "unauthenticated"),
    ],
)
def test_a_relationship_out_of_reach_unknown_or_malformed_is_refused(
    directory: Directory, caller: str | None, params: dict[str, Any], code: str
) -> None:
    assert directory.refusal("users.relationship", params, as_user=caller).code == code


def test_the_organisation_tree_shows_ones_own_organisations_those_above_and_those_under(directory: Directory) -> None:
    teacher = directory("orgs.tree", as_user=TEACHER)["orgs"]
    assert [(o["id"], [c["id"] for c in o["children"]]) for o in teacher] == [("org-district", ["org-school-2"])]
    district = directory("orgs.tree", as_user=DISTRICT_ADMIN)["orgs"]
    assert district == [
        {
            "id": "org-district",
            "name": "Northwind School District",
            "type": "district",
            "children": [
                {"id": "org-school-1", "name": "Northwind Primary School", "type": "school", "children": []},
                {"id": "org-school-2", "name": "Northwind Secondary School", "type": "school", "children": []},
            ],
        }
    ]
    assert directory.refusal("orgs.tree", {"all": True}, as_user=TEACHER).code == "validation_failed"


def test_an_administrator_grants_and_revokes_mass_messaging_to_an_administrator_below(directory: Directory) -> None:
    params = {"user_id": SECONDARY_PRINCIPAL, "privilege": "mass_messaging"}
    assert directory("privileges.check", params) == {**params, "granted": False}
    assert directory("privileges.grant", params, as_user=DISTRICT_ADMIN) == {**params, "granted": True}
    assert directory("privileges.grant", params, as_user=DISTRICT_ADMIN) == {**params, "granted": True}
    assert directory("privileges.check", params)["granted"] is True
    assert directory.rows("SELECT user_id, privilege, granted_by FROM privileges") == [
        (SECONDARY_PRINCIPAL, "mass_messaging", DISTRICT_ADMIN)
    ]
    assert directory("privileges.revoke", params, as_user=SECONDARY_PRINCIPAL) == {**params, "granted": False}
    assert directory("privileges.check", params)["granted"] is False


def test_a_privilege_lapses_when_its_holder_is_no_longer_an_administrator(directory: Directory) -> None:
    params = {"user_id": SECONDARY_PRINCIPAL, "privilege": "mass_messaging"}
    directory("privileges.grant", params, as_user=DISTRICT_ADMIN)
    directory.rows("UPDATE users SET role = 'teacher' WHERE sourced_id = :id RETURNING 1", id=SECONDARY_PRINCIPAL)
    assert directory("privileges.check", params)["granted"] is False


@pytest.mark.parametrize(
    ("caller", "params", "code"),
    [
        (TEACHER, {"user_id": SECONDARY_PRINCIPAL, "privilege": "mass_messaging"}, "forbidden"),
        (PRIMARY_PRINCIPAL, {"user_id": SECONDARY_PRINCIPAL, "privilege": "mass_messaging"}, "forbidden"),
        (SECONDARY_PRINCIPAL, {"user_id": DISTRICT_ADMIN, "privilege": "mass_messaging"}, "forbidden"),
        (DISTRICT_ADMIN, {"user_id": TEACHER, "privilege": "mass_messaging"}, "validation_failed"),
        (DISTRICT_ADMIN, {"user_id": SECONDARY_PRINCIPAL, "privilege": "superpowers"}, "validation_failed"),
        (DISTRICT_ADMIN, {"user_id": SECONDARY_PRINCIPAL}, "validation_failed"),
        (DISTRICT_ADMIN, {"user_id": SECONDARY_PRINCIPAL, "privilege": "mass_messaging", "x": 1}, "validation_failed"),
        (DISTRICT_ADMIN, {"user_id": 5, "privilege": "mass_messaging"}, "validation_failed"),
        (DISTRICT_ADMIN, {"user_id": "user-nobody", "privilege": "mass_messaging"}, "not_found"),
    ],
)
def test_a_grant_by_someone_without_authority_or_to_the_wrong_person_is_refused_and_changes_nothing(
    directory: Directory, caller: str, params: dict[str, Any], code: str
) -> None:
    before = directory.state()
    assert directory.refusal("privileges.grant", params, as_user=caller).code == code
    assert directory.state() == before


def test_only_an_administrator_over_the_holder_may_revoke(directory: Directory) -> None:
    params = {"user_id": SECONDARY_PRINCIPAL, "privilege": "mass_messaging"}
    directory("privileges.grant", params, as_user=DISTRICT_ADMIN)
    before = directory.state()
    for caller in (PRIMARY_PRINCIPAL, TEACHER):
        assert directory.refusal("privileges.revoke", params, as_user=caller).code == "forbidden"
    assert directory.state() == before


def test_checking_an_unknown_privilege_is_refused(directory: Directory) -> None:
    refusal = directory.refusal("privileges.check", {"user_id": SECONDARY_PRINCIPAL, "privilege": "x"})
    assert refusal.code == "validation_failed"
