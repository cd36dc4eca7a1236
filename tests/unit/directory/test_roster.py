"""OneRoster 1.1 bundle parsing and the demo roster (services/directory/roster)."""

from __future__ import annotations

import io
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from services.directory.roster import Bundle, RosterError, RosterIssue, User, load_bundle, platform_role
from services.directory.roster.generate import demo_roster_files, main, write_demo_roster, write_demo_zip

# --- a small valid bundle, and ways to break it -----------------------------------------------

MANIFEST = {
    "manifest.version": "1.0",
    "oneroster.version": "1.1",
    "file.orgs": "bulk",
    "file.users": "bulk",
    "file.courses": "bulk",
    "file.classes": "bulk",
    "file.enrollments": "bulk",
    "file.academicSessions": "absent",
}

FILES = {
    "orgs.csv": (
        "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n"
        "org-d,,,Lakeside District,district,LD,\n"
        "org-s,,,Lakeside High,school,LH,org-d\n"
    ),
    "users.csv": (
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,"
        "middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n"
        "u-t,,,true,org-s,teacher,ada.l,,Ada,Lovelace,,,ada@lakeside.example,,,,,\n"
        "u-s,,,true,org-s,student,alan.t,,Alan,Turing,,,alan@lakeside.example,,,,09,\n"
        'u-a,,,false,"org-d,org-s",administrator,grace.h,,Grace,Hopper,,,,,,,,\n'
    ),
    "courses.csv": (
        "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,"
        "subjects,subjectCodes\n"
        "c-math,,,,Mathematics,MATH,,org-s,,\n"
    ),
    "classes.csv": (
        "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,"
        "termSourcedIds,subjects,subjectCodes,periods\n"
        "k-7b,,,Math 7B,07,c-math,M7B,scheduled,Room 1,org-s,,,,\n"
    ),
    "enrollments.csv": (
        "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,"
        "beginDate,endDate\n"
        "e-1,,,k-7b,org-s,u-t,teacher,true,,\n"
        "e-2,,,k-7b,org-s,u-s,student,false,,\n"
    ),
}


def manifest_csv(values: dict[str, str]) -> str:
    return "propertyName,value\n" + "".join(f"{name},{value}\n" for name, value in values.items())


