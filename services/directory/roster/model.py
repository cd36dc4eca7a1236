"""The roster as plain immutable data, as read from a OneRoster 1.1 CSV bundle.

Only the fields the platform uses are kept. Ids are OneRoster `sourcedId`s: stable
across exports, so re-importing the same bundle updates rows instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

OrgType = Literal["district", "school", "department", "local", "state", "national"]
OneRosterRole = Literal["student", "teacher", "administrator", "aide", "guardian", "parent", "relative", "proctor"]
PlatformRole = Literal["student", "teacher", "admin", "staff", "guardian"]
Mode = Literal["bulk", "delta"]
FileMode = Literal["bulk", "delta", "absent"]
# Keys of Bundle.deleted / Bundle.file_modes and ExternalRef.kind: the file names without ".csv".
FileKind = Literal["orgs", "users", "courses", "classes", "enrollments", "projects", "projectMembers"]

ORG_TYPES: frozenset[str] = frozenset(get_args(OrgType))
ONEROSTER_ROLES: frozenset[str] = frozenset(get_args(OneRosterRole))

_PLATFORM_ROLE: dict[str, PlatformRole] = {
    "student": "student",
    "teacher": "teacher",
    "administrator": "admin",
    "aide": "staff",
    "proctor": "staff",
    "guardian": "guardian",
    "parent": "guardian",
    "relative": "guardian",
}

DEFAULT_TITLES: dict[PlatformRole, str] = {
    "student": "Student",
    "teacher": "Teacher",
    "admin": "Administrator",
    "staff": "Staff",
    "guardian": "Guardian",
}


def platform_role(role: str) -> PlatformRole:
    """The platform's coarser role for a OneRoster role (raises KeyError for unknown roles)."""
    return _PLATFORM_ROLE[role]


@dataclass(frozen=True, slots=True)
class Org:
    sourced_id: str
    name: str
    type: OrgType
    parent_id: str | None
    identifier: str
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class User:
    sourced_id: str
    given_name: str
    family_name: str
    role: OneRosterRole
    username: str
    email: str
    org_ids: tuple[str, ...]
    enabled: bool
    # Not OneRoster core: the `metadata.title` extension column, else DEFAULT_TITLES.
    title: str
    modified: datetime | None = None

    @property
    def platform_role(self) -> PlatformRole:
        return _PLATFORM_ROLE[self.role]

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


@dataclass(frozen=True, slots=True)
class Course:
    """A OneRoster course: the catalogue entry (e.g. "Mathematics") that classes belong to."""

    sourced_id: str
    title: str
    org_id: str
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class Class:
    """A OneRoster class (e.g. "Math 7B"): what users see as a course in the chat."""

    sourced_id: str
    title: str
    course_id: str
    school_id: str
    class_code: str
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class Enrollment:
    sourced_id: str
    class_id: str
    user_id: str
    role: OneRosterRole
    school_id: str
    modified: datetime | None = None

    @property
    def platform_role(self) -> PlatformRole:
        return _PLATFORM_ROLE[self.role]


@dataclass(frozen=True, slots=True)
class Project:
    """Extension (projects.csv): a project group; OneRoster 1.1 has no such entity."""

    sourced_id: str
    title: str
    school_id: str
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProjectMember:
    """Extension (projectMembers.csv): keyed by (project_id, user_id); role is a OneRoster role."""

    project_id: str
    user_id: str
    role: OneRosterRole

    @property
    def platform_role(self) -> PlatformRole:
        return _PLATFORM_ROLE[self.role]


@dataclass(frozen=True, slots=True)
class ExternalRef:
    """A delta row naming an id the bundle does not contain: the store must already know it."""

    kind: FileKind
    sourced_id: str
    file: str
    line: int
    column: str


@dataclass(frozen=True, slots=True)
class Bundle:
    orgs: tuple[Org, ...]
    users: tuple[User, ...]
    courses: tuple[Course, ...]
    classes: tuple[Class, ...]
    enrollments: tuple[Enrollment, ...]
    projects: tuple[Project, ...]
    project_members: tuple[ProjectMember, ...]
    # "delta" as soon as one file is delta: the store must then merge instead of replace.
    mode: Mode
    # sourcedIds of rows with status "tobedeleted", per file kind (every kind has a key).
    deleted: Mapping[str, frozenset[str]] = field(default_factory=dict)
    external_refs: tuple[ExternalRef, ...] = ()
    # The manifest's value per file kind: bulk (replace all), delta (merge) or absent (keep).
    file_modes: Mapping[str, FileMode] = field(default_factory=dict)

    def external_ids(self, kind: FileKind) -> frozenset[str]:
        return frozenset(ref.sourced_id for ref in self.external_refs if ref.kind == kind)
