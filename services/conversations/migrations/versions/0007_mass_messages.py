"""Mass messages: one conversation per job, found again by the job's id.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("mass_job_id", sa.Uuid))
    op.create_index("conversations_mass_job", "conversations", ["mass_job_id"], unique=True)


def downgrade() -> None:
    op.drop_index("conversations_mass_job")
    op.drop_column("conversations", "mass_job_id")