def write_bundle(
    folder: Path,
    changes: dict[str, str | None] | None = None,
    manifest: dict[str, str] | None = None,
) -> Path:
    """The small bundle with files replaced (text) or left out (None)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str | None] = {**FILES, "manifest.csv": manifest_csv({**MANIFEST, **(manifest or {})})}
    files.update(changes or {})
    for name, text in files.items():
        if text is not None:
            (folder / name).write_text(text, encoding="utf-8")
    return folder


def zip_bytes(members: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def refusal(source: Path | bytes, **kwargs: int) -> list[RosterIssue]:
    with pytest.raises(RosterError) as caught:
        load_bundle(source, **kwargs)
    return caught.value.errors


def with_row(file: str, row: str) -> dict[str, str | None]:
    return {file: FILES[file] + row + "\n"}


def where(issues: list[RosterIssue]) -> list[tuple[str, int, str | None]]:
    return [(issue.file, issue.line, issue.column) for issue in issues]


# --- the demo roster --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    folder = tmp_path_factory.mktemp("demo")
    write_demo_roster(folder)
    return load_bundle(folder)


def test_the_demo_roster_parses_with_about_a_thousand_users_in_one_district_and_two_schools(demo: Bundle) -> None:
    assert demo.mode == "bulk"
    assert {(org.sourced_id, org.type, org.parent_id) for org in demo.orgs} == {
        ("org-district", "district", None),
        ("org-school-1", "school", "org-district"),
        ("org-school-2", "school", "org-district"),
    }
    roles = Counter(user.platform_role for user in demo.users)
    assert (roles["student"], roles["teacher"], roles["admin"]) == (900, 80, 20)
    assert roles["guardian"] > 0 and roles["staff"] > 0
    assert 1000 <= len(demo.users) <= 1050
    assert len({user.username for user in demo.users}) == len(demo.users)
    assert len({user.email for user in demo.users}) == len(demo.users)


def test_the_demo_roster_has_about_forty_classes_and_exactly_one_above_three_hundred_members(demo: Bundle) -> None:
    assert 35 <= len(demo.classes) <= 45
    members = Counter(enrollment.class_id for enrollment in demo.enrollments)
    teachers = Counter(e.class_id for e in demo.enrollments if e.role == "teacher")
    students = Counter(e.class_id for e in demo.enrollments if e.role == "student")
    large = [klass for klass in demo.classes if members[klass.sourced_id] > 300]
    assert len(large) == 1 and teachers[large[0].sourced_id] == 2
    for klass in demo.classes:
        if klass is not large[0]:
            assert 1 <= teachers[klass.sourced_id] <= 2, klass.title
            assert 15 <= students[klass.sourced_id] <= 30, klass.title
    assert {"Math 9B", "Upper School Assembly"} <= {klass.title for klass in demo.classes}


def test_the_demo_roster_has_a_few_project_groups_of_three_to_twelve_members(demo: Bundle) -> None:
    assert 4 <= len(demo.projects) <= 6
    sizes = Counter(member.project_id for member in demo.project_members)
    assert set(sizes) == {project.sourced_id for project in demo.projects}
    assert all(3 <= size <= 12 for size in sizes.values())


def test_the_well_known_demo_accounts_are_present_where_the_docs_say(demo: Bundle) -> None:
    users = {user.sourced_id: user for user in demo.users}
    teacher, student = users["user-t-001"], users["user-s-0001"]
    assert (teacher.platform_role, student.platform_role) == ("teacher", "student")
    assert (users["user-a-001"].platform_role, users["user-a-001"].org_ids) == ("admin", ("org-school-1",))
    assert users["user-a-000"].org_ids == ("org-district",)
    members = Counter(e.class_id for e in demo.enrollments)
    taught = {e.class_id for e in demo.enrollments if e.user_id == "user-t-001" and e.role == "teacher"}
    attended = {e.class_id for e in demo.enrollments if e.user_id == "user-s-0001"}
    assert {"class-001", "class-002"} <= taught and members["class-002"] > 300
    assert "class-001" in attended and members["class-001"] <= 300
    assert ("proj-01", "user-s-0001") in {(m.project_id, m.user_id) for m in demo.project_members}


def test_demo_users_have_titles_from_the_extension_column_or_their_role_default(demo: Bundle) -> None:
    titles = {user.sourced_id: user.title for user in demo.users}
    assert titles["user-t-001"] == "Math teacher"
    assert titles["user-a-001"] == "Principal"
    assert titles["user-s-0001"] == "Student"
    assert titles["user-g-001"] == "Guardian"


def test_the_demo_roster_is_the_same_for_a_seed_and_different_for_another() -> None:
    assert demo_roster_files(seed=7) == demo_roster_files(seed=7)
    assert demo_roster_files(seed=7)["users.csv"] != demo_roster_files(seed=8)["users.csv"]


def test_the_command_line_writes_the_folder_and_a_zip_that_parse_alike(tmp_path: Path) -> None:
    assert main([str(tmp_path / "demo"), "--zip", str(tmp_path / "demo.zip")]) == 0
    assert (tmp_path / "demo" / "manifest.csv").is_file()
    assert load_bundle(tmp_path / "demo") == load_bundle(tmp_path / "demo.zip")


def test_the_demo_zip_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    write_demo_zip(tmp_path / "a.zip")
    write_demo_zip(tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


# --- reading valid bundles --------------------------------------------------------------------


def test_a_small_bundle_is_read_into_typed_records(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path))
    admin = next(user for user in bundle.users if user.sourced_id == "u-a")
    orgs = ("org-d", "org-s")
    assert admin == User("u-a", "Grace", "Hopper", "administrator", "grace.h", "", orgs, False, "Administrator")
    assert [(e.user_id, e.platform_role) for e in bundle.enrollments] == [("u-t", "teacher"), ("u-s", "student")]
    assert bundle.classes[0].class_code == "M7B" and bundle.classes[0].course_id == "c-math"
    assert bundle.projects == () and bundle.project_members == () and bundle.external_refs == ()
    assert bundle.deleted["users"] == frozenset()


def test_parsing_the_same_bundle_twice_gives_equal_bundles(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    assert load_bundle(folder) == load_bundle(folder)


def test_a_folder_a_zip_file_and_zip_bytes_give_the_same_bundle(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "bundle")
    data = zip_bytes({path.name: path.read_text() for path in folder.iterdir()})
    (tmp_path / "bundle.zip").write_bytes(data)
    assert load_bundle(folder) == load_bundle(tmp_path / "bundle.zip") == load_bundle(data)


def test_a_zip_of_a_folder_is_read_from_that_folder(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "bundle")
    data = zip_bytes({f"export-2024/{path.name}": path.read_text() for path in folder.iterdir()})
    assert load_bundle(data) == load_bundle(folder)


def test_a_byte_order_mark_capitalised_headers_and_crlf_line_ends_are_accepted(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    users = FILES["users.csv"].replace("sourcedId,", "SourcedID,", 1).replace("\n", "\r\n")
    (folder / "users.csv").write_bytes(b"\xef\xbb\xbf" + users.encode("utf-8"))
    assert {user.sourced_id for user in load_bundle(folder).users} == {"u-t", "u-s", "u-a"}


def test_extra_columns_are_ignored_and_metadata_title_sets_the_title(tmp_path: Path) -> None:
    users = (
        "sourcedId,enabledUser,orgSourcedIds,role,username,givenName,familyName,favouriteColour,metadata.title\n"
        "u-t,true,org-s,teacher,ada.l,Ada,Lovelace,green,Head of Mathematics\n"
        "u-s,true,org-s,student,alan.t,Alan,Turing,blue,\n"
    )
    bundle = load_bundle(write_bundle(tmp_path, {"users.csv": users}))
    titles = [(user.sourced_id, user.title) for user in bundle.users]
    assert titles == [("u-t", "Head of Mathematics"), ("u-s", "Student")]


def test_every_oneroster_role_maps_to_a_platform_role() -> None:
    expected = {
        "student": "student",
        "teacher": "teacher",
        "administrator": "admin",
        "aide": "staff",
        "proctor": "staff",
        "guardian": "guardian",
        "parent": "guardian",
        "relative": "guardian",
    }
    assert {role: platform_role(role) for role in expected} == expected


def test_absent_files_are_allowed_and_their_references_are_left_to_the_store(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path, {"orgs.csv": None}, {"file.orgs": "absent"})
    bundle = load_bundle(folder)
    assert bundle.orgs == () and bundle.file_modes["orgs"] == "absent"
    assert bundle.external_ids("orgs") == {"org-d", "org-s"}


def test_projects_and_their_members_are_read_when_the_manifest_lists_them(tmp_path: Path) -> None:
    changes: dict[str, str | None] = {
        "projects.csv": "sourcedId,title,schoolSourcedId\np-1,Robotics Club,org-s\n",
        "projectMembers.csv": "projectSourcedId,userSourcedId,role\np-1,u-t,teacher\np-1,u-s,student\n",
    }
    folder = write_bundle(tmp_path, changes, {"file.projects": "bulk", "file.projectMembers": "bulk"})
    bundle = load_bundle(folder)
    assert [(p.sourced_id, p.title) for p in bundle.projects] == [("p-1", "Robotics Club")]
    assert [(m.user_id, m.platform_role) for m in bundle.project_members] == [("u-t", "teacher"), ("u-s", "student")]


# --- refusing malformed bundles -----------------------------------------------------------------

MALFORMED: dict[str, tuple[dict[str, str | None], dict[str, str], tuple[str, int, str | None], str]] = {
    "a missing required file": ({"users.csv": None}, {}, ("users.csv", 0, None), "missing"),
    "a missing required column": (
        {"courses.csv": "sourcedId,title\nc-math,Mathematics\n"},
        {},
        ("courses.csv", 1, "orgSourcedId"),
        "column",
    ),
    "an empty sourcedId": (with_row("orgs.csv", ",,,Annex,school,,org-d"), {}, ("orgs.csv", 4, "sourcedId"), "empty"),
    "an unknown user role": (
        with_row("users.csv", "u-x,,,true,org-s,pupil,x,,X,Y,,,,,,,,"),
        {},
        ("users.csv", 5, "role"),
        "'pupil'",
    ),
    "an unknown enrollment role": (
        with_row("enrollments.csv", "e-3,,,k-7b,org-s,u-a,janitor,,,"),
        {},
        ("enrollments.csv", 4, "role"),
        "janitor",
    ),
    "an unknown org type": (with_row("orgs.csv", "org-x,,,Annex,campus,,org-d"), {}, ("orgs.csv", 4, "type"), "campus"),
    "a duplicate sourcedId": (
        with_row("classes.csv", "k-7b,,,Math 7B again,07,c-math,,,,org-s,,,,"),
        {},
        ("classes.csv", 3, "sourcedId"),
        "first on line 2",
    ),
    "a bad enabledUser": (
        with_row("users.csv", "u-x,,,yes,org-s,student,x,,X,Y,,,,,,,,"),
        {},
        ("users.csv", 5, "enabledUser"),
        "'yes'",
    ),
    "an empty orgSourcedIds": (
        with_row("users.csv", "u-x,,,true,,student,x,,X,Y,,,,,,,,"),
        {},
        ("users.csv", 5, "orgSourcedIds"),
        "empty",
    ),
    "a user in an unknown org": (
        with_row("users.csv", 'u-x,,,true,"org-s,org-nowhere",student,x,,X,Y,,,,,,,,'),
        {},
        ("users.csv", 5, "orgSourcedIds"),
        "org-nowhere",
    ),
    "a class of an unknown course": (
        with_row("classes.csv", "k-8a,,,Science 8A,08,c-sci,,,,org-s,,,,"),
        {},
        ("classes.csv", 3, "courseSourcedId"),
        "c-sci",
    ),
    "a class in an unknown school": (
        with_row("classes.csv", "k-8a,,,Math 8A,08,c-math,,,,org-q,,,,"),
        {},
        ("classes.csv", 3, "schoolSourcedId"),
        "org-q",
    ),
    "an enrollment in an unknown class": (
        with_row("enrollments.csv", "e-3,,,k-9z,org-s,u-s,student,,,"),
        {},
        ("enrollments.csv", 4, "classSourcedId"),
        "k-9z",
    ),
    "an enrollment of an unknown user": (
        with_row("enrollments.csv", "e-3,,,k-7b,org-s,u-ghost,student,,,"),
        {},
        ("enrollments.csv", 4, "userSourcedId"),
        "u-ghost",
    ),
    "an org with an unknown parent": (
        with_row("orgs.csv", "org-x,,,Annex,school,,org-elsewhere"),
        {},
        ("orgs.csv", 4, "parentSourcedId"),
        "org-elsewhere",
    ),
    "an org hierarchy cycle": (
        with_row("orgs.csv", "org-a,,,A,department,,org-b\norg-b,,,B,department,,org-a"),
        {},
        ("orgs.csv", 4, "parentSourcedId"),
        "org-a -> org-b -> org-a",
    ),
    "an org that is its own parent": (
        with_row("orgs.csv", "org-a,,,A,department,,org-a"),
        {},
        ("orgs.csv", 4, "parentSourcedId"),
        "cycle",
    ),
    "a project member who is not a user": (
        {
            "projects.csv": "sourcedId,title,schoolSourcedId\np-1,Robotics,org-s\n",
            "projectMembers.csv": "projectSourcedId,userSourcedId,role\np-1,u-t,teacher\np-1,u-ghost,student\n",
        },
        {"file.projects": "bulk", "file.projectMembers": "bulk"},
        ("projectMembers.csv", 3, "userSourcedId"),
        "u-ghost",
    ),
    "a member of an unknown project": (
        {
            "projects.csv": "sourcedId,title,schoolSourcedId\np-1,Robotics,org-s\n",
            "projectMembers.csv": "projectSourcedId,userSourcedId,role\np-2,u-t,teacher\n",
        },
        {"file.projects": "bulk", "file.projectMembers": "bulk"},
        ("projectMembers.csv", 2, "projectSourcedId"),
        "p-2",
    ),
    "a wrong OneRoster version": ({}, {"oneroster.version": "1.2"}, ("manifest.csv", 3, "value"), "1.1"),
    "an unknown manifest file mode": ({}, {"file.users": "full"}, ("manifest.csv", 5, "value"), "'full'"),
    "a delta project file": ({}, {"file.projects": "delta"}, ("manifest.csv", 10, "value"), "bulk, absent"),
    "tobedeleted in a bulk file": (
        with_row("orgs.csv", "org-x,tobedeleted,2024-01-01,Annex,school,,org-d"),
        {},
        ("orgs.csv", 4, "status"),
        "delta",
    ),
    "a bad dateLastModified": (
        with_row("orgs.csv", "org-x,active,yesterday,Annex,school,,org-d"),
        {},
        ("orgs.csv", 4, "dateLastModified"),
        "yesterday",
    ),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_bundle_is_refused_naming_file_line_and_column(tmp_path: Path, case: str) -> None:
    changes, manifest, place, message = MALFORMED[case]
    issues = refusal(write_bundle(tmp_path, changes, manifest))
    assert where(issues) == [place], issues
    assert message in issues[0].message


def test_line_numbers_count_physical_lines_across_quoted_line_breaks(tmp_path: Path) -> None:
    orgs = FILES["orgs.csv"] + 'org-x,,,"Annex\nNorth Wing",school,,org-d\norg-y,,,Gym,arena,,org-d\n'
    assert where(refusal(write_bundle(tmp_path, {"orgs.csv": orgs}))) == [("orgs.csv", 6, "type")]


def test_a_file_that_is_not_utf8_is_refused_at_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    latin1_row = "u-x,,,true,org-s,student,x,,Jos\u00e9,Y\n".encode("latin-1")
    (folder / "users.csv").write_bytes(FILES["users.csv"].encode("utf-8") + latin1_row)
    issues = refusal(folder)
    assert where(issues) == [("users.csv", 5, None)] and "UTF-8" in issues[0].message


def test_a_bundle_without_manifest_is_refused(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path)
    (folder / "manifest.csv").unlink()
    assert where(refusal(folder)) == [("manifest.csv", 0, None)]


def test_many_problems_are_reported_at_once_up_to_a_hundred(tmp_path: Path) -> None:
    rows = "".join(f"u-{n},,,maybe,org-s,student,x{n},,X,Y,,,,,,,,\n" for n in range(150))
    with pytest.raises(RosterError) as caught:
        load_bundle(write_bundle(tmp_path, {"users.csv": FILES["users.csv"] + rows}))
    assert len(caught.value.errors) == 100 and caught.value.truncated
    assert [issue.line for issue in caught.value.errors[:3]] == [5, 6, 7]


def test_problems_in_several_files_are_reported_together(tmp_path: Path) -> None:
    changes = with_row("orgs.csv", "org-x,,,Annex,campus,,org-d")
    changes.update(with_row("users.csv", "u-x,,,true,org-s,pupil,x,,X,Y,,,,,,,,"))
    assert where(refusal(write_bundle(tmp_path, changes))) == [("orgs.csv", 4, "type"), ("users.csv", 5, "role")]


def test_a_row_already_reported_is_not_reported_again_through_references(tmp_path: Path) -> None:
    changes = with_row("users.csv", "u-x,,,true,org-s,pupil,x,,X,Y,,,,,,,,")
    changes.update(with_row("enrollments.csv", "e-3,,,k-7b,org-s,u-x,student,,,"))
    assert where(refusal(write_bundle(tmp_path, changes))) == [("users.csv", 5, "role")]


def test_the_refusal_reads_as_a_list_of_places_and_problems(tmp_path: Path) -> None:
    changes = with_row("users.csv", "u-x,,,true,org-s,pupil,x,,X,Y,,,,,,,,")
    with pytest.raises(RosterError) as caught:
        load_bundle(write_bundle(tmp_path, changes))
    text = str(caught.value)
    assert text.startswith("roster bundle refused: 1 issue")
    assert "users.csv, line 5, column role: unknown role 'pupil'" in text


# --- refusing unsafe or broken archives ---------------------------------------------------------


def test_bytes_that_are_not_a_zip_are_refused() -> None:
    issues = refusal(b"sourcedId,name\nnot,a zip\n")
    assert where(issues) == [("(bundle)", 0, None)] and "not a zip" in issues[0].message


def test_a_file_path_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    (tmp_path / "roster.zip").write_text("hello")
    assert "not a zip" in refusal(tmp_path / "roster.zip")[0].message


def test_a_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    assert "no such folder" in refusal(tmp_path / "nowhere")[0].message


@pytest.mark.parametrize("member", ["../evil.csv", "/etc/evil.csv", "roster/../../evil.csv", "C:/evil.csv"])
def test_a_zip_with_a_path_escaping_its_folder_is_refused(tmp_path: Path, member: str) -> None:
    folder = write_bundle(tmp_path)
    data = zip_bytes({**{path.name: path.read_text() for path in folder.iterdir()}, member: "x"})
    issues = refusal(data)
    assert where(issues) == [(member, 0, None)] and "unsafe" in issues[0].message


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("users.csv", "w") as member:
        zeros = bytes(1 << 20)
        for _ in range(201):
            member.write(zeros)
    issues = refusal(buffer.getvalue())
    assert "larger than 200 MB" in issues[0].message


def test_a_folder_above_the_size_limit_is_refused(tmp_path: Path) -> None:
    issues = refusal(write_bundle(tmp_path), max_bytes=400)
    assert "larger than" in issues[-1].message


# --- delta bundles -----------------------------------------------------------------------------

DELTA_MANIFEST = {
    "file.orgs": "absent",
    "file.users": "delta",
    "file.courses": "absent",
    "file.classes": "absent",
    "file.enrollments": "delta",
}
DELTA_USERS = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,givenName,familyName\n"
    "u-new,active,2024-09-02T08:00:00Z,true,org-s,student,new.s,Nia,Okafor\n"
    "u-old,tobedeleted,2024-09-02T08:00:00Z,,,,,,\n"
)
DELTA_ENROLLMENTS = (
    "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role\n"
    "e-9,active,2024-09-02T08:00:00.000Z,k-7b,org-s,u-new,student\n"
    "e-2,tobedeleted,2024-09-02T08:00:00Z,,,,\n"
)


def delta_bundle(folder: Path, users: str = DELTA_USERS, enrollments: str = DELTA_ENROLLMENTS) -> Path:
    changes: dict[str, str | None] = {name: None for name in FILES}
    changes.update({"users.csv": users, "enrollments.csv": enrollments})
    return write_bundle(folder, changes, DELTA_MANIFEST)


def test_a_delta_bundle_lists_tobedeleted_ids_per_file(tmp_path: Path) -> None:
    bundle = load_bundle(delta_bundle(tmp_path))
    assert bundle.mode == "delta"
    assert bundle.deleted["users"] == {"u-old"} and bundle.deleted["enrollments"] == {"e-2"}
    assert [user.sourced_id for user in bundle.users] == ["u-new"]
    assert bundle.users[0].modified is not None and bundle.users[0].modified.year == 2024


def test_a_delta_bundle_leaves_references_outside_it_to_the_store(tmp_path: Path) -> None:
    bundle = load_bundle(delta_bundle(tmp_path))
    refs = {(ref.kind, ref.sourced_id, ref.file, ref.line, ref.column) for ref in bundle.external_refs}
    assert refs == {
        ("orgs", "org-s", "users.csv", 2, "orgSourcedIds"),
        ("classes", "k-7b", "enrollments.csv", 2, "classSourcedId"),
        ("orgs", "org-s", "enrollments.csv", 2, "schoolSourcedId"),
    }
    assert bundle.external_ids("orgs") == {"org-s"}


def test_a_delta_row_needs_a_status_and_a_date_last_modified(tmp_path: Path) -> None:
    users = DELTA_USERS.replace("u-new,active,2024-09-02T08:00:00Z", "u-new,,")
    issues = refusal(delta_bundle(tmp_path, users=users))
    assert where(issues) == [("users.csv", 2, "status"), ("users.csv", 2, "dateLastModified")]


def test_a_delta_file_without_status_column_is_refused(tmp_path: Path) -> None:
    users = "sourcedId,enabledUser,orgSourcedIds,role,username,givenName,familyName\nu-1,true,org-s,student,a,A,B\n"
    issues = refusal(delta_bundle(tmp_path, users=users))
    assert where(issues) == [("users.csv", 1, "status"), ("users.csv", 1, "dateLastModified")]


def test_a_delta_row_may_not_refer_to_what_the_same_bundle_deletes(tmp_path: Path) -> None:
    enrollments = DELTA_ENROLLMENTS + "e-10,active,2024-09-02T08:00:00Z,k-7b,org-s,u-old,student\n"
    issues = refusal(delta_bundle(tmp_path, enrollments=enrollments))
    assert where(issues) == [("enrollments.csv", 4, "userSourcedId")] and "tobedeleted" in issues[0].message


def test_a_bulk_file_referred_to_from_a_delta_file_must_contain_the_reference(tmp_path: Path) -> None:
    changes = {name: None for name in FILES if name != "orgs.csv"}
    changes["users.csv"] = DELTA_USERS.replace("org-s", "org-gone")
    manifest = {**DELTA_MANIFEST, "file.orgs": "bulk", "file.enrollments": "absent"}
    assert where(refusal(write_bundle(tmp_path, changes, manifest))) == [("users.csv", 2, "orgSourcedIds")]


# --- speed ---------------------------------------------------------------------------------------


def test_a_large_bundle_parses_in_well_under_a_few_seconds(tmp_path: Path) -> None:
    # A fifth of the 100k users / 300k enrollments target: a quadratic slip shows up here
    # too, while the suite stays quick. The full size runs in about 2 s on a laptop core.
    users = ["sourcedId,enabledUser,orgSourcedIds,role,username,givenName,familyName"]
    users += [f"u-{n},true,org-s,student,user{n},Given,Family" for n in range(20_000)]
    enrollments = ["sourcedId,classSourcedId,schoolSourcedId,userSourcedId,role"]
    enrollments += [f"e-{n},k-7b,org-s,u-{n % 20_000},student" for n in range(60_000)]
    folder = write_bundle(tmp_path, {"users.csv": "\n".join(users), "enrollments.csv": "\n".join(enrollments)})
    started = time.perf_counter()
    bundle = load_bundle(folder)
    assert time.perf_counter() - started < 5.0
    assert (len(bundle.users), len(bundle.enrollments)) == (20_000, 60_000)
