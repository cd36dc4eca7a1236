"""Messaging blocks, communication rules and privileges.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messaging_blocks",
        sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("target_kind", sa.Text, nullable=False),
        sa.Column("target_id", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("target_kind", "target_id", name="messaging_blocks_target"),
        sa.CheckConstraint("target_kind IN ('user', 'org', 'course')", name="messaging_blocks_target_kind"),
    )
    op.create_table(
        "communication_rules",
        sa.Column("org_id", sa.Text, primary_key=True),
        sa.Column("student_policy", sa.Text, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "student_policy IN ('anyone', 'courses', 'teachers')", name="communication_rules_student_policy"
        ),
    )
    op.create_table(
        "privileges",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("privilege", sa.Text, primary_key=True),
        sa.Column("granted_by", sa.Text, nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("privileges", "communication_rules", "messaging_blocks"):
        op.drop_table(table)
