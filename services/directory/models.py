"""The directory's tables: the roster as the platform keeps it, plus blocks, rules and privileges to come."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.outbox import outbox_table, processed_events_table


class Base(DeclarativeBase):
    pass


outbox_table(Base.metadata)
processed_events_table(Base.metadata)


class Org(Base):
    __tablename__ = "orgs"
    sourced_id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    type: Mapped[str]
    parent_id: Mapped[str | None] = mapped_column(index=True)
    identifier: Mapped[str] = mapped_column(default="")


class User(Base):
    __tablename__ = "users"
    sourced_id: Mapped[str] = mapped_column(primary_key=True)
    given_name: Mapped[str]
    family_name: Mapped[str]
    roster_role: Mapped[str]
    role: Mapped[str] = mapped_column(index=True)  # the platform role: student, teacher, admin, staff, guardian
    username: Mapped[str]
    email: Mapped[str]
    title: Mapped[str]
    enabled: Mapped[bool]
    org_ids: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))


class Course(Base):
    """A OneRoster course (catalogue entry); users see classes, not these."""

    __tablename__ = "courses"
    sourced_id: Mapped[str] = mapped_column(primary_key=True)
    title: Mapped[str]
    org_id: Mapped[str]


class Class(Base):
    """A OneRoster class: a "course" in the chat (e.g. "Math 7B")."""

    __tablename__ = "classes"
    sourced_id: Mapped[str] = mapped_column(primary_key=True)
    title: Mapped[str]
    course_id: Mapped[str]
    school_id: Mapped[str] = mapped_column(index=True)
    class_code: Mapped[str] = mapped_column(default="")


class Enrollment(Base):
    __tablename__ = "enrollments"
    sourced_id: Mapped[str] = mapped_column(primary_key=True)
    class_id: Mapped[str] = mapped_column(index=True)
    user_id: Mapped[str] = mapped_column(index=True)
    roster_role: Mapped[str]
    role: Mapped[str]
    school_id: Mapped[str]


class Project(Base):
    __tablename__ = "projects"
    sourced_id: Mapped[str] = mapped_column(primary_key=True)
    title: Mapped[str]
    school_id: Mapped[str] = mapped_column(index=True)


class ProjectMember(Base):
    __tablename__ = "project_members"
    project_id: Mapped[str] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(primary_key=True, index=True)
    roster_role: Mapped[str]
    role: Mapped[str]
