"""A school district of 20,000 people for the school-day benchmark, seeded in bulk.

People come from the roster generator (services.directory.roster.generate) at larger counts.
Its timetable does not scale (at 19,000 students it makes 9 primary homerooms of ~630 and an
assembly of ~7,000, and only 30 secondary classes), so the district is laid out here instead:
the generator's primary and secondary school become several schools of each kind; students
are split into form groups of about 28, each group takes three classes (primary: homeroom,
Music, PE) or eight (secondary: Math, English, Science and five more), each class taught by
a teacher of its subject at that school.

Importing through the directory (POST /admin/roster) would publish an event per user and per
enrolment (~150,000), each followed by the conversations service one at a time; and making
~45,000 conversations through the API would take longer than the benchmark. So both the
directory's tables and the conversations service's tables are written with COPY, in the
shape the services write them, with a little history in every conversation:

- a course conversation per class (the teacher and its ~28 students, `via` course),
- two teacher-student 1:1s per student (teachers of their own classes),
- a study group of ~5 per form group, a department group per subject per school,
  a leadership group per school, and 1:1s between each school's admins and some teachers.

Nothing is published on the bus while seeding: no client is connected yet and the services
read these tables directly. ANALYZE follows, so the planner sees the real sizes.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from services.conversations.domain import pair_key
from services.directory.roster.generate import demo_roster_files, zip_files
from services.directory.roster.parse import load_bundle
from shared.config import Settings

DISTRICT = "org-district"
PRIMARY_YEARS = (4, 5, 6)
PRIMARY_SUBJECTS = ("Homeroom", "Music", "PE")
CORE_SUBJECTS = ("Math", "English", "Science")
OTHER_SUBJECTS = ("History", "Geography", "French", "Spanish", "Art", "Music", "Computing", "PE")
SECONDARY_OPTIONS = 5  # subjects beyond the core, per form group
FORM_SIZE = 28
STUDY_GROUP = 5
ADMIN_DIRECTS = 5
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Seeded history per conversation, by type.
HISTORY = {"course": 4, "direct": 2, "group": 3}
PHRASES = (
    "Homework for Thursday is on page 42",
    "Can you check my essay draft please",
    "The science fair project is due next week",
    "Reminder: bring your PE kit tomorrow",
    "Who has the notes from today's history lesson",
    "The field trip form needs a signature",
    "Quiz on fractions moved to Friday",
    "Great work on the presentation today",
    "Library books are due back on Monday",
    "Please revise chapter 3 for the test",
    "The school concert rehearsal is at lunch",
    "Does anyone know the geography assignment",
)


@dataclass(slots=True)
class Person:
    id: str
    given: str
    family: str
    roster_role: str
    role: str  # the platform role
    username: str
    email: str
    title: str
    school: str
    year: int | None = None
    subject: str = ""  # what a teacher teaches

    @property
    def name(self) -> str:
        return f"{self.given} {self.family}".strip()


@dataclass(slots=True)
class School:
    id: str
    name: str
    level: str  # primary or secondary


@dataclass(slots=True)
class Conversation:
    id: uuid.UUID
    type: str  # course, direct, group
    name: str | None
    created_by: str
    members: list[str]
    group_id: str | None = None  # the class, for a course conversation
    pair: str | None = None


@dataclass
class District:
    people: dict[str, Person]
    schools: list[School]
    classes: list[tuple[str, str, str, str, str, list[str]]]  # id, title, course id, school, teacher, students
    conversations: list[Conversation]
    by_user: dict[str, list[Conversation]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # who logs in first: school by school, form group by group
    admin: str = "user-a-000"  # the district administrator, who sends the mass message

    def summary(self) -> dict[str, object]:
        roles: dict[str, int] = defaultdict(int)
        for p in self.people.values():
            roles[p.role] += 1
        kinds: dict[str, int] = defaultdict(int)
        for c in self.conversations:
            kinds[c.type] += 1
        course_sizes = sorted(len(c.members) for c in self.conversations if c.type == "course")
        return {
            "people": len(self.people),
            "roles": dict(roles),
            "schools": {s.id: s.level for s in self.schools},
            "classes": len(self.classes),
            "enrolments": sum(1 + len(k[5]) for k in self.classes),
            "conversations": dict(kinds),
            "course_conversation_size_median": course_sizes[len(course_sizes) // 2] if course_sizes else None,
            "participants": sum(len(c.members) for c in self.conversations),
            "messages_seeded": sum(HISTORY[c.type] for c in self.conversations),
        }


def _people(students: int, teachers: int, admins: int, seed: int) -> dict[str, Person]:
    files = demo_roster_files(seed=seed, students=students, teachers=teachers, admins=admins)
    bundle = load_bundle(zip_files(files))
    grades = {row["sourcedId"]: row["grades"] for row in csv.DictReader(io.StringIO(files["users.csv"]))}
    people = {}
    for u in bundle.users:
        grade = grades.get(u.sourced_id) or ""
        subject = u.title.removesuffix(" teacher") if u.platform_role == "teacher" else ""
        people[u.sourced_id] = Person(
            u.sourced_id,
            u.given_name,
            u.family_name,
            u.role,
            u.platform_role,
            u.username,
            u.email,
            u.title,
            u.org_ids[0],
            int(grade) if u.platform_role == "student" and grade.isdigit() else None,
            subject,
        )
    return people


def build(*, students: int = 19_000, teachers: int = 950, admins: int = 50, seed: int = 7) -> District:
    """The district laid out in memory (no database): people, schools, classes, conversations."""
    rng = random.Random(seed)
    people = _people(students, teachers, admins, seed)
    # The generator's two schools: org-school-1 primary, org-school-2 secondary. ~1,900 primary and
    # ~2,700 secondary students per school, as a mid-sized district has them.
    primary_students = [p for p in people.values() if p.role == "student" and p.year in PRIMARY_YEARS]
    n_primary = max(1, round(len(primary_students) / 1900))
    n_secondary = max(1, round((students - len(primary_students)) / 2700))
    schools = [School(DISTRICT, "Northwind School District", "district")]
    primary_ids = ["org-school-1"] + [f"org-school-{2 + n_secondary + i}" for i in range(n_primary - 1)]
    secondary_ids = ["org-school-2"] + [f"org-school-{3 + i}" for i in range(n_secondary - 1)]
    schools += [School(s, f"Northwind Primary School {i + 1}", "primary") for i, s in enumerate(primary_ids)]
    schools += [School(s, f"Northwind Secondary School {i + 1}", "secondary") for i, s in enumerate(secondary_ids)]
    level_of = {"org-school-1": primary_ids, "org-school-2": secondary_ids}
    # Staff spread round-robin over the schools of their level, subject by subject.
    spread: dict[tuple[str, str], int] = defaultdict(int)
    for p in people.values():
        if p.role != "student" and p.school in level_of:
            key = (p.school, p.subject or p.role)
            pool = level_of[p.school]
            p.school = pool[spread[key] % len(pool)]
            spread[key] += 1
    district_admin = people["user-a-000"]
    district_admin.school = DISTRICT

    classes: list[tuple[str, str, str, str, str, list[str]]] = []
    conversations: list[Conversation] = []
    forms: list[tuple[str, int, str, list[str]]] = []  # school, year, section, students
    for level, ids in (("primary", primary_ids), ("secondary", secondary_ids)):
        for year in sorted({p.year for p in people.values() if p.year is not None}):
            if (year in PRIMARY_YEARS) != (level == "primary"):
                continue
            cohort = [p.id for p in people.values() if p.role == "student" and p.year == year]
            rng.shuffle(cohort)
            n_forms = max(1, round(len(cohort) / FORM_SIZE))
            for i in range(n_forms):
                school = ids[i % len(ids)]
                section_no = i // len(ids)
                section = LETTERS[section_no] if section_no < len(LETTERS) else f".{section_no + 1}"
                members = cohort[i::n_forms]
                for s in members:
                    people[s].school = school
                forms.append((school, year, section, members))

    teachers_at: dict[tuple[str, str], list[str]] = defaultdict(list)
    for p in people.values():
        if p.role == "teacher":
            level = "primary" if p.school in primary_ids else "secondary"
            if level == "primary" and p.subject not in ("Music", "PE"):
                key = "Homeroom"
            else:
                key = p.subject if p.subject in CORE_SUBJECTS + OTHER_SUBJECTS else "Homeroom"
            teachers_at[(p.school, key)].append(p.id)
    any_teacher: dict[str, list[str]] = defaultdict(list)
    for (school, _), ids in teachers_at.items():
        any_teacher[school] += ids
    load: dict[str, int] = defaultdict(int)

    def teacher_for(school: str, subject: str) -> str:
        pool = teachers_at.get((school, subject)) or any_teacher[school]
        chosen = min(pool, key=lambda t: (load[t], t))
        load[chosen] += 1
        return chosen

    def conversation(kind: str, name: str | None, by: str, members: list[str], **extra: str) -> Conversation:
        c = Conversation(uuid.UUID(int=rng.getrandbits(128), version=4), kind, name, by, members, **extra)
        conversations.append(c)
        return c

    for school, year, section, members in forms:
        if school in primary_ids:
            subjects = list(PRIMARY_SUBJECTS)
        else:
            subjects = [*CORE_SUBJECTS, *rng.sample(OTHER_SUBJECTS, SECONDARY_OPTIONS)]
        taught_by = []
        for subject in subjects:
            teacher = teacher_for(school, subject)
            taught_by.append(teacher)
            label = f"Class {year}{section}" if subject == "Homeroom" else f"{subject} {year}{section}"
            class_id = f"class-{school.removeprefix('org-school-')}-{len(classes) + 1:05d}"
            classes.append((class_id, label, f"course-{school}-{subject.lower()}", school, teacher, members))
            conversation("course", label, teacher, [teacher, *members], group_id=class_id)
        for s in members:
            for teacher in rng.sample(taught_by, 2):
                conversation("direct", None, s, [s, teacher], pair=pair_key(s, teacher))
        for i in range(0, len(members), STUDY_GROUP):
            group = members[i : i + STUDY_GROUP]
            if len(group) >= 3:
                conversation("group", f"Study group {year}{section}-{i // STUDY_GROUP + 1}", group[0], group)

    for (_, subject), ids in teachers_at.items():
        if len(ids) >= 3:
            conversation("group", f"{subject} team", ids[0], list(ids))
    admins_at: dict[str, list[str]] = defaultdict(list)
    for p in people.values():
        if p.role == "admin" and p.school != DISTRICT:
            admins_at[p.school].append(p.id)
    for school, ids in admins_at.items():
        conversation("group", "School leadership", ids[0], [*ids, district_admin.id])
        for admin in ids:
            for teacher in rng.sample(any_teacher[school], min(ADMIN_DIRECTS, len(any_teacher[school]))):
                conversation("direct", None, admin, [admin, teacher], pair=pair_key(admin, teacher))

    district = District(people, schools, classes, conversations)
    for c in conversations:
        for m in c.members:
            district.by_user.setdefault(m, []).append(c)
    district.order = _login_order(district, forms, primary_ids, secondary_ids)
    return district


def _login_order(
    district: District, forms: list[tuple[str, int, str, list[str]]], primary: list[str], secondary: list[str]
) -> list[str]:
    """School by school (secondary first, alternating), each form group together, staff spread among them:
    so the first thousand users are most of one school and its course conversations have their members online."""
    order: list[str] = []
    schools = [s for pair in zip(secondary, primary + [None] * len(secondary), strict=False) for s in pair if s]
    schools += [s for s in primary if s not in schools]
    for school in schools:
        students = [s for f in forms if f[0] == school for s in f[3]]
        staff = [p.id for p in district.people.values() if p.school == school and p.role in ("teacher", "admin")]
        every = max(1, len(students) // max(1, len(staff)))
        mixed: list[str] = []
        for i, s in enumerate(students):
            if i % every == 0 and staff:
                mixed.append(staff.pop())
            mixed.append(s)
        order += mixed + staff
    if district.admin not in order:
        order.insert(0, district.admin)
    return order


# --- the database -------------------------------------------------------------------------------


def _dsn(settings: Settings, service: str) -> str:
    return settings.database_url(service).replace("postgresql+psycopg://", "postgresql://")


def _copy(cur: psycopg.Cursor, table: str, columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed(settings: Settings, district: District) -> dict[str, float]:
    """Write the district into the directory's and the conversations service's databases; seconds taken."""
    took: dict[str, float] = {}
    started = time.perf_counter()
    _seed_directory(settings, district)
    took["directory_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    _seed_conversations(settings, district)
    took["conversations_s"] = round(time.perf_counter() - started, 1)
    return took


def _seed_directory(settings: Settings, d: District) -> None:
    orgs = [
        (
            s.id,
            s.name,
            s.level if s.level == "district" else "school",
            None if s.id == DISTRICT else DISTRICT,
            s.id.upper(),
        )
        for s in d.schools
    ]
    users = [
        (p.id, p.given, p.family, p.roster_role, p.role, p.username, p.email, p.title, True, [p.school])
        for p in d.people.values()
    ]
    courses = sorted({(k[2], k[2].split("-")[-1].title(), k[3]) for k in d.classes})
    classes = [(k[0], k[1], k[2], k[3], k[1].upper().replace(" ", "-")) for k in d.classes]
    enrolments = []
    for class_id, _, _, school, teacher, students in d.classes:
        enrolments.append((f"enr-{class_id}-{teacher}", class_id, teacher, "teacher", "teacher", school))
        enrolments += [(f"enr-{class_id}-{s}", class_id, s, "student", "student", school) for s in students]
    with psycopg.connect(_dsn(settings, "directory")) as conn, conn.cursor() as cur:
        _copy(cur, "orgs", ("sourced_id", "name", "type", "parent_id", "identifier"), orgs)
        _copy(
            cur,
            "users",
            (
                "sourced_id",
                "given_name",
                "family_name",
                "roster_role",
                "role",
                "username",
                "email",
                "title",
                "enabled",
                "org_ids",
            ),
            users,
        )
        _copy(cur, "courses", ("sourced_id", "title", "org_id"), courses)
        _copy(cur, "classes", ("sourced_id", "title", "course_id", "school_id", "class_code"), classes)
        _copy(cur, "enrollments", ("sourced_id", "class_id", "user_id", "roster_role", "role", "school_id"), enrolments)
        # The district administrator may send mass messages (F27), as an admin would have granted.
        cur.execute(
            "INSERT INTO privileges (user_id, privilege, granted_by) VALUES (%s, 'mass_messaging', %s)",
            (d.admin, d.admin),
        )
        conn.commit()
        conn.autocommit = True
        for table in ("orgs", "users", "courses", "classes", "enrollments", "privileges"):
            cur.execute(f"ANALYZE {table}")


def _seed_conversations(settings: Settings, d: District) -> None:
    rng = random.Random(11)
    now = datetime.now(UTC)
    people = [(p.id, p.name, p.role, p.title, None, True) for p in d.people.values()]
    conversations, participants, messages = [], [], []
    for c in d.conversations:
        count = HISTORY[c.type]
        at = now - timedelta(hours=rng.uniform(2, 24 * 7))
        last: dict[str, str] = {}
        for seq in range(1, count + 1):
            at += timedelta(minutes=rng.uniform(1, 90))
            sender = c.created_by if seq == 1 or c.type == "course" and rng.random() < 0.6 else rng.choice(c.members)
            body = rng.choice(PHRASES)
            mid = uuid.UUID(int=rng.getrandbits(128), version=4)
            messages.append((mid, c.id, seq, sender, body, "[]", "[]", at))
            last = {
                "id": str(mid),
                "preview": body,
                "sender_id": sender,
                "sender_name": d.people[sender].name,
                "created_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        group_kind = "course" if c.type == "course" else None
        conversations.append(
            (
                c.id,
                c.type,
                c.name,
                c.pair,
                c.created_by,
                at - timedelta(days=1),
                count,
                at,
                json.dumps(last),
                group_kind,
                c.group_id,
                at,
            )
        )
        via = "course" if c.type == "course" else "member"
        for m in c.members:
            # About one in ten has the latest message still unread.
            unread = 1 if rng.random() < 0.1 else 0
            participants.append((c.id, m, at - timedelta(days=1), count - unread, via, unread))
    with psycopg.connect(_dsn(settings, "conversations")) as conn, conn.cursor() as cur:
        _copy(cur, "people", ("user_id", "name", "role", "title", "avatar_url", "enabled"), people)
        _copy(
            cur,
            "conversations",
            (
                "id",
                "type",
                "name",
                "pair_key",
                "created_by",
                "created_at",
                "last_seq",
                "last_activity_at",
                "last_message",
                "group_kind",
                "group_id",
                "updated_at",
            ),
            conversations,
        )
        _copy(
            cur,
            "participants",
            ("conversation_id", "user_id", "joined_at", "last_read_seq", "via", "unread_count"),
            participants,
        )
        _copy(
            cur,
            "messages",
            ("id", "conversation_id", "seq", "sender_id", "body", "links", "attachments", "created_at"),
            messages,
        )
        conn.commit()
        conn.autocommit = True
        for table in ("people", "conversations", "participants", "messages"):
            cur.execute(f"ANALYZE {table}")
