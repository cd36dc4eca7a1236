"""Find the messages that carry a file (download checks).

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX messages_attachments ON messages USING gin (attachments jsonb_path_ops) "
        "WHERE attachments <> '[]'::jsonb"
    )


def downgrade() -> None:
    op.execute("DROP INDEX messages_attachments")
