"""Mass-message jobs and their chunks.

A job's audience is fixed when it is planned: each chunk holds its recipients, and its state
says whether it was delivered (once: the state changes once, and the counters with it).

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
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("sender_id", sa.Text, nullable=False),  # the administrator
        sa.Column("org_id", sa.Text, nullable=False),  # the organisation shown as the sender
        sa.Column("org_name", sa.Text, nullable=False),
        sa.Column("org_ids", ARRAY(sa.Text), nullable=False),
        sa.Column("roles", ARRAY(sa.Text), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        # queued -> running -> completed | cancelled | failed
        sa.Column("state", sa.Text, nullable=False, server_default="queued"),
        sa.Column("audience", sa.Integer),
        sa.Column("delivered", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("chunks", sa.Integer),
        sa.Column("chunks_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("conversation_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("state IN ('queued', 'running', 'completed', 'cancelled', 'failed')", name="jobs_state"),
    )
    op.create_index("jobs_sender", "jobs", ["sender_id", "created_at"])
    op.create_index(
        "jobs_unfinished", "jobs", ["touched_at"], postgresql_where=sa.text("state IN ('queued', 'running')")
    )
    op.create_table(
        "chunks",
        sa.Column("job_id", sa.Uuid, sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("index", sa.Integer, primary_key=True),
        sa.Column("recipient_ids", ARRAY(sa.Text), nullable=False),
        # pending -> delivered | cancelled | failed
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    for table in ("chunks", "jobs", "processed_events", "outbox"):
        op.drop_table(table)
