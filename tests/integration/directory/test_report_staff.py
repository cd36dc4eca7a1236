"""Whom a report of abuse can go to, the administrators of an organisation, and an administrator's scope."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.directory.conftest import Directory

DISTRICT_ADMIN = "user-a-000"
PRIMARY_PRINCIPAL = "user-a-001"
SECONDARY_PRINCIPAL = "user-a-002"
MATH_TEACHER = "user-t-001"  # teaches Math 9B and Upper School Assembly, both with STUDENT
ASSEMBLY_TEACHER = "user-t-002"  # teaches Upper School Assembly
STUDENT = "user-s-0001"  # Northwind Secondary School


def _ids(found: dict[str, Any]) -> list[str]:
    return [item["user_id"] for item in found["items"]]


def _admins_of(directory: Directory, org_ids: list[str]) -> set[str]:
    rows = directory.rows("SELECT sourced_id FROM users WHERE role = 'admin' AND org_ids && :orgs", orgs=org_ids)
    return {r.sourced_id for r in rows}


def _teachers_of_classes_of(directory: Directory, user_id: str) -> set[str]:
    rows = directory.rows(
        "SELECT DISTINCT t.user_id FROM enrollments s JOIN enrollments t ON t.class_id = s.class_id "
        "WHERE s.user_id = :me AND t.role = 'teacher'",
        me=user_id,
    )
    return {r.user_id for r in rows}


def _name(item: dict[str, Any]) -> tuple[str, str, str]:
    return (item["name"].casefold(), item["name"], item["user_id"])


def test_a_student_may_report_to_the_teachers_of_their_classes_then_the_administrators_of_their_school(
    directory: Directory,
) -> None:
    found = directory("staff.report_recipients", as_user=STUDENT)
    teachers = [i for i in found["items"] if i["reason"].startswith("Teacher in ")]
    admins = found["items"][len(teachers) :]
    assert (
        {t["user_id"] for t in teachers}
        == _teachers_of_classes_of(directory, STUDENT)
        == {
            MATH_TEACHER,
            ASSEMBLY_TEACHER,
        }
    )
    assert {a["user_id"] for a in admins} == _admins_of(directory, ["org-school-2", "org-district"])
    assert teachers == sorted(teachers, key=_name) and admins == sorted(admins, key=_name)
    math = directory.user(MATH_TEACHER)
    assert next(t for t in teachers if t["user_id"] == MATH_TEACHER) == {
        "user_id": MATH_TEACHER,
        "name": math["name"],
        "role": "teacher",
        "title": math["title"],
        "reason": "Teacher in Math 9B, Upper School Assembly",
    }
    by_id = {a["user_id"]: a for a in admins}
    principal = directory.user(SECONDARY_PRINCIPAL)
    assert by_id[SECONDARY_PRINCIPAL] == {
        "user_id": SECONDARY_PRINCIPAL,
        "name": principal["name"],
        "role": "admin",
        "title": principal["title"],
        "reason": "Administrator at Northwind Secondary School",
    }
    assert by_id[DISTRICT_ADMIN]["reason"] == "Administrator at Northwind School District"
    assert len(_ids(found)) == len(set(_ids(found)))


def test_teachers_of_other_classes_admins_of_another_school_and_the_reporter_are_absent(directory: Directory) -> None:
    found = set(_ids(directory("staff.report_recipients", as_user=STUDENT)))
    other_teachers = {
        r.user_id for r in directory.rows("SELECT user_id FROM enrollments WHERE role = 'teacher'")
    } - _teachers_of_classes_of(directory, STUDENT)
    assert other_teachers and found.isdisjoint(other_teachers)
    primary_only = _admins_of(directory, ["org-school-1"]) - _admins_of(directory, ["org-school-2", "org-district"])
    assert PRIMARY_PRINCIPAL in primary_only and found.isdisjoint(primary_only)
    assert STUDENT not in found
    # A teacher reporting does not list themselves, only the other teachers of their classes.
    assert MATH_TEACHER not in _ids(directory("staff.report_recipients", as_user=MATH_TEACHER))


def test_class_aides_are_not_teachers_to_report_to(directory: Directory) -> None:
    (student,) = directory.rows(
        "SELECT user_id FROM enrollments WHERE class_id = 'class-032' AND role = 'student' ORDER BY user_id LIMIT 1"
    )
    found = directory("staff.report_recipients", as_user=student.user_id)
    assert "user-x-001" not in _ids(found)
    assert {i["role"] for i in found["items"]} == {"teacher", "admin"}


def test_a_primary_student_gets_the_primary_and_district_administrators(directory: Directory) -> None:
    (student,) = directory.rows(
        "SELECT sourced_id FROM users WHERE role = 'student' AND org_ids = ARRAY['org-school-1'] "
        "ORDER BY sourced_id LIMIT 1"
    )
    found = directory("staff.report_recipients", as_user=student.sourced_id)
    admins = {i["user_id"] for i in found["items"] if i["role"] == "admin"}
    assert admins == _admins_of(directory, ["org-school-1", "org-district"])
    assert SECONDARY_PRINCIPAL not in admins


def test_exclude_and_disabled_accounts_leave_people_out_but_messaging_blocks_do_not(directory: Directory) -> None:
    found = _ids(directory("staff.report_recipients", {"exclude": [MATH_TEACHER, DISTRICT_ADMIN]}, as_user=STUDENT))
    assert MATH_TEACHER not in found and DISTRICT_ADMIN not in found and ASSEMBLY_TEACHER in found
    directory("blocks.create", {"user_id": ASSEMBLY_TEACHER}, as_user=DISTRICT_ADMIN)
    assert ASSEMBLY_TEACHER in _ids(directory("staff.report_recipients", as_user=STUDENT))
    directory.rows(
        "UPDATE users SET enabled = false WHERE sourced_id = ANY(:ids) RETURNING 1",
        ids=[ASSEMBLY_TEACHER, SECONDARY_PRINCIPAL],
    )
    found = _ids(directory("staff.report_recipients", as_user=STUDENT))
    assert ASSEMBLY_TEACHER not in found and SECONDARY_PRINCIPAL not in found and MATH_TEACHER in found


def test_an_administrator_who_teaches_a_shared_class_appears_once_with_the_teacher_reason(
    directory: Directory,
) -> None:
    directory.rows(
        "INSERT INTO enrollments (sourced_id, class_id, user_id, roster_role, role, school_id) "
        "VALUES ('enr-extra', 'class-001', :admin, 'teacher', 'teacher', 'org-school-2') RETURNING 1",
        admin=SECONDARY_PRINCIPAL,
    )
    items = directory("staff.report_recipients", as_user=STUDENT)["items"]
    mine = [i for i in items if i["user_id"] == SECONDARY_PRINCIPAL]
    assert len(mine) == 1 and mine[0]["role"] == "admin" and mine[0]["reason"] == "Teacher in Math 9B"
    assert items.index(mine[0]) < next(i for i, it in enumerate(items) if not it["reason"].startswith("Teacher"))


def test_the_administrators_covering_a_school_are_its_own_and_the_districts(directory: Directory) -> None:
    found = directory("staff.admins_covering", {"org_id": "org-school-2"})
    assert set(_ids(found)) == _admins_of(directory, ["org-school-2", "org-district"])
    assert PRIMARY_PRINCIPAL not in _ids(found)
    assert found["items"] == sorted(found["items"], key=_name)
    by_id = {i["user_id"]: i for i in found["items"]}
    assert by_id[SECONDARY_PRINCIPAL]["reason"] == "Administrator at Northwind Secondary School"
    assert by_id[DISTRICT_ADMIN]["reason"] == "Administrator at Northwind School District"
    assert {i["role"] for i in found["items"]} == {"admin"}
    district = directory("staff.admins_covering", {"org_id": "org-district"})
    assert _ids(district) == [DISTRICT_ADMIN]


def test_an_administrator_sees_the_organisations_they_govern(directory: Directory) -> None:
    assert directory("admins.scope", as_user=DISTRICT_ADMIN) == {
        "org_ids": ["org-district", "org-school-1", "org-school-2"]
    }
    assert directory("admins.scope", as_user=SECONDARY_PRINCIPAL) == {"org_ids": ["org-school-2"]}


@pytest.mark.parametrize(
    ("method", "caller", "params", "code"),
    [
        ("staff.report_recipients", None, {}, "unauthenticated"),
        ("staff.report_recipients", "user-nobody", {}, "unauthenticated"),
        ("staff.report_recipients", STUDENT, {"exclude": MATH_TEACHER}, "validation_failed"),
        ("staff.report_recipients", STUDENT, {"exclude": [1]}, "validation_failed"),
        ("staff.report_recipients", STUDENT, {"exclude": ["user-x"] * 101}, "validation_failed"),
        ("staff.report_recipients", STUDENT, {"other": 1}, "validation_failed"),
        ("staff.admins_covering", None, {}, "validation_failed"),
        ("staff.admins_covering", None, {"org_id": ""}, "validation_failed"),
        ("staff.admins_covering", None, {"org_id": "org-school-2", "x": 1}, "validation_failed"),
        ("staff.admins_covering", None, {"org_id": "org-nowhere"}, "not_found"),
        ("admins.scope", STUDENT, {}, "forbidden"),
        ("admins.scope", MATH_TEACHER, {}, "forbidden"),
        ("admins.scope", None, {}, "unauthenticated"),
        ("admins.scope", DISTRICT_ADMIN, {"org_id": "org-district"}, "validation_failed"),
    ],
)
def test_bad_params_unknown_organisations_and_non_administrators_are_refused(
    directory: Directory, method: str, caller: str | None, params: dict[str, Any], code: str
) -> None:
    assert directory.refusal(method, params, as_user=caller).code == code
