"""Attachments: uploaded files, whose they are, and the messages that carry them.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from shared.outbox import create_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op)
    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("owner_id", sa.Text, nullable=False),
        sa.Column("blob_key", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        # uploaded -> claimed (a send took it, for message_id) -> attached (the message exists)
        sa.Column("state", sa.Text, nullable=False, server_default="uploaded"),
        sa.Column("message_id", sa.Uuid),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "attachments_unattached", "attachments", ["created_at"], postgresql_where=sa.text("state <> 'attached'")
    )
    # Every message that carries a file (a forward carries the same file): the file lives while one does.
    op.create_table(
        "attachment_refs",
        sa.Column("attachment_id", sa.Uuid, primary_key=True),
        sa.Column("message_id", sa.Uuid, primary_key=True),
    )
    op.create_index("attachment_refs_message", "attachment_refs", ["message_id"])
