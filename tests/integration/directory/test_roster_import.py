"""Importing OneRoster bundles into the real directory database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from services.directory.handlers import import_roster, methods
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.rpc import Caller


def _count(settings: Settings, sql: str) -> int:
    with transaction(settings.database_url("directory")) as session:
        return session.execute(text(sql)).scalar_one()


def test_the_demo_roster_imports_with_its_users_classes_and_events(db: Settings, demo_roster: Path) -> None:
    counts = import_roster(db.database_url("directory"), demo_roster)
    users = _count(db, "SELECT count(*) FROM users")
    assert 950 <= users <= 1100
    assert counts["users"]["created"] == users
    assert _count(db, "SELECT count(*) FROM classes") >= 35
    assert _count(db, "SELECT max(n) FROM (SELECT count(*) n FROM enrollments GROUP BY class_id) x") > 300
    upserted = _count(db, "SELECT count(*) FROM outbox WHERE type = 'directory.user.upserted'")
    enrolled = _count(db, "SELECT count(*) FROM outbox WHERE type = 'directory.enrolment.added'")
    assert upserted == users
    assert enrolled == _count(db, "SELECT count(*) FROM enrollments") + _count(
        db, "SELECT count(*) FROM project_members"
    )


def test_after_an_import_the_planner_knows_how_many_rows_there_are(db: Settings, demo_roster: Path) -> None:
    """Statistics at once, not when autovacuum comes by: a lookup right after a big import uses its index."""
    import_roster(db.database_url("directory"), demo_roster)
    for table in ("users", "enrollments", "classes", "outbox"):
        planned = _count(db, f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{table}'")
        assert planned == _count(db, f"SELECT count(*) FROM {table}"), table


def test_reimporting_the_same_bundle_changes_nothing_and_publishes_nothing(db: Settings, demo_roster: Path) -> None:
    url = db.database_url("directory")
    import_roster(url, demo_roster)
    with transaction(url) as session:
        session.execute(text("DELETE FROM outbox"))
    counts = import_roster(url, demo_roster)
    assert all(c == {"created": 0, "updated": 0, "deleted": 0} for c in counts.values())
    assert _count(db, "SELECT count(*) FROM outbox") == 0


def test_a_changed_bundle_updates_rows_and_removes_what_left(db: Settings, demo_roster: Path, tmp_path: Path) -> None:
    url = db.database_url("directory")
    import_roster(url, demo_roster)
    changed = tmp_path / "changed"
    shutil.copytree(demo_roster, changed)
    lines = (changed / "enrollments.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    header, dropped, rest = lines[0], lines[1], lines[2:]
    (changed / "enrollments.csv").write_text(header + "".join(rest), encoding="utf-8")
    with transaction(url) as session:
        session.execute(text("DELETE FROM outbox"))
    counts = import_roster(url, changed)
    assert counts["enrollments"] == {"created": 0, "updated": 0, "deleted": 1}
    assert _count(db, "SELECT count(*) FROM outbox WHERE type = 'directory.enrolment.removed'") == 1
    dropped_id = dropped.split(",")[0]
    assert _count(db, f"SELECT count(*) FROM enrollments WHERE sourced_id = '{dropped_id}'") == 0


def test_a_malformed_bundle_is_refused_with_file_line_and_column_and_stores_nothing(
    db: Settings, demo_roster: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(demo_roster, broken)
    users = (broken / "users.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    header = users[0].rstrip("\r\n").split(",")
    role_column = header.index("role")
    row = users[3].rstrip("\r\n").split(",")
    row[role_column] = "wizard"
    users[3] = ",".join(row) + "\n"
    (broken / "users.csv").write_text("".join(users), encoding="utf-8")
    with pytest.raises(AppError) as info:
        import_roster(db.database_url("directory"), broken)
    assert info.value.code == "validation_failed"
    issues = info.value.details["errors"]
    assert any(i["file"] == "users.csv" and i["line"] == 4 and i["column"] == "role" for i in issues)
    assert _count(db, "SELECT count(*) FROM users") == 0
    assert _count(db, "SELECT count(*) FROM outbox") == 0


def test_search_finds_people_courses_and_projects_by_name_within_reach(db: Settings, demo_roster: Path) -> None:
    import_roster(db.database_url("directory"), demo_roster)
    rpc = methods(db)
    teacher = rpc["users.get"](None, {"ids": ["user-t-001"]})["users"][0]
    student = rpc["users.get"](None, {"ids": ["user-s-0001"]})["users"][0]
    found = rpc["directory.search"](Caller("user-t-001"), {"q": student["family_name"][:4]})
    assert student["id"] in {p["id"] for p in found["people"]}
    assert "user-t-001" not in {p["id"] for p in found["people"]}
    courses = rpc["directory.search"](Caller("user-t-001"), {"q": "a"})["courses"]
    assert courses and all(c["type"] == "course" for c in courses)
    assert teacher["name"] == f"{teacher['given_name']} {teacher['family_name']}"


def test_search_refuses_an_empty_query(db: Settings, demo_roster: Path) -> None:
    import_roster(db.database_url("directory"), demo_roster)
    with pytest.raises(AppError) as info:
        methods(db)["directory.search"](Caller("user-t-001"), {"q": "  "})
    assert info.value.code == "validation_failed"


def test_members_of_a_course_and_a_project_are_listed_with_their_roles(db: Settings, demo_roster: Path) -> None:
    import_roster(db.database_url("directory"), demo_roster)
    rpc = methods(db)
    course = rpc["groups.members"](None, {"kind": "course", "id": "class-001"})["members"]
    assert {"user_id": "user-t-001", "role": "teacher"} in course
    assert {"user_id": "user-s-0001", "role": "student"} in course
    project = rpc["groups.members"](None, {"kind": "project", "id": "proj-01"})["members"]
    assert "user-s-0001" in {m["user_id"] for m in project}
    for params, code in [
        ({"kind": "course", "id": "nope"}, "not_found"),
        ({"kind": "club", "id": "x"}, "validation_failed"),
    ]:
        with pytest.raises(AppError) as info:
            rpc["groups.members"](None, params)
        assert info.value.code == code


def test_a_group_is_shown_to_its_members_and_its_schools_admins_only(db: Settings, demo_roster: Path) -> None:
    import_roster(db.database_url("directory"), demo_roster)
    members = methods(db)["groups.members"]
    assert members(Caller("user-s-0001"), {"kind": "course", "id": "class-001"})["name"] == "Math 9B"
    assert members(Caller("user-a-002"), {"kind": "course", "id": "class-001"})["members"]
    for outsider in ("user-a-001", "user-s-0900"):  # another school's principal, a student elsewhere
        with pytest.raises(AppError) as info:
            members(Caller(outsider), {"kind": "course", "id": "class-001"})
        assert info.value.code == "not_found"
