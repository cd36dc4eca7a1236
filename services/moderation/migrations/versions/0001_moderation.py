"""Moderation: abuse reports, whom they went to, the audit log, safeguarding lists and leads.

Nothing here holds a message's content: a report points at a message by id (the staff
member reads it through the report), so destroying the message leaves nothing behind.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.outbox import create_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op)
    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("kind", sa.Text, nullable=False),  # person | safeguarding
        sa.Column("state", sa.Text, nullable=False, server_default="open"),  # open | withdrawn | resolved
        sa.Column("reporter_id", sa.Text),  # null: made by a safeguarding flag
        sa.Column("reporter_name", sa.Text),
        sa.Column("conversation_id", sa.Uuid, nullable=False),
        sa.Column("conversation_type", sa.Text, nullable=False),
        sa.Column("message_id", sa.Uuid),
        sa.Column("subject_id", sa.Text),  # whose message was reported
        sa.Column("subject_name", sa.Text),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("matched", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("org_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("closed_by", sa.Text),
        sa.Column("closed_by_name", sa.Text),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("kind IN ('person', 'safeguarding')", name="reports_kind"),
        sa.CheckConstraint("state IN ('open', 'withdrawn', 'resolved')", name="reports_state"),
    )
    op.create_index("reports_reporter", "reports", ["reporter_id", "created_at"])
    # One open report per reporter and thing reported: a second click is not a second report.
    op.execute(
        "CREATE UNIQUE INDEX reports_open_once ON reports "
        "(reporter_id, conversation_id, coalesce(message_id, '00000000-0000-0000-0000-000000000000'::uuid)) "
        "WHERE state = 'open' AND reporter_id IS NOT NULL"
    )
    # A safeguarding flag reports a message once, however often the event comes.
    op.execute("CREATE UNIQUE INDEX reports_flagged_once ON reports (message_id) WHERE kind = 'safeguarding'")
    op.create_table(
        "report_recipients",
        sa.Column("report_id", sa.Uuid, sa.ForeignKey("reports.id"), primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
    )
    op.create_index("report_recipients_user", "report_recipients", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text),  # null: the system (a safeguarding flag)
        sa.Column("actor_name", sa.Text),
        sa.Column("actor_role", sa.Text),
        sa.Column("report_ids", ARRAY(sa.Uuid), nullable=False, server_default="{}"),
        sa.Column("conversation_id", sa.Uuid),
        sa.Column("message_id", sa.Uuid),
        sa.Column("subject_id", sa.Text),
        sa.Column("org_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("event_id", sa.Uuid, unique=True),  # the event it came from, when it came from one
    )
    op.create_index("audit_log_at", "audit_log", ["at"])
    op.create_index("audit_log_org_ids", "audit_log", ["org_ids"], postgresql_using="gin")
    op.create_index("audit_log_report_ids", "audit_log", ["report_ids"], postgresql_using="gin")
    op.create_index("audit_log_conversation", "audit_log", ["conversation_id"])
    op.create_index("audit_log_actor", "audit_log", ["actor_id"])
    op.create_table(
        "safeguarding_lists",
        sa.Column("org_id", sa.Text, primary_key=True),
        sa.Column("phrases", ARRAY(sa.Text), nullable=False),
        sa.Column("lead_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("safeguarding_lists", "audit_log", "report_recipients", "reports", "processed_events", "outbox"):
        op.drop_table(table)
