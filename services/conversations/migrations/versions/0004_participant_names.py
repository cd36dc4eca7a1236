"""Index participants by conversation in joining order.

A conversation's name is the first few other participants' names; in a 1,000-member course
this index lets the lookup stop after three rows instead of sorting everyone.

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("participants_joining_order", "participants", ["conversation_id", "joined_at", "user_id"])


def downgrade() -> None:
    op.drop_index("participants_joining_order", "participants")
