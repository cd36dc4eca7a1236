"""Every conversation type, exact unread counts, message edits and forwards.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Course and project conversations follow a roster group; one live conversation per group.
    op.add_column("conversations", sa.Column("group_kind", sa.Text))
    op.add_column("conversations", sa.Column("group_id", sa.Text))
    op.add_column("conversations", sa.Column("recipient_count", sa.Integer))
    op.add_column("conversations", sa.Column("updated_at", sa.DateTime(timezone=True)))
    # An admin turned messaging off for the course this conversation belongs to.
    op.add_column(
        "conversations", sa.Column("messaging_blocked", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.create_index(
        "conversations_live_group",
        "conversations",
        ["group_kind", "group_id"],
        unique=True,
        postgresql_where=sa.text("group_id IS NOT NULL AND status <> 'deleted'"),
    )
    op.create_index("conversations_activity", "conversations", [sa.text("last_activity_at DESC"), sa.text("id DESC")])
    # How someone came to take part: added by a person, or through their course or project.
    op.add_column("participants", sa.Column("via", sa.Text, nullable=False, server_default="member"))
    op.add_column("participants", sa.Column("unread_count", sa.Integer, nullable=False, server_default="0"))
    op.add_column("messages", sa.Column("forwarded_from", sa.Uuid))
    op.add_column("messages", sa.Column("attachments", JSONB, nullable=False, server_default="[]"))
    op.add_column("messages", sa.Column("batch_id", sa.Uuid))
    # "Sent to X people": the sender's one entry and the 1:1 conversation of each recipient.
    op.create_table(
        "batch_recipients",
        sa.Column("batch_id", sa.Uuid, sa.ForeignKey("conversations.id"), primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("conversation_id", sa.Uuid, sa.ForeignKey("conversations.id"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("batch_recipients")
    op.drop_column("messages", "batch_id")
    op.drop_column("messages", "attachments")
    op.drop_column("messages", "forwarded_from")
    op.drop_column("participants", "unread_count")
    op.drop_column("participants", "via")
    op.drop_index("conversations_activity", "conversations")
    op.drop_index("conversations_live_group", "conversations")
    for column in ("messaging_blocked", "updated_at", "recipient_count", "group_id", "group_kind"):
        op.drop_column("conversations", column)
