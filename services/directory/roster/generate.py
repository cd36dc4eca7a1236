"""The demo roster: a plausible two-school district as a OneRoster 1.1 CSV bundle.

Deterministic for a given seed, so docs and tests can name its accounts (see README.md).
    python -m services.directory.roster.generate <dir> [--zip out.zip] [--seed 7]
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DISTRICT = "org-district"
PRIMARY = "org-school-1"
SECONDARY = "org-school-2"
EMAIL_DOMAIN = "northwind.example"

# Students per year group at the default 900; scaled for other sizes. Years 9 and 10
# together make the one large class (the assembly), above the 300-recipient threshold.
YEAR_WEIGHTS: dict[int, int] = {4: 90, 5: 90, 6: 90, 7: 150, 8: 150, 9: 165, 10: 165}
PRIMARY_YEARS = (4, 5, 6)
SECONDARY_YEARS = (7, 8, 9, 10)
ASSEMBLY_YEARS = (9, 10)
# Secondary subject classes beyond the well-known "Math 9B", per year group (total 30).
CLASSES_PER_YEAR: dict[int, int] = {7: 7, 8: 7, 9: 7, 10: 8}

# (short name for class titles, course title, course code)
SUBJECTS: tuple[tuple[str, str, str], ...] = (
    ("Math", "Mathematics", "MATH"),
    ("English", "English", "ENG"),
    ("Science", "Science", "SCI"),
    ("History", "History", "HIST"),
    ("Geography", "Geography", "GEOG"),
    ("French", "French", "FREN"),
    ("Spanish", "Spanish", "SPAN"),
    ("Art", "Art and Design", "ART"),
    ("Music", "Music", "MUS"),
    ("Computing", "Computing", "COMP"),
    ("PE", "Physical Education", "PE"),
)
PRIMARY_SPECIALISTS = ("Music teacher", "PE teacher", "Art teacher", "Learning support teacher", "Reading specialist")
ADMIN_TITLES = ("Vice principal", "School administrator", "Head of year", "Office manager", "Exams officer")
# (title, OneRoster role, school)
STAFF: tuple[tuple[str, str, str], ...] = (
    ("Teaching assistant", "aide", PRIMARY),
    ("Teaching assistant", "aide", PRIMARY),
    ("Teaching assistant", "aide", PRIMARY),
    ("Librarian", "aide", SECONDARY),
    ("School nurse", "aide", SECONDARY),
    ("Exam invigilator", "proctor", SECONDARY),
)

GIVEN_NAMES = (
    "Aaliyah",
    "Aarav",
    "Abdullah",
    "Ada",
    "Adebayo",
    "Aditi",
    "Ahmed",
    "Aiko",
    "Aisha",
    "Alejandro",
    "Alexander",
    "Amara",
    "Amelia",
    "Ana",
    "Andrei",
    "Anh",
    "Anika",
    "Aoife",
    "Arjun",
    "Aroha",
    "Astrid",
    "Ayaan",
    "Ayesha",
    "Beatriz",
    "Benjamin",
    "Bilal",
    "Bogdan",
    "Camila",
    "Chen",
    "Chiara",
    "Chidi",
    "Chloe",
    "Daniel",
    "Dara",
    "Dmitri",
    "Elena",
    "Elif",
    "Eliza",
    "Emeka",
    "Emil",
    "Emma",
    "Esperanza",
    "Ethan",
    "Farah",
    "Fatima",
    "Felix",
    "Freya",
    "Gabriel",
    "Grace",
    "Hamza",
    "Hana",
    "Hannah",
    "Haruto",
    "Hiroshi",
    "Hugo",
    "Ibrahim",
    "Ife",
    "Ingrid",
    "Isabella",
    "Ivan",
    "Jae",
    "Jakub",
    "Jamal",
    "Javier",
    "Ji-ho",
    "Jia",
    "Jonas",
    "José",
    "Kai",
    "Kalani",
    "Kavya",
    "Kenji",
    "Kofi",
    "Kwame",
    "Laila",
    "Lars",
    "Leila",
    "Leo",
    "Liam",
    "Lucía",
    "Luca",
    "Łukasz",
    "Lwazi",
    "Mai",
    "Malik",
    "Maria",
    "Mateo",
    "Maya",
    "Mehmet",
    "Mei",
    "Mia",
    "Minh",
    "Mohammed",
    "Nadia",
    "Naledi",
    "Ngozi",
    "Nikhil",
    "Nina",
    "Noah",
    "Nour",
    "Oksana",
    "Olga",
    "Oliver",
    "Omar",
    "Paulo",
    "Priya",
    "Rafael",
    "Rania",
    "Ravi",
    "Rin",
    "Rosa",
    "Sakura",
    "Samuel",
    "Santiago",
    "Sara",
    "Sebastián",
    "Seo-yeon",
    "Siddharth",
    "Sione",
    "Siobhán",
    "Sofia",
    "Tane",
    "Tariq",
    "Thabo",
    "Theo",
    "Tomás",
    "Valentina",
    "Wei",
    "Yara",
    "Yusuf",
    "Zainab",
    "Zara",
    "Zoë",
)
FAMILY_NAMES = (
    "Abara",
    "Adeyemi",
    "Ahmed",
    "Akhtar",
    "Ali",
    "Alvarez",
    "Andersson",
    "Bakker",
    "Banerjee",
    "Becker",
    "Begay",
    "Begum",
    "Bianchi",
    "Brown",
    "Byrne",
    "Campbell",
    "Castillo",
    "Chen",
    "Cohen",
    "Costa",
    "da Silva",
    "Dlamini",
    "Dubois",
    "Eriksen",
    "Fernández",
    "Ferreira",
    "Fischer",
    "Fonoti",
    "Garcia",
    "Goldberg",
    "González",
    "Gupta",
    "Haddad",
    "Hakimi",
    "Hansen",
    "Hernández",
    "Hoang",
    "Horvat",
    "Hughes",
    "Hussain",
    "Jansen",
    "Jensen",
    "Johnson",
    "Karimi",
    "Kariuki",
    "Kaur",
    "Kelly",
    "Kim",
    "Korhonen",
    "Kowalski",
    "Kumar",
    "Larsen",
    "Lee",
    "Lewandowski",
    "Li",
    "Lindqvist",
    "López",
    "MacDonald",
    "Mahmoud",
    "Martin",
    "Mensah",
    "Moreau",
    "Müller",
    "Murphy",
    "Mwangi",
    "Nakamura",
    "Ndlovu",
    "Ngata",
    "Nguyen",
    "Nieminen",
    "Nilsen",
    "Novak",
    "Nowak",
    "O'Brien",
    "Okafor",
    "Okonkwo",
    "Oliveira",
    "Olsen",
    "Osei",
    "Park",
    "Patel",
    "Pereira",
    "Petrov",
    "Popescu",
    "Quispe",
    "Rahman",
    "Ramírez",
    "Rossi",
    "Russo",
    "Said",
    "Santos",
    "Sato",
    "Schmidt",
    "Shah",
    "Singh",
    "Smith",
    "Suzuki",
    "Takahashi",
    "Tanaka",
    "Taylor",
    "Te Rangi",
    "Thompson",
    "Tran",
    "Tuilagi",
    "van den Berg",
    "Vasquez",
    "Virtanen",
    "Walker",
    "Wang",
    "Williams",
    "Wilson",
    "Wójcik",
    "Wright",
    "Yamamoto",
    "Yazzie",
    "Yilmaz",
    "Zhang",
    "Zhou",
)
# Letters NFKD does not reduce to ASCII.
_ASCII = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "đ": "d", "Đ": "D"})

ORG_HEADER = ("sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId")
USER_HEADER = (
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "orgSourcedIds",
    "role",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
    "metadata.title",
)
COURSE_HEADER = (
    "sourcedId",
    "status",
    "dateLastModified",
    "schoolYearSourcedId",
    "title",
    "courseCode",
    "grades",
    "orgSourcedId",
    "subjects",
    "subjectCodes",
)
CLASS_HEADER = (
    "sourcedId",
    "status",
    "dateLastModified",
    "title",
    "grades",
    "courseSourcedId",
    "classCode",
    "classType",
    "location",
    "schoolSourcedId",
    "termSourcedIds",
    "subjects",
    "subjectCodes",
    "periods",
)
ENROLLMENT_HEADER = (
    "sourcedId",
    "status",
    "dateLastModified",
    "classSourcedId",
    "schoolSourcedId",
    "userSourcedId",
    "role",
    "primary",
    "beginDate",
    "endDate",
)
PROJECT_HEADER = ("sourcedId", "title", "schoolSourcedId")
PROJECT_MEMBER_HEADER = ("projectSourcedId", "userSourcedId", "role")
# Every OneRoster 1.1 file, so strict consumers see each one declared.
ONEROSTER_FILES = (
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItems",
    "orgs",
    "resources",
    "results",
    "users",
)
SHIPPED = ("orgs", "users", "courses", "classes", "enrollments", "projects", "projectMembers")


GUARDIAN_ROLES = ("parent", "guardian", "parent", "relative")
# (title, school, lead teacher: a well-known id or a subject/year key, student years, students)
PROJECTS: tuple[tuple[str, str, str, tuple[int, ...], int], ...] = (
    ("Robotics Club", SECONDARY, "user-t-001", (9, 10), 9),
    ("School Newspaper", SECONDARY, "English", (7, 8, 9, 10), 6),
    ("Science Fair Team", SECONDARY, "Science", (8,), 3),
    ("Eco Council", PRIMARY, "year-5", (4, 5, 6), 5),
    ("Year 6 Play", PRIMARY, "year-6", (6,), 10),
)
_ZIP_TIME = (2024, 9, 1, 0, 0, 0)  # fixed, so the same seed gives byte-identical zips


def write_demo_roster(
    target: Path, *, seed: int = 7, students: int = 900, teachers: int = 80, admins: int = 20
) -> None:
    """Write the demo bundle (manifest.csv and the CSV files) into the folder `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for name, text in demo_roster_files(seed=seed, students=students, teachers=teachers, admins=admins).items():
        (target / name).write_bytes(text.encode("utf-8"))


def write_demo_zip(target: Path, *, seed: int = 7, students: int = 900, teachers: int = 80, admins: int = 20) -> None:
    """Write the demo bundle as one zip file (what an admin uploads)."""
    files = demo_roster_files(seed=seed, students=students, teachers=teachers, admins=admins)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(zip_files(files))


def zip_files(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


def demo_roster_files(*, seed: int = 7, students: int = 900, teachers: int = 80, admins: int = 20) -> dict[str, str]:
    """File name -> CSV text of the demo bundle."""
    if students < 100 or teachers < 10 or admins < 3:
        raise ValueError("the demo roster needs at least 100 students, 10 teachers and 3 admins")
    roster = _build(seed, students, teachers, admins)
    return {
        "manifest.csv": _manifest_csv(),
        "orgs.csv": _csv(ORG_HEADER, _org_rows()),
        "users.csv": _csv(USER_HEADER, [_user_row(person) for person in roster.people]),
        "courses.csv": _csv(COURSE_HEADER, [_course_row(course) for course in roster.courses]),
        "classes.csv": _csv(CLASS_HEADER, [_class_row(klass) for klass in roster.classes]),
        "enrollments.csv": _csv(ENROLLMENT_HEADER, _enrollment_rows(roster.classes)),
        "projects.csv": _csv(PROJECT_HEADER, [project.row() for project in roster.projects]),
        "projectMembers.csv": _csv(PROJECT_MEMBER_HEADER, _member_rows(roster.projects)),
    }


# --- building the roster --------------------------------------------------------------------


@dataclass(slots=True)
class _Person:
    sourced_id: str
    role: str
    given: str
    family: str
    username: str
    org_ids: tuple[str, ...]
    title: str = ""  # blank: the importer falls back to the role's default title
    year: int | None = None
    agent_ids: list[str] = field(default_factory=list)
    email_domain: str = EMAIL_DOMAIN


@dataclass(slots=True)
class _Course:
    sourced_id: str
    title: str
    code: str
    org_id: str
    key: str  # subject short name, "Assembly" or "Year N"


@dataclass(slots=True)
class _Class:
    sourced_id: str
    title: str
    course: _Course
    school_id: str
    class_type: str
    location: str
    grades: str
    teachers: list[str]
    students: list[str]
    aides: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Project:
    sourced_id: str
    title: str
    school_id: str
    members: list[tuple[str, str]]  # (user id, OneRoster role)

    def row(self) -> list[str]:
        return [self.sourced_id, self.title, self.school_id]


@dataclass(slots=True)
class _Roster:
    rng: random.Random
    names: _Names
    people: list[_Person] = field(default_factory=list)
    cohorts: dict[int, list[str]] = field(default_factory=dict)  # year -> student ids
    teaches: dict[str, str] = field(default_factory=dict)  # teacher id -> subject, "year-N" or title
    courses: list[_Course] = field(default_factory=list)
    classes: list[_Class] = field(default_factory=list)
    projects: list[_Project] = field(default_factory=list)

    def teachers_at(self, school: str) -> list[str]:
        # A teacher's first org is their home school; the few at both schools count there.
        return [p.sourced_id for p in self.people if p.role == "teacher" and p.org_ids[0] == school]

    def teachers_of(self, key: str, school: str) -> list[str]:
        return [t for t, taught in self.teaches.items() if taught == key] or self.teachers_at(school)

    def course(self, key: str) -> _Course:
        return next(course for course in self.courses if course.key == key)


class _Names:
    """Plausible, varied names; usernames unique across the roster."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.taken: set[str] = set()

    def person(self, family: str | None = None) -> tuple[str, str, str]:
        given, family = self.rng.choice(GIVEN_NAMES), family or self.rng.choice(FAMILY_NAMES)
        base = f"{_ascii(given)}.{_ascii(family)}"
        username, n = base, 1
        while username in self.taken:
            n += 1
            username = f"{base}{n}"
        self.taken.add(username)
        return given, family, username


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.translate(_ASCII)).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _split_years(students: int) -> dict[int, int]:
    """Scale YEAR_WEIGHTS to `students` (largest remainder, so the sizes add up exactly)."""
    total = sum(YEAR_WEIGHTS.values())
    exact = {year: students * weight / total for year, weight in YEAR_WEIGHTS.items()}
    sizes = {year: int(value) for year, value in exact.items()}
    by_remainder = sorted(exact, key=lambda year: (sizes[year] - exact[year], year))
    for year in by_remainder[: students - sum(sizes.values())]:
        sizes[year] += 1
    return sizes


def _build(seed: int, students: int, teachers: int, admins: int) -> _Roster:
    rng = random.Random(seed)
    roster = _Roster(rng, _Names(rng))
    _add_students(roster, students)
    _add_teachers(roster, teachers)
    _add_admins(roster, admins)
    _add_staff(roster)
    _add_guardians(roster)
    _add_courses(roster)
    _add_well_known_classes(roster)
    _add_secondary_classes(roster)
    _add_primary_classes(roster)
    _add_projects(roster)
    return roster


def _add_students(roster: _Roster, count: int) -> None:
    years = [year for year, size in _split_years(count).items() for _ in range(size)]
    roster.rng.shuffle(years)
    # The well-known student user-s-0001 is in year 9: in Math 9B and in the assembly.
    years.insert(0, years.pop(years.index(9)))
    roster.cohorts = {year: [] for year in YEAR_WEIGHTS}
    for number, year in enumerate(years, start=1):
        given, family, username = roster.names.person()
        school = PRIMARY if year in PRIMARY_YEARS else SECONDARY
        person = _Person(f"user-s-{number:04d}", "student", given, family, username, (school,), year=year)
        roster.people.append(person)
        roster.cohorts[year].append(person.sourced_id)


def _add_teachers(roster: _Roster, count: int) -> None:
    """Secondary teachers first, subjects in SUBJECTS order, so user-t-001 teaches Math."""
    secondary = count - round(count * 0.3)
    both_schools = {"Music", "PE"}  # the first of each also teaches at the primary school
    for number in range(1, count + 1):
        if number <= secondary:
            key = SUBJECTS[(number - 1) % len(SUBJECTS)][0]
            title, orgs = f"{key} teacher", (SECONDARY, PRIMARY) if key in both_schools else (SECONDARY,)
            both_schools.discard(key)
        else:
            index = number - secondary - 1
            if index < len(PRIMARY_YEARS) * 3:
                year = PRIMARY_YEARS[index // 3]
                title, key = f"Year {year} teacher", f"year-{year}"
            else:
                title = key = PRIMARY_SPECIALISTS[(index - 9) % len(PRIMARY_SPECIALISTS)]
            orgs = (PRIMARY,)
        given, family, username = roster.names.person()
        teacher = _Person(f"user-t-{number:03d}", "teacher", given, family, username, orgs, title)
        roster.people.append(teacher)
        roster.teaches[teacher.sourced_id] = key


def _add_admins(roster: _Roster, count: int) -> None:
    fixed = (("District administrator", DISTRICT), ("Principal", PRIMARY), ("Principal", SECONDARY))
    for number in range(count):
        if number < len(fixed):
            title, org = fixed[number]
        else:
            title = ADMIN_TITLES[(number - len(fixed)) % len(ADMIN_TITLES)]
            org = PRIMARY if number % 2 else SECONDARY
        given, family, username = roster.names.person()
        roster.people.append(_Person(f"user-a-{number:03d}", "administrator", given, family, username, (org,), title))


def _add_staff(roster: _Roster) -> None:
    for number, (title, role, school) in enumerate(STAFF, start=1):
        given, family, username = roster.names.person()
        roster.people.append(_Person(f"user-x-{number:03d}", role, given, family, username, (school,), title))


def _add_guardians(roster: _Roster) -> None:
    """A few guardians, linked both ways through agentSourcedIds; user-g-001 is user-s-0001's."""
    students = [p for p in roster.people if p.role == "student"]
    children = [students[0], *roster.rng.sample(students[1:], 9)]
    for number, child in enumerate(children, start=1):
        given, family, username = roster.names.person(family=child.family)
        role = GUARDIAN_ROLES[(number - 1) % len(GUARDIAN_ROLES)]
        guardian = _Person(f"user-g-{number:03d}", role, given, family, username, child.org_ids)
        guardian.email_domain = "home.example"
        guardian.agent_ids.append(child.sourced_id)
        child.agent_ids.append(guardian.sourced_id)
        roster.people.append(guardian)


def _add_courses(roster: _Roster) -> None:
    offered = [(title, code, SECONDARY, short) for short, title, code in SUBJECTS]
    offered.append(("Assembly", "ASSEMBLY", SECONDARY, "Assembly"))
    offered += [(f"Year {year}", f"Y{year}", PRIMARY, f"Year {year}") for year in PRIMARY_YEARS]
    for number, (title, code, org, key) in enumerate(offered, start=1):
        roster.courses.append(_Course(f"course-{number:02d}", title, code, org, key))


def _add_class(
    roster: _Roster, title: str, course_key: str, grades: str, teachers: list[str], students: list[str]
) -> _Class:
    course = roster.course(course_key)
    homeroom = course_key.startswith("Year ")
    location = "Main Hall" if course_key == "Assembly" else f"Room {roster.rng.randint(1, 48)}"
    klass = _Class(
        f"class-{len(roster.classes) + 1:03d}",
        title,
        course,
        course.org_id,
        "homeroom" if homeroom else "scheduled",
        location,
        grades,
        teachers,
        students,
    )
    roster.classes.append(klass)
    return klass


def _pick_teachers(roster: _Roster, key: str, school: str) -> list[str]:
    """One teacher of the subject; a quarter of classes also get a co-teacher."""
    candidates = roster.teachers_of(key, school)
    chosen = [roster.rng.choice(candidates)]
    if roster.rng.random() < 0.25:
        others = [t for t in (candidates if len(candidates) > 1 else roster.teachers_at(school)) if t not in chosen]
        if others:
            chosen.append(roster.rng.choice(others))
    return chosen


def _add_well_known_classes(roster: _Roster) -> None:
    """class-001 Math 9B (user-t-001, with user-s-0001) and class-002, the one class over 300."""
    year9 = roster.cohorts[9]
    classmates = roster.rng.sample(year9[1:], min(len(year9) - 1, roster.rng.randint(19, 27)))
    _add_class(roster, "Math 9B", "Math", "09", ["user-t-001"], [year9[0], *classmates])
    assembly = [student for year in ASSEMBLY_YEARS for student in roster.cohorts[year]]
    head_of_year = next(t for t in roster.teachers_at(SECONDARY) if roster.teaches[t] == "English")
    _add_class(roster, "Upper School Assembly", "Assembly", "09,10", ["user-t-001", head_of_year], assembly)


def _add_secondary_classes(roster: _Roster) -> None:
    """Per year, that many different subjects, each as one teaching group (section A-D)."""
    for year, count in CLASSES_PER_YEAR.items():
        picked = sorted(roster.rng.sample(range(len(SUBJECTS)), count))
        cohort = roster.cohorts[year]
        for short in (SUBJECTS[index][0] for index in picked):
            section = roster.rng.choice("ACD" if (year, short) == (9, "Math") else "ABCD")  # Math 9B is class-001
            students = roster.rng.sample(cohort, min(len(cohort), roster.rng.randint(15, 30)))
            teachers = _pick_teachers(roster, short, SECONDARY)
            _add_class(roster, f"{short} {year}{section}", short, f"{year:02d}", teachers, students)


def _add_primary_classes(roster: _Roster) -> None:
    """Each primary year is split into three homeroom classes; teaching assistants join the A classes."""
    aides = [p.sourced_id for p in roster.people if p.role == "aide" and p.org_ids[0] == PRIMARY]
    for year in PRIMARY_YEARS:
        cohort = roster.cohorts[year]
        for index, section in enumerate("ABC"):
            teacher = _pick_teachers(roster, f"year-{year}", PRIMARY)[:1]
            title, grades = f"Class {year}{section}", f"{year:02d}"
            klass = _add_class(roster, title, f"Year {year}", grades, teacher, cohort[index::3])
            if aides and section == "A":
                klass.aides.append(aides[PRIMARY_YEARS.index(year) % len(aides)])


def _add_projects(roster: _Roster) -> None:
    for number, (title, school, lead, years, size) in enumerate(PROJECTS, start=1):
        teacher = lead if lead.startswith("user-") else roster.rng.choice(roster.teachers_of(lead, school))
        members = [(teacher, "teacher")]
        pool = [student for year in years for student in roster.cohorts[year]]
        if number == 1:
            members.append(("user-s-0001", "student"))
            pool = [student for student in pool if student != "user-s-0001"]
            size -= 1
        members += [(student, "student") for student in roster.rng.sample(pool, min(size, len(pool)))]
        if title == "Eco Council":
            aide = next(p for p in roster.people if p.role == "aide" and p.org_ids[0] == school)
            members.append((aide.sourced_id, aide.role))
        roster.projects.append(_Project(f"proj-{number:02d}", title, school, members))


# --- CSV ----------------------------------------------------------------------------------------


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _manifest_csv() -> str:
    rows = [["manifest.version", "1.0"], ["oneroster.version", "1.1"]]
    rows += [[f"file.{name}", "bulk" if name in SHIPPED else "absent"] for name in ONEROSTER_FILES]
    rows += [["file.projects", "bulk"], ["file.projectMembers", "bulk"]]
    rows += [["source.systemName", "Northwind demo roster"], ["source.systemCode", "northwind-demo"]]
    return _csv(("propertyName", "value"), rows)


def _org_rows() -> list[list[str]]:
    return [
        [DISTRICT, "", "", "Northwind School District", "district", "NWSD", ""],
        [PRIMARY, "", "", "Northwind Primary School", "school", "NWPS", DISTRICT],
        [SECONDARY, "", "", "Northwind Secondary School", "school", "NWSS", DISTRICT],
    ]


def _user_row(p: _Person) -> list[str]:
    identifier = p.sourced_id.removeprefix("user-").upper()
    grades = f"{p.year:02d}" if p.year is not None else ""
    email = f"{p.username}@{p.email_domain}"
    return [
        p.sourced_id,
        "",
        "",
        "true",
        ",".join(p.org_ids),
        p.role,
        p.username,
        "",
        p.given,
        p.family,
        "",
        identifier,
        email,
        "",
        "",
        ",".join(p.agent_ids),
        grades,
        "",
        p.title,
    ]


def _course_row(course: _Course) -> list[str]:
    return [course.sourced_id, "", "", "", course.title, course.code, "", course.org_id, course.title, ""]


def _class_row(klass: _Class) -> list[str]:
    code = klass.title.upper().replace(" ", "-")
    return [
        klass.sourced_id,
        "",
        "",
        klass.title,
        klass.grades,
        klass.course.sourced_id,
        code,
        klass.class_type,
        klass.location,
        klass.school_id,
        "",
        klass.course.title,
        "",
        "",
    ]


def _enrollment_rows(classes: list[_Class]) -> list[list[str]]:
    rows: list[list[str]] = []
    for klass in classes:
        number = klass.sourced_id.removeprefix("class-")
        people = [(t, "teacher", "true" if i == 0 else "false") for i, t in enumerate(klass.teachers)]
        people += [(a, "aide", "false") for a in klass.aides] + [(s, "student", "false") for s in klass.students]
        for user_id, role, primary in people:
            enrollment_id = f"enr-{number}-{user_id.removeprefix('user-')}"
            rows.append([enrollment_id, "", "", klass.sourced_id, klass.school_id, user_id, role, primary, "", ""])
    return rows


def _member_rows(projects: list[_Project]) -> list[list[str]]:
    return [[project.sourced_id, user_id, role] for project in projects for user_id, role in project.members]


# --- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the demo OneRoster 1.1 bundle (see README.md).")
    parser.add_argument("directory", type=Path, help="folder to write the CSV files into")
    parser.add_argument("--zip", type=Path, dest="zip_path", help="also write the bundle as this zip file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--students", type=int, default=900)
    parser.add_argument("--teachers", type=int, default=80)
    parser.add_argument("--admins", type=int, default=20)
    args = parser.parse_args(argv)
    sizes = {"seed": args.seed, "students": args.students, "teachers": args.teachers, "admins": args.admins}
    try:
        write_demo_roster(args.directory, **sizes)
        if args.zip_path:
            write_demo_zip(args.zip_path, **sizes)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"demo roster written to {args.directory}" + (f" and {args.zip_path}" if args.zip_path else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
