"""The directory's tables: the roster as the platform keeps it, plus blocks, rules and privileges."""

from __future__ import annotations

import uuid
from datetime import datetime

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


class MessagingBlock(Base):
    """Messaging turned off for a user, an organisation (and all under it) or a course (OneRoster class)."""

    __tablename__ = "messaging_blocks"
    __table_args__ = (
        sa.UniqueConstraint("target_kind", "target_id", name="messaging_blocks_target"),
        sa.CheckConstraint("target_kind IN ('user', 'org', 'course')", name="messaging_blocks_target_kind"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=sa.text("gen_random_uuid()"))
    target_kind: Mapped[str]
    target_id: Mapped[str]
    created_by: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class CommunicationRule(Base):
    """Whom students of an organisation (and of those under it without a rule of their own) may contact."""

    __tablename__ = "communication_rules"
    __table_args__ = (
        sa.CheckConstraint(
            "student_policy IN ('anyone', 'courses', 'teachers')", name="communication_rules_student_policy"
        ),
    )
    org_id: Mapped[str] = mapped_column(primary_key=True)
    student_policy: Mapped[str]
    updated_by: Mapped[str]
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class Privilege(Base):
    """A privilege granted to an administrator, e.g. mass_messaging."""

    __tablename__ = "privileges"
    user_id: Mapped[str] = mapped_column(primary_key=True)
    privilege: Mapped[str] = mapped_column(primary_key=True)
    granted_by: Mapped[str]
    granted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
