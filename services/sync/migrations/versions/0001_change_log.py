"""The change log: every client-visible event in the order clients see them, and who may see each.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        # The envelope as it arrived (text: JSON may hold what jsonb refuses, such as \u0000).
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("changes_logged_at", "changes", ["logged_at"])
    # Who saw each change: a sync reads one user's range of this index and nothing else.
    op.create_table(
        "change_audience",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
    )
    op.create_index("change_audience_seq", "change_audience", ["seq"])
    # The oldest position still served: a cursor before it is too old (pruned away).
    op.create_table(
        "log_floor",
        sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true()),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id", name="log_floor_one_row"),
    )
    op.execute("INSERT INTO log_floor (id, seq) VALUES (true, 0)")
