"""Which messages each change mentions, so that a message's deletion can take its content out of the log.

A change mentions a message by any object under `message` or `last_message` with an `id`
(`services.sync.redact`). The changes already logged are indexed here too, and those before a
deletion already logged are redacted, so no deleted message's content stays behind.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHUNK = 1000


def upgrade() -> None:
    op.create_table(
        "change_messages",
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
    )
    # Pruning deletes by position, like change_audience (no foreign key: nothing to check per insert).
    op.create_index("change_messages_seq", "change_messages", ["seq"])
    _index_logged_changes(op.get_bind())


def _index_logged_changes(session: sa.Connection) -> None:
    from services.sync.log import redact_deleted
    from services.sync.redact import deletion, mentioned_messages
    from shared.events import Envelope

    deletions = []
    after = 0
    while True:
        rows = session.execute(
            sa.text("SELECT seq, envelope FROM changes WHERE seq > :after ORDER BY seq LIMIT :chunk"),
            {"after": after, "chunk": CHUNK},
        ).all()
        if not rows:
            break
        after = rows[-1].seq
        messages, seqs = [], []
        for row in rows:
            try:
                envelope = Envelope.from_json(row.envelope)
            except ValueError:  # it was an envelope when logged; never expected
                continue
            for message_id in mentioned_messages(envelope.data):
                messages.append(message_id)
                seqs.append(row.seq)
            found = deletion(envelope)
            if found is not None:
                deletions.append((found, row.seq))
        if messages:
            session.execute(
                sa.text(
                    "INSERT INTO change_messages (message_id, seq) "
                    "SELECT * FROM unnest(CAST(:messages AS text[]), CAST(:seqs AS bigint[])) ON CONFLICT DO NOTHING"
                ),
                {"messages": messages, "seqs": seqs},
            )
    if deletions:
        redact_deleted(session, deletions)


def downgrade() -> None:
    op.drop_table("change_messages")
