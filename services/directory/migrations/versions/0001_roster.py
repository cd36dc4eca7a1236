"""The roster tables, the outbox and the processed-event record.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from shared.outbox import create_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op)
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "orgs",
        sa.Column("sourced_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("parent_id", sa.Text, index=True),
        sa.Column("identifier", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "users",
        sa.Column("sourced_id", sa.Text, primary_key=True),
        sa.Column("given_name", sa.Text, nullable=False),
        sa.Column("family_name", sa.Text, nullable=False),
        sa.Column("roster_role", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False, index=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("org_ids", ARRAY(sa.Text), nullable=False),
    )
    # Name search: "given family" matched anywhere, fast with trigrams.
    op.execute(
        "CREATE INDEX users_name_trgm ON users USING gin ((lower(given_name || ' ' || family_name)) gin_trgm_ops)"
    )
    op.create_index("users_org_ids", "users", ["org_ids"], postgresql_using="gin")
    op.create_table(
        "courses",
        sa.Column("sourced_id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("org_id", sa.Text, nullable=False),
    )
    op.create_table(
        "classes",
        sa.Column("sourced_id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("course_id", sa.Text, nullable=False),
        sa.Column("school_id", sa.Text, nullable=False, index=True),
        sa.Column("class_code", sa.Text, nullable=False, server_default=""),
    )
    op.execute("CREATE INDEX classes_title_trgm ON classes USING gin (lower(title) gin_trgm_ops)")
    op.create_table(
        "enrollments",
        sa.Column("sourced_id", sa.Text, primary_key=True),
        sa.Column("class_id", sa.Text, nullable=False, index=True),
        sa.Column("user_id", sa.Text, nullable=False, index=True),
        sa.Column("roster_role", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("school_id", sa.Text, nullable=False),
    )
    op.create_table(
        "projects",
        sa.Column("sourced_id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("school_id", sa.Text, nullable=False, index=True),
    )
    op.execute("CREATE INDEX projects_title_trgm ON projects USING gin (lower(title) gin_trgm_ops)")
    op.create_table(
        "project_members",
        sa.Column("project_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True, index=True),
        sa.Column("roster_role", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "project_members",
        "projects",
        "enrollments",
        "classes",
        "courses",
        "users",
        "orgs",
        "processed_events",
        "outbox",
    ):
        op.drop_table(table)
