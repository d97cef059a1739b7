"""What the director needs to refuse a replayed version report: each ECU's latest trusted time as
its last accepted report gave it, and the nonces of its recent reports.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ota_ecus") as table:
        table.add_column(sa.Column("last_report_time", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("recent_nonces", sa.Text, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("ota_ecus") as table:
        table.drop_column("recent_nonces")
        table.drop_column("last_report_time")
