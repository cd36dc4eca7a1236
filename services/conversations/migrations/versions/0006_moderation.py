"""Moderation: access through abuse reports, and 1:1 blocks.

`report_access` mirrors the moderation service's open reports: while a report is open, the
staff member it was sent to reads and acts in its conversation through a participants row
with `via = 'report'` (not listed, not counted, not removable). A row stays after the
report closes, `revoked`, so a late grant for a closed report changes nothing.

`user_blocks`: a student's block of another person, honoured in their 1:1 conversation.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_access",
        sa.Column("report_id", sa.Uuid, primary_key=True),
        sa.Column("conversation_id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("report_access_reader", "report_access", ["conversation_id", "user_id"])
    op.create_table(
        "user_blocks",
        sa.Column("blocker_id", sa.Text, primary_key=True),
        sa.Column("blocked_id", sa.Text, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("user_blocks_blocked", "user_blocks", ["blocked_id"])


def downgrade() -> None:
    op.drop_table("user_blocks")
    op.drop_table("report_access")
